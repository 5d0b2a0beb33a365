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
 *
 * The cases' repetitions are interleaved: every case process is started and
 * warmed up first, then each round asks every case for one repetition in
 * turn, over a pipe. A virtual machine's speed drifts by a third for seconds
 * at a time; run one after the other, two cases would each see a different
 * stretch of it, and their ratio would be the drift's as much as theirs.
 * Interleaved, every case samples the same stretches.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
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
        ENV_FERRET_NO_TSC,      /* the same, the library reading clock_gettime() (FERRET_NO_TSC=1) */
        ENV_FERRET_DISABLED,    /* FERRET_DISABLE=1 */
        ENV_PLAIN,              /* no tracer involved */
        ENV_LTTNG,              /* an LTTng session records ferret_bench:* */
};

enum case_mode {
        MODE_FLOOD,             /* as fast as it goes: the buffer fills, spans drop */
        MODE_DRAIN,             /* small repetitions, the buffer emptied between them */
        MODE_SUSTAIN,           /* paced for seconds, the flusher draining beside the loop */
};

struct bench_case {
        const char *id;         /* --case argument */
        const char *label;
        enum case_env env;
        void (*loop)(uint64_t n);
        enum case_mode mode;
        unsigned threads;       /* MODE_SUSTAIN: recording threads, sharing the rate */
        unsigned burst;         /* MODE_SUSTAIN: spans a thread records at a time */
};

/* Spans per repetition of a drained case, at most: few enough that the
 * buffer never fills, so every span takes the recording path and none is
 * dropped. 16,384 literal spans fill a thread's 1 MiB home ring; the quarter
 * of it that drained_spans() settles on stays under the half-full mark at
 * which the flusher is woken, so that a repetition measures the recording
 * thread alone (the flood rows show it with the flusher draining beside it). */
#define DRAIN_SPANS 16384

/* The sustained rows: spans recorded for the length of a repetition at a
 * rate the daemon keeps up with (bench/throughput stores 1M spans/s paced
 * without a drop), SUSTAIN_BURST at a time, a few microseconds of recording
 * every few hundred: the ring passes its half-full mark every few
 * milliseconds and the flusher drains it while the loop goes on, as it does
 * for a program that records continuously. Between bursts the thread spins
 * on the clock rather than sleep, as a busy program would: a sleep would let
 * other work cool its caches, and the row would time that instead. Only the
 * bursts are timed. The long-bursts row records LONG_BURST spans
 * back to back, more than a thread's home ring holds, at the same rate: the
 * flusher drains in the middle of the burst, and the ring overflows. */
#define SUSTAIN_BURST 256
#define LONG_BURST 20000
#define SUSTAIN_THREADS 8

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
        { "literal", "literal name", ENV_FERRET, loop_literal, MODE_FLOOD, 1, 0 },
        { "drained", "literal, no drops", ENV_FERRET, loop_literal, MODE_DRAIN, 1, 0 },
        { "sustained", "literal, sustained", ENV_FERRET, loop_literal, MODE_SUSTAIN, 1, SUSTAIN_BURST },
        { "threads", "literal, 8 threads", ENV_FERRET, loop_literal, MODE_SUSTAIN, SUSTAIN_THREADS, SUSTAIN_BURST },
        { "long-bursts", "literal, long bursts", ENV_FERRET, loop_literal, MODE_SUSTAIN, 1, LONG_BURST },
        { "drained-no-tsc", "no drops, no TSC", ENV_FERRET_NO_TSC, loop_literal, MODE_DRAIN, 1, 0 },
        { "sustained-no-tsc", "sustained, no TSC", ENV_FERRET_NO_TSC, loop_literal, MODE_SUSTAIN, 1, SUSTAIN_BURST },
        { "dynamic", "dynamic name", ENV_FERRET, loop_dynamic, MODE_FLOOD, 1, 0 },
        { "tags", "literal + 2 tags", ENV_FERRET, loop_tags, MODE_FLOOD, 1, 0 },
        { "tags-drained", "2 tags, no drops", ENV_FERRET, loop_tags, MODE_DRAIN, 1, 0 },
        { "disabled", "disabled", ENV_FERRET_DISABLED, loop_literal, MODE_FLOOD, 1, 0 },
        { "clock", "two clock reads", ENV_PLAIN, loop_clock, MODE_FLOOD, 1, 0 },
#ifdef HAVE_RDTSC
        { "rdtsc", "two rdtsc reads", ENV_PLAIN, loop_rdtsc, MODE_FLOOD, 1, 0 },
#endif
#if BENCH_HAVE_LTTNG
        { "lttng", "LTTng-UST event", ENV_LTTNG, loop_lttng, MODE_FLOOD, 1, 0 },
#else
        { "lttng", "LTTng-UST event", ENV_LTTNG, NULL, MODE_FLOOD, 1, 0 },
#endif
};
#define N_CASES (sizeof(cases) / sizeof(cases[0]))

struct options {
        unsigned reps;
        uint64_t spans;
        uint64_t rate;          /* sustained rows: spans per second, all threads together */
        unsigned sustain_ms;    /* sustained rows: length of a repetition */
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
                ferret_stats_t a = { .size = sizeof(a) }, b = { .size = sizeof(b) };
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

/* A spin-wait's pause: leaves the core's resources to whatever else runs
 * on it. */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
}

/* A sustained case's recording threads, kept from one repetition to the
 * next (as their rings are), started and stopped by two barriers. */
struct sustain {
        const struct bench_case *c;
        pthread_barrier_t start, done;
        uint64_t burst;         /* spans */
        uint64_t interval_ns;   /* between a thread's bursts */
        uint64_t length_ns;     /* of a repetition */
        bool quit;
        _Atomic uint64_t spans, busy_ns;  /* of the repetition, all threads */
};

static void *sustain_thread(void *arg)
{
        struct sustain *su = arg;
        su->c->loop(su->burst);     /* the thread's ring, and the caches */
        for (;;) {
                pthread_barrier_wait(&su->start);
                if (su->quit)
                        return NULL;
                uint64_t spans = 0, busy = 0;
                uint64_t next = bench_now_ns(), end = next + su->length_ns;
                while (next < end) {
                        uint64_t t0;
                        while ((t0 = bench_now_ns()) < next)
                                cpu_relax();
                        su->c->loop(su->burst);
                        busy += bench_now_ns() - t0;
                        spans += su->burst;
                        next += su->interval_ns;
                }
                atomic_fetch_add(&su->spans, spans);
                atomic_fetch_add(&su->busy_ns, busy);
                pthread_barrier_wait(&su->done);
        }
}

static bool sustain_start(struct sustain *su, pthread_t *threads, const struct bench_case *c, const struct options *o)
{
        su->c = c;
        su->burst = c->burst;
        su->interval_ns = (uint64_t)c->burst * c->threads * 1000000000u / o->rate;
        su->length_ns = (uint64_t)o->sustain_ms * 1000000u;
        su->quit = false;
        pthread_barrier_init(&su->start, NULL, c->threads + 1);
        pthread_barrier_init(&su->done, NULL, c->threads + 1);
        for (unsigned i = 0; i < c->threads; i++)
                if (pthread_create(&threads[i], NULL, sustain_thread, su) != 0)
                        return false;
        return true;
}

/* One repetition of every thread; returns the spans recorded and sets
 * @ret_ns to the time they took, all threads together. */
static uint64_t sustain_rep(struct sustain *su, uint64_t *ret_ns)
{
        atomic_store(&su->spans, 0);
        atomic_store(&su->busy_ns, 0);
        pthread_barrier_wait(&su->start);
        pthread_barrier_wait(&su->done);
        *ret_ns = atomic_load(&su->busy_ns);
        return atomic_load(&su->spans);
}

static void sustain_stop(struct sustain *su, pthread_t *threads)
{
        su->quit = true;
        pthread_barrier_wait(&su->start);
        for (unsigned i = 0; i < su->c->threads; i++)
                pthread_join(threads[i], NULL);
}

/* The case's process: warms up, says "ready n=N", then runs one repetition
 * for each "rep" line on stdin and answers "v=NS_PER_SPAN"; at the end of
 * its input it prints its counts and exits. */
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
        bool ferret = c->env == ENV_FERRET || c->env == ENV_FERRET_NO_TSC;
        uint64_t n = o->spans, emitted = 0;
        struct sustain su;
        pthread_t threads[SUSTAIN_THREADS];
        if (c->mode == MODE_DRAIN)
                n = drained_spans(c, o->spans, &emitted);
        else if (c->mode == MODE_SUSTAIN) {
                /* The library's first span starts its flusher thread here,
                 * before the move to the recorder's CPU, so that the
                 * flusher stays off it as in the other cases (begun on the
                 * recording threads, it would share their CPU). */
                n = o->rate * o->sustain_ms / 1000;
                c->loop(1);
                emitted += 1;
        }
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
        /* Started on the recorder's CPU, and warmed up by one repetition. */
        if (c->mode == MODE_SUSTAIN) {
                uint64_t ns;
                if (!sustain_start(&su, threads, c, o)) {
                        printf("error=cannot start the recording threads\n");
                        return 1;
                }
                emitted += sustain_rep(&su, &ns) + (uint64_t)c->burst * c->threads;
        }
        ferret_stats_t st0 = { .size = sizeof(st0) }, st1 = { .size = sizeof(st1) };
        if (ferret) {
                ferret_flush(60000);
                ferret_get_stats(&st0);
        }
        printf("ready n=%" PRIu64 "\n", n);
        fflush(stdout);

        char cmd[16];
        while (fgets(cmd, sizeof(cmd), stdin) && strcmp(cmd, "rep\n") == 0) {
                /* Outside the timed loop: the daemon stores what the last
                 * repetition recorded, so a drained case's buffer starts
                 * empty. */
                if (c->mode == MODE_DRAIN)
                        ferret_flush(60000);
                uint64_t ns, done = n;
                if (c->mode == MODE_SUSTAIN) {
                        done = sustain_rep(&su, &ns);
                } else {
                        uint64_t t0 = bench_now_ns();
                        c->loop(n);
                        ns = bench_now_ns() - t0;
                }
                /* Outside too: the flusher and the daemon go quiet before
                 * the next case's repetition, as they would between cases
                 * run one after the other. */
                if (ferret && c->mode != MODE_DRAIN)
                        ferret_flush(60000);
                emitted += done;
                printf("v=%.3f\n", (double)ns / (double)(done ? done : 1));
                fflush(stdout);
        }

        if (c->mode == MODE_SUSTAIN)
                sustain_stop(&su, threads);
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
        printf("n=%" PRIu64 " emitted=%" PRIu64 " dropped=%" PRIu64 " m_dropped=%" PRIu64 " flush=%d\n", n, emitted,
               st1.dropped, st1.dropped - st0.dropped, flush);
        return 0;
}

/* --- The orchestrating side. --- */

static const struct result *find_result(const struct result *res, const char *id)
{
        for (size_t i = 0; i < N_CASES; i++)
                if (strcmp(cases[i].id, id) == 0)
                        return &res[i];
        return NULL;
}


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

/* A case process and what it needs around it while the rounds go on. */
struct case_run {
        const struct bench_case *c;
        struct result *res;
        bool running;
        pid_t pid;
        FILE *to, *from;        /* its stdin and its stdout */
        double *v;              /* ns/span of each repetition */
        unsigned nv;
        struct bench_daemon d;  /* its private ferretd, for the Ferret cases */
        bool have_daemon;
        char run_id[160];
};

/* Reads a line of the case's output into @line; false at its end. */
static bool case_read(struct case_run *cr, char *line, size_t size)
{
        if (!fgets(line, (int)size, cr->from))
                return false;
        line[strcspn(line, "\n")] = '\0';
        return true;
}

/* Waits for the case's process and says why it failed, if it did. */
static int case_reap(struct case_run *cr, const char *line)
{
        int status;
        while (waitpid(cr->pid, &status, 0) < 0 && errno == EINTR)
                ;
        cr->running = false;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return 0;
        snprintf(cr->res->note, sizeof(cr->res->note), "failed (%s)", line && strncmp(line, "error=", 6) == 0 ? line + 6 :
                 WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "no result");
        return -EIO;
}

/* Starts the case in a new process of this program, with @extra_env, and
 * waits until it has warmed up. */
static int case_start(struct case_run *cr, const struct options *o, char *const extra_env[])
{
        char exe[4096];
        ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (len <= 0)
                return -errno;
        exe[len] = '\0';
        char spans[32], cpu[32], rate[32], length[32];
        snprintf(spans, sizeof(spans), "%" PRIu64, o->spans);
        snprintf(cpu, sizeof(cpu), "%d", o->recorder_cpu);
        snprintf(rate, sizeof(rate), "%" PRIu64, o->rate);
        snprintf(length, sizeof(length), "%u", o->sustain_ms);
        char *argv[] = { exe,      "--case", (char *)cr->c->id, "--spans", spans, "--recorder-cpu", cpu,
                         "--rate", rate,     "--sustain-ms",    length,    NULL };

        int in[2], out[2];
        if (pipe2(in, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(out, O_CLOEXEC) < 0) {
                int r = -errno;
                close(in[0]);
                close(in[1]);
                return r;
        }
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
        posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
        char **env = case_env(extra_env);
        int r = env ? posix_spawn(&cr->pid, exe, &fa, NULL, argv, env) : ENOMEM;
        posix_spawn_file_actions_destroy(&fa);
        free(env);
        close(in[0]);
        close(out[1]);
        if (r) {
                close(in[1]);
                close(out[0]);
                snprintf(cr->res->note, sizeof(cr->res->note), "failed (%s)", strerror(r));
                return -r;
        }
        cr->to = fdopen(in[1], "w");
        cr->from = fdopen(out[0], "r");
        cr->running = true;
        char line[1024] = "";
        double n;
        if (!cr->to || !cr->from || !case_read(cr, line, sizeof(line)) || !kv_get(line, "n", &n)) {
                if (cr->to)
                        fclose(cr->to);
                cr->to = NULL;
                case_reap(cr, line);
                return -EIO;
        }
        cr->res->spans = (uint64_t)n;
        return 0;
}

/* Asks the case for one repetition and keeps its time. */
static void case_rep(struct case_run *cr)
{
        char line[1024] = "";
        double v;
        if (fputs("rep\n", cr->to) < 0 || fflush(cr->to) != 0 || !case_read(cr, line, sizeof(line)) ||
            !kv_get(line, "v", &v)) {
                fclose(cr->to);
                cr->to = NULL;
                case_reap(cr, line);
                return;
        }
        cr->v[cr->nv++] = v;
}

/* Ends the case's repetitions and reads its counts. */
static void case_finish(struct case_run *cr)
{
        char line[1024] = "";
        fclose(cr->to);
        cr->to = NULL;
        bool got = case_read(cr, line, sizeof(line));
        if (case_reap(cr, line) < 0 || !got || cr->nv == 0)
                return;
        struct result *res = cr->res;
        double v;
        res->ran = true;
        res->min = bench_percentile(cr->v, cr->nv, 0);
        res->median = bench_percentile(cr->v, cr->nv, 50);
        res->p99 = bench_percentile(cr->v, cr->nv, 99);
        if (kv_get(line, "emitted", &v))
                res->emitted = (uint64_t)v;
        if (cr->c->env != ENV_FERRET && cr->c->env != ENV_FERRET_NO_TSC)
                return;
        if (kv_get(line, "dropped", &v))
                res->dropped = (uint64_t)v;
        if (kv_get(line, "m_dropped", &v))
                res->m_dropped = (uint64_t)v;
        res->have_dropped = true;
        /* -ENODATA only repeats that spans were dropped. */
        if (kv_get(line, "flush", &v) && v != 0 && (int)v != -ENODATA)
                snprintf(res->note, sizeof(res->note), "flush after the run: %s", ferret_strerror((int)v));
        if (bench_stored_spans(cr->d.runtime_dir, cr->run_id, &res->stored) < 0)
                return;
        res->have_stored = true;
        /* Every span is either dropped (when the buffer or the send queue
         * was full) or stored. */
        if (res->stored + res->dropped != res->emitted && !res->note[0])
                snprintf(res->note, sizeof(res->note), "%" PRId64 " spans neither dropped nor stored",
                         (int64_t)(res->emitted - res->dropped - res->stored));
}

/* Starts a case: its daemon first for the Ferret cases (one of its own: a
 * daemon still compacting the millions of spans of another case would take
 * the flusher's CPU away), then its process. */
static void case_prepare(struct case_run *cr, const struct options *o)
{
        char *none[] = { NULL };
        if (cr->c->env == ENV_PLAIN || cr->c->env == ENV_LTTNG) {
                case_start(cr, o, none);
                return;
        }
        if (bench_daemon_start(&cr->d) < 0) {
                snprintf(cr->res->note, sizeof(cr->res->note), "not run: ferretd did not start");
                return;
        }
        cr->have_daemon = true;
        char runtime[256], run_env[200];
        snprintf(runtime, sizeof(runtime), "FERRET_RUNTIME_DIR=%s", cr->d.runtime_dir);
        snprintf(cr->run_id, sizeof(cr->run_id), "ferret-bench-hotpath-%d-%s", (int)getpid(), cr->c->id);
        snprintf(run_env, sizeof(run_env), "FERRET_RUN_ID=%s", cr->run_id);
        char *env[] = { runtime, run_env,
                        cr->c->env == ENV_FERRET_DISABLED ? "FERRET_DISABLE=1" :
                        cr->c->env == ENV_FERRET_NO_TSC ? "FERRET_NO_TSC=1" : NULL,
                        NULL };
        case_start(cr, o, env);
}

/* Runs every case: all started, then @o->reps rounds of one repetition of
 * each (each round starting one case further on, so that no case always
 * follows the same one), then their counts. */
static void run_cases(const struct options *o, struct result *res)
{
        struct case_run runs[N_CASES];
        memset(runs, 0, sizeof(runs));
#if BENCH_HAVE_LTTNG
        /* First: processes register with the session daemon as they start. */
        struct bench_lttng l;
        char why[256];
        bool lttng = bench_lttng_start(&l, why, sizeof(why)) == 0;
#endif
        for (size_t i = 0; i < N_CASES; i++) {
                struct case_run *cr = &runs[i];
                cr->c = &cases[i];
                cr->res = &res[i];
                cr->v = calloc(o->reps, sizeof(*cr->v));
                if (!cr->v) {
                        snprintf(res[i].note, sizeof(res[i].note), "not run: out of memory");
                        continue;
                }
                if (!o->json)
                        fprintf(stderr, "starting: %s\n", cr->c->label);
                if (!cr->c->loop)
                        snprintf(res[i].note, sizeof(res[i].note), "not available (built without lttng-ust)");
#if BENCH_HAVE_LTTNG
                else if (cr->c->env == ENV_LTTNG && !lttng)
                        snprintf(res[i].note, sizeof(res[i].note), "not available (%s)", why);
#endif
                else
                        case_prepare(cr, o);
        }

        if (!o->json)
                fprintf(stderr, "running %u rounds\n", o->reps);
        for (unsigned r = 0; r < o->reps; r++)
                for (size_t k = 0; k < N_CASES; k++) {
                        struct case_run *cr = &runs[(k + r) % N_CASES];
                        if (cr->running)
                                case_rep(cr);
                }

        for (size_t i = 0; i < N_CASES; i++) {
                struct case_run *cr = &runs[i];
                if (cr->running)
                        case_finish(cr);
                if (cr->from)
                        fclose(cr->from);
                if (cr->have_daemon)
                        bench_daemon_cleanup(&cr->d);
                free(cr->v);
        }
#if BENCH_HAVE_LTTNG
        if (lttng) {
                /* LTTng's count covers the warm-up too: close enough, as it
                 * rarely discards anything. */
                for (size_t i = 0; i < N_CASES; i++) {
                        struct result *lt = &res[i];
                        if (cases[i].env == ENV_LTTNG && lt->ran && bench_lttng_stop(&l, &lt->dropped) == 0) {
                                lt->m_dropped = lt->dropped;
                                lt->have_dropped = true;
                        }
                }
        }
        bench_lttng_cleanup(&l);
#endif
}

/* --- Output. --- */

/* The ratios the benchmark exists for; goal 0: shown, no goal. The goals
 * are libferret-client's: a sustained program pays little more than the
 * best case, threads do not slow each other down, and a span costs about
 * what reading the clock twice does where the library must call
 * clock_gettime(), a fraction of an LTTng-UST event where it reads the TSC. */
static const struct {
        const char *key, *label, *num, *den;
        double goal;
} ratios[] = {
        { "sustained_over_no_drops", "Ferret sustained / literal, no drops", "sustained", "drained", 1.2 },
        { "long_bursts_over_no_drops", "Ferret long bursts / literal, no drops", "long-bursts", "drained", 0 },
        { "threads_over_sustained", "Ferret 8 threads / sustained", "threads", "sustained", 1.3 },
        { "no_drops_over_lttng", "Ferret literal, no drops / LTTng-UST event", "drained", "lttng", 0.3 },
        { "no_tsc_no_drops_over_two_clock_reads", "Ferret no drops, no TSC / two clock reads", "drained-no-tsc",
          "clock", 1.25 },
        { "no_tsc_sustained_over_no_drops", "Ferret sustained / no drops, no TSC", "sustained-no-tsc",
          "drained-no-tsc", 1.2 },
        { "no_drops_over_two_clock_reads", "Ferret literal, no drops / two clock reads", "drained", "clock", 0 },
        { "tags_no_drops_over_lttng", "Ferret 2 tags, no drops / LTTng-UST event", "tags-drained", "lttng", 0 },
        { "literal_over_lttng", "Ferret literal (drops) / LTTng-UST event", "literal", "lttng", 0 },
};
#define N_RATIOS (sizeof(ratios) / sizeof(ratios[0]))

static double ratio(const struct result *a, const struct result *b)
{
        return a->ran && b->ran && b->median > 0 ? a->median / b->median : 0;
}

static void print_table(const struct options *o, const struct bench_machine *m, const struct result *res)
{
        printf("Ferret hot-path benchmark: cost of one span (begin + end) on the recording thread\n");
        printf("machine:     %s, %ld CPUs, clocksource %s, %s\n", m->cpu, m->cpus, m->clocksource, m->kernel);
        printf("build:       %s\n", bench_build_description());
        const char *w = bench_build_warning();
        if (w)
                printf("%s\n", w);
        printf("method:      %u repetitions x %" PRIu64 " spans (after a warm-up), ns/span = elapsed / spans;\n",
               o->reps, o->spans);
        printf("             interleaved: each case in a process of its own, and %u rounds of one repetition\n"
               "             of every case in turn, so that all cases sample the same stretches of the machine;\n",
               o->reps);
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
               "(well within the buffer) and lets the daemon store them between repetitions, so\n"
               "the flusher sleeps while it runs. The sustained rows record %" PRIu64 " spans/s for\n"
               "%u ms a repetition in bursts of %d, the flusher draining beside them, and time\n"
               "the bursts only; \"long bursts\" records %d spans at a time, more than a ring's\n"
               "home holds, at the same rate; \"8 threads\" shares the rate among\n"
               "%d threads on the measured CPU. \"no TSC\" rows make the library read\n"
               "clock_gettime() (FERRET_NO_TSC=1), as it must where the kernel distrusts the TSC.\n"
               "The other Ferret rows end spans faster than any daemon stores them: once the\n"
               "buffer is full, new spans are dropped as they begin, so their medians are mostly\n"
               "the cost of a drop.\n",
               dr ? dr->spans : 0, o->rate, o->sustain_ms, SUSTAIN_BURST, LONG_BURST, SUSTAIN_THREADS);

        printf("\nratios (of medians), with their goals:\n");
        for (size_t i = 0; i < N_RATIOS; i++) {
                double v = ratio(find_result(res, ratios[i].num), find_result(res, ratios[i].den));
                if (v <= 0)
                        printf("  %-46s not available\n", ratios[i].label);
                else if (ratios[i].goal > 0)
                        printf("  %-46s %6.2f   goal <= %.2f: %s\n", ratios[i].label, v, ratios[i].goal,
                               v <= ratios[i].goal ? "ok" : "over");
                else
                        printf("  %-46s %6.2f\n", ratios[i].label, v);
        }
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
        printf(",\n  \"repetitions\": %u,\n  \"interleaved\": true,\n  \"spans_per_repetition\": %" PRIu64 ",\n  \"recorder_cpu\": %d,\n"
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
        printf("  ],\n  \"ratios\": {\n");
        for (size_t i = 0; i < N_RATIOS; i++)
                print_json_ratio(ratios[i].key, ratio(find_result(res, ratios[i].num), find_result(res, ratios[i].den)),
                                 i + 1 == N_RATIOS);
        printf("  }\n}\n");
}

static void usage(FILE *f)
{
        fprintf(f, "Usage: ferret-bench-hotpath [--reps N] [--spans N] [--rate N] [--sustain-ms MS] [--json]\n\n"
                   "Measures the cost of one span (begin + end) on the recording thread, against a\n"
                   "private ferretd, beside two clock reads and an enabled LTTng-UST event.\n\n"
                   "  --reps N         rounds, each one repetition of every case (default 101)\n"
                   "  --spans N        spans per repetition (default 1000000)\n"
                   "  --rate N         the sustained rows' spans per second, all threads (default 1000000)\n"
                   "  --sustain-ms MS  length of a sustained repetition (default 300)\n"
                   "  --json           print the results as JSON\n");
}

int main(int argc, char **argv)
{
        struct options o = { .reps = 101, .spans = 1000000, .rate = 1000000, .sustain_ms = 300, .recorder_cpu = -1 };
        static const struct option longopts[] = {
                { "reps", required_argument, NULL, 'r' },
                { "spans", required_argument, NULL, 'n' },
                { "json", no_argument, NULL, 'j' },
                { "case", required_argument, NULL, 'c' },
                { "recorder-cpu", required_argument, NULL, 'p' },
                { "rate", required_argument, NULL, 'R' },
                { "sustain-ms", required_argument, NULL, 'S' },
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
                case 'R':
                        o.rate = strtoull(optarg, NULL, 10);
                        break;
                case 'S':
                        o.sustain_ms = (unsigned)strtoul(optarg, NULL, 10);
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        if (optind < argc || o.reps == 0 || o.reps > 100000 || o.spans == 0 || o.rate == 0 ||
            o.rate > 100000000 || o.sustain_ms == 0 || o.sustain_ms > 600000) {
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
        run_cases(&o, res);

        if (o.json)
                print_json(&o, &m, res);
        else
                print_table(&o, &m, res);
        return 0;
}
