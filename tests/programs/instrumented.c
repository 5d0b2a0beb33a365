/* SPDX-License-Identifier: MIT */
/*
 * A program built with -finstrument-functions (and as a PIE), knowing
 * nothing of Ferret. `instrumented basic` calls a known tree of functions;
 * `instrumented tiny` calls one tiny function millions of times.
 */
#include <stdio.h>
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

int main(int argc, char **argv)
{
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
