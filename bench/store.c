/* SPDX-License-Identifier: MIT */
/*
 * ferret-bench-store: the store at scale. A private ferretd ingests a run
 * of 10M spans, two runs of 1M spans and 1,000 small runs, all generated
 * with the real client library by forked producers that block rather than
 * drop (FERRET_ON_FULL=block). The benchmark then stops the daemon,
 * compacts the database with ferretd's compression to learn what a span
 * costs on disk for good, starts the daemon again on it, and times the
 * real `ferret` command (median of 5 runs) for the queries people wait on:
 * a summary, a merged tree, the list of runs and a diff.
 *
 * Targets (from the issues that asked for this benchmark), on the 2-core
 * machine: summary of a 10M-span run <= 20 ms and <= 1.2x `ferret status`
 * (an empty round trip, timed in the same run), merged tree of a 1M-span
 * run <= 500 ms and of the 10M-span run <= 2x `ferret status`, `ferret
 * runs` over 1,000 runs <= 50 ms, <= 20 bytes a span after compaction; and,
 * on a run whose spans spread over 24 hours, `--since 5m --tree` and the
 * whole run's tree each <= 2x `ferret status`, the window holding exactly
 * the spans that start in it. A missed target is reported, not an error:
 * the exit status is 0 whenever the benchmark ran to the end and every command it
 * timed succeeded.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "compact.h"
#include "daemon.h"
#include "day.h"
#include "workload.h"

#define REPS 5                  /* runs of each command; the median is reported */
#define PRODUCERS 2             /* processes that emit the large runs */
#define SMALL_RUN_SPANS 10
#define SMALL_PARALLEL 8        /* small-run producers alive at once */
#define TARGET_BYTES_PER_SPAN 20.0

struct options {
        uint64_t spans;         /* the large run */
        uint64_t huge;          /* an even larger run, 0 for none (--huge) */
        uint64_t day;           /* spans of the day-long run, 0 for none (--day) */
        bool no_expand;
        unsigned small_runs;
        bool keep, json;
};

struct ingest {
        char run[64];
        uint64_t spans;
        struct workload_result w;
        uint64_t stored;
        bool have_stored;
};

enum { LAT_STATUS, LAT_SUMMARY, LAT_TREE, LAT_TREE_BIG, LAT_TREE_HUGE, LAT_DAY_RECENT, LAT_DAY_TREE, LAT_RUNS, LAT_DIFF,
       LAT_N };

#define DAY_RUN "store-day"

/* ferretd answers --expand in chunks of about 8 MiB of batches
 * (ferretd/query.c); what it holds for one on top of what it held before:
 * the batches read, the answer packed, ZeroMQ's copy, and slack. */
#define EXPAND_BOUND_MIB 48.0

struct latency {
        const char *id;         /* its JSON key */
        char label[64];
        double target_ms;       /* 0: none */
        double target_ratio;    /* 0: none; else at most this many times `ferret status` */
        bool available;         /* the command exists */
        bool failed;            /* it exited with an error */
        double median_ms, min_ms, max_ms;
};

struct results {
        struct ingest big, tree_a, tree_b, huge;
        struct day_run day;
        uint64_t day_since_ns;          /* the window --since 5m was answered for */
        uint64_t day_window_spans;      /* spans in it, as ferretd counted them */
        bool day_checked;
        double expand_s;                /* --expand of the large run, once */
        bool expand_failed, expand_done;
        uint64_t expand_base_kb, expand_peak_kb;    /* ferretd's VmHWM before and during it */
        uint64_t tree_huge_peak_kb;
        struct workload_result small;
        unsigned small_found;           /* small runs the daemon lists */
        uint64_t small_stored;
        unsigned runs;                  /* runs in the database */
        uint64_t spans;                 /* spans in the database */
        uint64_t du_before, du_after;
        struct compact_result compact;
        uint64_t ingest_peak_kb;        /* ferretd's VmHWM after all the ingest */
        uint64_t tree_peak_kb;          /* ferretd's VmHWM over the tree queries */
        uint64_t tree_big_peak_kb;      /* ... over the large run's tree queries */
        bool tree_peak_reset;           /* whether that peak started from the tree queries */
        struct latency lat[LAT_N];
};

static bool quiet;      /* --json: progress on stderr only, results at the end */
static bool no_expand_g;

static void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void progress(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fputs("store: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
}

/* "10M", "1M", "250k" or the number itself: for labels. */
static const char *short_count(uint64_t n, char *buf, size_t size)
{
        if (n >= 1000000 && n % 1000000 == 0)
                snprintf(buf, size, "%" PRIu64 "M", n / 1000000);
        else if (n >= 1000 && n % 1000 == 0)
                snprintf(buf, size, "%" PRIu64 "k", n / 1000);
        else
                snprintf(buf, size, "%" PRIu64, n);
        return buf;
}

static double mib(uint64_t bytes)
{
        return (double)bytes / (1024.0 * 1024.0);
}

/* Emits one large run and checks that the daemon holds every span of it. */
static int ingest_run(const struct bench_daemon *d, struct ingest *in, const char *slow_name)
{
        progress("emitting %" PRIu64 " spans into run %s (%d producers)...", in->spans, in->run, PRODUCERS);
        int r = workload_emit(in->run, in->spans, PRODUCERS, slow_name, &in->w);
        if (r < 0)
                return r;
        in->have_stored = bench_stored_spans(d->runtime_dir, in->run, &in->stored) == 0;
        if (!quiet) {
                printf("  %-22s %10" PRIu64 " spans  %6.2f s  %10.0f spans/s stored", in->run, in->spans,
                       in->w.seconds, (double)in->spans / in->w.seconds);
                if (!in->have_stored)
                        printf("  (count unknown: ferret query failed)");
                else if (in->stored != in->spans || in->w.dropped)
                        printf("  MISMATCH: %" PRIu64 " stored, %" PRIu64 " dropped", in->stored, in->w.dropped);
                if (in->w.flush_failures)
                        printf("  (flush failed: %s)", strerror(-in->w.flush_error));
                printf("\n");
                fflush(stdout);
        }
        return 0;
}

/* Counts the runs and spans the daemon holds, and those of the small runs,
 * from `ferret runs --json`. */
static int count_runs(const struct bench_daemon *d, const char *small_prefix, struct results *res)
{
        char *argv[] = { (char *)bench_ferret_cli_path(), "runs", "--json", "--runtime-dir", (char *)d->runtime_dir,
                         NULL };
        char *out = NULL;
        int status = bench_run(argv, &out, NULL);
        json_t *a = status == 0 && out ? json_loads(out, 0, NULL) : NULL;
        free(out);
        if (!json_is_array(a)) {
                fprintf(stderr, "ferret runs --json failed\n");
                json_decref(a);
                return -EIO;
        }
        size_t i, plen = strlen(small_prefix);
        json_t *run;
        res->runs = 0;
        res->spans = res->small_stored = 0;
        res->small_found = 0;
        json_array_foreach(a, i, run) {
                const char *id = json_string_value(json_object_get(run, "run"));
                uint64_t spans = (uint64_t)json_integer_value(json_object_get(run, "spans"));
                res->runs++;
                res->spans += spans;
                if (id && strncmp(id, small_prefix, plen) == 0 && id[plen] == '-') {
                        res->small_found++;
                        res->small_stored += spans;
                }
        }
        json_decref(a);
        return 0;
}

static int measure_storage(struct bench_daemon *d, struct results *res)
{
        bench_daemon_memory(d, &res->ingest_peak_kb, &(uint64_t){ 0 });
        progress("stopping ferretd, then compacting the database...");
        int status = bench_daemon_stop(d);
        if (!WIFSIGNALED(status) && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
                fprintf(stderr, "ferretd did not stop cleanly (wait status %d)\n", status);
                bench_daemon_print_log(d);
                return -EIO;
        }
        res->du_before = compact_du(d->db);
        int r = compact_database(d->db, &res->compact);
        if (r < 0)
                return r;
        res->du_after = compact_du(d->db);
        if (!quiet) {
                double n = (double)res->spans;
                printf("\nstorage: %" PRIu64 " spans in %u runs\n", res->spans, res->runs);
                printf("  before compaction, du of the database  %9.1f MiB  %6.1f bytes/span\n", mib(res->du_before),
                       (double)res->du_before / n);
                printf("  SST files once opened                  %9.1f MiB  %6.1f bytes/span\n",
                       mib(res->compact.sst_before), (double)res->compact.sst_before / n);
                double per_span = (double)res->compact.sst_after / n;
                printf("  after compact_range (%5.1f s), SST      %9.1f MiB  %6.1f bytes/span   target <= %.0f   %s\n",
                       res->compact.seconds, mib(res->compact.sst_after), per_span, TARGET_BYTES_PER_SPAN,
                       per_span <= TARGET_BYTES_PER_SPAN ? "ok" : "FAIL");
                printf("  last level rewritten (%5.1f s), SST     %9.1f MiB  %6.1f bytes/span   (all zstd)\n",
                       res->compact.forced_seconds, mib(res->compact.sst_forced), (double)res->compact.sst_forced / n);
                printf("  after both, du of the database         %9.1f MiB  %6.1f bytes/span\n", mib(res->du_after),
                       (double)res->du_after / n);
                fflush(stdout);
        }
        progress("starting ferretd again on the compacted database...");
        return bench_daemon_restart(d);
}

/* Runs @argv REPS times, stdout to /dev/null, and keeps the wall-clock
 * times of the runs: spawn, the command's work, its exit. A command that
 * fails marks its row failed (its stderr passes through) and the others
 * are still measured. */
static void time_command(char *const argv[], struct latency *l)
{
        double ms[REPS];
        l->available = true;
        for (int i = 0; i < REPS; i++) {
                uint64_t t0 = bench_now_ns();
                int status = bench_run(argv, NULL, NULL);
                ms[i] = (double)(bench_now_ns() - t0) / 1e6;
                if (status != 0) {
                        fprintf(stderr, "store: ferret %s failed (wait status %d)\n", argv[1], status);
                        l->failed = true;
                        return;
                }
        }
        l->median_ms = bench_percentile(ms, REPS, 50);
        l->min_ms = ms[0];
        l->max_ms = ms[REPS - 1];
}

/* The floor of any command: `ferret status`, an empty round trip. */
static const struct latency *status_floor;

static double latency_ratio(const struct latency *l)
{
        return status_floor && status_floor->median_ms > 0 ? l->median_ms / status_floor->median_ms : 0;
}

static bool latency_ok(const struct latency *l)
{
        if (!l->available || l->failed)
                return false;
        return (l->target_ratio <= 0 || latency_ratio(l) <= l->target_ratio) &&
               (l->target_ms <= 0 || l->median_ms <= l->target_ms);
}

static bool diff_available(void)
{
        char *argv[] = { (char *)bench_ferret_cli_path(), "diff", "--help", NULL };
        char *out = NULL, *err = NULL;
        int status = bench_run(argv, &out, &err);
        free(out);
        free(err);
        return status == 0;
}

static void print_latency(const struct latency *l)
{
        printf("  %-36s", l->label);
        if (!l->available || l->failed) {
                printf(" %s\n", l->failed ? "FAIL: the command failed" : "not available yet");
                fflush(stdout);
                return;
        }
        printf(" %8.1f ms  (%.1f-%.1f)", l->median_ms, l->min_ms, l->max_ms);
        if (l->target_ms > 0)
                printf("   target <= %.0f ms", l->target_ms);
        if (l->target_ratio > 0)
                printf("%s %.1fx status (target <= %.1fx)", l->target_ms > 0 ? "," : "  ", latency_ratio(l),
                       l->target_ratio);
        if (l->target_ms > 0 || l->target_ratio > 0)
                printf("   %s", latency_ok(l) ? "ok" : "FAIL");
        else
                printf("   no target");
        printf("\n");
        fflush(stdout);
}

static uint64_t tree_spans(json_t *nodes)
{
        uint64_t n = 0;
        size_t i;
        json_t *node;
        json_array_foreach(nodes, i, node)
                n += (uint64_t)json_integer_value(json_object_get(node, "count")) +
                     tree_spans(json_object_get(node, "children"));
        return n;
}

/* The window of `--since 5m` holds exactly the spans that start in it. */
static void check_day_window(const char *dir, struct results *res)
{
        char *argv[] = { (char *)bench_ferret_cli_path(), "query", "--tree", "--run", DAY_RUN, "--since", "5m", "--json",
                         "--runtime-dir", (char *)dir, NULL };
        char *out = NULL;
        json_t *tree = bench_run(argv, &out, NULL) == 0 && out ? json_loads(out, 0, NULL) : NULL;
        free(out);
        if (!tree)
                return;
        res->day_since_ns = (uint64_t)json_integer_value(json_object_get(tree, "since_ns"));
        res->day_window_spans = tree_spans(json_object_get(tree, "roots"));
        res->day_checked = true;
        json_decref(tree);
        if (!quiet) {
                uint64_t truth = day_spans_since(&res->day, res->day_since_ns);
                printf("  the window --since 5m (widened to its bucket's start, %.0f s before the run's end): %" PRIu64
                       " spans, %" PRIu64 " start in it   %s\n",
                       (double)(res->day.end_ns - res->day_since_ns) / 1e9, res->day_window_spans, truth,
                       res->day_window_spans == truth ? "exact" : "MISMATCH");
        }
}

static int measure_latencies(struct bench_daemon *d, struct results *res)
{
        char *cli = (char *)bench_ferret_cli_path(), *dir = d->runtime_dir, n[3][32];
        struct latency *lat = res->lat;
        lat[LAT_STATUS] = (struct latency){ .id = "status" };
        snprintf(lat[LAT_STATUS].label, sizeof(lat[0].label), "ferret status (the floor)");
        /* Issue 14's targets: answered from aggregates, as fast as the floor. */
        lat[LAT_SUMMARY] = (struct latency){ .id = "summary", .target_ms = 20, .target_ratio = 1.2 };
        snprintf(lat[LAT_SUMMARY].label, sizeof(lat[0].label), "summary of a %s-span run",
                 short_count(res->big.spans, n[0], sizeof(n[0])));
        lat[LAT_TREE] = (struct latency){ .id = "tree", .target_ms = 500 };
        snprintf(lat[LAT_TREE].label, sizeof(lat[0].label), "merged tree of a %s-span run",
                 short_count(res->tree_a.spans, n[1], sizeof(n[1])));
        lat[LAT_TREE_BIG] = (struct latency){ .id = "tree_large", .target_ratio = 2 };
        snprintf(lat[LAT_TREE_BIG].label, sizeof(lat[0].label), "merged tree of a %s-span run", n[0]);
        lat[LAT_TREE_HUGE] = (struct latency){ .id = "tree_huge", .target_ratio = 2 };
        snprintf(lat[LAT_TREE_HUGE].label, sizeof(lat[0].label), "merged tree of a %s-span run",
                 short_count(res->huge.spans, n[2], sizeof(n[2])));
        lat[LAT_DAY_RECENT] = (struct latency){ .id = "day_since_5m", .target_ratio = 2 };
        snprintf(lat[LAT_DAY_RECENT].label, sizeof(lat[0].label), "--since 5m --tree of a 24-hour run");
        lat[LAT_DAY_TREE] = (struct latency){ .id = "day_tree", .target_ratio = 2 };
        snprintf(lat[LAT_DAY_TREE].label, sizeof(lat[0].label), "merged tree of the 24-hour run");
        lat[LAT_RUNS] = (struct latency){ .id = "runs", .target_ms = 50 };
        snprintf(lat[LAT_RUNS].label, sizeof(lat[0].label), "ferret runs with %u runs", res->runs);
        lat[LAT_DIFF] = (struct latency){ .id = "diff" };
        snprintf(lat[LAT_DIFF].label, sizeof(lat[0].label), "ferret diff of two %s-span runs", n[1]);

        if (!quiet)
                printf("\nlatency of the ferret command, wall clock, median of %d (min-max)\n", REPS);
        progress("timing status, the summary, the trees, the runs and the diff, %d times each...", REPS);
        char *status[] = { cli, "status", "--runtime-dir", dir, NULL };
        time_command(status, &lat[LAT_STATUS]);
        status_floor = &lat[LAT_STATUS];
        if (!quiet)
                print_latency(&lat[LAT_STATUS]);
        char *summary[] = { cli, "query", "--run", res->big.run, "--runtime-dir", dir, NULL };
        time_command(summary, &lat[LAT_SUMMARY]);
        if (!quiet)
                print_latency(&lat[LAT_SUMMARY]);

        /* The peak memory of the tree queries alone: reset it first. */
        res->tree_peak_reset = bench_daemon_reset_peak(d) == 0;
        char *tree[] = { cli, "query", "--tree", "--run", res->tree_a.run, "--runtime-dir", dir, NULL };
        time_command(tree, &lat[LAT_TREE]);
        bench_daemon_memory(d, &res->tree_peak_kb, &(uint64_t){ 0 });
        if (!quiet)
                print_latency(&lat[LAT_TREE]);

        bench_daemon_reset_peak(d);
        char *tree_big[] = { cli, "query", "--tree", "--run", res->big.run, "--runtime-dir", dir, NULL };
        time_command(tree_big, &lat[LAT_TREE_BIG]);
        bench_daemon_memory(d, &res->tree_big_peak_kb, &(uint64_t){ 0 });
        if (!quiet)
                print_latency(&lat[LAT_TREE_BIG]);

        if (res->huge.spans) {
                bench_daemon_reset_peak(d);
                char *tree_huge[] = { cli, "query", "--tree", "--run", res->huge.run, "--runtime-dir", dir, NULL };
                time_command(tree_huge, &lat[LAT_TREE_HUGE]);
                bench_daemon_memory(d, &res->tree_huge_peak_kb, &(uint64_t){ 0 });
                if (!quiet)
                        print_latency(&lat[LAT_TREE_HUGE]);
        }

        if (res->day.spans) {
                char *recent[] = { cli, "query", "--tree", "--run", DAY_RUN, "--since", "5m", "--runtime-dir", dir, NULL };
                time_command(recent, &lat[LAT_DAY_RECENT]);
                if (!quiet)
                        print_latency(&lat[LAT_DAY_RECENT]);
                char *whole[] = { cli, "query", "--tree", "--run", DAY_RUN, "--runtime-dir", dir, NULL };
                time_command(whole, &lat[LAT_DAY_TREE]);
                if (!quiet)
                        print_latency(&lat[LAT_DAY_TREE]);
                check_day_window(dir, res);
        }

        char *runs[] = { cli, "runs", "--runtime-dir", dir, NULL };
        time_command(runs, &lat[LAT_RUNS]);
        if (!quiet)
                print_latency(&lat[LAT_RUNS]);

        char *diff[] = { cli, "diff", res->tree_a.run, res->tree_b.run, "--runtime-dir", dir, NULL };
        if (diff_available())
                time_command(diff, &lat[LAT_DIFF]);
        if (!quiet) {
                print_latency(&lat[LAT_DIFF]);
                printf("\nferretd peak memory (VmHWM): %.1f MiB after the ingest (first daemon), "
                       "%.1f MiB %s the %s-span tree queries, %.1f MiB during the %s-span ones (target < 100 MB)\n",
                       (double)res->ingest_peak_kb / 1024.0, (double)res->tree_peak_kb / 1024.0,
                       res->tree_peak_reset ? "during" : "since its restart, after", n[1],
                       (double)res->tree_big_peak_kb / 1024.0, n[0]);
                if (res->huge.spans)
                        printf("ferretd peak memory during the %s-span tree queries: %.1f MiB (target < 100 MB)\n", n[2],
                               (double)res->tree_huge_peak_kb / 1024.0);
        }
        if (!no_expand_g) {
                /* Every span of the large run, once: ferretd streams it in
                 * chunks; what it holds must not grow with the run. */
                progress("listing every span of %s (--expand), once...", res->big.run);
                bench_daemon_reset_peak(d);
                bench_daemon_memory(d, &res->expand_base_kb, &(uint64_t){ 0 });
                char *expand[] = { cli, "query", "--tree", "--expand", "--run", res->big.run, "--runtime-dir", dir, NULL };
                uint64_t t0 = bench_now_ns();
                res->expand_failed = bench_run(expand, NULL, NULL) != 0;
                res->expand_s = (double)(bench_now_ns() - t0) / 1e9;
                bench_daemon_memory(d, &res->expand_peak_kb, &(uint64_t){ 0 });
                res->expand_done = true;
                if (!quiet) {
                        double grew = (double)(res->expand_peak_kb - res->expand_base_kb) / 1024.0;
                        printf("ferret query --tree --expand of the %s-span run: %s%.1f s; ferretd peak %.1f MiB, "
                               "%.1f MiB above its %.1f MiB before (bound %.0f MiB)   %s\n",
                               n[0], res->expand_failed ? "FAILED after " : "", res->expand_s,
                               (double)res->expand_peak_kb / 1024.0, grew, (double)res->expand_base_kb / 1024.0,
                               EXPAND_BOUND_MIB, !res->expand_failed && grew <= EXPAND_BOUND_MIB ? "ok" : "FAIL");
                }
        }
        return bench_daemon_alive(d) ? 0 : -ESRCH;
}

static void summarise(const struct results *res)
{
        unsigned met = 0, total = 0;
        for (int i = 0; i < LAT_N; i++)
                if ((res->lat[i].target_ms > 0 || res->lat[i].target_ratio > 0) && res->lat[i].available) {
                        total++;
                        met += latency_ok(&res->lat[i]);
                }
        total++;
        met += (double)res->compact.sst_after / (double)res->spans <= TARGET_BYTES_PER_SPAN;
        if (res->day_checked) {
                total++;
                met += res->day_window_spans == day_spans_since(&res->day, res->day_since_ns);
        }
        if (res->expand_done) {
                total++;
                met += !res->expand_failed &&
                       (double)(res->expand_peak_kb - res->expand_base_kb) / 1024.0 <= EXPAND_BOUND_MIB;
        }
        printf("\ntargets met: %u of %u\n", met, total);
}

static void json_ingest(const char *key, const struct ingest *in, bool last)
{
        printf("    \"%s\": {\"run\": ", key);
        bench_json_string(stdout, in->run);
        printf(", \"spans\": %" PRIu64 ", \"stored\": %" PRIu64 ", \"dropped\": %" PRIu64
               ", \"seconds\": %.3f, \"spans_per_s\": %.0f, \"flush_failures\": %d}%s\n",
               in->spans, in->have_stored ? in->stored : 0, in->w.dropped, in->w.seconds,
               (double)in->spans / in->w.seconds, in->w.flush_failures, last ? "" : ",");
}

static void print_json(const struct bench_machine *m, const struct options *o, const struct results *res)
{
        printf("{\n  \"machine\": {\"cpu\": ");
        bench_json_string(stdout, m->cpu);
        printf(", \"cpus\": %ld, \"clocksource\": ", m->cpus);
        bench_json_string(stdout, m->clocksource);
        printf(", \"kernel\": ");
        bench_json_string(stdout, m->kernel);
        printf("},\n  \"build\": ");
        bench_json_string(stdout, bench_build_description());
        if (bench_build_warning()) {
                printf(",\n  \"warning\": ");
                bench_json_string(stdout, bench_build_warning());
        }
        printf(",\n  \"ingest\": {\n");
        json_ingest("large", &res->big, false);
        json_ingest("tree_a", &res->tree_a, false);
        json_ingest("tree_b", &res->tree_b, false);
        if (res->huge.spans)
                json_ingest("huge", &res->huge, false);
        printf("    \"small\": {\"runs\": %u, \"spans_each\": %d, \"listed\": %u, \"stored\": %" PRIu64
               ", \"dropped\": %" PRIu64 ", \"seconds\": %.3f}\n  },\n",
               o->small_runs, SMALL_RUN_SPANS, res->small_found, res->small_stored, res->small.dropped,
               res->small.seconds);
        double per_span = (double)res->compact.sst_after / (double)res->spans;
        printf("  \"storage\": {\"runs\": %u, \"spans\": %" PRIu64 ", \"du_before_bytes\": %" PRIu64
               ", \"du_after_bytes\": %" PRIu64 ", \"sst_before_bytes\": %" PRIu64 ", \"sst_after_bytes\": %" PRIu64
               ", \"compaction_s\": %.3f, \"sst_forced_bytes\": %" PRIu64 ", \"forced_compaction_s\": %.3f"
               ", \"bytes_per_span\": %.2f, \"target_bytes_per_span\": %.0f, \"ok\": %s},\n",
               res->runs, res->spans, res->du_before, res->du_after, res->compact.sst_before, res->compact.sst_after,
               res->compact.seconds, res->compact.sst_forced, res->compact.forced_seconds, per_span,
               TARGET_BYTES_PER_SPAN,
               per_span <= TARGET_BYTES_PER_SPAN ? "true" : "false");
        printf("  \"latency_ms\": {\n");
        for (int i = 0; i < LAT_N; i++) {
                const struct latency *l = &res->lat[i];
                printf("    \"%s\": {\"label\": ", l->id);
                bench_json_string(stdout, l->label);
                if (l->failed)
                        printf(", \"failed\": true");
                else if (l->available)
                        printf(", \"median\": %.2f, \"min\": %.2f, \"max\": %.2f", l->median_ms, l->min_ms, l->max_ms);
                else
                        printf(", \"available\": false");
                if (l->target_ms > 0)
                        printf(", \"target\": %.0f", l->target_ms);
                if (l->target_ratio > 0)
                        printf(", \"ratio_to_status\": %.2f, \"target_ratio\": %.1f", latency_ratio(l), l->target_ratio);
                if (l->target_ms > 0 || l->target_ratio > 0)
                        printf(", \"ok\": %s", latency_ok(l) ? "true" : "false");
                printf("}%s\n", i + 1 < LAT_N ? "," : "");
        }
        if (res->day_checked)
                printf("  },\n  \"day\": {\"spans\": %" PRIu64 ", \"since_5m_ns\": %" PRIu64 ", \"window_spans\": %" PRIu64
                       ", \"truth\": %" PRIu64 ", \"exact\": %s",
                       res->day.spans, res->day_since_ns, res->day_window_spans,
                       day_spans_since(&res->day, res->day_since_ns),
                       res->day_window_spans == day_spans_since(&res->day, res->day_since_ns) ? "true" : "false");
        printf("  },\n  \"expand\": {\"done\": %s, \"failed\": %s, \"seconds\": %.3f, \"ferretd_before_kb\": %" PRIu64
               ", \"ferretd_peak_kb\": %" PRIu64 ", \"bound_mib\": %.0f},\n",
               res->expand_done ? "true" : "false", res->expand_failed ? "true" : "false", res->expand_s,
               res->expand_base_kb, res->expand_peak_kb, EXPAND_BOUND_MIB);
        printf("  \"ferretd_peak_kb\": {\"ingest\": %" PRIu64 ", \"tree\": %" PRIu64 ", \"tree_large\": %" PRIu64
               ", \"tree_huge\": %" PRIu64 "}\n}\n",
               res->ingest_peak_kb, res->tree_peak_kb, res->tree_big_peak_kb, res->tree_huge_peak_kb);
}

static int run_benchmark(const struct options *o, struct bench_daemon *d, struct results *res)
{
        char n[32];
        res->big.spans = o->spans;
        res->tree_a.spans = res->tree_b.spans = o->spans / 10 ? o->spans / 10 : 1;
        snprintf(res->big.run, sizeof(res->big.run), "store-%s", short_count(res->big.spans, n, sizeof(n)));
        snprintf(res->tree_a.run, sizeof(res->tree_a.run), "store-%s-a", short_count(res->tree_a.spans, n, sizeof(n)));
        snprintf(res->tree_b.run, sizeof(res->tree_b.run), "store-%s-b", n);
        const char *small_prefix = "store-small";

        if (!quiet)
                printf("\ningest, spans/s stored = spans / (start of emission to every producer's flush returned)\n");
        if (ingest_run(d, &res->big, NULL) < 0 || ingest_run(d, &res->tree_a, NULL) < 0 ||
            ingest_run(d, &res->tree_b, workload_slow_name()) < 0)
                return -EIO;
        res->huge.spans = o->huge;
        snprintf(res->huge.run, sizeof(res->huge.run), "store-%s", short_count(res->huge.spans, n, sizeof(n)));
        if (o->huge && ingest_run(d, &res->huge, NULL) < 0)
                return -EIO;
        if (o->day) {
                progress("sending %" PRIu64 " spans spread over the last 24 hours into run %s...", o->day, DAY_RUN);
                if (day_emit(d->runtime_dir, DAY_RUN, o->day, &res->day) < 0)
                        return -EIO;
                uint64_t stored = 0;
                bool known = bench_stored_spans(d->runtime_dir, DAY_RUN, &stored) == 0;
                if (!quiet) {
                        printf("  %-22s %10" PRIu64 " spans  %6.2f s  %10.0f spans/s stored, over 24 hours of timestamps",
                               DAY_RUN, res->day.spans, res->day.seconds, (double)res->day.spans / res->day.seconds);
                        if (!known || stored != res->day.spans)
                                printf("  MISMATCH: %" PRIu64 " stored", stored);
                        printf("\n");
                }
        }

        progress("emitting %u runs of %d spans, a process each, %d at a time...", o->small_runs, SMALL_RUN_SPANS,
                 SMALL_PARALLEL);
        if (workload_small_runs(small_prefix, o->small_runs, SMALL_RUN_SPANS, SMALL_PARALLEL, &res->small) < 0)
                return -EIO;
        if (count_runs(d, small_prefix, res) < 0)
                return -EIO;
        if (!quiet && o->small_runs) {
                printf("  %-22s %10u runs   %6.2f s  %10.0f runs/s, %u listed with %" PRIu64 " spans", "store-small-*",
                       o->small_runs, res->small.seconds, (double)o->small_runs / res->small.seconds, res->small_found,
                       res->small_stored);
                if (res->small_found != o->small_runs || res->small_stored != res->small.emitted || res->small.dropped)
                        printf("  MISMATCH: %" PRIu64 " emitted, %" PRIu64 " dropped", res->small.emitted,
                               res->small.dropped);
                if (res->small.flush_failures)
                        printf("  (%d flushes failed: %s)", res->small.flush_failures, strerror(-res->small.flush_error));
                printf("\n");
                fflush(stdout);
        }
        if (!bench_daemon_alive(d))
                return -ESRCH;
        if (res->spans == 0) {
                fprintf(stderr, "The database holds no spans\n");
                return -EIO;
        }
        if (measure_storage(d, res) < 0)
                return -EIO;
        return measure_latencies(d, res);
}

static void usage(FILE *f)
{
        fprintf(f, "Usage: ferret-bench-store [--spans N] [--huge N] [--day N] [--small-runs N] [--no-expand] [--keep]\n"
                   "                          [--json]\n\n"
                   "Ingests a run of N spans, two runs of N/10 spans and many small runs into a\n"
                   "private ferretd; prints spans/s stored, bytes a span on disk after a full\n"
                   "compaction, and the latency of ferret query, query --tree, runs and diff.\n\n"
                   "  -n, --spans N        spans in the large run (default 10000000)\n"
                   "  -H, --huge N         also a run of N spans (e.g. 100000000: a few minutes and\n"
                   "                       about 1 GB of disk), its tree timed the same way\n"
                   "  -D, --day N          spans of the run spread over 24 hours (default 1000000, 0: none)\n"
                   "  -E, --no-expand      skip listing every span of the large run (--expand)\n"
                   "  -s, --small-runs N   runs of %d spans each (default 1000)\n"
                   "  -k, --keep           keep the database and print where it is\n"
                   "  -j, --json           print the results as JSON (progress stays on stderr)\n",
                SMALL_RUN_SPANS);
}

int main(int argc, char **argv)
{
        struct options o = { .spans = 10000000, .small_runs = 1000, .day = 1000000 };
        static const struct option longopts[] = {
                { "spans", required_argument, NULL, 'n' },
                { "small-runs", required_argument, NULL, 's' },
                { "huge", required_argument, NULL, 'H' },
                { "day", required_argument, NULL, 'D' },
                { "no-expand", no_argument, NULL, 'E' },
                { "keep", no_argument, NULL, 'k' },
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int opt;
        while ((opt = getopt_long(argc, argv, "n:s:H:D:Ekjh", longopts, NULL)) != -1)
                switch (opt) {
                case 'H':
                        o.huge = strtoull(optarg, NULL, 10);
                        break;
                case 'E':
                        o.no_expand = true;
                        break;
                case 'D':
                        o.day = strtoull(optarg, NULL, 10);
                        break;
                case 'n':
                        o.spans = strtoull(optarg, NULL, 10);
                        break;
                case 's':
                        o.small_runs = (unsigned)strtoul(optarg, NULL, 10);
                        break;
                case 'k':
                        o.keep = true;
                        break;
                case 'j':
                        o.json = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        if (optind < argc || o.spans < 10 || o.small_runs > 100000) {
                usage(stderr);
                return 2;
        }
        quiet = o.json;
        no_expand_g = o.no_expand;

        struct bench_machine m;
        bench_machine_get(&m);
        if (!quiet) {
                printf("Ferret store benchmark\n");
                printf("machine:     %s, %ld CPUs, clocksource %s, %s\n", m.cpu, m.cpus, m.clocksource, m.kernel);
                printf("build:       %s\n", bench_build_description());
                if (bench_build_warning())
                        printf("%s\n", bench_build_warning());
                printf("workload:    %d span names, 2 tags a span (an int, a short string), a parent with 3\n"
                       "             children repeated, random durations; producers block when full\n",
                       WORKLOAD_NAMES);
                fflush(stdout);
        }

        struct bench_daemon d;
        if (bench_daemon_start(&d) < 0)
                return 1;
        /* Set here, before any producer is forked: each reads them once. */
        setenv("FERRET_RUNTIME_DIR", d.runtime_dir, 1);
        setenv("FERRET_ON_FULL", "block:60000", 1);
        unsetenv("FERRET_DISABLE");
        unsetenv("FERRET_TRACEPARENT");
        unsetenv("FERRET_RUN_ID");

        struct results res = { 0 };
        int r = run_benchmark(&o, &d, &res);
        if (r == 0) {
                if (o.json)
                        print_json(&m, &o, &res);
                else
                        summarise(&res);
                for (int i = 0; i < LAT_N; i++)
                        if (res.lat[i].failed)
                                r = -EIO;
        }
        if (o.keep) {
                bench_daemon_stop(&d);
                fprintf(stderr, "store: kept %s (database %s)\n", d.dir, d.db);
        } else
                bench_daemon_cleanup(&d);
        day_run_free(&res.day);
        return r < 0 ? 1 : 0;
}
