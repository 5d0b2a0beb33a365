/* SPDX-License-Identifier: MIT */
/*
 * Records N spans as fast as it can (`flood N`), then flushes, and prints
 * one JSON line: the seconds the spans took, what the library recorded and
 * dropped, and the flush's outcome. For the disk-full test, which checks
 * that a program runs at full speed whatever the daemon's disk does.
 */
#include <ferret.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv)
{
        long n = argc > 1 ? atol(argv[1]) : 1000000;
        int timeout_ms = argc > 2 ? atoi(argv[2]) : 10000;
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (long i = 0; i < n; i++) {
                ferret_span_t *s = ferret_span_begin("flood");
                ferret_span_tag_int(s, "i", i);
                ferret_span_end(s);
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
        int r = ferret_flush(timeout_ms);
        ferret_stats_t st = { .size = sizeof(st) };
        ferret_get_stats(&st);
        printf("{\"seconds\": %.6f, \"recorded\": %llu, \"dropped\": %llu, \"flush\": %d}\n",
               (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9,
               (unsigned long long)st.recorded, (unsigned long long)st.dropped, r);
        return 0;
}
