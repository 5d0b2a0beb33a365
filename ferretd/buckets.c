/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buckets.h"
#include "histogram.h"
#include "path.h"

struct bucket_delta {
        uint64_t bucket, path;
        struct name_stats st;         /* min_ns UINT64_MAX while it has no span */
        uint64_t self_taken_ns;
        bool dirty;                   /* live: changed since the last commit */
};

static uint64_t width_ns_g = BUCKET_SECONDS_DEFAULT * 1000000000ull;

void buckets_set_width(uint64_t seconds)
{
        width_ns_g = (seconds ? seconds : 1) * 1000000000ull;
}

uint64_t buckets_default_width_ns(void)
{
        return width_ns_g;
}

int buckets_load(struct store *store, uint32_t run, struct run_buckets *b)
{
        *b = (struct run_buckets){ .width_ns = width_ns_g, .store = store, .run = run };
        if (!store)
                return 0;
        int r = store_get_bucket_width(store, run, &b->width_ns);
        if (r == -ENOENT) {
                b->width_ns = 0;        /* made before buckets: none, ever */
                return 0;
        }
        b->width_stored = r == 0;
        return r < 0 ? r : 0;
}

static void table_clear(struct bucket_table *t)
{
        for (size_t i = 0; i < t->n; i++)
                hist_free(&t->entries[i].st.hist);
        t->n = 0;
        u64map_clear(&t->index);
}

static void table_free(struct bucket_table *t)
{
        table_clear(t);
        free(t->entries);
        u64map_free(&t->index);
}

void buckets_free(struct run_buckets *b)
{
        table_free(&b->live);
        table_free(&b->deltas);
        *b = (struct run_buckets){ 0 };
}

static uint64_t table_key(uint64_t bucket, uint64_t path)
{
        uint64_t key = path_mix(path ^ path_mix(bucket + 1));
        return key ? key : 1;
}

static struct bucket_delta *table_find(struct bucket_table *t, uint64_t bucket, uint64_t path)
{
        uint64_t at;
        if (!u64map_get(&t->index, table_key(bucket, path), &at))
                return NULL;
        struct bucket_delta *d = &t->entries[at - 1];
        return d->bucket == bucket && d->path == path ? d : NULL;
}

/* A new entry for (@bucket, @path). Of two pairs whose 64-bit keys mix to
 * one value the index keeps the newer, and the older keeps its entry,
 * written with the others: deltas add up in any number; a live bucket so
 * hidden is written as it stands, and a later span of it makes a new entry,
 * read again from what was committed (what that commit added to it is then
 * lost: one chance in 2^64 a pair). */
static struct bucket_delta *table_add(struct bucket_table *t, uint64_t bucket, uint64_t path)
{
        if (t->n == t->cap) {
                size_t cap = t->cap ? 2 * t->cap : 256;
                struct bucket_delta *p = realloc(t->entries, cap * sizeof(*p));
                if (!p)
                        return NULL;
                t->entries = p;
                t->cap = cap;
        }
        if (u64map_put(&t->index, table_key(bucket, path), t->n + 1) < 0)
                return NULL;
        struct bucket_delta *d = &t->entries[t->n++];
        *d = (struct bucket_delta){ .bucket = bucket, .path = path };
        d->st.min_ns = UINT64_MAX;
        return d;
}

/* A live bucket, whole: as committed so far when a ferretd that restarted
 * first touches it (one read), empty for a new run. */
static int live(struct run_buckets *b, uint64_t bucket, uint64_t path, struct bucket_delta **ret)
{
        struct bucket_delta *d = table_find(&b->live, bucket, path);
        if (!d) {
                char *value = NULL;
                size_t len = 0;
                int r = b->store ? store_get_bucket(b->store, b->run, bucket, path, &value, &len) : -ENOENT;
                if (r < 0 && r != -ENOENT)
                        return r;
                if (!(d = table_add(&b->live, bucket, path))) {
                        if (value)
                                store_free_value(value);
                        return -ENOMEM;
                }
                if (r == 0) {
                        Ferretd__StoredStats *s = ferretd__stored_stats__unpack(NULL, len, (const uint8_t *)value);
                        store_free_value(value);
                        r = 0;
                        if (s) {        /* else damaged: the bucket starts again */
                                r = stats_from_stored(&d->st, s);
                                d->self_taken_ns = s->self_taken_ns;
                                if (!d->st.count)
                                        d->st.min_ns = UINT64_MAX;
                                ferretd__stored_stats__free_unpacked(s, NULL);
                        }
                        if (r < 0)
                                return r;
                }
        }
        d->dirty = true;
        *ret = d;
        return 0;
}

/* Where a span that started in @bucket counts: its live bucket, or a delta
 * of an older one. */
static int entry(struct run_buckets *b, uint64_t bucket, uint64_t path, struct bucket_delta **ret)
{
        if (bucket > b->newest)
                b->newest = bucket;
        if (bucket + 1 >= b->newest)
                return live(b, bucket, path, ret);
        struct bucket_delta *d = table_find(&b->deltas, bucket, path);
        if (!d && !(d = table_add(&b->deltas, bucket, path)))
                return -ENOMEM;
        *ret = d;
        return 0;
}

int buckets_add(struct run_buckets *b, uint64_t path, uint64_t start_ns, uint64_t duration_ns, uint64_t self_ns,
                unsigned status)
{
        if (!b->width_ns || !path)
                return 0;
        struct bucket_delta *d;
        int r = entry(b, start_ns / b->width_ns, path, &d);
        if (r < 0)
                return r;
        name_stats_add(&d->st, duration_ns, self_ns, status);
        return 0;
}

int buckets_take_self(struct run_buckets *b, uint64_t path, uint64_t start_ns, uint64_t ns)
{
        if (!b->width_ns || !path || !ns)
                return 0;
        struct bucket_delta *d;
        int r = entry(b, start_ns / b->width_ns, path, &d);
        if (r < 0)
                return r;
        d->self_taken_ns += ns;
        return 0;
}

static size_t pack(const struct name_stats *st, uint64_t self_taken_ns, void **ret)
{
        Ferretd__StoredStats s;
        stats_to_stored(st, &s);
        s.self_taken_ns = self_taken_ns;
        if (!st->count)
                s.min_ns = 0;
        size_t len = ferretd__stored_stats__get_packed_size(&s);
        uint8_t *value = malloc(len ? len : 1);
        if (!value)
                return 0;
        ferretd__stored_stats__pack(&s, value);
        *ret = value;
        return len;
}

/* Live buckets the newest has left behind, written already, go. */
static void evict(struct run_buckets *b)
{
        size_t kept = 0;
        for (size_t i = 0; i < b->live.n; i++) {
                struct bucket_delta *d = &b->live.entries[i];
                if (d->bucket + 1 >= b->newest)
                        b->live.entries[kept++] = *d;
                else
                        hist_free(&d->st.hist);
        }
        if (kept == b->live.n)
                return;
        b->live.n = kept;
        u64map_clear(&b->live.index);
        for (size_t i = 0; i < kept; i++)
                if (u64map_put(&b->live.index, table_key(b->live.entries[i].bucket, b->live.entries[i].path),
                               i + 1) < 0)
                        break;  /* an entry out of the index is read again when next touched */
}

void buckets_write(struct run_buckets *b, uint32_t run, struct store_batch *sb)
{
        if (!b->width_ns)
                return;
        if (!b->width_stored) {
                store_batch_put_bucket_width(sb, run, b->width_ns);
                b->width_stored = true;
        }
        for (size_t i = 0; i < b->live.n; i++) {
                struct bucket_delta *d = &b->live.entries[i];
                void *value = NULL;
                if (!d->dirty)
                        continue;
                size_t len = pack(&d->st, d->self_taken_ns, &value);
                if (value)
                        store_batch_put_bucket(sb, run, d->bucket, d->path, value, len);
                free(value);
                d->dirty = false;
        }
        for (size_t i = 0; i < b->deltas.n; i++) {
                const struct bucket_delta *d = &b->deltas.entries[i];
                void *value = NULL;
                size_t len = pack(&d->st, d->self_taken_ns, &value);
                if (value)
                        store_batch_merge_bucket(sb, run, d->bucket, d->path, value, len);
                free(value);
        }
        table_clear(&b->deltas);
        evict(b);
}

/* Adds one packed record to @sum (and its self_taken_ns to @taken). */
static int add_packed(struct name_stats *sum, uint64_t *taken, const void *value, size_t len)
{
        Ferretd__StoredStats *s = ferretd__stored_stats__unpack(NULL, len, value);
        if (!s)
                return -EIO;
        struct name_stats add;
        int r = stats_from_stored(&add, s);
        *taken += s->self_taken_ns;
        ferretd__stored_stats__free_unpacked(s, NULL);
        if (r == 0 && add.count) {
                sum->count += add.count;
                sum->total_ns += add.total_ns;
                sum->min_ns = add.min_ns < sum->min_ns ? add.min_ns : sum->min_ns;
                sum->max_ns = add.max_ns > sum->max_ns ? add.max_ns : sum->max_ns;
                sum->errors += add.errors;
                sum->warnings += add.warnings;
                r = hist_merge(&sum->hist, &add.hist);
        }
        sum->self_ns += add.self_ns;
        hist_free(&add.hist);
        return r;
}

int buckets_merge(const void *existing, size_t existing_len, const char *const *operands, const size_t *lens,
                  int n, void **ret, size_t *ret_len)
{
        struct name_stats sum = { .min_ns = UINT64_MAX };
        uint64_t taken = 0;
        int r = existing ? add_packed(&sum, &taken, existing, existing_len) : 0;
        for (int i = 0; r == 0 && i < n; i++)
                r = add_packed(&sum, &taken, operands[i], lens[i]);
        void *value = NULL;
        size_t len = r == 0 ? pack(&sum, taken, &value) : 0;
        hist_free(&sum.hist);
        if (r < 0)
                return r;
        if (!value)
                return -ENOMEM;
        *ret = value;
        *ret_len = len;
        return 0;
}

int bucket_from_stored(struct name_stats *st, const void *value, size_t len)
{
        Ferretd__StoredStats *s = ferretd__stored_stats__unpack(NULL, len, value);
        if (!s)
                return -EIO;
        int r = stats_from_stored(st, s);
        st->self_ns = st->self_ns > s->self_taken_ns ? st->self_ns - s->self_taken_ns : 0;
        if (!st->count)
                st->min_ns = UINT64_MAX;
        ferretd__stored_stats__free_unpacked(s, NULL);
        return r;
}

int buckets_window(struct store *store, uint32_t run, bool widen, uint64_t *since_ns, uint64_t *until_ns,
                   uint64_t *first, uint64_t *end)
{
        uint64_t w;
        int r = store_get_bucket_width(store, run, &w);
        if (r == -ENOENT)
                return -ESTALE;
        if (r < 0)
                return r;
        if (widen) {
                *since_ns -= *since_ns % w;
                if (*until_ns % w)
                        *until_ns = *until_ns > UINT64_MAX - w ? 0 : *until_ns + (w - *until_ns % w);
        }
        if (*since_ns % w || *until_ns % w)
                return -ESTALE;
        *first = *since_ns / w;
        *end = *until_ns ? *until_ns / w : UINT64_MAX;
        return 0;
}
