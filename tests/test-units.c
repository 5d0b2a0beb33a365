/* SPDX-License-Identifier: MIT */
/*
 * Units that need no daemon: the duration histogram, the column codec's
 * validation, and the traceparent format.
 */
#include <errno.h>
#include <ferret.h>
#include <math.h>

#include "harness.h"
#include "histogram.h"
#include "wire.h"

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

/* Every value falls in a bucket whose bounds contain it, and buckets are
 * contiguous: no value is lost between two of them. */
TEST(histogram_buckets_are_contiguous)
{
        for (uint64_t v = 0; v < 1000000; v += v < 4096 ? 1 : 97) {
                int b = hist_bucket(v);
                CHECK_CMP(hist_bucket_lower(b), <=, v);
                CHECK_CMP(hist_bucket_lower(b + 1), >, v);
                CHECK(b == 0 || hist_bucket_lower(b) > hist_bucket_lower(b - 1));
        }
        int top = hist_bucket(UINT64_MAX);
        CHECK_CMP(hist_bucket_lower(top), <=, UINT64_MAX);
}

/* Percentiles of 1M random durations within 1% of the exact values, also
 * after splitting and merging the histogram. */
TEST(histogram_percentiles_within_one_percent)
{
        const size_t n = 1000000;
        uint64_t *v = malloc(n * sizeof(*v));
        struct histogram a = { 0 }, b = { 0 };
        uint64_t x = 0x9E3779B97F4A7C15ull, min = UINT64_MAX, max = 0;
        for (size_t i = 0; i < n; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                v[i] = 50 + (uint64_t)(exp((double)(x % 100000) / 100000.0 * 20.0));   /* 51 ns .. ~0.5 s */
                CHECK_OK(hist_add(i % 2 ? &a : &b, v[i], 1));
                min = v[i] < min ? v[i] : min;
                max = v[i] > max ? v[i] : max;
        }
        CHECK_OK(hist_merge(&a, &b));
        qsort(v, n, sizeof(*v), cmp_u64);
        const double qs[] = { 0.5, 0.9, 0.95, 0.99, 0.999, 0.0001, 1.0 };
        for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
                size_t rank = (size_t)ceil(qs[i] * (double)n);
                uint64_t exact = v[rank ? rank - 1 : 0], got = hist_quantile(&a, qs[i], min, max);
                double err = fabs((double)got - (double)exact) / (double)exact;
                if (err > 0.01)
                        harness_fail(__FILE__, __LINE__, "q=%g: %llu vs exact %llu", qs[i], (unsigned long long)got,
                                     (unsigned long long)exact);
        }
        hist_free(&a);
        hist_free(&b);
        free(v);
}

static Ferret__SpanColumns one_span(char **strings, uint32_t *u32, int64_t *i64, uint64_t *u64, uint64_t *traces)
{
        Ferret__SpanColumns c = FERRET__SPAN_COLUMNS__INIT;
        c.n_strings = 2;
        c.strings = strings;
        c.n_traces = 2;
        c.traces = traces;
        c.n_trace = c.n_span_id = c.n_parent = c.n_name = c.n_start = c.n_duration = 1;
        c.n_tid = c.n_flags = c.n_message = c.n_tag_count = 1;
        c.trace = u32;
        c.name = u32 + 1;
        c.tid = u32 + 2;
        c.flags = u32 + 3;
        c.message = u32 + 4;
        c.tag_count = u32 + 5;
        c.span_id = i64;
        c.parent = i64 + 1;
        c.start = i64 + 2;
        c.duration = u64;
        return c;
}

/* Decoding checks every index a peer controls. */
TEST(wire_rejects_inconsistent_columns)
{
        char *strings[] = { "", "name" };
        uint64_t traces[2] = { 1, 2 }, dur[1] = { 10 };
        struct wire_spans out = { 0 };
        const char *why;

        uint32_t u32[6] = { 0, 1, 7, 2, 0, 0 };
        int64_t i64[3] = { 5, 1, 0 };
        Ferret__SpanColumns c = one_span(strings, u32, i64, dur, traces);
        CHECK_OK(wire_spans_append(&out, &c, 99, &why));
        CHECK_EQ(out.n, 1);
        CHECK_STR(out.spans[0].name, "name");
        CHECK_EQ(out.spans[0].span_id, 5);
        CHECK_EQ(out.spans[0].parent_id, 4);
        CHECK_EQ(out.spans[0].pid, 99);
        CHECK_EQ(wire_span_status(&out.spans[0]), WIRE_STATUS_ERROR);

        u32[1] = 2;             /* name index past the table */
        CHECK_EQ(wire_spans_append(&out, &c, 0, &why), -EPROTO);
        u32[1] = 1;
        u32[0] = 1;             /* trace index past the table */
        CHECK_EQ(wire_spans_append(&out, &c, 0, &why), -EPROTO);
        u32[0] = 0;
        u32[3] = 3;             /* unknown status */
        CHECK_EQ(wire_spans_append(&out, &c, 0, &why), -EPROTO);
        u32[3] = 0;
        u32[5] = 1;             /* a tag that is not there */
        CHECK_EQ(wire_spans_append(&out, &c, 0, &why), -EPROTO);
        CHECK_STR(why, "tag counts do not add up");
        u32[5] = 0;
        c.n_duration = 0;       /* a short column */
        CHECK_EQ(wire_spans_append(&out, &c, 0, &why), -EPROTO);
        CHECK_EQ(out.n, 1);     /* nothing appended by the rejected ones */
        wire_spans_free(&out);
}

TEST(traceparent_round_trip)
{
        ferret_ctx_t ctx = { .trace_hi = 0x0af7651916cd43ddULL, .trace_lo = 0x8448eb211c80319cULL, .span_id = 0xb7ad6b7169203331ULL }, back;
        char buf[FERRET_TRACEPARENT_LEN + 1];
        CHECK_OK(ferret_ctx_format(ctx, buf, sizeof(buf)));
        CHECK_STR(buf, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        CHECK_OK(ferret_ctx_parse(buf, &back));
        CHECK(back.trace_hi == ctx.trace_hi && back.trace_lo == ctx.trace_lo && back.span_id == ctx.span_id);

        CHECK_EQ(ferret_ctx_format(ctx, buf, 10), -ENOBUFS);
        CHECK_EQ(ferret_ctx_format((ferret_ctx_t){ 0 }, buf, sizeof(buf)), -EINVAL);
        CHECK_EQ(ferret_ctx_parse("00-00000000000000000000000000000000-b7ad6b7169203331-01", &back), -EINVAL);
        CHECK_EQ(ferret_ctx_parse("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", &back), -EINVAL);
        CHECK_EQ(ferret_ctx_parse("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", &back), -EINVAL);
        CHECK_EQ(ferret_ctx_parse("00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01", &back), -EINVAL);
        CHECK_EQ(ferret_ctx_parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b71692033", &back), -EINVAL);
        CHECK_EQ(ferret_ctx_parse(NULL, &back), -EINVAL);
}

/* Disabled tracing: every call is a no-op on NULL, nothing crashes. */
TEST(disabled_is_inert)
{
        setenv("FERRET_DISABLE", "1", 1);
        ferret_span_t *s = ferret_span_begin("x");
        CHECK(s == NULL);
        ferret_span_tag_str(s, "k", "v");
        ferret_span_set_status(s, FERRET_STATUS_ERROR, "e");
        ferret_span_end(s);
        FERRET_SCOPE(t, "y") {
                CHECK(t == NULL);
        }
        CHECK(!ferret_enabled());
        CHECK_EQ(ferret_flush(100), -ECANCELED);
        CHECK(!ferret_ctx_is_valid(ferret_current()));
}
