/* SPDX-License-Identifier: MIT */
/*
 * Time buckets of a run's call paths: for each path, the statistics of its
 * spans that started in each bucket (a minute by default), so that a window
 * of a long run (ferret query --since 5m --tree) is a sum of buckets, read
 * in time that grows with the buckets and paths in the window, never with
 * the spans. The latest two buckets of a run (its live buckets: most spans
 * start there) are kept whole in memory and written whole, as put records,
 * at each commit that changes them; a span that starts in an older bucket
 * (it ended long after it began) adds to it as a RocksDB merge operand,
 * which the store sums (store.c's merge operator calls buckets_merge()), so
 * that it costs no read, and a bucket's operands stay few however many
 * commits a minute makes.
 *
 * A run records its bucket width when it is made; a run made by a ferretd
 * that kept no buckets has none, and its windows are summed from its spans.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "map.h"
#include "runs.h"
#include "store.h"

#define BUCKET_SECONDS_DEFAULT 60u

struct bucket_delta;

/* Entries of one kind, by (bucket, path). */
struct bucket_table {
        struct u64map index;          /* mix of (bucket, path) -> position + 1 */
        struct bucket_delta *entries;
        size_t n, cap;
};

/* One run's: its width, its live buckets, and what the spans since the
 * last commit add to older ones. */
struct run_buckets {
        uint64_t width_ns;            /* 0: the run keeps no buckets */
        bool width_stored;
        struct store *store;          /* where a live bucket's record is read from, NULL for a new run */
        uint32_t run;
        uint64_t newest;              /* the latest bucket a span started in */
        struct bucket_table live;     /* buckets newest - 1 and newest, whole */
        struct bucket_table deltas;   /* older buckets: what this commit adds */
};

/* The width of the buckets of runs made from now on (ferretd --bucket-seconds). */
void buckets_set_width(uint64_t seconds);
uint64_t buckets_default_width_ns(void);

/* A new run (@store NULL) gets the default width; a stored run the width
 * it was made with, or none. Returns 0 or -EIO. */
int buckets_load(struct store *store, uint32_t run, struct run_buckets *b);
void buckets_free(struct run_buckets *b);

/* A span of @path that started at @start_ns. Returns 0, -ENOMEM or -EIO. */
int buckets_add(struct run_buckets *b, uint64_t path, uint64_t start_ns, uint64_t duration_ns, uint64_t self_ns,
                unsigned status);
/* A child that came after the span (of @path, started at @start_ns) took
 * @ns of its self time. */
int buckets_take_self(struct run_buckets *b, uint64_t path, uint64_t start_ns, uint64_t ns);
/* Adds what was added since the last call to @sb, as merge operands. */
void buckets_write(struct run_buckets *b, uint32_t run, struct store_batch *sb);

/* The sum of packed bucket records (StoredStats with self_taken_ns) and
 * @existing (NULL: none), packed in *ret (free()). Returns 0, -ENOMEM, or
 * -EIO when one does not decode. */
int buckets_merge(const void *existing, size_t existing_len, const char *const *operands, const size_t *lens,
                  int n, void **ret, size_t *ret_len);
/* A stored bucket into @st (self time less what later children took). */
int bucket_from_stored(struct name_stats *st, const void *value, size_t len);

/* The buckets from *@first to before *@end that a window [*since_ns,
 * *until_ns) of @run covers (0: unbounded), when it covers them whole;
 * with @widen, the window is first widened to the edges of its buckets
 * (written back). Returns 0, -ESTALE when the run has no buckets or the
 * window cuts one (the caller sums its spans), or -EIO. */
int buckets_window(struct store *store, uint32_t run, bool widen, uint64_t *since_ns, uint64_t *until_ns,
                   uint64_t *first, uint64_t *end);
