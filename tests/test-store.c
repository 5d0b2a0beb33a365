/* SPDX-License-Identifier: MIT */
/*
 * The store's answers at the level of their meaning: self time on a known
 * tree, spans whose parent never arrived, `ferret diff` telling a real
 * slowdown from noise, and retention by age and by size.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "harness.h"
#include "raw.h"
#include "spans.h"

static json_t *ferret_json(struct daemon_fixture *f, const char *a, const char *b, const char *c, const char *d)
{
        const char *args[] = { a, b, c, d, NULL };
        return fixture_ferret_json(f, args);
}

static long long get(json_t *o, const char *key)
{
        return json_integer_value(json_object_get(o, key));
}

/*   root 100 ─┬─ a 30 ── leaf 10
 *             └─ b 20                 and an orphan, whose parent (999) never arrived. */
TEST(self_time_and_orphans)
{
        struct daemon_fixture f;
        struct raw_client c;
        fixture_start(&f);
        raw_open(&c, f.runtime_dir);
        const char *names[] = { "leaf", "a", "b", "root", "orphan" };
        uint64_t durations[] = { 10000, 30000, 20000, 100000, 5000 };
        uint64_t ids[] = { 4, 2, 3, 1, 5 }, parents[] = { 2, 1, 1, 0, 999 };
        struct raw_spans s = { .n = 5, .names = names, .durations = durations, .ids = ids, .parents = parents, .start_ns = 1700000000000000000ull, .status = 0 };
        raw_send_batch(&c, "known", &s);
        CHECK_EQ(raw_flush(&c, 10000), 0);

        json_t *sum = ferret_json(&f, "query", "--run", "known", NULL);
        CHECK_EQ(get(summary_row(sum, "root"), "self_ns"), 50000);
        CHECK_EQ(get(summary_row(sum, "a"), "self_ns"), 20000);
        CHECK_EQ(get(summary_row(sum, "leaf"), "self_ns"), 10000);
        CHECK_EQ(get(summary_row(sum, "b"), "self_ns"), 20000);
        json_decref(sum);

        json_t *tree = ferret_json(&f, "query", "--tree", "--run", "known");
        json_t *roots = json_object_get(tree, "roots");
        CHECK_EQ(json_array_size(roots), 2);
        json_t *root = json_array_get(roots, 0), *process = json_array_get(roots, 1);
        CHECK_STR(span_name(root), "root");
        CHECK_EQ(get(root, "self_ns"), 50000);
        CHECK_EQ(get(json_array_get(json_object_get(root, "children"), 0), "self_ns"), 20000);
        /* The orphan is kept, under its process. */
        CHECK(json_is_true(json_object_get(process, "process")));
        CHECK_EQ(get(process, "pid"), 4343);
        CHECK_STR(span_name(json_array_get(json_object_get(process, "children"), 0)), "orphan");
        json_decref(tree);
        raw_close(&c);
        fixture_cleanup(&f);
}

/* About log-normal around @median_ns, from the generator @x. */
static uint64_t draw(uint64_t *x, double median_ns)
{
        double g = 0;
        for (int k = 0; k < 6; k++) {
                *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
                g += (double)(*x % 1000000) / 1e6 - 0.5;
        }
        return (uint64_t)(median_ns * exp(0.5 * g));
}

/* Log-normal-ish durations around 1 ms x @slowdown, from a seeded generator. */
static void send_run(struct raw_client *c, const char *run, uint64_t seed, double slowdown)
{
        const size_t n = 20000;
        uint64_t *d = malloc(n * sizeof(*d)), x = seed;
        for (size_t i = 0; i < n; i++)
                d[i] = draw(&x, slowdown * 1e6);
        raw_send_spans(c, run, "request", d, n, 0);
        free(d);
}

static int diff_status(struct daemon_fixture *f, const char *a, const char *b, char **ret_err)
{
        char *argv[] = { (char *)fixture_ferret_path(), "diff", (char *)a, (char *)b, "--fail-over", "50",
                         "--runtime-dir", f->runtime_dir, NULL };
        return fixture_run(argv, NULL, NULL, ret_err);
}

TEST(diff_flags_slowdown_not_noise)
{
        struct daemon_fixture f;
        struct raw_client c;
        fixture_start(&f);
        raw_open(&c, f.runtime_dir);
        send_run(&c, "before", 1, 1.0);
        send_run(&c, "again", 2, 1.0);      /* same distribution, other draws */
        send_run(&c, "slower", 3, 2.0);
        CHECK_EQ(raw_flush(&c, 10000), 0);

        json_t *noise = ferret_json(&f, "diff", "before", "again", NULL);
        json_t *row = json_array_get(json_object_get(noise, "rows"), 0);
        CHECK_STR(span_name(row), "request");
        CHECK(json_is_false(json_object_get(row, "p95_beyond_noise")));
        CHECK(json_is_false(json_object_get(row, "p50_beyond_noise")));
        json_decref(noise);

        json_t *slow = ferret_json(&f, "diff", "before", "slower", NULL);
        row = json_array_get(json_object_get(slow, "rows"), 0);
        CHECK(json_is_true(json_object_get(row, "p95_beyond_noise")));
        CHECK(json_is_true(json_object_get(row, "p50_beyond_noise")));
        double change = json_real_value(json_object_get(row, "p95_change_pct"));
        CHECK(change > 90 && change < 110);
        json_decref(slow);

        /* The regression gate. */
        char *err;
        int st = diff_status(&f, "before", "again", &err);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        free(err);
        st = diff_status(&f, "before", "slower", &err);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
        CHECK(strstr(err, "p95 of request regressed") != NULL);
        free(err);
        raw_close(&c);
        fixture_cleanup(&f);
}

/* request ─┬─ db ──── query       1,500 times; in the slower run the
 *          └─ cache ─ query       query under cache takes twice as long. */
static void send_paths(struct raw_client *c, const char *run, uint64_t seed, double cache_query_slowdown)
{
        enum { ITERATIONS = 1500, PER = 5 };
        static const char *shape[PER] = { "request", "db", "query", "cache", "query" };
        const size_t n = ITERATIONS * PER;
        const char **names = malloc(n * sizeof(*names));
        uint64_t *d = malloc(n * sizeof(*d)), *ids = malloc(n * sizeof(*ids)), *parents = malloc(n * sizeof(*parents));
        uint64_t x = seed;
        for (size_t i = 0; i < ITERATIONS; i++) {
                uint64_t base = seed * 10000000 + i * PER;
                const uint64_t parent_of[PER] = { 0, base + 1, base + 2, base + 1, base + 4 };
                const double median[PER] = { 10e6, 3e6, 1e6, 3e6, 1e6 * cache_query_slowdown };
                for (size_t k = 0; k < PER; k++) {
                        names[i * PER + k] = shape[k];
                        ids[i * PER + k] = base + 1 + k;
                        parents[i * PER + k] = parent_of[k];
                        d[i * PER + k] = draw(&x, median[k]);
                }
        }
        struct raw_spans s = { .n = n, .names = names, .durations = d, .ids = ids, .parents = parents, .start_ns = 1700000000000000000ull, .status = 0 };
        raw_send_batch(c, run, &s);
        free(names);
        free(d);
        free(ids);
        free(parents);
}

/* The line of path @a > @b > @c (NULLs end it early) in a diff --tree. */
static json_t *path_row(json_t *rows, const char *a, const char *b, const char *c)
{
        const char *want[3] = { a, b, c };
        size_t i, depth = c ? 2 : b ? 1 : 0;
        json_t *row;
        json_array_foreach(rows, i, row) {
                if ((size_t)get(row, "depth") != depth)
                        continue;
                json_t *at = row;
                bool match = true;
                for (long k = (long)depth; k >= 0 && match; k--) {
                        match = strcmp(json_string_value(json_object_get(at, "name")), want[k]) == 0;
                        long parent = (long)get(at, "parent");
                        at = parent >= 0 ? json_array_get(rows, (size_t)parent) : NULL;
                }
                if (match)
                        return row;
        }
        return NULL;
}

static size_t flagged(json_t *rows)
{
        size_t i, n = 0;
        json_t *row;
        json_array_foreach(rows, i, row)
                n += json_is_true(json_object_get(row, "p95_beyond_noise")) ||
                     json_is_true(json_object_get(row, "p50_beyond_noise"));
        return n;
}

/* diff --tree tells the path that slowed from the one of the same name
 * that did not, and flags nothing between two runs of one distribution. */
TEST(diff_tree_flags_the_path_that_slowed)
{
        struct daemon_fixture f;
        struct raw_client c;
        fixture_start(&f);
        raw_open(&c, f.runtime_dir);
        send_paths(&c, "paths", 11, 1.0);
        send_paths(&c, "paths-again", 12, 1.0);
        send_paths(&c, "paths-slower", 13, 2.0);
        CHECK_EQ(raw_flush(&c, 10000), 0);

        const char *same[] = { "diff", "--tree", "paths", "paths-again", NULL };
        json_t *noise = fixture_ferret_json(&f, same);
        json_t *rows = json_object_get(noise, "rows");
        CHECK_EQ(json_array_size(rows), 5);
        CHECK_EQ(flagged(rows), 0);
        json_decref(noise);

        const char *slower[] = { "diff", "--tree", "paths", "paths-slower", NULL };
        json_t *slow = fixture_ferret_json(&f, slower);
        rows = json_object_get(slow, "rows");
        CHECK_EQ(json_array_size(rows), 5);
        CHECK_EQ(flagged(rows), 1);
        json_t *hit = path_row(rows, "request", "cache", "query");
        CHECK(hit != NULL);
        CHECK(json_is_true(json_object_get(hit, "p95_beyond_noise")));
        double change = json_real_value(json_object_get(hit, "p95_change_pct"));
        CHECK(change > 80 && change < 120);
        json_t *other = path_row(rows, "request", "db", "query");
        CHECK(other != NULL && json_is_false(json_object_get(other, "p95_beyond_noise")));
        CHECK_EQ(get(other, "count_a"), 1500);
        json_decref(slow);

        char *err;
        char *gate[] = { (char *)fixture_ferret_path(), "diff", "--tree", "paths", "paths-slower", "--fail-over", "50",
                         "--runtime-dir", f.runtime_dir, NULL };
        int st = fixture_run(gate, NULL, NULL, &err);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
        CHECK(strstr(err, "p95 of request > cache > query regressed") != NULL);
        free(err);
        gate[4] = "paths-again";
        st = fixture_run(gate, NULL, NULL, &err);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        free(err);
        raw_close(&c);
        fixture_cleanup(&f);
}

/* "@SECONDS.NANOSECONDS", for --since and --until. */
static const char *at(uint64_t ns, char *buf, size_t size)
{
        snprintf(buf, size, "@%llu.%09llu", (unsigned long long)(ns / 1000000000u),
                 (unsigned long long)(ns % 1000000000u));
        return buf;
}

static json_t *row_named(json_t *rows, const char *name)
{
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row)
                if (strcmp(json_string_value(json_object_get(row, "name")), name) == 0)
                        return row;
        return NULL;
}

/* 10,000 spans, one a microsecond, outer/inner pairs: a window holds
 * exactly the spans that start in it, its first instant in, its last out,
 * in the summary and in the tree; a path into the window from outside it
 * shows with a count of 0. */
TEST(a_time_window_holds_exactly_the_spans_that_start_in_it)
{
        enum { N = 10000 };
        const uint64_t base = 1700000000000000000ull;
        struct daemon_fixture f;
        struct raw_client c;
        fixture_start(&f);
        raw_open(&c, f.runtime_dir);
        const char **names = malloc(N * sizeof(*names));
        uint64_t *d = malloc(N * sizeof(*d)), *ids = malloc(N * sizeof(*ids)), *parents = malloc(N * sizeof(*parents));
        for (size_t i = 0; i < N; i++) {
                names[i] = i % 2 ? "inner" : "outer";
                ids[i] = i + 1;
                parents[i] = i % 2 ? i : 0;     /* inner i+1 under outer i */
                d[i] = 500 + i;
        }
        struct raw_spans s = { .n = N, .names = names, .durations = d, .ids = ids, .parents = parents, .start_ns = base, .status = 0 };
        raw_send_batch(&c, "window", &s);
        CHECK_EQ(raw_flush(&c, 10000), 0);
        free(names);
        free(d);
        free(ids);
        free(parents);

        /* [span 3001's start, span 7000's start): 3001 .. 6999. */
        char since[40], until[40];
        at(base + 3001 * 1000, since, sizeof(since));
        at(base + 7000 * 1000, until, sizeof(until));
        const char *summary_args[] = { "query", "--run", "window", "--since", since, "--until", until, NULL };
        json_t *sum = fixture_ferret_json(&f, summary_args);
        json_t *rows = json_object_get(sum, "rows");
        CHECK_EQ(get(row_named(rows, "outer"), "count"), 1999);      /* 3002, 3004 .. 6998 */
        CHECK_EQ(get(row_named(rows, "inner"), "count"), 2000);      /* 3001, 3003 .. 6999 */
        long long total = 0;
        for (size_t i = 3001; i < 7000; i += 2)
                total += 500 + (long long)i;
        CHECK_EQ(get(row_named(rows, "inner"), "total_ns"), total);
        json_decref(sum);

        const char *tree_args[] = { "query", "--tree", "--run", "window", "--since", since, "--until", until, NULL };
        json_t *tree = fixture_ferret_json(&f, tree_args);
        json_t *roots = json_object_get(tree, "roots");
        CHECK_EQ(json_array_size(roots), 1);
        json_t *outer = json_array_get(roots, 0);
        CHECK_EQ(get(outer, "count"), 1999);
        CHECK_EQ(get(json_array_get(json_object_get(outer, "children"), 0), "count"), 2000);
        json_decref(tree);

        /* One instant: span 3001 alone, an inner whose outer began before. */
        at(base + 3001 * 1000 + 1, until, sizeof(until));
        tree = fixture_ferret_json(&f, tree_args);
        outer = json_array_get(json_object_get(tree, "roots"), 0);
        CHECK_EQ(get(outer, "count"), 0);
        CHECK_EQ(get(json_array_get(json_object_get(outer, "children"), 0), "count"), 1);
        json_decref(tree);
        raw_close(&c);
        fixture_cleanup(&f);
}

static uint64_t wall_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void send_at(struct raw_client *c, const char *run, uint64_t start_ns, size_t n)
{
        const char **names = malloc(n * sizeof(*names));
        uint64_t *d = malloc(n * sizeof(*d)), *ids = malloc(n * sizeof(*ids)), *parents = calloc(n, sizeof(*parents));
        for (size_t i = 0; i < n; i++) {
                names[i] = i % 2 ? "odd" : "even";
                d[i] = 1000 + (i * 7919) % 100000;
                ids[i] = c->seq * 1000000 + i + 1;
        }
        struct raw_spans s = { .n = n, .names = names, .durations = d, .ids = ids, .parents = parents, .start_ns = start_ns, .status = 0 };
        raw_send_batch(c, run, &s);
        free(names);
        free(d);
        free(ids);
        free(parents);
}

static bool has_run(json_t *runs, const char *name)
{
        size_t i;
        json_t *r;
        json_array_foreach(runs, i, r)
                if (strcmp(json_string_value(json_object_get(r, "run")), name) == 0)
                        return true;
        return false;
}

static void restart_with(struct daemon_fixture *f, const char *config)
{
        char path[256];
        snprintf(path, sizeof(path), "%s/ferretd.conf", f->dir);
        FILE *fp = fopen(path, "w");
        CHECK(fp != NULL);
        fputs(config, fp);
        fclose(fp);
        CHECK_EQ(fixture_stop(f), 0);
        fixture_restart_args(f, (const char *[]){ "--config", path, NULL });
}

/* Runs older than the retention period go, newer ones stay; the size
 * bound removes the oldest runs first. Both apply before the daemon says
 * it is ready, so the test needs no waiting. */
TEST(retention)
{
        struct daemon_fixture f;
        struct raw_client c;
        fixture_start(&f);
        raw_open(&c, f.runtime_dir);
        uint64_t day = 86400ull * 1000000000u, now = wall_ns();
        send_at(&c, "ten-days-ago", now - 10 * day, 1000);
        send_at(&c, "two-days-ago", now - 2 * day, 1000);
        send_at(&c, "today", now - 1000000000u, 1000);
        CHECK_EQ(raw_flush(&c, 10000), 0);
        raw_close(&c);

        restart_with(&f, "# keep five days\nretain-days = 5\n");
        json_t *runs = ferret_json(&f, "runs", NULL, NULL, NULL);
        CHECK(!has_run(runs, "ten-days-ago"));
        CHECK(has_run(runs, "two-days-ago") && has_run(runs, "today"));
        json_decref(runs);
        json_t *st = ferret_json(&f, "status", NULL, NULL, NULL);
        CHECK(json_real_value(json_object_get(st, "retain_days")) == 5.0);
        CHECK_EQ(get(st, "runs_removed"), 1);
        json_decref(st);

        /* ferret rm, and its one-line error for an unknown run. */
        json_t *rm = ferret_json(&f, "rm", "two-days-ago", NULL, NULL);
        CHECK_STR(json_string_value(json_array_get(json_object_get(rm, "removed"), 0)), "two-days-ago");
        json_decref(rm);
        char *err;
        char *argv[] = { (char *)fixture_ferret_path(), "rm", "two-days-ago", "--runtime-dir", f.runtime_dir, NULL };
        int status = fixture_run(argv, NULL, NULL, &err);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);
        CHECK(strstr(err, "no run named 'two-days-ago'") != NULL);
        free(err);

        /* Size: six runs of random-looking spans, then a bound that holds
         * only some of them. */
        raw_open(&c, f.runtime_dir);
        char name[32];
        for (int i = 0; i < 6; i++) {
                snprintf(name, sizeof(name), "bulk-%d", i);
                for (int k = 0; k < 10; k++)
                        send_at(&c, name, now - (uint64_t)(6 - i) * 1000000000u, 10000);
        }
        CHECK_EQ(raw_flush(&c, 30000), 0);
        raw_close(&c);
        const uint64_t bound = 1u << 20;
        restart_with(&f, "max-size = 1M\n");
        st = ferret_json(&f, "status", NULL, NULL, NULL);
        CHECK_CMP(get(st, "db_size_bytes"), <=, bound);
        CHECK_CMP(get(st, "runs_removed"), >=, 1);
        json_decref(st);
        runs = ferret_json(&f, "runs", NULL, NULL, NULL);
        CHECK(has_run(runs, "bulk-5"));            /* the newest stays */
        CHECK(!has_run(runs, "today"));            /* the oldest went first */
        json_decref(runs);
        fixture_cleanup(&f);
}
