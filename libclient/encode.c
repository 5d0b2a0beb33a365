/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "encode.h"
#include "intern.h"
#include "slot.h"
#include "symbols.h"

/* Distinct function addresses remembered per batch. */
#define ADDR_SLOTS 4096
/* Distinct call paths a batch can hold (one per span and per lost span),
 * and the slots of their index. */
#define PATHS_MAX (2 * ENCODER_MAX_SPANS)
#define PATH_SLOTS (2 * PATHS_MAX)
/* Widest encodings: a varint is at most 10 bytes, a string costs its
 * bytes, a tag and a length; a record brings at most a slot's payload of
 * strings (function names are cut to NAME_MAX_BYTES). */
#define VARINT_MAX 10
#define SPAN_COLUMNS 11
#define PATH_BYTES 16
#define STRING_OVERHEAD 6
#define TAG_MAX_BYTES (3 * VARINT_MAX)
#define FOLD_MAX_BYTES (5 * VARINT_MAX)
#define LOST_MAX_BYTES (3 * VARINT_MAX + PATH_BYTES)
#define RECORD_MAX_BYTES (SLOT_BYTES * (STRING_OVERHEAD + TAG_MAX_BYTES) + SPAN_COLUMNS * VARINT_MAX + PATH_BYTES)

int encoder_init(struct encoder *e)
{
        *e = (struct encoder){ 0 };
        if (wire_strtab_init(&e->strtab) < 0)
                return -ENOMEM;
        size_t n = ENCODER_MAX_SPANS;
        e->traces = malloc(2 * n * sizeof(*e->traces));
        e->trace = malloc(n * sizeof(*e->trace));
        e->name = malloc(n * sizeof(*e->name));
        e->tid = malloc(n * sizeof(*e->tid));
        e->flags = malloc(n * sizeof(*e->flags));
        e->message = malloc(n * sizeof(*e->message));
        e->tag_count = malloc(n * sizeof(*e->tag_count));
        e->span_id = malloc(n * sizeof(*e->span_id));
        e->parent = malloc(n * sizeof(*e->parent));
        e->start = malloc(n * sizeof(*e->start));
        e->duration = malloc(n * sizeof(*e->duration));
        e->addr_keys = calloc(ADDR_SLOTS, sizeof(*e->addr_keys));
        e->addr_index = calloc(ADDR_SLOTS, sizeof(*e->addr_index));
        e->addr_stamp = calloc(ADDR_SLOTS, sizeof(*e->addr_stamp));
        e->path = malloc(n * sizeof(*e->path));
        e->paths = malloc(2 * PATHS_MAX * sizeof(*e->paths));
        e->path_keys = calloc(PATH_SLOTS, sizeof(*e->path_keys));
        e->path_slot = calloc(PATH_SLOTS, sizeof(*e->path_slot));
        e->path_stamp = malloc(PATH_SLOTS * sizeof(*e->path_stamp));
        if (e->path_stamp)   /* no slot taken, whatever the batch's stamp */
                memset(e->path_stamp, 0xff, PATH_SLOTS * sizeof(*e->path_stamp));
        if (!e->traces || !e->trace || !e->name || !e->tid || !e->flags || !e->message ||
            !e->tag_count || !e->span_id || !e->parent || !e->start || !e->duration ||
            !e->addr_keys || !e->addr_index || !e->addr_stamp || !e->path || !e->paths || !e->path_keys ||
            !e->path_slot || !e->path_stamp) {
                encoder_free(e);
                return -ENOMEM;
        }
        return 0;
}

void encoder_free(struct encoder *e)
{
        if (!e)
                return;
        wire_strtab_free(&e->strtab);
        free(e->name_index);
        free(e->name_stamp);
        free(e->traces);
        free(e->trace);
        free(e->name);
        free(e->tid);
        free(e->flags);
        free(e->message);
        free(e->tag_count);
        free(e->span_id);
        free(e->parent);
        free(e->start);
        free(e->duration);
        free(e->tag_key);
        free(e->tag_type);
        free(e->tag_value);
        free(e->tag_double);
        free(e->addr_keys);
        free(e->addr_index);
        free(e->addr_stamp);
        free(e->folded_name);
        free(e->folded_count);
        free(e->folded_total);
        free(e->folded_max);
        free(e->folded_untimed);
        free(e->lost_span);
        free(e->lost_parent);
        free(e->lost_path);
        free(e->path);
        free(e->paths);
        free(e->path_keys);
        free(e->path_slot);
        free(e->path_stamp);
        free(e->notes);
        free(e->packed);
        *e = (struct encoder){ 0 };
}

void encoder_reset(struct encoder *e)
{
        wire_strtab_reset(&e->strtab);
        e->stamp = e->stamp + 1 == UINT32_MAX ? 0 : e->stamp + 1;
        e->n = e->n_traces = 0;
        e->n_tags = e->n_values = e->n_doubles = 0;
        e->n_folded = e->n_notes = e->n_lost = e->n_paths = 0;
        e->prev_id = e->prev_start = e->base_start = 0;
}

/* The string-table index of interned name @id, looked up once a batch. */
static int64_t interned_string(struct encoder *e, uint32_t id)
{
        if (id >= e->name_cap) {
                size_t cap = e->name_cap ? e->name_cap : 1024;
                while (cap <= id)
                        cap *= 2;
                uint32_t *index = realloc(e->name_index, cap * sizeof(*index));
                if (!index)
                        return -ENOMEM;
                e->name_index = index;
                uint32_t *stamp = realloc(e->name_stamp, cap * sizeof(*stamp));
                if (!stamp)
                        return -ENOMEM;
                memset(stamp + e->name_cap, 0xff, (cap - e->name_cap) * sizeof(*stamp));
                e->name_stamp = stamp;
                e->name_cap = cap;
        }
        if (e->name_stamp[id] == e->stamp)
                return e->name_index[id];
        size_t len;
        const char *text = intern_lookup(id, &len);
        int64_t index = wire_strtab_add(&e->strtab, text, len);
        if (index >= 0) {
                e->name_index[id] = (uint32_t)index;
                e->name_stamp[id] = e->stamp;
        }
        return index;
}

static int64_t name_string(struct encoder *e, const struct record *r, const char **ret_entries)
{
        size_t len;
        const char *inline_name = payload_name(r, &len, ret_entries);
        return inline_name ? wire_strtab_add(&e->strtab, inline_name, len) : interned_string(e, r->name_id);
}

static uint32_t trace_index(struct encoder *e, uint64_t hi, uint64_t lo)
{
        /* Spans of a batch share few traces, and mostly the latest ones. */
        for (size_t i = e->n_traces; i > 0 && i + 8 > e->n_traces; i--)
                if (e->traces[2 * (i - 1)] == hi && e->traces[2 * (i - 1) + 1] == lo)
                        return (uint32_t)(i - 1);
        e->traces[2 * e->n_traces] = hi;
        e->traces[2 * e->n_traces + 1] = lo;
        return (uint32_t)e->n_traces++;
}

/* Makes @*array room for @cap elements of @elem bytes; unchanged on failure. */
static int grow(void **array, size_t cap, size_t elem)
{
        void *p = realloc(*array, cap * elem);
        if (!p)
                return -ENOMEM;
        *array = p;
        return 0;
}

static int tags_reserve(struct encoder *e, size_t more)
{
        if (e->n_tags + more <= e->cap_tags)
                return 0;
        size_t cap = e->cap_tags ? e->cap_tags * 2 : 4096;
        while (cap < e->n_tags + more)
                cap *= 2;
        if (grow((void **)&e->tag_key, cap, sizeof(*e->tag_key)) < 0 ||
            grow((void **)&e->tag_type, cap, sizeof(*e->tag_type)) < 0 ||
            grow((void **)&e->tag_value, cap, sizeof(*e->tag_value)) < 0 ||
            grow((void **)&e->tag_double, cap, sizeof(*e->tag_double)) < 0)
                return -ENOMEM;
        e->cap_tags = cap;
        return 0;
}

/* Walks the payload entries after the name: tags and status messages. */
static int add_entries(struct encoder *e, const char *p, const char *end, uint32_t *ret_count,
                       uint32_t *ret_message)
{
        uint32_t count = 0;
        int64_t message = 0;
        struct payload_entry entry;
        while ((p = payload_next(p, end, &entry))) {
                int64_t key_index = entry.key_id ? interned_string(e, entry.key_id) :
                                    entry.key ? wire_strtab_add(&e->strtab, entry.key, entry.key_len) : 0;
                if (key_index < 0 || tags_reserve(e, 1) < 0)
                        return -ENOMEM;
                switch (entry.kind) {
                case ENTRY_MESSAGE:
                case ENTRY_TAG_STRING: {
                        int64_t text = wire_strtab_add(&e->strtab, entry.value, entry.value_len);
                        if (text < 0)
                                return -ENOMEM;
                        if (entry.kind == ENTRY_MESSAGE) {
                                message = text;
                                continue;
                        }
                        e->tag_value[e->n_values++] = text;
                        break;
                }
                case ENTRY_TAG_DOUBLE:
                        memcpy(&e->tag_double[e->n_doubles++], entry.value, 8);
                        break;
                case ENTRY_TAG_INT:
                        memcpy(&e->tag_value[e->n_values++], entry.value, 8);
                        break;
                default:
                        e->tag_value[e->n_values++] = (uint8_t)entry.value[0];
                        break;
                }
                e->tag_key[e->n_tags] = (uint32_t)key_index;
                e->tag_type[e->n_tags++] = (Ferret__TagType)entry.kind;
                count++;
        }
        *ret_count = count;
        *ret_message = (uint32_t)message;
        return 0;
}

/* The entry of (@path, @parent) in the batch's table of paths. Paths are
 * 64-bit hashes of their parent and name, so a path has one parent. */
static uint32_t path_entry(struct encoder *e, uint64_t path, uint64_t parent)
{
        size_t i = (size_t)path & (PATH_SLOTS - 1);
        while (e->path_stamp[i] == e->stamp) {
                if (e->path_keys[i] == path)
                        return e->path_slot[i];
                i = (i + 1) & (PATH_SLOTS - 1);
        }
        uint32_t k = (uint32_t)e->n_paths++;
        e->paths[2 * k] = path;
        e->paths[2 * k + 1] = parent;
        e->path_keys[i] = path;
        e->path_slot[i] = k;
        e->path_stamp[i] = e->stamp;
        return k;
}

/* What the batch could take when packed, at most. */
static size_t encoded_bound(const struct encoder *e)
{
        return e->strtab.bytes + e->strtab.n * STRING_OVERHEAD + e->n * SPAN_COLUMNS * VARINT_MAX +
               e->n_traces * 2 * VARINT_MAX + e->n_tags * TAG_MAX_BYTES + e->n_folded * FOLD_MAX_BYTES +
               e->n_lost * LOST_MAX_BYTES + e->n * PATH_BYTES;
}

/* Whether another record of any kind could push the batch past its bound. */
static bool encoder_full(const struct encoder *e)
{
        return e->n >= ENCODER_MAX_SPANS || encoded_bound(e) + RECORD_MAX_BYTES > ENCODER_MAX_BYTES;
}

/* The columns every span has, span records and function calls alike. */
struct span_row {
        uint64_t trace_hi, trace_lo, span_id, parent_id, t0, t1, path, parent_path;
        uint32_t name, tid;
        uint8_t flags;
};

/* Adds @s as the next span; its tags and message are in place already.
 * Ids and starts go as differences from the span before. */
static void add_row(struct encoder *e, const struct span_row *s)
{
        size_t i = e->n;
        uint64_t start = clock_to_wall(&e->conv, s->t0);
        if (i == 0)
                e->prev_start = e->base_start = start;
        e->trace[i] = trace_index(e, s->trace_hi, s->trace_lo);
        e->span_id[i] = (int64_t)(s->span_id - e->prev_id);
        e->parent[i] = s->parent_id ? (int64_t)(s->span_id - s->parent_id) : 0;
        e->name[i] = s->name;
        e->start[i] = (int64_t)(start - e->prev_start);
        e->duration[i] = clock_span_ns(&e->conv, s->t0, s->t1, start);
        e->tid[i] = s->tid;
        e->flags[i] = s->flags;
        e->path[i] = path_entry(e, s->path, s->parent_path);
        e->prev_id = s->span_id;
        e->prev_start = start;
        e->n++;
}

int encoder_add(struct encoder *e, const struct record *r)
{
        if (encoder_full(e))
                return -ENOSPC;
        size_t i = e->n;
        const char *entries;
        int64_t name = name_string(e, r, &entries);
        if (name < 0)
                return -ENOMEM;

        /* Undo a partial span if its tags do not fit in memory. */
        size_t tags = e->n_tags, values = e->n_values, doubles = e->n_doubles;
        if (add_entries(e, entries, record_payload(r) + r->payload_len, &e->tag_count[i], &e->message[i]) < 0) {
                e->n_tags = tags, e->n_values = values, e->n_doubles = doubles;
                return -ENOMEM;
        }

        add_row(e, &(struct span_row){ .trace_hi = r->trace_hi, .trace_lo = r->trace_lo, .span_id = r->span_id,
                                       .parent_id = r->parent_id, .t0 = r->t0, .t1 = r->t1, .path = r->path,
                                       .parent_path = r->parent_path, .name = (uint32_t)name, .tid = r->tid,
                                       .flags = r->flags });
        return 0;
}

/* The string index of the function at @address, resolved once a batch. */
static int64_t function_name(struct encoder *e, uint64_t address)
{
        size_t i = (size_t)(address >> 4) & (ADDR_SLOTS - 1);
        for (size_t probes = 0; probes < 8; probes++, i = (i + 1) & (ADDR_SLOTS - 1)) {
                if (e->addr_stamp[i] == e->stamp && e->addr_keys[i] == address)
                        return e->addr_index[i];
                if (e->addr_stamp[i] != e->stamp)
                        break;
        }
        const char *name = symbols_name(address);
        int64_t index = wire_strtab_add(&e->strtab, name, strlen(name));
        if (index >= 0 && e->addr_stamp[i] != e->stamp) {
                e->addr_keys[i] = address;
                e->addr_index[i] = (uint32_t)index;
                e->addr_stamp[i] = e->stamp;
        }
        return index;
}

int encoder_add_func(struct encoder *e, const struct func_record *r, const struct call_context *ctx)
{
        if (encoder_full(e))
                return -ENOSPC;
        int64_t name = function_name(e, r->fn);
        if (name < 0)
                return -ENOMEM;
        e->message[e->n] = 0;
        e->tag_count[e->n] = 0;
        add_row(e, &(struct span_row){ .trace_hi = ctx->trace_hi, .trace_lo = ctx->trace_lo, .span_id = r->span_id,
                                       .parent_id = r->parent_id, .t0 = r->t0, .t1 = r->t1, .path = r->path,
                                       .parent_path = r->parent_path, .name = (uint32_t)name, .tid = ctx->tid,
                                       .flags = r->h.flags });
        return 0;
}

int encoder_add_lost(struct encoder *e, const struct lost_record *r)
{
        if (e->n_lost >= ENCODER_MAX_SPANS || encoder_full(e))
                return -ENOSPC;
        if (e->n_lost == e->cap_lost) {
                size_t cap = e->cap_lost ? e->cap_lost * 2 : 16;
                if (grow((void **)&e->lost_span, cap, sizeof(*e->lost_span)) < 0 ||
                    grow((void **)&e->lost_parent, cap, sizeof(*e->lost_parent)) < 0 ||
                    grow((void **)&e->lost_path, cap, sizeof(*e->lost_path)) < 0)
                        return -ENOMEM;
                e->cap_lost = cap;
        }
        e->lost_span[e->n_lost] = r->span_id;
        e->lost_parent[e->n_lost] = r->parent_id;
        e->lost_path[e->n_lost] = path_entry(e, r->path, r->parent_path);
        e->n_lost++;
        return 0;
}

int encoder_add_fold(struct encoder *e, const struct fold_record *r)
{
        if (encoder_full(e))
                return -ENOSPC;
        if (e->n_folded == e->cap_folded) {
                size_t cap = e->cap_folded ? e->cap_folded * 2 : 256;
                if (grow((void **)&e->folded_name, cap, sizeof(*e->folded_name)) < 0 ||
                    grow((void **)&e->folded_count, cap, sizeof(*e->folded_count)) < 0 ||
                    grow((void **)&e->folded_total, cap, sizeof(*e->folded_total)) < 0 ||
                    grow((void **)&e->folded_max, cap, sizeof(*e->folded_max)) < 0 ||
                    grow((void **)&e->folded_untimed, cap, sizeof(*e->folded_untimed)) < 0)
                        return -ENOMEM;
                e->cap_folded = cap;
        }
        int64_t name = function_name(e, r->fn);
        if (name < 0)
                return -ENOMEM;
        size_t i = e->n_folded++;
        e->folded_name[i] = (uint32_t)name;
        e->folded_count[i] = r->count;
        e->folded_total[i] = clock_to_ns(&e->conv, r->total_ticks);
        e->folded_max[i] = clock_to_ns(&e->conv, r->max_ticks);
        e->folded_untimed[i] = r->untimed;
        return 0;
}

int encoder_add_note(struct encoder *e, const char *text)
{
        if (e->n_notes == e->cap_notes) {
                size_t cap = e->cap_notes ? e->cap_notes * 2 : 8;
                if (grow((void **)&e->notes, cap, sizeof(*e->notes)) < 0)
                        return -ENOMEM;
                e->cap_notes = cap;
        }
        e->notes[e->n_notes++] = text;
        return 0;
}

bool encoder_has_content(const struct encoder *e)
{
        return e->n || e->n_folded || e->n_notes || e->n_lost;
}

int encoder_pack(struct encoder *e, const Ferret__Batch *header, const uint8_t **ret, size_t *ret_len)
{
        /* The columns point at the encoder's arrays: n entries per span,
         * then as many as each kind of entry has. */
        size_t n = e->n;
        Ferret__SpanColumns cols = {
                .base = PROTOBUF_C_MESSAGE_INIT(&ferret__span_columns__descriptor),
                .n_strings = e->strtab.n, .strings = (char **)e->strtab.strings,
                .n_traces = 2 * e->n_traces, .traces = e->traces,
                .n_trace = n, .trace = e->trace, .n_span_id = n, .span_id = e->span_id,
                .n_parent = n, .parent = e->parent, .n_name = n, .name = e->name, .n_tid = n, .tid = e->tid,
                .base_start_ns = e->base_start, .n_start = n, .start = e->start, .n_duration = n, .duration = e->duration,
                .n_flags = n, .flags = e->flags, .n_message = n, .message = e->message,
                .n_path = n, .path = e->path, .n_paths = 2 * e->n_paths, .paths = e->paths,
                .n_tag_count = n, .tag_count = e->tag_count,
                .n_tag_key = e->n_tags, .tag_key = e->tag_key, .n_tag_type = e->n_tags, .tag_type = e->tag_type,
                .n_tag_value = e->n_values, .tag_value = e->tag_value, .n_tag_double = e->n_doubles,
                .tag_double = e->tag_double,
                .n_folded_name = e->n_folded, .folded_name = e->folded_name,
                .n_folded_count = e->n_folded, .folded_count = e->folded_count, .n_folded_total_ns = e->n_folded,
                .folded_total_ns = e->folded_total, .n_folded_max_ns = e->n_folded, .folded_max_ns = e->folded_max,
                .n_folded_untimed = e->n_folded, .folded_untimed = e->folded_untimed,
                .n_lost_span = e->n_lost, .lost_span = e->lost_span, .n_lost_parent = e->n_lost,
                .lost_parent = e->lost_parent, .n_lost_path = e->n_lost, .lost_path = e->lost_path,
        };

        Ferret__Batch batch = *header;
        batch.spans = &cols;
        batch.n_notes = e->n_notes;
        batch.notes = (char **)e->notes;
        size_t len;
        int r = wire_batch_pack(&batch, &e->packed, &e->packed_cap, &len);
        if (r < 0)
                return r;
        /* The bound above makes this impossible; the daemon would refuse it. */
        if (len > WIRE_MAX_MESSAGE_BYTES)
                return -EMSGSIZE;
        *ret = e->packed;
        *ret_len = len;
        return 0;
}
