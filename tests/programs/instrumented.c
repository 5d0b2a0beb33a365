/* SPDX-License-Identifier: MIT */
/*
 * A program built with -finstrument-functions (and as a PIE), knowing
 * nothing of Ferret. `instrumented basic` calls a known tree of functions;
 * `instrumented tiny` calls one tiny function millions of times;
 * `instrumented deep N REPS` recurses N deep REPS times (on a thread with a
 * stack big enough); `instrumented longjmp` jumps out of six frames 1,000
 * times; `instrumented exit-inside` calls exit() three calls deep.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "funcs.h"

static volatile unsigned sink;

static __attribute__((noinline)) unsigned leaf(unsigned x)
{
        return x * 2;
}

static __attribute__((noinline)) int recurse(int n)
{
        return n <= 0 ? 0 : 1 + recurse(n - 1);
}

/* About 50 µs of work: well above a --min-duration of 10us. */
int work(int n);

__attribute__((noinline)) int work(int n)
{
        struct timespec start, now;
        clock_gettime(CLOCK_MONOTONIC, &start);
        do
                clock_gettime(CLOCK_MONOTONIC, &now);
        while ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) < 50000);
        return lib_compute(n);
}

static long deep_n, deep_reps;

static __attribute__((noinline)) void *deep(void *arg)
{
        (void)arg;
        for (long i = 0; i < deep_reps; i++)
                sink += recurse((int)deep_n);
        return NULL;
}

static jmp_buf landing;

static __attribute__((noinline)) void thrower(int n)
{
        if (n > 0)
                thrower(n - 1);
        else if (sink != 1)           /* always; a path that returns keeps GCC's recursion check quiet */
                longjmp(landing, 1);
}

static __attribute__((noinline)) unsigned guarded(unsigned i)
{
        volatile unsigned r = 0;
        if (setjmp(landing) == 0)
                thrower(5);
        else
                r = leaf(i);
        return r;
}

static __attribute__((noinline)) void outer(void)
{
        for (unsigned i = 0; i < 200000; i++)
                sink += leaf(i);
}

static __attribute__((noinline)) void exits(int n)
{
        if (n > 0)
                exits(n - 1);
        else if (sink != 1)
                exit(0);
}

int main(int argc, char **argv)
{
        if (argc > 3 && strcmp(argv[1], "deep") == 0) {
                /* A thread of our own, with room for the frames: the main
                 * thread's stack is whatever ulimit -s says. */
                pthread_attr_t attr;
                pthread_t t;
                deep_n = atol(argv[2]);
                deep_reps = atol(argv[3]);
                pthread_attr_init(&attr);
                pthread_attr_setstacksize(&attr, (size_t)deep_n * 256 + (1 << 20));
                if (pthread_create(&t, &attr, deep, NULL) != 0)
                        return 1;
                pthread_join(t, NULL);
                return 0;
        }
        if (argc > 1 && strcmp(argv[1], "longjmp") == 0) {
                for (unsigned i = 0; i < 1000; i++)
                        sink += guarded(i);
                return 0;
        }
        if (argc > 1 && strcmp(argv[1], "burst") == 0) {
                outer();
                return 0;
        }
        if (argc > 1 && strcmp(argv[1], "exit-inside") == 0)
                exits(2);
        if (argc > 2 && strcmp(argv[1], "die") == 0) {
                /* 1,000 calls buffered, then a fatal signal. */
                for (int i = 0; i < 1000; i++)
                        sink += leaf(i);
                raise(atoi(argv[2]));
                return 0;
        }
        if (argc > 1 && strcmp(argv[1], "quick-exit") == 0) {
                for (int i = 0; i < 1000; i++)
                        sink += leaf(i);
                quick_exit(3);
        }
        if (argc > 1 && strcmp(argv[1], "tiny") == 0) {
                for (int i = 0; i < 3000000; i++)
                        sink += leaf(i);
                return 0;
        }
        sink += work(3);
        sink += recurse(5);
        for (int i = 0; i < 1000; i++)
                sink += leaf(i);
        printf("done\n");
        return 0;
}
