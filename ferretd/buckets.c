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
        *b = (struct run_buckets){ .width_ns = width_ns_g };
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

static void clear_deltas(struct run_buckets *b)
{
        for (size_t i = 0; i < b->n; i++)
                hist_free(&b->deltas[i].st.hist);
        b->n = 0;
        u64map_clear(&b->index);
}

void buckets_free(struct run_buckets *b)
{
        clear_deltas(b);
        free(b->deltas);
        u64map_free(&b->index);
        *b = (struct run_buckets){ 0 };
}

/* The delta of (@bucket, @path) in this commit, made if new. Of two pairs
 * whose keys mix to one value the index keeps the newer; the older keeps its
 * delta, written with the others (merge operands add up in any number). */
static struct bucket_delta *delta(struct run_buckets *b, uint64_t bucket, uint64_t path)
{
        uint64_t key = path_mix(path ^ path_mix(bucket + 1)), at;
        key = key ? key : 1;
        if (u64map_get(&b->index, key, &at)) {
                struct bucket_delta *d = &b->deltas[at - 1];
                if (d->bucket == bucket && d->path == path)
                        return d;
        }
        if (b->n == b->cap) {
                size_t cap = b->cap ? 2 * b->cap : 256;
                struct bucket_delta *p = realloc(b->deltas, cap * sizeof(*p));
                if (!p)
                        return NULL;
                b->deltas = p;
                b->cap = cap;
        }
        if (u64map_put(&b->index, key, b->n + 1) < 0)
                return NULL;
        struct bucket_delta *d = &b->deltas[b->n++];
        *d = (struct bucket_delta){ .bucket = bucket, .path = path };
        d->st.min_ns = UINT64_MAX;
        return d;
}

int buckets_add(struct run_buckets *b, uint64_t path, uint64_t start_ns, uint64_t duration_ns, uint64_t self_ns,
                unsigned status)
{
        if (!b->width_ns || !path)
                return 0;
        struct bucket_delta *d = delta(b, start_ns / b->width_ns, path);
        if (!d)
                return -ENOMEM;
        name_stats_add(&d->st, duration_ns, self_ns, status);
        return 0;
}

int buckets_take_self(struct run_buckets *b, uint64_t path, uint64_t start_ns, uint64_t ns)
{
        if (!b->width_ns || !path || !ns)
                return 0;
        struct bucket_delta *d = delta(b, start_ns / b->width_ns, path);
        if (!d)
                return -ENOMEM;
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

void buckets_write(struct run_buckets *b, uint32_t run, struct store_batch *sb)
{
        if (!b->width_ns)
                return;
        if (!b->width_stored) {
                store_batch_put_bucket_width(sb, run, b->width_ns);
                b->width_stored = true;
        }
        for (size_t i = 0; i < b->n; i++) {
                const struct bucket_delta *d = &b->deltas[i];
                void *value = NULL;
                size_t len = pack(&d->st, d->self_taken_ns, &value);
                if (value)
                        store_batch_merge_bucket(sb, run, d->bucket, d->path, value, len);
                free(value);
        }
        clear_deltas(b);
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
