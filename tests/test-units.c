/* SPDX-License-Identifier: MIT */
/*
 * Units that need no daemon: the duration histogram and its stored form, the column codec's
 * validation, and the traceparent format.
 */
#include <errno.h>
#include <ferret.h>
#include <math.h>
#include <stdbool.h>

#include "harness.h"
#include "histogram.h"
#include "paths.h"
#include "store.pb-c.h"
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

/* xorshift64: a reproducible random sequence. */
static uint64_t xorshift(uint64_t *x)
{
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        return *x;
}

/* The fast packer and decoder agree with protobuf-c on every field, for
 * batches of random shape, and the decoder refuses what protobuf-c refuses. */
TEST(wire_decoder_matches_protobuf_c)
{
        struct wire_decoder d = { 0 };
        uint64_t x = 0x853c49e6748fea9bull;
#define RND() xorshift(&x)
        for (int round = 0; round < 200; round++) {
                size_t n = RND() % 300, nt = RND() % 50;
                Ferret__Batch b = FERRET__BATCH__INIT;
                Ferret__Process p = FERRET__PROCESS__INIT;
                Ferret__SpanColumns c = FERRET__SPAN_COLUMNS__INIT;
                char *strings[] = { "", "alpha", "beta", "a much longer name for a span" };
                char *notes[] = { "one note", "another" };
                uint64_t traces[4] = { RND(), RND(), RND(), RND() };
                uint32_t *u32 = calloc(n + nt + 1, 4);
                int64_t *s64 = calloc(n + 1, 8);
                uint64_t *u64 = calloc(n + 1, 8);
                double *dbl = calloc(nt + 1, 8);
                Ferret__TagType *types = calloc(nt + 1, sizeof(*types));
                for (size_t i = 0; i < n; i++) {
                        u32[i] = (uint32_t)(RND() % 4);
                        uint64_t value = RND(), shift = RND();
                        s64[i] = (int64_t)value >> (shift % 60);
                        value = RND();
                        shift = RND();
                        u64[i] = value >> (shift % 64);
                }
                for (size_t i = 0; i < nt; i++)
                        dbl[i] = (double)RND() / 3.0;
                p.pid = (uint32_t)RND();
                p.executable = "/usr/bin/thing";
                p.hostname = "host";
                p.command_line = round % 2 ? "/usr/bin/thing --flag value" : "";
                c.n_strings = 4;
                c.strings = strings;
                c.n_traces = 4;
                c.traces = traces;
                c.n_name = c.n_tid = c.n_flags = n;
                c.name = c.tid = c.flags = u32;
                c.n_span_id = c.n_start = n;
                c.span_id = c.start = s64;
                c.n_duration = n;
                c.duration = u64;
                c.base_start_ns = RND();
                c.n_tag_double = nt;
                c.tag_double = dbl;
                c.n_tag_key = c.n_tag_type = nt;
                c.tag_key = u32 + n;
                c.tag_type = types;
                b.version = 1;
                b.process = &p;
                b.run_id = "run";
                b.client_id = RND();
                b.seq = RND() % 1000;
                b.dropped = RND() % 10;
                b.spans = round % 7 ? &c : NULL;
                b.n_notes = round % 3;
                b.notes = notes;
                size_t len = ferret__batch__get_packed_size(&b);
                uint8_t *buf = malloc(len);
                ferret__batch__pack(&b, buf);

                /* Our packer writes what protobuf-c writes (packed fields,
                 * field order), byte for byte. */
                if (b.spans) {
                        uint8_t *mine = NULL;
                        size_t cap = 0, mine_len;
                        CHECK_OK(wire_batch_pack(&b, &mine, &cap, &mine_len));
                        CHECK_EQ(mine_len, len);
                        CHECK(memcmp(mine, buf, len) == 0);
                        free(mine);
                }

                Ferret__Batch *fast, *ref = ferret__batch__unpack(NULL, len, buf);
                CHECK(ref != NULL);
                CHECK_OK(wire_batch_decode(&d, buf, len, &fast));
                CHECK_EQ(fast->version, ref->version);
                CHECK_EQ(fast->client_id, ref->client_id);
                CHECK_EQ(fast->seq, ref->seq);
                CHECK_EQ(fast->dropped, ref->dropped);
                CHECK_STR(fast->run_id, ref->run_id);
                CHECK_EQ(fast->process->pid, ref->process->pid);
                CHECK_STR(fast->process->executable, ref->process->executable);
                CHECK_STR(fast->process->command_line, ref->process->command_line);
                CHECK_EQ(fast->n_notes, ref->n_notes);
                CHECK(!fast->spans == !ref->spans);
                if (ref->spans) {
                        const Ferret__SpanColumns *f = fast->spans, *e = ref->spans;
                        CHECK_EQ(f->n_strings, e->n_strings);
                        for (size_t i = 0; i < e->n_strings; i++)
                                CHECK_STR(f->strings[i], e->strings[i]);
                        CHECK_EQ(f->n_name, e->n_name);
                        CHECK_EQ(f->base_start_ns, e->base_start_ns);
                        CHECK(memcmp(f->traces, e->traces, 32) == 0);
                        CHECK(!n || memcmp(f->name, e->name, n * 4) == 0);
                        CHECK(!n || memcmp(f->span_id, e->span_id, n * 8) == 0);
                        CHECK(!n || memcmp(f->duration, e->duration, n * 8) == 0);
                        CHECK_EQ(f->n_tag_double, e->n_tag_double);
                        CHECK(!nt || memcmp(f->tag_double, e->tag_double, nt * 8) == 0);
                        CHECK(!nt || memcmp(f->tag_key, e->tag_key, nt * 4) == 0);
                }
                ferret__batch__free_unpacked(ref, NULL);

                /* Cut short or corrupted: refused, never a crash. */
                for (size_t cut = 0; cut < len; cut += 1 + len / 13) {
                        Ferret__Batch *bad;
                        int r = wire_batch_decode(&d, buf, cut, &bad);
                        Ferret__Batch *pr = ferret__batch__unpack(NULL, cut, buf);
                        CHECK(r == 0 || r == -EPROTO);
                        if (!pr)
                                CHECK_EQ(r, -EPROTO);
                        ferret__batch__free_unpacked(pr, NULL);
                }
                free(buf);
                free(u32);
                free(s64);
                free(u64);
                free(dbl);
                free(types);
        }
        Ferret__Batch *bad;
        CHECK_EQ(wire_batch_decode(&d, "\xff\xff\xff garbage", 12, &bad), -EPROTO);
        wire_decoder_free(&d);
#undef RND
}

/* Random parent links (a functional graph: every cycle has trees hanging
 * off it): after wire_cut_cycles() every span reaches a root, exactly one
 * link per cycle was cut (counted by walking the graph before), and links
 * outside cycles are untouched. */
/* ferretd decodes a call path's stored histogram by hand (paths.c): it must
 * read what protobuf-c writes, bucket for bucket, for any first bucket and
 * counts of any size; and a record cut anywhere is refused or read whole,
 * never read past. */
TEST(stored_histogram_decoder_matches_protobuf_c)
{
        uint64_t x = 0x2545f4914f6cdd1dull;
        for (int round = 0; round < 300; round++) {
                Ferretd__StoredStats st = FERRETD__STORED_STATS__INIT;
                size_t n = round == 0 ? 0 : (size_t)(xorshift(&x) % 3000);
                uint64_t *counts = calloc(n + 1, sizeof(*counts));
                for (size_t i = 0; i < n; i++) {
                        uint64_t r = xorshift(&x);
                        counts[i] = r % 4 ? 0 : r % 3 == 0 ? r >> (r % 64) : r % 1000;
                }
                st.count = xorshift(&x);
                st.total_ns = xorshift(&x);
                st.self_ns = xorshift(&x) % 1000;
                st.hist_first = (int32_t)(xorshift(&x) % 4000) - 100;
                st.n_hist = n;
                st.hist = counts;
                size_t len = ferretd__stored_stats__get_packed_size(&st);
                uint8_t *buf = malloc(len + 1);
                ferretd__stored_stats__pack(&st, buf);

                struct path_stats ps = { 0 };
                CHECK_EQ(path_histogram_from_stored(&ps, buf, len), 0);
                Ferretd__StoredStats *back = ferretd__stored_stats__unpack(NULL, len, buf);
                CHECK(back != NULL);
                CHECK_EQ(ps.st.hist.n, back->n_hist);
                if (back->n_hist) {
                        CHECK_EQ(ps.st.hist.first, back->hist_first);
                        for (size_t i = 0; i < back->n_hist; i++)
                                CHECK_EQ(ps.st.hist.counts[i], back->hist[i]);
                }
                ferretd__stored_stats__free_unpacked(back, NULL);
                hist_free(&ps.st.hist);

                /* Cut short: what is read is read within the record. */
                for (size_t cut = 0; cut < len; cut += 1 + len / 40) {
                        uint8_t *part = malloc(cut + 1);
                        memcpy(part, buf, cut);
                        struct path_stats q = { 0 };
                        CHECK_EQ(path_histogram_from_stored(&q, part, cut), 0);
                        CHECK(q.st.hist.n <= n);
                        hist_free(&q.st.hist);
                        free(part);
                }
                free(buf);
                free(counts);
        }
}

TEST(cutting_cycles_leaves_a_forest)
{
        uint64_t rng = 0x9E3779B97F4A7C15ull;
        for (int round = 0; round < 2000; round++) {
                enum { N_MAX = 40 };
                uint32_t parent[N_MAX], before[N_MAX];
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                size_t n = 1 + (rng >> 33) % N_MAX;
                for (size_t i = 0; i < n; i++) {
                        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                        uint32_t r = (uint32_t)(rng >> 33);
                        before[i] = parent[i] = r % 4 == 0 ? WIRE_NO_PARENT : r % (uint32_t)n;
                }
                /* Cycles, the slow way: a node is on one if following the
                 * links n times from it comes back to it. */
                size_t cycles = 0;
                bool in_cycle[N_MAX] = { false };
                for (size_t i = 0; i < n; i++) {
                        uint32_t j = (uint32_t)i;
                        for (size_t k = 0; k < n && j != WIRE_NO_PARENT; k++) {
                                j = before[j];
                                if (j == i) {
                                        in_cycle[i] = true;
                                        break;
                                }
                        }
                }
                for (size_t i = 0; i < n; i++) {
                        if (!in_cycle[i])
                                continue;
                        /* Count each cycle once, at its smallest member. */
                        bool smallest = true;
                        for (uint32_t j = before[i]; j != i; j = before[j])
                                smallest &= j > i;
                        cycles += smallest;
                }
                size_t cut;
                CHECK_EQ(wire_cut_cycles(parent, n, &cut), 0);
                CHECK_EQ(cut, cycles);
                for (size_t i = 0; i < n; i++) {
                        if (parent[i] != before[i])
                                CHECK(in_cycle[i] && parent[i] == WIRE_NO_PARENT);
                        uint32_t j = (uint32_t)i;
                        size_t steps = 0;
                        while (j != WIRE_NO_PARENT && steps <= n) {
                                j = parent[j];
                                steps++;
                        }
                        CHECK(j == WIRE_NO_PARENT);
                }
        }
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
