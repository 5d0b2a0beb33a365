/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buckets.h"
#include "log.h"
#include "path.h"
#include "paths.h"
#include "recent.h"

/* Parents known by id only, waiting for their span: bounded, as a client
 * can name parents that never come. Spans whose end was dropped, for the
 * children that name them by id later: as many, forgotten all at once when
 * full. */
#define WANTED_MAX 65536u
#define LOST_MAX 65536u

struct run_paths {
        struct u64map index;          /* path -> position in all + 1 */
        struct path_stats **all;
        size_t n, cap;
        size_t n_nodes;               /* counted against the cap */
        uint32_t *dirty;              /* positions changed since the last commit */
        size_t n_dirty, cap_dirty;
        struct u64map wanted;         /* span id -> 1 */
        struct u64map lost;           /* span id of a lost span -> its path */
        struct run_buckets buckets;   /* the same statistics by start time */
        uint64_t without;
        bool capped;
};

static uint32_t max_paths_g = PATHS_MAX_DEFAULT;

void paths_set_max(uint32_t max)
{
        max_paths_g = max ? max : 1;
}

uint32_t paths_max(void)
{
        return max_paths_g;
}

void path_stats_clear(struct path_stats *ps)
{
        hist_free(&ps->st.hist);
        free(ps->name);
        free(ps->exemplar);
        *ps = (struct path_stats){ 0 };
}

void paths_free(struct run_paths *p)
{
        if (!p)
                return;
        for (size_t i = 0; i < p->n; i++) {
                path_stats_clear(p->all[i]);
                free(p->all[i]);
        }
        free(p->all);
        free(p->dirty);
        u64map_free(&p->index);
        u64map_free(&p->wanted);
        u64map_free(&p->lost);
        buckets_free(&p->buckets);
        free(p);
}

uint64_t paths_without(const struct run_paths *p)
{
        return p ? p->without : 0;
}

/* Entries of any kind a run keeps: aliases cost a few hundred bytes each,
 * and past the cap every new path needs one, so that its children fold
 * with it. */
static size_t max_aliases(void)
{
        size_t n = 2 * (size_t)max_paths_g;
        return n < 65536 ? 65536 : n;
}

static struct path_stats *find(const struct run_paths *p, uint64_t path)
{
        uint64_t at;
        return u64map_get(&p->index, path, &at) ? p->all[at - 1] : NULL;
}

static void mark_dirty(struct run_paths *p, struct path_stats *ps, size_t at)
{
        if (ps->listed)
                return;
        if (p->n_dirty == p->cap_dirty) {
                size_t cap = p->cap_dirty ? 2 * p->cap_dirty : 256;
                uint32_t *d = realloc(p->dirty, cap * sizeof(*d));
                if (!d)
                        return;         /* written at a later change, or from memory */
                p->dirty = d;
                p->cap_dirty = cap;
        }
        p->dirty[p->n_dirty++] = (uint32_t)at;
        ps->listed = true;
}

/* A new entry for @path under @parent: a node named @name, or an alias. */
static struct path_stats *add(struct run_paths *p, uint64_t path, uint64_t parent, const char *name, uint32_t pid)
{
        if (p->n == p->cap) {
                size_t cap = p->cap ? 2 * p->cap : 64;
                struct path_stats **all = realloc(p->all, cap * sizeof(*all));
                if (!all)
                        return NULL;
                p->all = all;
                p->cap = cap;
        }
        struct path_stats *ps = calloc(1, sizeof(*ps));
        if (!ps || (name && !(ps->name = strdup(name))) || u64map_put(&p->index, path, p->n + 1) < 0) {
                if (ps)
                        free(ps->name);
                free(ps);
                return NULL;
        }
        ps->path = path;
        ps->parent = parent;
        ps->pid = pid;
        ps->start_ns = UINT64_MAX;
        ps->st.min_ns = UINT64_MAX;
        p->all[p->n++] = ps;
        p->n_nodes += name != NULL;
        return ps;
}

static size_t position(const struct run_paths *p, uint64_t path)
{
        uint64_t at = 0;
        u64map_get(&p->index, path, &at);
        return (size_t)at - 1;
}

/* @path stands for @parent, unless it is a node already (a lost span's
 * path can also be the path of its stored siblings). */
static int alias(struct run_paths *p, uint64_t path, uint64_t parent)
{
        if (path == PATH_NONE || path == parent || find(p, path))
                return 0;
        if (p->n >= max_aliases())
                return 0;       /* past every bound: its children go under their process */
        struct path_stats *ps = add(p, path, parent, NULL, 0);
        if (!ps)
                return -ENOMEM;
        mark_dirty(p, ps, p->n - 1);
        return 0;
}

static bool is_other(const struct path_stats *ps)
{
        return ps->name && strcmp(ps->name, PATHS_OTHER_NAME) == 0;
}

/* The "(other paths)" node a new path under @parent folds into once the
 * run has its cap of paths: its parent's, or the one its parent folded
 * into (what lies below a folded path folds with it). */
static struct path_stats *other_for(struct run *run, struct run_paths *p, uint64_t parent, uint32_t pid)
{
        if (!p->capped) {
                char note[128];
                snprintf(note, sizeof(note), "more than %u call paths: the others are counted as %s under their parent",
                         max_paths_g, PATHS_OTHER_NAME);
                run_add_note(run, note);
                p->capped = true;
        }
        struct path_stats *under = find(p, parent);
        for (unsigned hops = 0; under && !under->name && hops < 64; hops++)
                under = find(p, under->parent);
        if (under && is_other(under))
                return under;
        /* One "(other paths)" per parent, at most as many as a sixteenth of
         * the cap; past that, one at the top. */
        uint64_t key = path_key_bytes(PATHS_OTHER_NAME, strlen(PATHS_OTHER_NAME));
        if (p->n_nodes >= (size_t)max_paths_g + max_paths_g / 16)
                parent = PATH_NONE;
        uint64_t other = path_step(parent, key);
        struct path_stats *ps = find(p, other);
        return ps ? ps : add(p, other, parent, PATHS_OTHER_NAME, pid);
}

/* A parent the client knew by its span id only: its stand-in path becomes
 * an alias of its real one, now if the parent is known, else when it comes. */
static int link_foreign(struct run *run, struct run_paths *p, const struct wire_span *s)
{
        if (s->parent_id && s->parent_path == path_foreign(s->parent_id) && !find(p, s->parent_path)) {
                const struct recent_span *known = recent_get(&run->recent, s->parent_id);
                uint64_t lost_path;
                int r = 0;
                if (known && known->path)
                        r = alias(p, s->parent_path, known->path);
                else if (p->lost.n && u64map_get(&p->lost, s->parent_id, &lost_path))
                        r = alias(p, s->parent_path, lost_path);     /* its end was dropped, said already */
                else if (p->wanted.n < WANTED_MAX)
                        r = u64map_put(&p->wanted, s->parent_id, 1);
                if (r < 0)
                        return r;
        }
        uint64_t one;
        if (p->wanted.n && u64map_take(&p->wanted, s->span_id, &one))
                return alias(p, path_foreign(s->span_id), s->path);
        return 0;
}

static int make_exemplar(struct path_stats *ps, const struct wire_spans *spans, const struct wire_span *s)
{
        Ferret__TreeNode n = FERRET__TREE_NODE__INIT;
        Ferret__Tag tags[WIRE_MAX_TAGS_PER_SPAN], *ptrs[WIRE_MAX_TAGS_PER_SPAN];
        n.tid = s->tid;
        n.status = s->flags & FERRET__SPAN_FLAG__SPAN_FLAG_STATUS_MASK;
        n.async = (s->flags & FERRET__SPAN_FLAG__SPAN_FLAG_ASYNC) != 0;
        n.message = (char *)(s->message ? s->message : "");
        n.n_tags = s->n_tags < WIRE_MAX_TAGS_PER_SPAN ? s->n_tags : WIRE_MAX_TAGS_PER_SPAN;
        for (size_t k = 0; k < n.n_tags; k++) {
                wire_tag_to_proto(&spans->tags[s->first_tag + k], &tags[k]);
                ptrs[k] = &tags[k];
        }
        n.tags = ptrs;
        size_t len = ferret__tree_node__get_packed_size(&n);
        if (!(ps->exemplar = malloc(len ? len : 1)))
                return -ENOMEM;
        ps->exemplar_len = ferret__tree_node__pack(&n, ps->exemplar);
        return 0;
}

int paths_add_span(struct run *run, const struct wire_spans *spans, const struct wire_span *s, uint64_t self_ns,
                   struct path_stats **ret)
{
        struct run_paths *p = run->paths;
        *ret = NULL;
        if (!p)
                return 0;
        if (!s->path) {
                p->without++;
                return 0;
        }
        int r = link_foreign(run, p, s);
        if (r < 0)
                return r;

        struct path_stats *ps = find(p, s->path);
        if (ps && !ps->name) {
                struct path_stats *to = find(p, ps->parent);
                if (to && is_other(to))
                        ps = to;        /* folded past the cap */
                else if (p->n_nodes < max_paths_g) {
                        /* An alias (a lost span's path) that now has spans of its own. */
                        if (!(ps->name = strdup(s->name)))
                                return -ENOMEM;
                        ps->pid = s->pid;
                        p->n_nodes++;
                } else
                        ps = NULL;
        }
        if (!ps) {
                if (p->n_nodes < max_paths_g) {
                        ps = add(p, s->path, s->parent_path, s->name, s->pid);
                } else {
                        ps = other_for(run, p, s->parent_path, s->pid);
                        if (ps && alias(p, s->path, ps->path) < 0)
                                return -ENOMEM;
                }
                if (!ps)
                        return -ENOMEM;
        }
        if (ps->st.count == 0 && !ps->exemplar && !is_other(ps) && make_exemplar(ps, spans, s) < 0)
                return -ENOMEM;
        name_stats_add(&ps->st, s->duration_ns, self_ns, wire_span_status(s));
        if (buckets_add(&p->buckets, ps->path, s->start_ns, s->duration_ns, self_ns, wire_span_status(s)) < 0)
                return -ENOMEM;
        if (s->start_ns < ps->start_ns)
                ps->start_ns = s->start_ns;
        mark_dirty(p, ps, position(p, ps->path));
        *ret = ps;
        return 0;
}

int paths_take_self(struct run *run, struct path_stats *ps, uint64_t start_ns, uint64_t ns)
{
        ps->st.self_ns = ps->st.self_ns > ns ? ps->st.self_ns - ns : 0;
        mark_dirty(run->paths, ps, position(run->paths, ps->path));
        return buckets_take_self(&run->paths->buckets, ps->path, start_ns, ns);
}

int paths_add_lost(struct run *run, const Ferret__SpanColumns *c)
{
        struct run_paths *p = run->paths;
        if (!p || !c || !c->n_lost_path)
                return 0;
        for (size_t i = 0; i < c->n_lost_path; i++) {
                const uint64_t *pair = &c->paths[2 * c->lost_path[i]];
                int r = alias(p, pair[0], pair[1]);
                /* Children that knew it by id only stand under its path,
                 * those seen already and those to come. */
                uint64_t one;
                if (r == 0 && p->wanted.n && u64map_take(&p->wanted, c->lost_span[i], &one))
                        r = alias(p, path_foreign(c->lost_span[i]), pair[0]);
                if (r == 0 && pair[0] != PATH_NONE) {
                        if (p->lost.n >= LOST_MAX)
                                u64map_clear(&p->lost);
                        r = u64map_put(&p->lost, c->lost_span[i], pair[0]);
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

void paths_write_dirty(struct run_paths *p, uint32_t run, struct store_batch *b)
{
        if (!p)
                return;
        for (size_t i = 0; i < p->n_dirty; i++) {
                struct path_stats *ps = p->all[p->dirty[i]];
                Ferretd__StoredPath sp = FERRETD__STORED_PATH__INIT;
                Ferretd__StoredStats st;
                stats_to_stored(&ps->st, &st);
                sp.parent = ps->parent;
                sp.name = ps->name ? ps->name : "";
                sp.alias = !ps->name;
                sp.pid = ps->pid;
                sp.stats = &st;
                sp.start_ns = ps->start_ns == UINT64_MAX ? 0 : ps->start_ns;
                sp.exemplar = (ProtobufCBinaryData){ .len = ps->exemplar_len, .data = ps->exemplar };
                /* The histogram goes in a record of its own. */
                Ferretd__StoredStats hist = FERRETD__STORED_STATS__INIT;
                hist.hist_first = st.hist_first;
                hist.n_hist = st.n_hist;
                hist.hist = st.hist;
                st.n_hist = 0;
                st.hist_first = 0;
                size_t len = ferretd__stored_path__get_packed_size(&sp);
                size_t hist_len = ferretd__stored_stats__get_packed_size(&hist);
                uint8_t *value = malloc((len > hist_len ? len : hist_len) + 1);
                if (value) {
                        ferretd__stored_path__pack(&sp, value);
                        store_batch_put_path(b, run, ps->path, false, value, len);
                        ferretd__stored_stats__pack(&hist, value);
                        store_batch_put_path(b, run, ps->path, true, value, hist_len);
                        free(value);
                }
                ps->listed = false;
        }
        p->n_dirty = 0;
        buckets_write(&p->buckets, run, b);
}

int path_from_stored(struct path_stats *ps, uint64_t path, const void *value, size_t len)
{
        Ferretd__StoredPath *sp = ferretd__stored_path__unpack(NULL, len, value);
        if (!sp)
                return -EIO;
        int r = -ENOMEM;
        *ps = (struct path_stats){ .path = path, .parent = sp->parent, .pid = sp->pid };
        ps->start_ns = sp->start_ns ? sp->start_ns : UINT64_MAX;
        if ((sp->alias || (ps->name = strdup(sp->name))) &&
            (!sp->stats || stats_from_stored(&ps->st, sp->stats) == 0) &&
            (!sp->exemplar.len || (ps->exemplar = malloc(sp->exemplar.len)))) {
                if (sp->exemplar.len)
                        memcpy(ps->exemplar, sp->exemplar.data, sp->exemplar.len);
                ps->exemplar_len = sp->exemplar.len;
                if (!sp->stats)
                        ps->st.min_ns = UINT64_MAX;
                r = 0;
        }
        ferretd__stored_path__free_unpacked(sp, NULL);
        if (r < 0)
                path_stats_clear(ps);
        return r;
}

/* A varint at *@p (before @end): 0, or -EIO when it runs past @end or is
 * longer than ten bytes. */
static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *ret)
{
        uint64_t v = 0;
        for (unsigned shift = 0; shift < 70 && *p < end; shift += 7) {
                uint8_t b = *(*p)++;
                v |= (uint64_t)(b & 0x7F) << shift;
                if (!(b & 0x80)) {
                        *ret = v;
                        return 0;
                }
        }
        return -EIO;
}

/* The histogram of a StoredStats ('q' record), decoded by hand straight
 * into @h: fields hist_first (7, sint32) and hist (8, packed uint64) of
 * store.proto, every other field skipped. A histogram is a dense array of
 * a few thousand counts, mostly zero: protobuf-c's generic unpack, which
 * allocated and copied it twice, was most of the time of a tree with
 * percentiles (the flame graph's). -EIO for a malformed record. */
static int decode_stored_histogram(const uint8_t *p, size_t len, struct histogram *h)
{
        const uint8_t *end = p + len;
        int64_t first = 0;
        const uint8_t *counts = NULL, *counts_end = NULL;
        while (p < end) {
                uint64_t key, v;
                if (read_varint(&p, end, &key) < 0)
                        return -EIO;
                switch (key & 7) {
                case 0:
                        if (read_varint(&p, end, &v) < 0)
                                return -EIO;
                        if (key >> 3 == 7)
                                first = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
                        else if (key >> 3 == 8)
                                return -EIO;    /* unpacked counts: no writer of ours makes them */
                        break;
                case 1:
                        if (end - p < 8)
                                return -EIO;
                        p += 8;
                        break;
                case 2:
                        if (read_varint(&p, end, &v) < 0 || v > (uint64_t)(end - p))
                                return -EIO;
                        if (key >> 3 == 8) {
                                counts = p;
                                counts_end = p + v;
                        }
                        p += v;
                        break;
                case 5:
                        if (end - p < 4)
                                return -EIO;
                        p += 4;
                        break;
                default:
                        return -EIO;
                }
        }
        size_t n = 0;
        for (const uint8_t *q = counts; q < counts_end; q++)
                n += !(*q & 0x80);
        hist_free(h);
        if (!n)
                return 0;
        if (first < INT32_MIN || first > INT32_MAX || !(h->counts = calloc(n, sizeof(*h->counts))))
                return first < INT32_MIN || first > INT32_MAX ? -EIO : -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                if (*counts == 0) {     /* most buckets: one byte, already 0 */
                        counts++;
                        continue;
                }
                if (read_varint(&counts, counts_end, &h->counts[i]) < 0) {
                        hist_free(h);
                        return -EIO;
                }
        }
        h->first = (int32_t)first;
        h->n = (uint32_t)n;
        return 0;
}

int path_histogram_from_stored(struct path_stats *ps, const void *value, size_t len)
{
        int r = decode_stored_histogram(value, len, &ps->st.hist);
        return r == -EIO ? 0 : r;       /* damaged: percentiles start again */
}

static int load_one(uint64_t path, const void *value, size_t len, void *userdata)
{
        struct run_paths *p = userdata;
        struct path_stats loaded;
        int r = path_from_stored(&loaded, path, value, len);
        if (r == -EIO)
                return 0;       /* damaged: the path starts again */
        if (r < 0)
                return r;
        struct path_stats *ps = add(p, path, loaded.parent, NULL, loaded.pid);
        if (!ps) {
                path_stats_clear(&loaded);
                return -ENOMEM;
        }
        *ps = loaded;
        p->n_nodes += ps->name != NULL;
        p->capped = p->capped || is_other(ps);
        return 0;
}

static int load_histogram(uint64_t path, const void *value, size_t len, void *userdata)
{
        struct path_stats *ps = find(userdata, path);
        return ps ? path_histogram_from_stored(ps, value, len) : 0;
}

int paths_load(struct store *store, uint32_t run, struct run_paths **ret)
{
        struct run_paths *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        int r = buckets_load(store, run, &p->buckets);
        if (r == 0 && store)
                r = store_scan_paths(store, run, false, load_one, p);
        if (r == 0 && store)
                r = store_scan_paths(store, run, true, load_histogram, p);
        if (r < 0) {
                paths_free(p);
                return r;
        }
        *ret = p;
        return 0;
}
