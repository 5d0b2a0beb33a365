/* SPDX-License-Identifier: MIT */
/*
 * The workload of bench/run-overhead: a deep call tree of small functions,
 * built twice (with -finstrument-functions for ferret run and uftrace, with
 * -pg for uftrace's own mode). It prints how many calls it made, and on
 * stderr the CPU time its thread used: the program's own cost, apart from
 * the time it waited for a core while a tracer's threads had them.
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
        for (int i = 0; i < trees; i++)
                calls += node(16);
        printf("%lu\n", calls);
        struct timespec cpu;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu);
        fprintf(stderr, "thread cpu ns: %lld\n", (long long)cpu.tv_sec * 1000000000 + cpu.tv_nsec);
        return 0;
}
