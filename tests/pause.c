/* SPDX-License-Identifier: MIT */
/*
 * A program that outlives its daemon, for the reconnection test: `pause N`
 * records N spans named "before" and flushes, prints "flushed R", waits for
 * a line on stdin, then records N spans named "after", flushes (2 s at
 * most) and prints one JSON line with that flush's outcome and what the
 * library dropped.
 */
#include <ferret.h>
#include <stdio.h>
#include <stdlib.h>

static void record(const char *name, long n)
{
        for (long i = 0; i < n; i++)
                ferret_span_end(ferret_span_begin(name));
}

int main(int argc, char **argv)
{
        long n = argc > 1 ? atol(argv[1]) : 100;
        char line[64];
        record("before", n);
        printf("flushed %d\n", ferret_flush(10000));
        fflush(stdout);
        if (!fgets(line, sizeof(line), stdin))
                return 1;
        record("after", n);
        int r = ferret_flush(2000);
        ferret_stats_t st = { .size = sizeof(st) };
        ferret_get_stats(&st);
        printf("{\"flush\": %d, \"recorded\": %llu, \"dropped\": %llu}\n", r, (unsigned long long)st.recorded,
               (unsigned long long)st.dropped);
        return 0;
}
