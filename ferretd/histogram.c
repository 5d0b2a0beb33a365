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

uint64_t hist_quantile(const struct histogram *h, double q, uint64_t min, uint64_t max)
{
        uint64_t total = 0;
        for (uint32_t i = 0; i < h->n; i++)
                total += h->counts[i];
        if (!total)
                return 0;
        uint64_t rank = (uint64_t)ceil(q * (double)total);
        if (rank < 1)
                rank = 1;
        uint64_t seen = 0;
        for (uint32_t i = 0; i < h->n; i++) {
                seen += h->counts[i];
                if (seen >= rank) {
                        uint64_t v = hist_bucket_mid(h->first + (int)i);
                        return v < min ? min : v > max ? max : v;
                }
        }
        return max;
}

/* With n samples, the rank of the q-quantile is uncertain by about
 * 1.96 sqrt(n q (1 - q)), so the interval runs between the values at those
 * ranks. A rank that falls outside the sample leaves that side unbounded
 * (0, or UINT64_MAX): a handful of spans says little about their p95. */
void hist_quantile_interval(const struct histogram *h, uint64_t count, double q, uint64_t min, uint64_t max,
                            uint64_t *ret_low, uint64_t *ret_high)
{
        double n = (double)count, d = n > 0 ? 1.96 * sqrt(q * (1 - q) / n) : 1;
        *ret_low = (q - d) * n >= 1 ? hist_quantile(h, q - d, min, max) : 0;
        *ret_high = (q + d) * n <= n - 1 ? hist_quantile(h, q + d, min, max) : UINT64_MAX;
}

void hist_free(struct histogram *h)
{
        if (!h)
                return;
        free(h->counts);
        *h = (struct histogram){ 0 };
}
