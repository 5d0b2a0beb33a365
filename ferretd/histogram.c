/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "histogram.h"

#define SUB (1u << HIST_SUB_BITS)

int hist_bucket(uint64_t v)
{
        if (v < SUB)
                return (int)v;
        int e = 63 - __builtin_clzll(v);
        uint64_t m = (v >> (e - HIST_SUB_BITS)) & (SUB - 1);
        return (e - HIST_SUB_BITS + 1) * (int)SUB + (int)m;
}

uint64_t hist_bucket_lower(int b)
{
        if (b < (int)SUB)
                return (uint64_t)b;
        int e = b / (int)SUB + HIST_SUB_BITS - 1;
        uint64_t m = (uint64_t)(b % (int)SUB);
        return (SUB + m) << (e - HIST_SUB_BITS);
}

uint64_t hist_bucket_mid(int b)
{
        if (b < (int)SUB)
                return (uint64_t)b;
        int e = b / (int)SUB + HIST_SUB_BITS - 1;
        return hist_bucket_lower(b) + (((uint64_t)1 << (e - HIST_SUB_BITS)) >> 1);
}

/* Grows the held range to include @b. */
static int reserve(struct histogram *h, int b)
{
        if (h->n && b >= h->first && b < h->first + (int)h->n)
                return 0;
        int first = h->n ? (b < h->first ? b : h->first) : b;
        int last = h->n ? (b > h->first + (int)h->n - 1 ? b : h->first + (int)h->n - 1) : b;
        uint32_t n = (uint32_t)(last - first + 1);
        uint64_t *counts = calloc(n, sizeof(*counts));
        if (!counts)
                return -ENOMEM;
        if (h->n)
                memcpy(counts + (h->first - first), h->counts, h->n * sizeof(*counts));
        free(h->counts);
        h->counts = counts;
        h->first = first;
        h->n = n;
        return 0;
}

int hist_add_bucket(struct histogram *h, int b, uint64_t count)
{
        if (reserve(h, b) < 0)
                return -ENOMEM;
        h->counts[b - h->first] += count;
        return 0;
}

int hist_add(struct histogram *h, uint64_t value, uint64_t count)
{
        return hist_add_bucket(h, hist_bucket(value), count);
}

int hist_merge(struct histogram *dst, const struct histogram *src)
{
        if (!src->n)
                return 0;
        if (reserve(dst, src->first) < 0 || reserve(dst, src->first + (int)src->n - 1) < 0)
                return -ENOMEM;
        for (uint32_t i = 0; i < src->n; i++)
                dst->counts[src->first + (int)i - dst->first] += src->counts[i];
        return 0;
}

int hist_set(struct histogram *h, int first, const uint64_t *counts, size_t n)
{
        hist_free(h);
        if (!n)
                return 0;
        if (!(h->counts = malloc(n * sizeof(*counts))))
                return -ENOMEM;
        memcpy(h->counts, counts, n * sizeof(*counts));
        h->first = first;
        h->n = (uint32_t)n;
        return 0;
}

void hist_quantiles(const struct histogram *h, const double *qs, size_t n, uint64_t min, uint64_t max,
                    uint64_t *out)
{
        uint64_t total = 0;
        for (uint32_t i = 0; i < h->n; i++)
                total += h->counts[i];
        /* The ranks, nearest first, walked in one pass over the buckets. */
        size_t order[HIST_MAX_QUANTILES];
        uint64_t rank[HIST_MAX_QUANTILES];
        n = n < HIST_MAX_QUANTILES ? n : HIST_MAX_QUANTILES;
        for (size_t k = 0; k < n; k++) {
                uint64_t r = (uint64_t)ceil(qs[k] * (double)total);
                rank[k] = r < 1 ? 1 : r;
                order[k] = k;
                out[k] = total ? max : 0;
        }
        for (size_t a = 1; a < n; a++)
                for (size_t b = a; b > 0 && rank[order[b - 1]] > rank[order[b]]; b--) {
                        size_t t = order[b];
                        order[b] = order[b - 1];
                        order[b - 1] = t;
                }
        if (!total)
                return;
        uint64_t seen = 0;
        size_t k = 0;
        for (uint32_t i = 0; i < h->n && k < n; i++) {
                seen += h->counts[i];
                while (k < n && seen >= rank[order[k]]) {
                        uint64_t v = hist_bucket_mid(h->first + (int)i);
                        out[order[k++]] = v < min ? min : v > max ? max : v;
                }
        }
}

uint64_t hist_quantile(const struct histogram *h, double q, uint64_t min, uint64_t max)
{
        uint64_t v;
        hist_quantiles(h, &q, 1, min, max, &v);
        return v;
}

/* With n samples, the rank of the q-quantile is uncertain by about
 * 1.96 sqrt(n q (1 - q)), so the interval runs between the values at those
 * ranks. A rank that falls outside the sample leaves that side unbounded
 * (0, or UINT64_MAX): a handful of spans says little about their p95. */
static double interval_half_width(uint64_t count, double q)
{
        double n = (double)count;
        return n > 0 ? 1.96 * sqrt(q * (1 - q) / n) : 1;
}

/* The sides of the interval from the values at its ranks @v. */
static void interval_sides(uint64_t count, double q, const uint64_t v[2], uint64_t *ret_low, uint64_t *ret_high)
{
        double n = (double)count, d = interval_half_width(count, q);
        *ret_low = (q - d) * n >= 1 ? v[0] : 0;
        *ret_high = (q + d) * n <= n - 1 ? v[1] : UINT64_MAX;
}

void hist_quantile_interval(const struct histogram *h, uint64_t count, double q, uint64_t min, uint64_t max,
                            uint64_t *ret_low, uint64_t *ret_high)
{
        double d = interval_half_width(count, q);
        double qs[2] = { q - d, q + d };
        uint64_t v[2];
        hist_quantiles(h, qs, 2, min, max, v);
        interval_sides(count, q, v, ret_low, ret_high);
}

void hist_percentiles(const struct histogram *h, uint64_t count, uint64_t min, uint64_t max,
                      struct hist_percentiles *ret)
{
        double d50 = interval_half_width(count, 0.50), d95 = interval_half_width(count, 0.95);
        const double qs[9] = { 0.50, 0.90, 0.95, 0.99, 0.999, 0.50 - d50, 0.50 + d50, 0.95 - d95, 0.95 + d95 };
        uint64_t v[9];
        hist_quantiles(h, qs, 9, min, max, v);
        *ret = (struct hist_percentiles){ .p50 = v[0], .p90 = v[1], .p95 = v[2], .p99 = v[3], .p999 = v[4] };
        interval_sides(count, 0.50, v + 5, &ret->p50_low, &ret->p50_high);
        interval_sides(count, 0.95, v + 7, &ret->p95_low, &ret->p95_high);
}

void hist_free(struct histogram *h)
{
        if (!h)
                return;
        free(h->counts);
        *h = (struct histogram){ 0 };
}
