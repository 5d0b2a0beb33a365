/* SPDX-License-Identifier: MIT */
/*
 * Load for test_systemd.py, built in the container against the installed
 * library, as the README's C API section shows.
 *
 *   load COUNT            records COUNT spans at once
 *   load RATE SECONDS     records RATE spans a second for SECONDS, in bursts
 *                         every 10 ms by the clock, printing "second N" as
 *                         each second passes
 *
 * Then it waits for the daemon to store them (ferret_flush(30000)) and prints
 * one line of JSON: the spans it made, the flush's result and the client's
 * counters from ferret_get_stats().
 */
#include <ferret.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static unsigned long long made;

static void burst(long n)
{
        for (long i = 0; i < n; i++) {
                ferret_span_end(ferret_span_begin("load_span"));
                made++;
        }
}

int main(int argc, char **argv)
{
        if (argc == 2) {
                burst(atol(argv[1]));
        } else if (argc == 3) {
                long per_burst = atol(argv[1]) / 100, bursts = atol(argv[2]) * 100;
                struct timespec next;

                clock_gettime(CLOCK_MONOTONIC, &next);
                for (long b = 1; b <= bursts; b++) {
                        burst(per_burst);
                        if (b % 100 == 0) {
                                printf("second %ld\n", b / 100);
                                fflush(stdout);
                        }
                        /* Paced by the clock: a late burst is not followed by a pause. */
                        next.tv_nsec += 10 * 1000 * 1000;
                        if (next.tv_nsec >= 1000000000) {
                                next.tv_nsec -= 1000000000;
                                next.tv_sec++;
                        }
                        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
                }
        } else {
                fprintf(stderr, "usage: load COUNT | load RATE SECONDS\n");
                return 2;
        }

        int flush = ferret_flush(30000);
        ferret_stats_t st = { .size = sizeof(st) };
        ferret_get_stats(&st);
        printf("{\"run\": \"%s\", \"made\": %llu, \"flush\": %d, \"recorded\": %llu, "
               "\"dropped\": %llu, \"sent\": %llu, \"batches\": %llu}\n",
               ferret_run_id(), made, flush, (unsigned long long)st.recorded,
               (unsigned long long)st.dropped, (unsigned long long)st.sent,
               (unsigned long long)st.batches);
        return 0;
}
