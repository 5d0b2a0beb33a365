/* SPDX-License-Identifier: MIT */
/*
 * The span clock's conversion from ticks to wall-clock time (libclient's
 * clock.c, compiled in): one increasing function of the tick for the life of
 * the process, so that spans converted in different batches keep their
 * order, and close to CLOCK_REALTIME.
 */
#include <time.h>

#include "clock.h"
#include "harness.h"

#define SAMPLES 4000

/* Over a third of a second (several pieces), a batch converted every
 * 100 us: every tick seen converts to the same time in every later batch,
 * later ticks to later times, and the times stay near the wall clock. */
TEST(conversion_is_one_increasing_function)
{
        clock_init();
        static struct clock_conversion c;
        static uint64_t tick[SAMPLES], first[SAMPLES];
        uint64_t worst_offset = 0;
        for (int i = 0; i < SAMPLES; i++) {
                clock_convert_now(&c);
                /* The wall clock read between two ticks, as the library
                 * does: a pair read across a preemption says nothing. */
                uint64_t before = clock_ticks();
                uint64_t wall = clock_wall_ns();
                tick[i] = clock_ticks();
                first[i] = clock_to_wall(&c, tick[i]);
                uint64_t mid = clock_to_wall(&c, before + (tick[i] - before) / 2);
                if (first[i] - clock_to_wall(&c, before) < 2000) {
                        uint64_t offset = mid > wall ? mid - wall : wall - mid;
                        worst_offset = offset > worst_offset ? offset : worst_offset;
                }
                /* Everything converted before converts alike now. */
                for (int k = i; k >= 0 && k > i - 64; k--)
                        CHECK_EQ(clock_to_wall(&c, tick[k]), first[k]);
                if (i > 0)
                        CHECK_CMP(first[i], >, first[i - 1]);
                struct timespec pause = { 0, 100000 };
                nanosleep(&pause, NULL);
        }
        for (int k = 0; k < SAMPLES; k += 97)
                CHECK_EQ(clock_to_wall(&c, tick[k]), first[k]);
        /* Each piece starts where the one before it ends: no jump, however
         * far the wall clock was read from the line at that moment. */
        unsigned kept = c.n < CLOCK_PIECES ? c.n : CLOCK_PIECES;
        for (unsigned k = 1; k < kept; k++) {
                const struct clock_piece *a = &c.piece[(c.n - kept + k - 1) % CLOCK_PIECES];
                const struct clock_piece *b = &c.piece[(c.n - kept + k) % CLOCK_PIECES];
                double end = a->wall + (double)(b->tick - a->tick) * a->ns_per_tick;
                CHECK_CMP(end - b->wall, <, 1.0);
                CHECK_CMP(end - b->wall, >, -1.0);
        }
        printf("pieces %u, worst offset from CLOCK_REALTIME %" PRIu64 " ns\n", c.n, worst_offset);
        CHECK_CMP(c.n, >=, 3);
        CHECK_CMP(worst_offset, <, 20000);
}
