/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

#define TAG(x) FERRET__TAG_TYPE__TAG_##x

int wire_grow(void **array, size_t *cap, size_t need, size_t elem)
{
        if (need <= *cap)
                return 0;
        size_t n = *cap ? *cap : 256;
        while (n < need)
                n *= 2;
        void *p = realloc(*array, n * elem);
        if (!p)
                return -ENOMEM;
        *array = p;
        *cap = n;
        return 0;
}

const char *wire_status_name(unsigned status)
{
        switch (status) {
        case WIRE_STATUS_OK: return "ok";
        case WIRE_STATUS_WARNING: return "warning";
        case WIRE_STATUS_ERROR: return "error";
        default: return "unknown";
        }
}

/* Every check a hostile peer could make us fail is done before anything is
 * appended, so a rejected batch leaves @out as it was. */
static const char *validate(const Ferret__SpanColumns *c)
{
        size_t n = c->n_name;

        if (c->n_strings == 0 || c->strings[0][0] != '\0')
                return "string table does not start with \"\"";
        if (c->n_traces % 2)
                return "trace table has an odd number of words";
        if (c->n_trace != n || c->n_span_id != n || c->n_parent != n || c->n_start != n ||
            c->n_duration != n || c->n_tid != n || c->n_flags != n || c->n_message != n ||
            c->n_tag_count != n || (c->n_pid != 0 && c->n_pid != n))
                return "span columns have different lengths";
        if (c->n_tag_key != c->n_tag_type)
                return "tag columns have different lengths";
        if (c->n_lost_span != c->n_lost_parent)
                return "lost span columns have different lengths";
        if ((c->n_path && c->n_path != n) || (c->n_lost_path && c->n_lost_path != c->n_lost_span) ||
            (!c->n_paths && (c->n_path || c->n_lost_path)))
                return "path columns have different lengths";
        if (c->n_paths % 2)
                return "path table has an odd number of words";
        for (size_t i = 0; i < c->n_paths; i += 2)
                if (c->paths[i] == 0)
                        return "a path of 0";
        for (size_t i = 0; i < c->n_path; i++)
                if ((size_t)c->path[i] * 2 >= c->n_paths)
                        return "path index out of range";
        for (size_t i = 0; i < c->n_lost_path; i++)
                if ((size_t)c->lost_path[i] * 2 >= c->n_paths)
                        return "path index out of range";

        size_t tags = 0;
        for (size_t i = 0; i < n; i++) {
                if (c->name[i] >= c->n_strings || c->message[i] >= c->n_strings)
                        return "string index out of range";
                if ((size_t)c->trace[i] * 2 >= c->n_traces)
                        return "trace index out of range";
                if ((c->flags[i] & FERRET__SPAN_FLAG__SPAN_FLAG_STATUS_MASK) > WIRE_STATUS_ERROR)
                        return "unknown status";
                if (c->tag_count[i] > WIRE_MAX_TAGS_PER_SPAN)
                        return "too many tags on one span";
                tags += c->tag_count[i];
        }
        if (tags != c->n_tag_key)
                return "tag counts do not add up";

        size_t doubles = 0, values = 0;
        for (size_t i = 0; i < c->n_tag_key; i++) {
                if (c->tag_key[i] >= c->n_strings)
                        return "tag key out of range";
                switch (c->tag_type[i]) {
                case TAG(DOUBLE):
                        doubles++;
                        break;
                case TAG(STRING):
                        if (values < c->n_tag_value &&
                            (c->tag_value[values] < 0 || (uint64_t)c->tag_value[values] >= c->n_strings))
                                return "tag string out of range";
                        values++;
                        break;
                case TAG(INT):
                case TAG(BOOL):
                        values++;
                        break;
                default:
                        return "unknown tag type";
                }
        }
        if (doubles != c->n_tag_double || values != c->n_tag_value)
                return "tag values do not add up";
        if (c->n_folded_count != c->n_folded_name || c->n_folded_total_ns != c->n_folded_name ||
            c->n_folded_max_ns != c->n_folded_name || (c->n_folded_untimed && c->n_folded_untimed != c->n_folded_name))
                return "folded columns have different lengths";
        for (size_t i = 0; i < c->n_folded_name; i++)
                if (c->folded_name[i] >= c->n_strings)
                        return "folded name out of range";
        return NULL;
}

int wire_spans_append(struct wire_spans *out, const Ferret__SpanColumns *c,
                      uint32_t default_pid, const char **ret_reason)
{
        const char *reason = validate(c);
        if (reason) {
                if (ret_reason)
                        *ret_reason = reason;
                return -EPROTO;
        }

        size_t n = c->n_name;
        if (wire_grow((void **)&out->spans, &out->cap, out->n + n, sizeof(*out->spans)) < 0 ||
            wire_grow((void **)&out->tags, &out->cap_tags, out->n_tags + c->n_tag_key, sizeof(*out->tags)) < 0)
                return -ENOMEM;

        uint64_t id = 0, start = c->base_start_ns;
        size_t tag = 0, value = 0, dbl = 0;
        for (size_t i = 0; i < n; i++) {
                struct wire_span *s = &out->spans[out->n + i];

                id += (uint64_t)c->span_id[i];
                start += (uint64_t)c->start[i];
                s->trace_hi = c->traces[2 * c->trace[i]];
                s->trace_lo = c->traces[2 * c->trace[i] + 1];
                s->span_id = id;
                s->parent_id = c->parent[i] ? id - (uint64_t)c->parent[i] : 0;
                s->name = c->strings[c->name[i]];
                s->start_ns = start;
                s->duration_ns = c->duration[i];
                s->pid = c->n_pid ? c->pid[i] : default_pid;
                s->tid = c->tid[i];
                s->flags = c->flags[i];
                s->message = c->message[i] ? c->strings[c->message[i]] : NULL;
                s->path = c->n_path ? c->paths[2 * c->path[i]] : 0;
                s->parent_path = c->n_path ? c->paths[2 * c->path[i] + 1] : 0;
                s->first_tag = (uint32_t)(out->n_tags + tag);
                s->n_tags = c->tag_count[i];

                for (uint32_t k = 0; k < c->tag_count[i]; k++, tag++) {
                        struct wire_tag *t = &out->tags[out->n_tags + tag];
                        *t = (struct wire_tag){ .key = c->strings[c->tag_key[tag]], .type = c->tag_type[tag] };
                        if (t->type == TAG(DOUBLE))
                                t->d = c->tag_double[dbl++];
                        else if (t->type == TAG(STRING))
                                t->s = c->strings[c->tag_value[value++]];
                        else
                                t->i = c->tag_value[value++];
                }
        }
        out->n += n;
        out->n_tags += tag;
        return 0;
}

void wire_spans_clear(struct wire_spans *s)
{
        s->n = 0;
        s->n_tags = 0;
}

void wire_spans_free(struct wire_spans *s)
{
        if (!s)
                return;
        free(s->spans);
        free(s->tags);
        *s = (struct wire_spans){ 0 };
}

/* FNV-1a: short strings, no adversary on the encoding side. */
static uint32_t hash_bytes(const char *s, size_t len)
{
        uint32_t h = 2166136261u;
        for (size_t i = 0; i < len; i++)
                h = (h ^ (uint8_t)s[i]) * 16777619u;
        return h;
}

int wire_strtab_init(struct wire_strtab *t)
{
        *t = (struct wire_strtab){ 0 };
        t->n_slots = 1024;
        t->slots = calloc(t->n_slots, sizeof(*t->slots));
        if (!t->slots)
                return -ENOMEM;
        if (wire_grow((void **)&t->strings, &t->cap, 1, sizeof(*t->strings)) < 0)
                return -ENOMEM;
        t->strings[0] = "";
        t->n = 1;
        return 0;
}

void wire_strtab_reset(struct wire_strtab *t)
{
        memset(t->slots, 0, t->n_slots * sizeof(*t->slots));
        t->n = 1;
        t->bytes = 0;
}

void wire_strtab_free(struct wire_strtab *t)
{
        if (!t)
                return;
        free(t->strings);
        free(t->slots);
        *t = (struct wire_strtab){ 0 };
}

static int rehash(struct wire_strtab *t)
{
        size_t n_slots = t->n_slots * 2;
        uint32_t *slots = calloc(n_slots, sizeof(*slots));
        if (!slots)
                return -ENOMEM;
        for (size_t i = 1; i < t->n; i++) {
                size_t h = hash_bytes(t->strings[i], strlen(t->strings[i])) & (n_slots - 1);
                while (slots[h])
                        h = (h + 1) & (n_slots - 1);
                slots[h] = (uint32_t)i + 1;
        }
        free(t->slots);
        t->slots = slots;
        t->n_slots = n_slots;
        return 0;
}

/* The strings must be NUL-terminated at @len: protobuf-c packs them with
 * strlen(), so the table stores pointers, not (pointer, length) pairs. */
int64_t wire_strtab_add(struct wire_strtab *t, const char *s, size_t len)
{
        if (len == 0)
                return 0;
        size_t mask = t->n_slots - 1;
        size_t h = hash_bytes(s, len) & mask;
        for (; t->slots[h]; h = (h + 1) & mask) {
                const char *e = t->strings[t->slots[h] - 1];
                if (strncmp(e, s, len) == 0 && e[len] == '\0')
                        return t->slots[h] - 1;
        }
        if (wire_grow((void **)&t->strings, &t->cap, t->n + 1, sizeof(*t->strings)) < 0)
                return -ENOMEM;
        t->strings[t->n] = s;
        t->bytes += len;
        t->slots[h] = (uint32_t)t->n + 1;
        int64_t index = (int64_t)t->n++;
        if (t->n * 2 > t->n_slots && rehash(t) < 0)
                return -ENOMEM;
        return index;
}

Ferret__Batch *wire_batch_unpack(const void *data, size_t size)
{
        if (size > WIRE_MAX_MESSAGE_BYTES)
                return NULL;
        return ferret__batch__unpack(NULL, size, data);
}

int wire_lost_add(struct wire_lost *l, const Ferret__SpanColumns *c)
{
        if (!c || !c->n_lost_span || c->n_lost_span != c->n_lost_parent)
                return 0;
        if (l->n + c->n_lost_span > l->cap) {
                size_t cap = l->cap ? l->cap : 64;
                while (cap < l->n + c->n_lost_span)
                        cap *= 2;
                uint64_t(*p)[4] = realloc(l->entries, cap * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                l->entries = p;
                l->cap = cap;
        }
        bool paths = c->n_lost_path == c->n_lost_span;   /* validated: indexes in range */
        for (size_t i = 0; i < c->n_lost_span; i++) {
                l->entries[l->n][0] = c->lost_span[i];
                l->entries[l->n][1] = c->lost_parent[i];
                l->entries[l->n][2] = paths ? c->paths[2 * c->lost_path[i]] : 0;
                l->entries[l->n][3] = paths ? c->paths[2 * c->lost_path[i] + 1] : 0;
                l->n++;
        }
        l->sorted = false;
        l->n_by_path = 0;
        return 0;
}

static int by_lost_id(const void *a, const void *b)
{
        uint64_t x = ((const uint64_t *)a)[0], y = ((const uint64_t *)b)[0];
        return x < y ? -1 : x > y;
}

static void lost_sort(struct wire_lost *l)
{
        if (!l->sorted) {
                qsort(l->entries, l->n, sizeof(*l->entries), by_lost_id);
                l->sorted = true;
        }
}

bool wire_lost_find(struct wire_lost *l, uint64_t span_id, uint64_t *ret_parent, uint64_t *ret_path)
{
        if (!l->n || !span_id)
                return false;
        lost_sort(l);
        uint64_t key[4] = { span_id, 0, 0, 0 };
        const uint64_t *found = bsearch(key, l->entries, l->n, sizeof(*l->entries), by_lost_id);
        if (!found)
                return false;
        *ret_parent = found[1];
        if (ret_path)
                *ret_path = found[2];
        return true;
}

static int by_path(const void *a, const void *b)
{
        uint64_t x = ((const uint64_t *)a)[0], y = ((const uint64_t *)b)[0];
        return x < y ? -1 : x > y;
}

bool wire_lost_path_parent(struct wire_lost *l, uint64_t path, uint64_t *ret_parent_path)
{
        if (!l->n || !path)
                return false;
        if (!l->n_by_path) {
                uint64_t(*p)[2] = realloc(l->by_path, l->n * sizeof(*p));
                if (!p)
                        return false;
                l->by_path = p;
                for (size_t i = 0; i < l->n; i++) {
                        l->by_path[i][0] = l->entries[i][2];
                        l->by_path[i][1] = l->entries[i][3];
                }
                qsort(l->by_path, l->n, sizeof(*l->by_path), by_path);
                l->n_by_path = l->n;
        }
        uint64_t key[2] = { path, 0 };
        const uint64_t *found = bsearch(key, l->by_path, l->n_by_path, sizeof(*l->by_path), by_path);
        if (!found)
                return false;
        *ret_parent_path = found[1];
        return true;
}

uint64_t wire_lost_resolve(struct wire_lost *l, uint64_t parent_id)
{
        uint64_t up;
        for (int step = 0; step < 64 && wire_lost_find(l, parent_id, &up, NULL); step++)
                parent_id = up;
        return parent_id;
}

void wire_lost_free(struct wire_lost *l)
{
        free(l->entries);
        free(l->by_path);
        *l = (struct wire_lost){ 0 };
}

int wire_cut_cycles(uint32_t *parent, size_t n, size_t *ret_cut)
{
        enum { UNSEEN, ON_PATH, DONE };
        uint8_t *state = calloc(n ? n : 1, 1);
        size_t cut = 0;
        if (!state)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                uint32_t j = (uint32_t)i;
                while (j != WIRE_NO_PARENT && state[j] == UNSEEN) {
                        state[j] = ON_PATH;
                        j = parent[j];
                }
                bool cycle = j != WIRE_NO_PARENT && state[j] == ON_PATH;
                /* The path is done (through the cycle, while it is whole). */
                for (uint32_t k = (uint32_t)i; k != WIRE_NO_PARENT && state[k] == ON_PATH; k = parent[k])
                        state[k] = DONE;
                if (cycle) {
                        parent[j] = WIRE_NO_PARENT;   /* the walk came back to j */
                        cut++;
                }
        }
        free(state);
        *ret_cut = cut;
        return 0;
}

void wire_tag_to_proto(const struct wire_tag *t, Ferret__Tag *tag)
{
        *tag = (Ferret__Tag)FERRET__TAG__INIT;
        tag->key = (char *)t->key;
        switch (t->type) {
        case FERRET__TAG_TYPE__TAG_STRING:
                tag->value_case = FERRET__TAG__VALUE_S;
                tag->s = (char *)t->s;
                break;
        case FERRET__TAG_TYPE__TAG_INT:
                tag->value_case = FERRET__TAG__VALUE_I;
                tag->i = t->i;
                break;
        case FERRET__TAG_TYPE__TAG_DOUBLE:
                tag->value_case = FERRET__TAG__VALUE_D;
                tag->d = t->d;
                break;
        default:
                tag->value_case = FERRET__TAG__VALUE_B;
                tag->b = t->i != 0;
        }
}
