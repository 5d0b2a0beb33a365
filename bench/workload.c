/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ferret.h>

#include "common.h"
#include "workload.h"

#define MAX_PROCS 64
#define MAX_PARALLEL 64

/* Ten names for parents, thirty for their children: a few hundred distinct
 * call paths, as a service with a handful of entry points would have. */
#define PARENT_NAMES 10
static const char *const names[WORKLOAD_NAMES] = {
        "http.request", "grpc.call", "job.run", "cron.tick", "queue.consume",
        "cache.refresh", "batch.import", "report.render", "session.open", "auth.login",
        "db.query", "db.commit", "db.connect", "cache.get", "cache.set",
        "http.client", "dns.resolve", "tls.handshake", "json.parse", "json.encode",
        "template.render", "file.read", "file.write", "compress", "decompress",
        "hash", "sign", "verify", "queue.publish", "lock.wait",
        "alloc.pool", "log.write", "metrics.flush", "config.load", "schema.check",
        "rpc.marshal", "rpc.unmarshal", "retry.backoff", "validate", "serialize",
};
/* One cache per name: each name is a literal, interned once per process. */
static ferret_name_t name_cache[WORKLOAD_NAMES];

static const char *const regions[] = { "eu-west", "us-east", "ap-south", "sa-east" };

/* What a producer process sends back, once. */
struct report {
        uint64_t emitted, dropped;
        int flush_result;
};

const char *workload_slow_name(void)
{
        return names[PARENT_NAMES];     /* "db.query" */
}

static uint64_t rng_next(uint64_t *s)
{
        /* xorshift64*: fast, and good enough to pick names and durations. */
        uint64_t x = *s;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *s = x;
        return x * 0x2545F4914F6CDD1Dull;
}

/* Work the compiler cannot remove: @n dependent multiply-adds, a few ns each. */
static void busy(unsigned n)
{
        uint64_t x = n;
        for (unsigned i = 0; i < n; i++)
                x = x * 6364136223846793005ull + 1442695040888963407ull;
        __asm__ volatile("" : : "r"(x) : "memory");
}

static ferret_span_t *begin_tagged(unsigned name, uint64_t r)
{
        ferret_span_t *s = ferret__span_begin_named(&name_cache[name], names[name]);
        ferret_span_tag_int(s, "shard", (int64_t)(r % 64));
        ferret_span_tag_str(s, "region", regions[(r >> 6) % 4]);
        return s;
}

/* Ends @n spans: a parent with three children, repeated (the last parent
 * may have fewer). Children do a random amount of work, log-uniform from 1
 * to 1,024 steps (tens of ns to about 2 us), and one in 256 does 16,384, so
 * durations spread over decades and have a tail, as real ones do, while
 * 10M spans still take seconds to emit. */
static void emit_spans(uint64_t n, uint64_t seed, int slow)
{
        uint64_t rng = seed | 1;
        while (n > 0) {
                uint64_t r = rng_next(&rng);
                ferret_span_t *parent = begin_tagged((unsigned)(r % PARENT_NAMES), r >> 8);
                n--;
                for (unsigned c = 0; c < 3 && n > 0; c++, n--) {
                        r = rng_next(&rng);
                        unsigned name = PARENT_NAMES + (unsigned)(r % (WORKLOAD_NAMES - PARENT_NAMES));
                        ferret_span_t *s = begin_tagged(name, r >> 8);
                        unsigned work = (r >> 40) % 256 == 0 ? 16384 : 1u << ((r >> 48) % 11);
                        busy((int)name == slow ? 2 * work : work);
                        ferret_span_end(s);
                }
                ferret_span_end(parent);
        }
}

static int slow_index(const char *slow_name)
{
        for (int i = 0; slow_name && i < WORKLOAD_NAMES; i++)
                if (strcmp(names[i], slow_name) == 0)
                        return i;
        return -1;
}

static int write_all(int fd, const void *buf, size_t len)
{
        const char *p = buf;
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return -EPIPE;
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

static int read_all(int fd, void *buf, size_t len)
{
        char *p = buf;
        while (len > 0) {
                ssize_t n = read(fd, p, len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return -EPIPE;
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

/*
 * A producer process. With @go_fd, it first starts its client and connects
 * it (a flush with nothing to send, so no span is added to the run), says
 * so on @report_fd and waits for @go_fd to close: the clock the parent
 * reads then measures emission, not connection.
 */
static int producer_main(uint64_t spans, uint64_t seed, int slow, int report_fd, int go_fd)
{
        char c = 'R';
        if (go_fd >= 0) {
                ferret_flush(30000);
                if (write_all(report_fd, &c, 1) < 0)
                        return 1;
                while (read(go_fd, &c, 1) < 0 && errno == EINTR)
                        ;
        }
        emit_spans(spans, seed, slow);
        struct report rep = { .emitted = spans };
        rep.flush_result = ferret_flush(600000);
        ferret_stats_t st = { .size = sizeof(st) };
        ferret_get_stats(&st);
        rep.dropped = st.dropped;
        return write_all(report_fd, &rep, sizeof(rep)) < 0 ? 1 : 0;
}

static void add_report(struct workload_result *ret, const struct report *rep)
{
        ret->emitted += rep->emitted;
        ret->dropped += rep->dropped;
        if (rep->flush_result != 0) {
                ret->flush_failures++;
                ret->flush_error = rep->flush_result;
        }
}

static int wait_child(pid_t pid)
{
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -ECHILD;
}

int workload_emit(const char *run_id, uint64_t spans, unsigned procs, const char *slow_name,
                  struct workload_result *ret)
{
        if (procs < 1 || procs > MAX_PROCS)
                return -EINVAL;
        memset(ret, 0, sizeof(*ret));
        setenv("FERRET_RUN_ID", run_id, 1);
        int slow = slow_index(slow_name);
        uint64_t seed = bench_now_ns();

        int go[2], rep[MAX_PROCS][2];
        pid_t pids[MAX_PROCS];
        if (pipe2(go, O_CLOEXEC) < 0)
                return -errno;
        fflush(NULL);   /* or the children would print our buffered output again */
        unsigned started = 0;
        for (; started < procs; started++) {
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
                        for (unsigned i = 0; i <= started; i++)
                                close(rep[i][0]);
                        /* The first producer takes the remainder. */
                        uint64_t n = spans / procs + (started == 0 ? spans % procs : 0);
                        _exit(producer_main(n, seed + started * 0x9E3779B97F4A7C15ull, slow, rep[started][1], go[0]));
                }
                pids[started] = pid;
                close(rep[started][1]);
        }
        close(go[0]);
        unsetenv("FERRET_RUN_ID");

        int r = started == procs ? 0 : -EAGAIN;
        for (unsigned i = 0; i < started && r == 0; i++) {
                char c;
                r = read_all(rep[i][0], &c, 1);
        }
        uint64_t t0 = bench_now_ns();
        close(go[1]);   /* start */
        for (unsigned i = 0; i < started; i++) {
                struct report p;
                if (r == 0 && read_all(rep[i][0], &p, sizeof(p)) == 0)
                        add_report(ret, &p);
                else
                        r = -EPIPE;
                close(rep[i][0]);
        }
        ret->seconds = (double)(bench_now_ns() - t0) / 1e9;
        for (unsigned i = 0; i < started; i++)
                if (wait_child(pids[i]) < 0 && r == 0)
                        r = -ECHILD;
        if (r < 0)
                fprintf(stderr, "A producer of run %s failed: %s\n", run_id, strerror(-r));
        return r;
}

int workload_small_runs(const char *prefix, unsigned count, uint64_t spans, unsigned parallel,
                        struct workload_result *ret)
{
        if (parallel < 1 || parallel > MAX_PARALLEL)
                return -EINVAL;
        /* One pipe for every producer: a report is far below PIPE_BUF, so
         * each arrives whole, and it is written before the producer exits,
         * so it is there to read once the producer is reaped. */
        int rep[2];
        if (pipe2(rep, O_CLOEXEC) < 0)
                return -errno;
        pid_t running[MAX_PARALLEL];
        unsigned started = 0, reaped = 0;
        uint64_t seed = bench_now_ns(), t0 = bench_now_ns();
        int r = 0;
        fflush(NULL);
        while (reaped < started || (started < count && r == 0)) {
                if (started < count && r == 0 && started - reaped < parallel) {
                        pid_t pid = fork();
                        if (pid < 0) {
                                r = -errno;
                                continue;
                        }
                        if (pid == 0) {
                                char run_id[128];
                                close(rep[0]);
                                snprintf(run_id, sizeof(run_id), "%s-%04u", prefix, started);
                                setenv("FERRET_RUN_ID", run_id, 1);
                                _exit(producer_main(spans, seed + started * 0x9E3779B97F4A7C15ull, -1, rep[1], -1));
                        }
                        running[started++ % parallel] = pid;
                        continue;
                }
                /* The oldest first: producers take about as long as each other. */
                struct report p;
                if (wait_child(running[reaped++ % parallel]) == 0 && read_all(rep[0], &p, sizeof(p)) == 0)
                        add_report(ret, &p);
                else if (r == 0)
                        r = -ECHILD;
        }
        ret->seconds += (double)(bench_now_ns() - t0) / 1e9;
        close(rep[0]);
        close(rep[1]);
        if (r < 0)
                fprintf(stderr, "A producer of the small runs failed: %s\n", strerror(-r));
        return r;
}
