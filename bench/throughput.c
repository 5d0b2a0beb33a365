/* SPDX-License-Identifier: MIT */
/*
 * ferret-bench-throughput: how many spans per second a private ferretd
 * stores when P producer processes of T threads each emit spans, flat out or
 * at a given total rate, and the highest rate at which nothing is dropped.
 *
 * Producers are forked from this process, which never records a span itself,
 * so each starts a client of its own configured from the environment set
 * here (FERRET_RUNTIME_DIR, FERRET_RUN_ID). They start together (each reports
 * ready, then all wait for one pipe to close), emit for S seconds, call
 * ferret_flush() and send their counters back through a pipe. The database
 * is then asked how many spans it holds for the run.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ferret.h>

#include "common.h"
#include "daemon.h"

#define MAX_PROCS 64
#define MAX_THREADS 64

struct options {
        unsigned procs, threads;
        double seconds;
        double rate;            /* total spans/s; 0: as fast as possible */
        bool find_max;
        double step_seconds;    /* per step of --find-max */
        double start_rate;      /* first step of --find-max */
};

/* What a producer process sends back, once. */
struct report {
        uint64_t emitted;       /* spans ended, warm-up included */
        uint64_t recorded, dropped, sent;
        int flush_result;
        uint64_t window_ns;     /* from the start signal to the last thread's end */
        uint64_t flush_ns;      /* how long ferret_flush() took */
};

/* A trial: one run id, one rate, all producers. */
struct trial {
        char run_id[128];
        double target_rate;
        double seconds;
        uint64_t emitted, recorded, dropped, sent, stored;
        bool have_stored;
        int flush_failures;     /* producers whose flush did not succeed */
        int flush_error;        /* one of their errors */
        uint64_t max_flush_ns;
        double window_s;        /* the emission window (longest producer) */
        double wall_s;          /* start signal to the last producer's report */
        double daemon_cpu_s;
};

/* --- Producer side. --- */

struct worker {
        pthread_t thread;
        double rate;                    /* this thread's spans/s; 0: unpaced */
        pthread_barrier_t *ready, *go;
        const uint64_t *start, *deadline;
        uint64_t emitted;
};

/* Waits for @due on the clock itself: sleeps are too coarse for the
 * microsecond gaps of high rates. Far from the deadline the thread yields,
 * so that on a small machine the spinning leaves the daemon its CPU. */
static void wait_until(uint64_t due)
{
        for (uint64_t now = bench_now_ns(); now < due; now = bench_now_ns())
                if (due - now > 50000)
                        sched_yield();
}

static void *worker_main(void *arg)
{
        struct worker *w = arg;
        /* The thread's first span allocates its ring: not part of the run. */
        FERRET_SCOPE(s, "warmup") {
        }
        w->emitted = 1;
        pthread_barrier_wait(w->ready);
        pthread_barrier_wait(w->go);
        uint64_t start = *w->start, deadline = *w->deadline, n = 0;

        if (w->rate <= 0) {
                /* Reading the clock for every span would measure the clock. */
                do {
                        for (int j = 0; j < 64; j++)
                                FERRET_SCOPE(s, "span") {
                                }
                        n += 64;
                } while (bench_now_ns() < deadline);
        } else {
                double interval = 1e9 / w->rate;
                for (;; n++) {
                        uint64_t due = start + (uint64_t)((double)n * interval);
                        if (due >= deadline)
                                break;
                        wait_until(due);
                        FERRET_SCOPE(s, "span") {
                        }
                }
        }
        w->emitted += n;
        return NULL;
}

static bool write_all(int fd, const void *buf, size_t len)
{
        const char *p = buf;
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return false;
                p += n;
                len -= (size_t)n;
        }
        return true;
}

static bool read_all(int fd, void *buf, size_t len)
{
        char *p = buf;
        while (len > 0) {
                ssize_t n = read(fd, p, len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return false;
                p += n;
                len -= (size_t)n;
        }
        return true;
}

static int producer_main(const struct options *o, double seconds, double total_rate, int report_fd, int go_fd)
{
        /* Connects the client, so the run does not start with a backlog. */
        FERRET_SCOPE(s, "warmup") {
        }
        ferret_flush(30000);

        struct worker w[MAX_THREADS];
        pthread_barrier_t ready, go;
        uint64_t start = 0, deadline = 0;
        pthread_barrier_init(&ready, NULL, o->threads + 1);
        pthread_barrier_init(&go, NULL, o->threads + 1);
        for (unsigned i = 0; i < o->threads; i++) {
                w[i] = (struct worker){
                        .rate = total_rate / (o->procs * o->threads),
                        .ready = &ready, .go = &go, .start = &start, .deadline = &deadline,
                };
                if (pthread_create(&w[i].thread, NULL, worker_main, &w[i]) != 0)
                        return 1;
        }
        pthread_barrier_wait(&ready);
        char c = 'R';
        if (!write_all(report_fd, &c, 1))
                return 1;
        /* Every producer blocks here until the parent closes the pipe:
         * they all start within a scheduling delay of each other. */
        while (read(go_fd, &c, 1) < 0 && errno == EINTR)
                ;
        start = bench_now_ns();
        deadline = start + (uint64_t)(seconds * 1e9);
        pthread_barrier_wait(&go);

        struct report rep = { .emitted = 1 };
        for (unsigned i = 0; i < o->threads; i++) {
                pthread_join(w[i].thread, NULL);
                rep.emitted += w[i].emitted;
        }
        uint64_t end = bench_now_ns();
        rep.window_ns = end - start;
        rep.flush_result = ferret_flush(60000);
        rep.flush_ns = bench_now_ns() - end;
        ferret_stats_t st = { .size = sizeof(st) };
        ferret_get_stats(&st);
        rep.recorded = st.recorded;
        rep.dropped = st.dropped;
        rep.sent = st.sent;
        return write_all(report_fd, &rep, sizeof(rep)) ? 0 : 1;
}

/* --- Parent side. --- */

static int run_trial(const struct options *o, struct bench_daemon *d, unsigned index, double total_rate,
                     double seconds, struct trial *t)
{
        memset(t, 0, sizeof(*t));
        t->target_rate = total_rate;
        t->seconds = seconds;
        snprintf(t->run_id, sizeof(t->run_id), "ferret-bench-throughput-%d-%u", (int)getpid(), index);
        setenv("FERRET_RUN_ID", t->run_id, 1);

        int go[2], rep[MAX_PROCS][2];
        pid_t pids[MAX_PROCS];
        if (pipe2(go, O_CLOEXEC) < 0)
                return -errno;
        fflush(NULL);   /* or the children would print our buffered output again */
        unsigned started = 0;
        for (; started < o->procs; started++) {
                if (pipe2(rep[started], O_CLOEXEC) < 0)
                        break;
                pid_t pid = fork();
                if (pid < 0) {
                        close(rep[started][0]);
                        close(rep[started][1]);
                        break;
                }
                if (pid == 0) {
                        close(go[1]);
                        for (unsigned i = 0; i < started; i++)
                                close(rep[i][0]);
                        close(rep[started][0]);
                        _exit(producer_main(o, seconds, total_rate, rep[started][1], go[0]));
                }
                pids[started] = pid;
                close(rep[started][1]);
        }
        close(go[0]);

        int r = started == o->procs ? 0 : -EAGAIN;
        for (unsigned i = 0; i < started && r == 0; i++) {
                char c;
                if (!read_all(rep[i][0], &c, 1))
                        r = -EPIPE;
        }
        uint64_t cpu0 = 0, cpu1 = 0;
        bench_daemon_cpu_ns(d, &cpu0);
        uint64_t t0 = bench_now_ns();
        close(go[1]);   /* start */

        for (unsigned i = 0; i < started; i++) {
                struct report p;
                if (r == 0 && read_all(rep[i][0], &p, sizeof(p))) {
                        t->emitted += p.emitted;
                        t->recorded += p.recorded;
                        t->dropped += p.dropped;
                        t->sent += p.sent;
                        if (p.flush_result != 0 && p.flush_result != -ENODATA) {
                                t->flush_failures++;
                                t->flush_error = p.flush_result;
                        }
                        if (p.flush_ns > t->max_flush_ns)
                                t->max_flush_ns = p.flush_ns;
                        if ((double)p.window_ns / 1e9 > t->window_s)
                                t->window_s = (double)p.window_ns / 1e9;
                } else
                        r = -EPIPE;
                close(rep[i][0]);
        }
        uint64_t t1 = bench_now_ns();
        bench_daemon_cpu_ns(d, &cpu1);
        for (unsigned i = 0; i < started; i++) {
                int status;
                while (waitpid(pids[i], &status, 0) < 0 && errno == EINTR)
                        ;
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        r = -ECHILD;
        }
        if (r < 0) {
                fprintf(stderr, "A producer failed: %s\n", strerror(-r));
                return r;
        }
        if (!bench_daemon_alive(d))
                return -ESRCH;
        t->wall_s = (double)(t1 - t0) / 1e9;
        t->daemon_cpu_s = (double)(cpu1 - cpu0) / 1e9;
        if (bench_stored_spans(d->runtime_dir, t->run_id, &t->stored) == 0)
                t->have_stored = true;
        return 0;
}

static const char *plural(unsigned n, const char *one, const char *many)
{
        return n == 1 ? one : many;
}

static void print_trial(const struct options *o, const struct trial *t)
{
        printf("run %s: %u %s x %u %s, %.1f s, %s", t->run_id, o->procs, plural(o->procs, "process", "processes"),
               o->threads, plural(o->threads, "thread", "threads"), t->seconds,
               t->target_rate > 0 ? "paced to " : "unpaced (as fast as possible)\n");
        if (t->target_rate > 0)
                printf("%.0f spans/s in total\n", t->target_rate);
        printf("  emitted:     %12" PRIu64 " spans  %12.0f spans/s (over the %.2f s window)\n", t->emitted,
               (double)t->emitted / t->window_s, t->window_s);
        if (t->have_stored)
                printf("  stored:      %12" PRIu64 " spans  %12.0f spans/s (over %.2f s: the window and the final flush)\n",
                       t->stored, (double)t->stored / t->wall_s, t->wall_s);
        else
                printf("  stored:      unknown (ferret query failed)\n");
        printf("  dropped:     %12" PRIu64 " spans  (%.1f%% of emitted, counted by the producers)\n", t->dropped,
               t->emitted ? 100.0 * (double)t->dropped / (double)t->emitted : 0.0);
        if (t->have_stored && t->stored + t->dropped != t->emitted)
                printf("  unaccounted: %12" PRId64 " spans  (emitted - dropped - stored)\n",
                       (int64_t)(t->emitted - t->dropped - t->stored));
        printf("  daemon CPU:  %.2f s in %.2f s = %.0f%% (100%% = one core)\n", t->daemon_cpu_s, t->wall_s,
               100.0 * t->daemon_cpu_s / t->wall_s);
        printf("  final flush: %.3f s (slowest producer)", (double)t->max_flush_ns / 1e9);
        if (t->flush_failures)
                printf(", failed in %d %s: %s", t->flush_failures, plural((unsigned)t->flush_failures, "producer", "producers"),
                       ferret_strerror(t->flush_error));
        printf("\n");
}

/* A step of --find-max passes when every span emitted was stored, and the
 * producers did reach the rate asked of them. */
static bool trial_passed(const struct trial *t, bool *ret_producer_limited)
{
        double achieved = (double)t->emitted / t->window_s;
        *ret_producer_limited = achieved < 0.98 * t->target_rate;
        return !*ret_producer_limited && t->dropped == 0 && t->flush_failures == 0 && t->have_stored &&
               t->stored == t->emitted;
}

/* Runs one step of --find-max and prints its line. */
static int find_max_step(const struct options *o, struct bench_daemon *d, unsigned index, double rate,
                         bool *ret_ok, bool *ret_limited)
{
        struct trial t;
        int r = run_trial(o, d, index, rate, o->step_seconds, &t);
        if (r < 0)
                return r;
        *ret_ok = trial_passed(&t, ret_limited);
        printf("%12.0f %12.0f %12.0f %10" PRIu64 " %10.3f %10.0f%%  %s\n", rate, (double)t.emitted / t.window_s,
               (double)t.stored / t.wall_s, t.dropped, (double)t.max_flush_ns / 1e9,
               100.0 * t.daemon_cpu_s / t.wall_s,
               *ret_ok ? "ok" : *ret_limited ? "producers too slow" : "dropped");
        fflush(stdout);
        return 0;
}

static int find_max(const struct options *o, struct bench_daemon *d)
{
        printf("find-max: %u %s x %u %s, %.1f s per step; a step passes when nothing is dropped\n",
               o->procs, plural(o->procs, "process", "processes"), o->threads, plural(o->threads, "thread", "threads"),
               o->step_seconds);
        printf("%12s %12s %12s %10s %10s %11s  %s\n", "target/s", "emitted/s", "stored/s", "dropped", "flush s",
               "daemon CPU", "result");
        double lo = 0, hi = 0, rate = o->start_rate;
        bool limited_at_hi = false;
        unsigned index = 0;
        for (unsigned step = 0; step < 30; step++) {
                bool ok, limited;
                if (find_max_step(o, d, ++index, rate, &ok, &limited) < 0)
                        return 1;
                /* A step that dropped runs again once: on a busy machine one
                 * long preemption of a flusher thread can fill its ring, and
                 * should not end the search. */
                if (!ok && !limited && find_max_step(o, d, ++index, rate, &ok, &limited) < 0)
                        return 1;
                if (ok)
                        lo = rate;
                else {
                        hi = rate;
                        limited_at_hi = limited;
                }
                /* Double until a step fails, then bisect to within 5%. */
                if (hi == 0)
                        rate *= 2;
                else if (lo == 0) {
                        if (rate <= 1000)
                                break;
                        rate /= 2;
                } else if (hi - lo <= 0.05 * lo)
                        break;
                else
                        rate = (lo + hi) / 2;
        }
        if (lo > 0)
                printf("\nhighest total rate with nothing dropped: %.0f spans/s (%u x %u producers)%s\n", lo,
                       o->procs, o->threads,
                       limited_at_hi ? "; above it the producers could not keep the pace, so the daemon may take more" : "");
        else
                printf("\nno rate passed (lowest tried: %.0f spans/s)\n", hi);
        return 0;
}

static void usage(FILE *f)
{
        fprintf(f, "Usage: ferret-bench-throughput [-P PROCS] [-T THREADS] [-S SECONDS] [--rate R | --find-max]\n\n"
                   "PROCS producer processes x THREADS threads emit spans for SECONDS against a\n"
                   "private ferretd; prints spans/s emitted and stored, drops and the daemon's CPU.\n\n"
                   "  -P, --processes N     producer processes (default 2)\n"
                   "  -T, --threads N       threads per producer (default 1)\n"
                   "  -S, --seconds S       emission time (default 10)\n"
                   "  -r, --rate R          pace the producers to R spans/s in total\n"
                   "  -m, --find-max        search the highest total rate with no drops\n"
                   "      --step-seconds S  time per --find-max step (default 3)\n"
                   "      --start-rate R    first rate --find-max tries (default 100000)\n");
}

int main(int argc, char **argv)
{
        struct options o = { .procs = 2, .threads = 1, .seconds = 10, .step_seconds = 3, .start_rate = 100000 };
        static const struct option longopts[] = {
                { "processes", required_argument, NULL, 'P' },
                { "threads", required_argument, NULL, 'T' },
                { "seconds", required_argument, NULL, 'S' },
                { "rate", required_argument, NULL, 'r' },
                { "find-max", no_argument, NULL, 'm' },
                { "step-seconds", required_argument, NULL, 's' },
                { "start-rate", required_argument, NULL, 'R' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int opt;
        while ((opt = getopt_long(argc, argv, "P:T:S:r:mh", longopts, NULL)) != -1)
                switch (opt) {
                case 'P':
                        o.procs = (unsigned)strtoul(optarg, NULL, 10);
                        break;
                case 'T':
                        o.threads = (unsigned)strtoul(optarg, NULL, 10);
                        break;
                case 'S':
                        o.seconds = strtod(optarg, NULL);
                        break;
                case 'r':
                        o.rate = strtod(optarg, NULL);
                        break;
                case 'm':
                        o.find_max = true;
                        break;
                case 's':
                        o.step_seconds = strtod(optarg, NULL);
                        break;
                case 'R':
                        o.start_rate = strtod(optarg, NULL);
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        if (optind < argc || o.procs < 1 || o.procs > MAX_PROCS || o.threads < 1 || o.threads > MAX_THREADS ||
            !(o.seconds > 0) || o.rate < 0 || !(o.step_seconds > 0) || !(o.start_rate >= 1000) ||
            (o.find_max && o.rate > 0)) {
                usage(stderr);
                return 2;
        }

        struct bench_machine m;
        bench_machine_get(&m);
        printf("Ferret throughput benchmark\n");
        printf("machine:     %s, %ld CPUs, clocksource %s, %s\n", m.cpu, m.cpus, m.clocksource, m.kernel);
        printf("build:       %s\n", bench_build_description());
        if (bench_build_warning())
                printf("%s\n", bench_build_warning());

        struct bench_daemon d;
        if (bench_daemon_start(&d) < 0)
                return 1;
        setenv("FERRET_RUNTIME_DIR", d.runtime_dir, 1);
        unsetenv("FERRET_DISABLE");
        unsetenv("FERRET_TRACEPARENT");

        int ret = 0;
        if (o.find_max)
                ret = find_max(&o, &d);
        else {
                struct trial t;
                if (run_trial(&o, &d, 1, o.rate, o.seconds, &t) < 0)
                        ret = 1;
                else
                        print_trial(&o, &t);
        }
        bench_daemon_cleanup(&d);
        return ret;
}
