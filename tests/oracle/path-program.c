/* SPDX-License-Identifier: MIT */
/*
 * A generated program for the call-path oracle (test_paths.py): from its
 * seed it records a random tree of spans through every way the C API gives
 * a span its parent: nesting on a thread, literal, interned and formatted
 * names, explicit parents handed to other threads (some of them ended
 * already, some known to the library only by id), forked children, and
 * children it starts with FERRET_TRACEPARENT, with and without the
 * tracestate that carries the path. Bursts with a small buffer make the
 * library drop spans, some of them parents.
 *
 *   path-program SEED [child]
 */
#include <errno.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ferret.h"

extern char **environ;

static const char *const names[] = { "parse", "load", "query", "render", "fetch", "sort", "hash", "send" };
#define N_NAMES (sizeof(names) / sizeof(names[0]))

static char self_path[4096];

static uint64_t next(uint64_t *s)
{
        uint64_t x = *s;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *s = x;
        return x * 0x2545F4914F6CDD1DULL;
}

static unsigned below(uint64_t *s, unsigned n)
{
        return (unsigned)(next(s) % n);
}

static ferret_span_t *begin_any(uint64_t *rng, const ferret_ctx_t *parent)
{
        static ferret_name_t cached[N_NAMES];
        unsigned k = below(rng, N_NAMES);
        if (parent)
                return ferret_span_begin_in(*parent, names[k]);
        switch (below(rng, 4)) {
        case 0:
                return ferret_span_begin(names[k]);
        case 1:
                return ferret__span_begin_named(&cached[k], names[k]);
        case 2:
                return ferret_span_beginf("item-%u", below(rng, 40));   /* names made at run time */
        default:
                return ferret_span_beginf("%s", names[k]);
        }
}

static volatile unsigned sink;  /* what busy() computes, so that it is not left out */

static void busy(uint64_t *rng)
{
        for (unsigned i = below(rng, 2000); i > 0; i--)
                sink = sink + i;
}

static void tree(uint64_t *rng, unsigned depth, const ferret_ctx_t *parent);

struct thread_arg {
        ferret_ctx_t parent;
        uint64_t seed;
};

/* No bursts on these threads: a child known by its parent's id only finds
 * a parent that ended first among the run's last RECENT_SPANS spans
 * (ferretd/recent.h), and a burst is more than that. */
static void *thread_main(void *p)
{
        struct thread_arg *a = p;
        tree(&a->seed, 2, &a->parent);
        return NULL;
}

/* Children of the current span in other threads, under an explicit parent. */
static void threads(uint64_t *rng, ferret_span_t *parent, bool end_first)
{
        enum { MAX_THREADS = 3 };
        pthread_t t[MAX_THREADS];
        struct thread_arg a[MAX_THREADS];
        unsigned n = 1 + below(rng, MAX_THREADS);
        ferret_ctx_t ctx = ferret_span_context(parent);
        if (below(rng, 3) == 0) {
                /* Known by id only: contexts of other spans push this one
                 * out of what the library remembers, as a traceparent
                 * string from elsewhere would be. */
                for (int i = 0; i < 5000; i++) {
                        ferret_span_t *s = ferret_span_begin("filler");
                        ferret_span_context(s);
                        ferret_span_end(s);
                }
        }
        if (end_first)
                ferret_span_end(parent);
        for (unsigned i = 0; i < n; i++) {
                a[i] = (struct thread_arg){ ctx, next(rng) | 1 };
                pthread_create(&t[i], NULL, thread_main, &a[i]);
        }
        for (unsigned i = 0; i < n; i++)
                pthread_join(t[i], NULL);
}

/* The child's environment: ours with @tp and @ts (NULL: none) as its
 * traceparent and tracestate. Never setenv(): other threads fork meanwhile,
 * and a child forked while one held glibc's environment lock would wait on
 * it forever. */
static char **child_env(const char *tp, const char *ts)
{
        size_t n = 0, k = 0;
        while (environ[n])
                n++;
        char **env = calloc(n + 3, sizeof(*env));
        static __thread char tp_entry[128], ts_entry[128];
        if (!env)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (strncmp(environ[i], "FERRET_TRACEPARENT=", 19) != 0 && strncmp(environ[i], "FERRET_TRACESTATE=", 18) != 0)
                        env[k++] = environ[i];
        snprintf(tp_entry, sizeof(tp_entry), "FERRET_TRACEPARENT=%s", tp);
        env[k++] = tp_entry;
        if (ts) {
                snprintf(ts_entry, sizeof(ts_entry), "FERRET_TRACESTATE=%s", ts);
                env[k++] = ts_entry;
        }
        return env;
}

static void child_process(uint64_t *rng, ferret_span_t *parent)
{
        if (below(rng, 2) == 0) {
                pid_t pid = fork();
                if (pid == 0) {
                        uint64_t seed = next(rng) | 1;
                        tree(&seed, 2, NULL);
                        ferret_flush(10000);
                        _exit(0);
                }
                waitpid(pid, NULL, 0);
                return;
        }
        char tp[FERRET_TRACEPARENT_LEN + 1], ts[FERRET_TRACESTATE_LEN + 1], seed[32];
        ferret_ctx_t ctx = ferret_span_context(parent);
        ferret_ctx_format(ctx, tp, sizeof(tp));
        /* Without the tracestate, the daemon links it by the parent's id. */
        bool with_state = below(rng, 2) == 0 && ferret_ctx_tracestate(ctx, ts, sizeof(ts)) == 0;
        snprintf(seed, sizeof(seed), "%llu", (unsigned long long)(next(rng) | 1));
        char *argv[] = { self_path, seed, "child", NULL };
        char **env = child_env(tp, with_state ? ts : NULL);
        pid_t pid;
        if (env && posix_spawn(&pid, self_path, NULL, NULL, argv, env) == 0)
                waitpid(pid, NULL, 0);
        free(env);
}

/* A burst: many short nested spans at once, past what the buffer holds. */
static void burst(uint64_t *rng)
{
        for (int i = 0; i < 20000; i++) {
                ferret_span_t *a = ferret_span_begin("burst");
                ferret_span_t *b = ferret_span_begin(names[below(rng, 3)]);
                ferret_span_end(b);
                ferret_span_end(a);
        }
}

static void tree(uint64_t *rng, unsigned depth, const ferret_ctx_t *parent)
{
        unsigned fanout = depth == 0 ? 3 : below(rng, depth > 4 ? 1 : 4);
        for (unsigned i = 0; i < fanout; i++) {
                ferret_span_t *s = begin_any(rng, i == 0 ? parent : NULL);
                if (!s)
                        continue;
                if (below(rng, 5) == 0)
                        ferret_span_tag_int(s, "i", (int64_t)i);
                if (below(rng, 7) == 0)
                        ferret_span_set_status(s, below(rng, 2) ? FERRET_STATUS_ERROR : FERRET_STATUS_WARNING, "bad");
                busy(rng);
                unsigned what = below(rng, 12);
                bool ended = false;
                if (what == 0 && depth < 3)
                        threads(rng, s, ended = below(rng, 2) == 0);
                else if (what == 1 && depth < 3)
                        child_process(rng, s);
                else if (what == 2 && depth < 2)
                        burst(rng);
                else
                        tree(rng, depth + 1, NULL);
                if (!ended)
                        ferret_span_end(s);
        }
}

int main(int argc, char **argv)
{
        if (argc < 2)
                return 2;
        uint64_t seed = strtoull(argv[1], NULL, 10) | 1;
        ssize_t n = readlink("/proc/self/exe", self_path, sizeof(self_path) - 1);
        self_path[n > 0 ? n : 0] = '\0';
        tree(&seed, argc > 2 ? 2 : 0, NULL);
        int r = ferret_flush(30000);
        if (r == -ENODATA)
                r = 0;          /* dropped, and counted: what the bursts are for */
        if (r < 0)
                fprintf(stderr, "path-program: ferret_flush: %s\n", ferret_strerror(r));
        return r < 0;
}
