/* SPDX-License-Identifier: MIT */
/*
 * The workload of bench/run-overhead: a deep call tree of small functions,
 * built twice (with -finstrument-functions for ferret run and uftrace, with
 * -pg for uftrace's own mode). It prints how many calls it made, and on
 * stderr how long its calls took (not its start or its exit, where a
 * tracer starts or empties its buffers) and the CPU time its thread used:
 * the program's own cost, apart from the time it waited for a core while a
 * tracer's threads had them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static volatile unsigned long sink;

__attribute__((noinline)) static unsigned long node(int depth)
{
        if (depth == 0) {
                sink++;
                return 1;
        }
        return node(depth - 1) + node(depth - 1) + 1;
}

int main(int argc, char **argv)
{
        int trees = argc > 1 ? atoi(argv[1]) : 100;
        unsigned long calls = 1;        /* main */
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < trees; i++)
                calls += node(16);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        printf("%lu\n", calls);
        fprintf(stderr, "calls wall ns: %lld\n", (long long)(t1.tv_sec - t0.tv_sec) * 1000000000 + (t1.tv_nsec - t0.tv_nsec));
        struct timespec cpu;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu);
        fprintf(stderr, "thread cpu ns: %lld\n", (long long)cpu.tv_sec * 1000000000 + cpu.tv_nsec);
        return 0;
}
