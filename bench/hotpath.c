/* SPDX-License-Identifier: MIT */
/*
 * ferret-bench-hotpath: what one span (begin + end) costs the thread that
 * records it, in ns per span, beside the bare cost of reading the clock twice
 * and the cost of an enabled LTTng-UST event.
 *
 * Each case runs in a process of its own (this program, re-executed with
 * --case): the client library reads its configuration from the environment
 * once per process, so "disabled" needs a process with FERRET_DISABLE=1, and
 * a fresh process also keeps one case's buffers and threads out of the next.
 * The spans go to a private ferretd, as they would in real use; its ring
 * buffers fill faster than any daemon stores, so most spans may be dropped,
 * and the drops are reported beside the times.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define HAVE_RDTSC 1
#endif

#include <ferret.h>

#include "bench-config.h"
#include "common.h"
#include "daemon.h"

#if BENCH_HAVE_LTTNG
#include "lttng-session.h"
#include "lttng-tp.h"
#endif

extern char **environ;

/* Keeps a value alive without costing more than a register. */
#define KEEP(x) __asm__ volatile("" : : "r"(x) : "memory")

enum case_env {
        ENV_FERRET,             /* spans to the private daemon */
        ENV_FERRET_DISABLED,    /* FERRET_DISABLE=1 */
        ENV_PLAIN,              /* no tracer involved */
        ENV_LTTNG,              /* an LTTng session records ferret_bench:* */
};

struct bench_case {
        const char *id;         /* --case argument */
        const char *label;
        enum case_env env;
        void (*loop)(uint64_t n);
        bool drain;             /* small repetitions, the buffer emptied between them */
};

/* Spans per repetition of a drained case, at most: few enough that the
 * buffer never fills, so every span takes the recording path and none is
 * dropped. 16,384 literal spans fill a thread's 1 MiB home ring; the quarter
 * of it that drained_spans() settles on stays under the half-full mark at
 * which the flusher is woken, so that a repetition measures the recording
 * thread alone (the flood rows show it with the flusher draining beside it). */
#define DRAIN_SPANS 16384

static void loop_literal(uint64_t n)
{
        for (uint64_t i = 0; i < n; i++)
                FERRET_SCOPE(s, "work") {
                }
}

static void loop_dynamic(uint64_t n)
{
        for (uint64_t i = 0; i < n; i++) {
                ferret_span_t *s = ferret_span_beginf("work %d", (int)(i & 7));
                ferret_span_end(s);
        }
}

static void loop_tags(uint64_t n)
{
        for (uint64_t i = 0; i < n; i++) {
                ferret_span_t *s = ferret_span_begin_literal("work");
                ferret_span_tag_int(s, "i", (int64_t)i);
                ferret_span_tag_str(s, "k", "v");
                ferret_span_end(s);
        }
}

static void loop_clock(uint64_t n)
{
        for (uint64_t i = 0; i < n; i++) {
                struct timespec a, b;
                clock_gettime(CLOCK_MONOTONIC, &a);
                clock_gettime(CLOCK_MONOTONIC, &b);
                KEEP(b.tv_nsec - a.tv_nsec);
        }
}

#ifdef HAVE_RDTSC
static void loop_rdtsc(uint64_t n)
{
        for (uint64_t i = 0; i < n; i++) {
                uint64_t a = __rdtsc();
                uint64_t b = __rdtsc();
                KEEP(b - a);
        }
}
#endif

#if BENCH_HAVE_LTTNG
static void loop_lttng(uint64_t n)
{
        for (uint64_t i = 0; i < n; i++)
                lttng_ust_tracepoint(ferret_bench, work, (int)i, "v");
}
#endif

static const struct bench_case cases[] = {
        { "literal", "literal name", ENV_FERRET, loop_literal, false },
        { "drained", "literal, no drops", ENV_FERRET, loop_literal, true },
        { "dynamic", "dynamic name", ENV_FERRET, loop_dynamic, false },
        { "tags", "literal + 2 tags", ENV_FERRET, loop_tags, false },
        { "tags-drained", "2 tags, no drops", ENV_FERRET, loop_tags, true },
        { "disabled", "disabled", ENV_FERRET_DISABLED, loop_literal, false },
        { "clock", "two clock reads", ENV_PLAIN, loop_clock, false },
#ifdef HAVE_RDTSC
        { "rdtsc", "two rdtsc reads", ENV_PLAIN, loop_rdtsc, false },
#endif
#if BENCH_HAVE_LTTNG
        { "lttng", "LTTng-UST event", ENV_LTTNG, loop_lttng, false },
#else
        { "lttng", "LTTng-UST event", ENV_LTTNG, NULL, false },
#endif
};
#define N_CASES (sizeof(cases) / sizeof(cases[0]))

struct options {
        unsigned reps;
        uint64_t spans;
        bool json;
        const char *only;       /* run this case here, in this process */
        int recorder_cpu;       /* the measured thread's CPU, or -1: see bench_pin_services() */
};

/* What a case produced, as its process reports it. */
struct result {
        bool ran;
        char note[256];         /* why it did not run, or a remark */
        double median, p99, min;
        uint64_t spans;         /* per repetition */
        uint64_t emitted;       /* spans (or events) of the process, warm-up included */
        uint64_t dropped;       /* of emitted */
        uint64_t m_dropped;     /* of the measured repetitions */
        bool have_dropped;
        uint64_t stored;
        bool have_stored;
};

/* --- The measuring side: one case, in its own process. --- */

/* The spans a drained repetition may hold: a quarter of the most, from
 * DRAIN_SPANS down, that one repetition records without a drop once the
 * buffer is empty. A try can pass only because the flusher drained the ring
 * meanwhile; the margin keeps a busy machine from dropping in the measured
 * repetitions. The buffer's size is the library's business, so it is found by
 * trying; the tries warm the case up too. */
static uint64_t drained_spans(const struct bench_case *c, uint64_t max, uint64_t *emitted)
{
        uint64_t n = max < DRAIN_SPANS ? max : DRAIN_SPANS;
        for (;;) {
                ferret_stats_t a = { 0 }, b = { 0 };
                ferret_flush(60000);
                ferret_get_stats(&a);
                c->loop(n);
                *emitted += n;
                ferret_flush(60000);
                ferret_get_stats(&b);
                if (b.dropped == a.dropped)
                        return n / 4 > 1000 ? n / 4 : 1000;
                if (n <= 1000)
                        return n;
                n /= 2;
        }
}

static int case_main(const struct bench_case *c, const struct options *o)
{
#if BENCH_HAVE_LTTNG
        if (c->env == ENV_LTTNG && !lttng_ust_tracepoint_enabled(ferret_bench, work)) {
                /* The library registers with the session daemon before
                 * main(), so the event is on by now or will not be. */
                printf("error=no LTTng session enables ferret_bench:work\n");
                return 1;
        }
#endif
        double *v = calloc(o->reps, sizeof(*v));
        if (!v)
                return 1;
        bool ferret = c->env == ENV_FERRET;
        uint64_t n = o->spans, emitted = 0;
        if (c->drain)
                n = drained_spans(c, o->spans, &emitted);
        else {
                /* The warm-up: the thread's first span allocates its
                 * buffers, and the code and data come into the caches. */
                c->loop(n);
                emitted += n;
        }
        /* After the warm-up: the library's flusher, started by the first
         * span, stays on the CPUs this process inherited. */
        if (o->recorder_cpu >= 0 && !bench_pin_recorder(o->recorder_cpu)) {
                printf("error=cannot move to CPU %d\n", o->recorder_cpu);
                return 1;
        }
        ferret_stats_t st0 = { 0 }, st1 = { 0 };
        if (ferret)
                ferret_get_stats(&st0);
        for (unsigned r = 0; r < o->reps; r++) {
                /* Outside the timed loop: the daemon stores what the last
                 * repetition recorded, so the buffer starts empty. */
                if (c->drain)
                        ferret_flush(60000);
                uint64_t t0 = bench_now_ns();
                c->loop(n);
                uint64_t t1 = bench_now_ns();
                v[r] = (double)(t1 - t0) / (double)n;
        }
        emitted += (uint64_t)o->reps * n;
        double min = bench_percentile(v, o->reps, 0);
        double median = bench_percentile(v, o->reps, 50);
        double p99 = bench_percentile(v, o->reps, 99);
        free(v);

        int flush = 0;
        if (ferret) {
                /* Outside the measurement: let the daemon store what was
                 * recorded, so the parent can count it in the database. The
                 * counters come after, as sending may drop too. */
                flush = ferret_flush(120000);
                ferret_get_stats(&st1);
        }
        /* emitted and dropped cover the whole process, to check against
         * the database; m_dropped only the measured repetitions. */
        printf("median=%.3f p99=%.3f min=%.3f n=%" PRIu64 " emitted=%" PRIu64 " dropped=%" PRIu64
               " m_dropped=%" PRIu64 " flush=%d\n",
               median, p99, min, n, emitted, st1.dropped, st1.dropped - st0.dropped, flush);
        return 0;
}

/* --- The orchestrating side. --- */

/* The value after " key=" (or at the start) in a case's report line. */
static bool kv_get(const char *line, const char *key, double *ret)
{
        size_t len = strlen(key);
        for (const char *p = strstr(line, key); p; p = strstr(p + 1, key))
                if ((p == line || p[-1] == ' ') && p[len] == '=') {
                        *ret = strtod(p + len + 1, NULL);
                        return true;
                }
        return false;
}

/* Our environment, without the client's variables, plus @extra. */
static char **case_env(char *const extra[])
{
        size_t n = 0, m = 0;
        while (environ[n])
                n++;
        while (extra[m])
                m++;
        char **env = calloc(n + m + 1, sizeof(*env));
        if (!env)
                return NULL;
        size_t j = 0;
        for (size_t i = 0; i < n; i++)
                if (strncmp(environ[i], "FERRET_", 7) != 0)
                        env[j++] = environ[i];
        for (size_t i = 0; i < m; i++)
                env[j++] = extra[i];
        return env;
}

/* Runs one case in a new process of this program and parses its report. */
static int run_case_process(const struct bench_case *c, const struct options *o, char *const extra_env[],
                            struct result *res)
{
        char exe[4096];
        ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (len <= 0)
                return -errno;
        exe[len] = '\0';
        char reps[32], spans[32], cpu[32];
        snprintf(reps, sizeof(reps), "%u", o->reps);
        snprintf(spans, sizeof(spans), "%" PRIu64, o->spans);
        snprintf(cpu, sizeof(cpu), "%d", o->recorder_cpu);
        char *argv[] = { exe, "--case", (char *)c->id, "--reps", reps, "--spans", spans, "--recorder-cpu", cpu, NULL };

        int pipefd[2];
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
        char **env = case_env(extra_env);
        pid_t pid;
        int r = env ? posix_spawn(&pid, exe, &fa, NULL, argv, env) : ENOMEM;
        posix_spawn_file_actions_destroy(&fa);
        free(env);
        close(pipefd[1]);
        if (r) {
                close(pipefd[0]);
                return -r;
        }
        char line[1024];
        size_t got = 0;
        ssize_t n;
        while (got < sizeof(line) - 1 && (n = read(pipefd[0], line + got, sizeof(line) - 1 - got)) != 0) {
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        break;
                got += (size_t)n;
        }
        line[got] = '\0';
        close(pipefd[0]);
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        line[strcspn(line, "\n")] = '\0';

        double v;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !kv_get(line, "median", &v)) {
                snprintf(res->note, sizeof(res->note), "failed (%s)", strncmp(line, "error=", 6) == 0 ? line + 6 :
                         WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "no result");
                return -EIO;
        }
        res->ran = true;
        res->median = v;
        kv_get(line, "p99", &res->p99);
        kv_get(line, "min", &res->min);
        if (kv_get(line, "n", &v))
                res->spans = (uint64_t)v;
        if (kv_get(line, "emitted", &v))
                res->emitted = (uint64_t)v;
        if (c->env == ENV_FERRET) {
                if (kv_get(line, "dropped", &v))
                        res->dropped = (uint64_t)v;
                if (kv_get(line, "m_dropped", &v))
                        res->m_dropped = (uint64_t)v;
                res->have_dropped = true;
                /* -ENODATA only repeats that spans were dropped. */
                if (kv_get(line, "flush", &v) && v != 0 && (int)v != -ENODATA)
                        snprintf(res->note, sizeof(res->note), "flush after the run: %s", ferret_strerror((int)v));
        }
        return 0;
}

static void run_ferret_case(const struct bench_case *c, const struct options *o, const struct bench_daemon *d,
                            struct result *res)
{
        char runtime[256], run_id[160], run_env[200];
        snprintf(runtime, sizeof(runtime), "FERRET_RUNTIME_DIR=%s", d->runtime_dir);
        snprintf(run_id, sizeof(run_id), "ferret-bench-hotpath-%d-%s", (int)getpid(), c->id);
        snprintf(run_env, sizeof(run_env), "FERRET_RUN_ID=%s", run_id);
        char *env[] = { runtime, run_env, c->env == ENV_FERRET_DISABLED ? "FERRET_DISABLE=1" : NULL, NULL };
        if (run_case_process(c, o, env, res) < 0 || c->env != ENV_FERRET)
                return;
        if (bench_stored_spans(d->runtime_dir, run_id, &res->stored) < 0)
                return;
        res->have_stored = true;
        /* Every span is either dropped (when the buffer or the send queue
         * was full) or stored. */
        if (res->stored + res->dropped != res->emitted && !res->note[0])
                snprintf(res->note, sizeof(res->note), "%" PRId64 " spans neither dropped nor stored",
                         (int64_t)(res->emitted - res->dropped - res->stored));
}

static void run_lttng_case(const struct bench_case *c, const struct options *o, struct result *res)
{
#if BENCH_HAVE_LTTNG
        struct bench_lttng l;
        char why[256];
        int r = bench_lttng_start(&l, why, sizeof(why));
        if (r < 0)
                snprintf(res->note, sizeof(res->note), "not available (%s)", why);
        else {
                char *env[] = { NULL };
                /* LTTng's count covers the warm-up too: close enough, as
                 * it rarely discards anything. */
                if (run_case_process(c, o, env, res) == 0 && bench_lttng_stop(&l, &res->dropped) == 0) {
                        res->m_dropped = res->dropped;
                        res->have_dropped = true;
                }
        }
        bench_lttng_cleanup(&l);
#else
        snprintf(res->note, sizeof(res->note), "not available (built without lttng-ust)");
#endif
}

/* --- Output. --- */

static double ratio(const struct result *a, const struct result *b)
{
        return a->ran && b->ran && b->median > 0 ? a->median / b->median : 0;
}

static const struct result *find_result(const struct result *res, const char *id)
{
        for (size_t i = 0; i < N_CASES; i++)
                if (strcmp(cases[i].id, id) == 0)
                        return &res[i];
        return NULL;
}

static void print_ratio(const char *label, double v)
{
        if (v > 0)
                printf("  %-44s %6.2f\n", label, v);
        else
                printf("  %-44s not available\n", label);
}

static void print_table(const struct options *o, const struct bench_machine *m, const struct result *res)
{
        printf("Ferret hot-path benchmark: cost of one span (begin + end) on the recording thread\n");
        printf("machine:     %s, %ld CPUs, clocksource %s, %s\n", m->cpu, m->cpus, m->clocksource, m->kernel);
        printf("build:       %s\n", bench_build_description());
        const char *w = bench_build_warning();
        if (w)
                printf("%s\n", w);
        printf("method:      %u repetitions x %" PRIu64 " spans (after one warm-up repetition), "
               "ns/span = elapsed / spans;\n", o->reps, o->spans);
        printf("             median and p99 across repetitions (nearest rank: with %u repetitions p99 is %s)\n",
               o->reps, o->reps < 100 ? "the slowest" : "the 99th percentile");
        if (o->recorder_cpu >= 0)
                printf("             the measured thread alone on CPU %d; the daemons and the tracers' own threads\n"
                       "             (Ferret's flusher, LTTng's consumer) on the other CPUs\n\n", o->recorder_cpu);
        else
                printf("             one CPU: the daemons and the tracers' own threads share it with the measured thread\n\n");

        printf("%-20s %12s %12s %10s %14s\n", "case", "median ns", "p99 ns", "dropped", "stored");
        for (size_t i = 0; i < N_CASES; i++) {
                const struct result *r = &res[i];
                if (!r->ran) {
                        printf("%-20s %s\n", cases[i].label, r->note);
                        continue;
                }
                char dropped[32] = "-", stored[32] = "-";
                uint64_t measured = (uint64_t)o->reps * r->spans;
                if (r->have_dropped && measured)
                        snprintf(dropped, sizeof(dropped), "%.1f%%",
                                 100.0 * (double)(r->m_dropped < measured ? r->m_dropped : measured) / (double)measured);
                if (r->have_stored)
                        snprintf(stored, sizeof(stored), "%" PRIu64, r->stored);
                printf("%-20s %12.1f %12.1f %10s %14s", cases[i].label, r->median, r->p99, dropped, stored);
                if (r->note[0])
                        printf("  (%s)", r->note);
                printf("\n");
        }
        const struct result *dr = find_result(res, "drained");
        printf("\n\"dropped\": the share of the measured spans (or events) that the tracer discarded\n"
               "because its buffer or send queue was full. \"stored\": what the daemon holds\n"
               "afterwards, warm-up included. \"literal, no drops\" runs %" PRIu64 " spans per repetition\n"
               "(well within the buffer) and lets the daemon store them between repetitions.\n"
               "The other Ferret rows end spans faster than any daemon stores them: once the\n"
               "buffer is full, new spans are dropped as they begin, so their medians are mostly\n"
               "the cost of a drop, and only the no-drops rows are compared below.\n",
               dr ? dr->spans : 0);

        const struct result *clk = find_result(res, "clock"), *lt = find_result(res, "lttng");
        printf("\nratios (of medians):\n");
        print_ratio("Ferret literal, no drops / LTTng-UST event", ratio(dr, lt));
        print_ratio("Ferret literal, no drops / two clock reads", ratio(dr, clk));
        print_ratio("Ferret 2 tags, no drops / LTTng-UST event", ratio(find_result(res, "tags-drained"), lt));
}

static void print_json_ratio(const char *key, double v, bool last)
{
        if (v > 0)
                printf("    \"%s\": %.3f%s\n", key, v, last ? "" : ",");
        else
                printf("    \"%s\": null%s\n", key, last ? "" : ",");
}

static void print_json(const struct options *o, const struct bench_machine *m, const struct result *res)
{
        printf("{\n  \"machine\": {\"cpu\": ");
        bench_json_string(stdout, m->cpu);
        printf(", \"cpus\": %ld, \"clocksource\": ", m->cpus);
        bench_json_string(stdout, m->clocksource);
        printf(", \"kernel\": ");
        bench_json_string(stdout, m->kernel);
        printf("},\n  \"build\": ");
        bench_json_string(stdout, bench_build_description());
        printf(",\n  \"warning\": ");
        if (bench_build_warning())
                bench_json_string(stdout, bench_build_warning());
        else
                printf("null");
        printf(",\n  \"repetitions\": %u,\n  \"spans_per_repetition\": %" PRIu64 ",\n  \"recorder_cpu\": %d,\n"
               "  \"cases\": [\n", o->reps, o->spans, o->recorder_cpu);
        for (size_t i = 0; i < N_CASES; i++) {
                const struct result *r = &res[i];
                printf("    {\"id\": \"%s\", \"label\": \"%s\", \"available\": %s", cases[i].id, cases[i].label,
                       r->ran ? "true" : "false");
                if (r->ran) {
                        printf(", \"median_ns\": %.3f, \"p99_ns\": %.3f, \"min_ns\": %.3f, \"spans_per_repetition\": %" PRIu64
                               ", \"emitted\": %" PRIu64,
                               r->median, r->p99, r->min, r->spans, r->emitted);
                        if (r->have_dropped)
                                printf(", \"dropped\": %" PRIu64 ", \"dropped_measured\": %" PRIu64, r->dropped,
                                       r->m_dropped);
                        if (r->have_stored)
                                printf(", \"stored\": %" PRIu64, r->stored);
                }
                if (r->note[0]) {
                        printf(", \"note\": ");
                        bench_json_string(stdout, r->note);
                }
                printf("}%s\n", i + 1 < N_CASES ? "," : "");
        }
        const struct result *lit = find_result(res, "literal"), *clk = find_result(res, "clock"),
                            *lt = find_result(res, "lttng");
        printf("  ],\n  \"ratios\": {\n");
        print_json_ratio("literal_over_lttng", ratio(lit, lt), false);
        print_json_ratio("literal_over_two_clock_reads", ratio(lit, clk), false);
        print_json_ratio("literal_no_drops_over_lttng", ratio(find_result(res, "drained"), lt), false);
        print_json_ratio("literal_no_drops_over_two_clock_reads", ratio(find_result(res, "drained"), clk), true);
        printf("  }\n}\n");
}

static void usage(FILE *f)
{
        fprintf(f, "Usage: ferret-bench-hotpath [--reps N] [--spans N] [--json]\n\n"
                   "Measures the cost of one span (begin + end) on the recording thread, against a\n"
                   "private ferretd, beside two clock reads and an enabled LTTng-UST event.\n\n"
                   "  --reps N    repetitions, after one warm-up (default 101)\n"
                   "  --spans N   spans per repetition (default 1000000)\n"
                   "  --json      print the results as JSON\n");
}

int main(int argc, char **argv)
{
        struct options o = { .reps = 101, .spans = 1000000, .recorder_cpu = -1 };
        static const struct option longopts[] = {
                { "reps", required_argument, NULL, 'r' },
                { "spans", required_argument, NULL, 'n' },
                { "json", no_argument, NULL, 'j' },
                { "case", required_argument, NULL, 'c' },
                { "recorder-cpu", required_argument, NULL, 'p' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int opt;
        while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1)
                switch (opt) {
                case 'r':
                        o.reps = (unsigned)strtoul(optarg, NULL, 10);
                        break;
                case 'n':
                        o.spans = strtoull(optarg, NULL, 10);
                        break;
                case 'j':
                        o.json = true;
                        break;
                case 'c':
                        o.only = optarg;
                        break;
                case 'p':
                        o.recorder_cpu = atoi(optarg);
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        if (optind < argc || o.reps == 0 || o.reps > 100000 || o.spans == 0) {
                usage(stderr);
                return 2;
        }

        if (o.only) {
                for (size_t i = 0; i < N_CASES; i++)
                        if (strcmp(cases[i].id, o.only) == 0 && cases[i].loop)
                                return case_main(&cases[i], &o);
                fprintf(stderr, "Unknown case: %s\n", o.only);
                return 2;
        }

        if (bench_build_warning())
                fprintf(stderr, "%s\n", bench_build_warning());
        struct bench_machine m;
        bench_machine_get(&m);
        o.recorder_cpu = bench_pin_services();
        struct result res[N_CASES];
        memset(res, 0, sizeof(res));
        for (size_t i = 0; i < N_CASES; i++) {
                const struct bench_case *c = &cases[i];
                if (!o.json)
                        fprintf(stderr, "running: %s\n", c->label);
                if (c->env == ENV_LTTNG)
                        run_lttng_case(c, &o, &res[i]);
                else if (c->env == ENV_PLAIN) {
                        char *env[] = { NULL };
                        run_case_process(c, &o, env, &res[i]);
                } else {
                        /* A daemon of its own for each case: one that still
                         * compacts the millions of spans of the case before
                         * would take the flusher's core away. */
                        struct bench_daemon d;
                        if (bench_daemon_start(&d) < 0)
                                return 1;
                        if (bench_daemon_alive(&d))
                                run_ferret_case(c, &o, &d, &res[i]);
                        else
                                snprintf(res[i].note, sizeof(res[i].note), "not run: ferretd exited");
                        bench_daemon_cleanup(&d);
                }
        }

        if (o.json)
                print_json(&o, &m, res);
        else
                print_table(&o, &m, res);
        return 0;
}
