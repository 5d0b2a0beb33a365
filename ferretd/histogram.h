/* SPDX-License-Identifier: MIT */
/*
 * A mergeable log-linear histogram of durations (HDR-style): values below 128
 * are exact; above, each power of two is cut into 128 buckets, so a bucket's
 * midpoint is within 0.4% of any value in it. Percentiles therefore come
 * within 0.4% of the exact ones without keeping the values.
 */
#pragma once

#include <stdint.h>

#define HIST_SUB_BITS 7

struct histogram {
        int32_t first;                /* bucket number of counts[0] */
        uint32_t n;                   /* buckets held */
        uint64_t *counts;
};

int hist_bucket(uint64_t value);
uint64_t hist_bucket_lower(int bucket);
uint64_t hist_bucket_mid(int bucket);
/* Returns 0 or -ENOMEM. */
int hist_add(struct histogram *h, uint64_t value, uint64_t count);
int hist_add_bucket(struct histogram *h, int bucket, uint64_t count);
int hist_merge(struct histogram *dst, const struct histogram *src);
/* Replaces @h's buckets by @n counts from bucket @first. */
int hist_set(struct histogram *h, int first, const uint64_t *counts, size_t n);
/* The values at quantiles @qs[0..n) (0..1; n at most HIST_MAX_QUANTILES)
 * by nearest rank, clamped to [min, max], in one pass. */
#define HIST_MAX_QUANTILES 12
void hist_quantiles(const struct histogram *h, const double *qs, size_t n, uint64_t min, uint64_t max,
                    uint64_t *out);
/* The value at quantile @q (0..1) by nearest rank, clamped to [min, max]. */
uint64_t hist_quantile(const struct histogram *h, double q, uint64_t min, uint64_t max);
/* A distribution-free 95% interval of quantile @q of @count samples (see
 * histogram.c): 0 or UINT64_MAX on a side the sample cannot bound. */
void hist_quantile_interval(const struct histogram *h, uint64_t count, double q, uint64_t min, uint64_t max,
                            uint64_t *ret_low, uint64_t *ret_high);
/* What a summary row or a tree node shows of a histogram of @count
 * durations: its percentiles, and the 95% intervals of p50 and p95
 * (hist_quantile_interval()), in one pass over the buckets. */
struct hist_percentiles {
        uint64_t p50, p90, p95, p99, p999;
        uint64_t p50_low, p50_high, p95_low, p95_high;
};
void hist_percentiles(const struct histogram *h, uint64_t count, uint64_t min, uint64_t max,
                      struct hist_percentiles *ret);
void hist_free(struct histogram *h);
