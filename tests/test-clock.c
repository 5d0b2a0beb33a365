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

static int compare_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

/* Over a third of a second (several pieces), a batch converted every
 * 100 us: every tick seen converts to the same time in every later batch,
 * later ticks to later times, and the times stay near the wall clock. */
TEST(conversion_is_one_increasing_function)
{
        clock_init();
        static struct clock_conversion c;
        static uint64_t tick[SAMPLES], first[SAMPLES], offsets[SAMPLES];
        uint64_t worst_offset = 0;
        size_t n_offsets = 0;
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
                        offsets[n_offsets++] = offset;
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
                CHECK_EQ(clock_piece_at(a, b->tick), b->wall);
        }
        /* Nanoseconds, not multiples of 256 (a double holds epoch ns no
         * finer): by chance one time in 256 is. */
        int round = 0;
        for (int i = 0; i < SAMPLES; i++)
                round += first[i] % 256 == 0;
        printf("%d of %d times are multiples of 256 ns\n", round, SAMPLES);
        CHECK_CMP(round, <, SAMPLES / 64);
        /* A span inside another, converted in any later batch, lies inside
         * it: start no earlier, end no later. */
        for (int i = 0; i + 3 < SAMPLES; i += 7) {
                uint64_t p0 = tick[i], c0 = tick[i + 1], c1 = tick[i + 2], p1 = tick[i + 3];
                uint64_t ps = clock_to_wall(&c, p0), cs = clock_to_wall(&c, c0);
                CHECK_CMP(cs, >=, ps);
                CHECK_CMP(cs + clock_span_ns(&c, c0, c1, cs), <=, ps + clock_span_ns(&c, p0, p1, ps));
        }
        /* Near the wall clock: the median offset. Not the worst: when the
         * kernel steps or slews CLOCK_REALTIME (NTP, a VM's clock), the
         * conversion follows without a jump, so for a while it is off by
         * the step, as it should be. */
        qsort(offsets, n_offsets, sizeof(*offsets), compare_u64);
        uint64_t median = n_offsets ? offsets[n_offsets / 2] : UINT64_MAX;
        printf("pieces %u, offset from CLOCK_REALTIME: median %" PRIu64 " ns, worst %" PRIu64 " ns (%zu samples)\n",
               c.n, median, worst_offset, n_offsets);
        CHECK_CMP(c.n, >=, 3);
        CHECK_CMP(n_offsets, >, SAMPLES / 2);
        CHECK_CMP(median, <, 20000);
}
