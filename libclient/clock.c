/* SPDX-License-Identifier: MIT */
#include "clock.h"

#include <cpuid.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool clock_use_tsc;
static uint64_t first_tick, first_mono;

/* Calibrating over less than this would make the ratio noisy. */
#define MIN_CALIBRATION_NS 2000000

static bool tsc_trusted(void)
{
        unsigned a, b, c, d;
        if (!__get_cpuid(0x80000007, &a, &b, &c, &d) || !(d & (1u << 8)))
                return false;   /* not invariant: it drifts with frequency */
        /* The kernel keeps time with the TSC only after checking that it is
         * synchronised across CPUs; anything else and we do not trust it. */
        char source[32] = "";
        FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "re");
        if (!f)
                return false;
        if (!fgets(source, sizeof(source), f))
                source[0] = '\0';
        fclose(f);
        return strncmp(source, "tsc", 3) == 0 && (source[3] == '\n' || source[3] == '\0');
}

/* Reads @clock between two TSC reads and pairs it with their midpoint,
 * retrying while the two are far apart (the thread was interrupted): each
 * batch converts ticks with a pair of its own, and spans of two batches must
 * not swap places because one pair was read across a preemption. */
#define PAIR_TRIES 256                /* a try takes ~50 ns; most pairs take one */
#define PAIR_GOOD_TICKS 2000          /* well under a microsecond */

static void read_pair(uint64_t (*clock)(void), uint64_t *ret_tick, uint64_t *ret_ns)
{
        uint64_t best = UINT64_MAX;
        *ret_tick = *ret_ns = 0;
        for (int i = 0; i < PAIR_TRIES && best > PAIR_GOOD_TICKS; i++) {
                uint64_t before = __rdtsc();
                uint64_t ns = clock();
                uint64_t after = __rdtsc();
                if (after - before < best) {
                        best = after - before;
                        *ret_tick = before + best / 2;
                        *ret_ns = ns;
                }
        }
}

__attribute__((noinline)) uint64_t clock_ticks_fallback(void)
{
        return clock_mono_ns();
}

void clock_init(void)
{
        const char *off = getenv("FERRET_NO_TSC");
        clock_use_tsc = !(off && *off && strcmp(off, "0") != 0) && tsc_trusted();
        if (clock_use_tsc)
                read_pair(clock_mono_ns, &first_tick, &first_mono);
        else
                first_tick = first_mono = clock_mono_ns();
}

/* Below this, the two pairs' own uncertainty (a fraction of a microsecond
 * each) would weigh more than a percent in the ratio. */
#define MIN_RATIO_NS 50000

uint64_t clock_ticks_at_mono(uint64_t mono_ns)
{
        if (!clock_use_tsc) {
                uint64_t now = clock_mono_ns();
                return mono_ns < now ? mono_ns : now;
        }
        uint64_t tick, mono;
        do
                read_pair(clock_mono_ns, &tick, &mono);
        while (mono - first_mono < MIN_RATIO_NS);
        if (mono_ns >= mono)
                return tick;
        double ticks_per_ns = (double)(tick - first_tick) / (double)(mono - first_mono);
        uint64_t back = (uint64_t)((double)(mono - mono_ns) * ticks_per_ns);
        return back < tick ? tick - back : 0;
}

/* A new piece at most every eighth of the conversion's age, between 1 ms
 * and 10 s: early, while the ratio measured over a few milliseconds is
 * still rough, pieces are short, so its error has no time to add up; later
 * the ratio is measured over the whole life and hardly moves, and the 1,024
 * pieces kept reach more than two hours back. A span converted after its
 * start's piece was let go (a parent open for hours) is converted by the
 * oldest piece, extended backwards: off its children's by the ratio's
 * steering over that time. Within a piece conversions are exactly alike. */
#define PIECE_MIN_NS 1000000.0
#define PIECE_MAX_NS 10000000000.0
/* Each piece's slope steers the offset from the wall clock back to zero
 * over four pieces, changing the slope by at most CLOCK_MAX_SLEW. */
#define STEER_PIECES 4.0
#define CLOCK_MAX_SLEW 0.01
#define CLOCK_STEP_NS 10000000.0

static void add_piece(struct clock_conversion *c, uint64_t tick, uint64_t wall, double ns_per_tick)
{
        c->piece[c->n % CLOCK_PIECES] = (struct clock_piece){ tick, wall, ns_per_tick };
        c->n++;
}

uint64_t clock_to_wall_past(const struct clock_conversion *c, uint64_t tick)
{
        unsigned kept = c->n < CLOCK_PIECES ? c->n : CLOCK_PIECES;
        const struct clock_piece *p = NULL;
        for (unsigned k = 1; k <= kept; k++) {
                p = &c->piece[(c->n - k) % CLOCK_PIECES];
                if (tick >= p->tick)
                        break;
        }
        if (tick >= p->tick)
                return clock_piece_at(p, tick);
        /* Older than every piece kept: the oldest, extended backwards. */
        uint64_t back = (uint64_t)((double)(p->tick - tick) * p->ns_per_tick);
        return back < p->wall ? p->wall - back : 0;
}

void clock_convert_now(struct clock_conversion *c)
{
        uint64_t tick, wall;
        if (clock_use_tsc) {
                uint64_t mono;
                do
                        read_pair(clock_mono_ns, &tick, &mono);
                while (mono - first_mono < MIN_CALIBRATION_NS);
                c->ns_per_tick = (double)(mono - first_mono) / (double)(tick - first_tick);
                read_pair(clock_wall_ns, &tick, &wall);
        } else {
                /* Ticks are CLOCK_MONOTONIC nanoseconds already. */
                c->ns_per_tick = 1.0;
                tick = clock_mono_ns();
                wall = clock_wall_ns();
        }
        if (c->n == 0) {
                add_piece(c, tick, wall, c->ns_per_tick);
                return;
        }
        const struct clock_piece *p = &c->piece[(c->n - 1) % CLOCK_PIECES];
        if (tick <= p->tick)
                return;
        uint64_t at = clock_piece_at(p, tick);
        double error = (double)(int64_t)(wall - at);
        if (error > CLOCK_STEP_NS || error < -CLOCK_STEP_NS) {
                /* The wall clock was set: follow it, order across the step
                 * cannot be kept anyway. */
                add_piece(c, tick, wall, c->ns_per_tick);
                return;
        }
        double age = (double)(at - c->piece[c->n < CLOCK_PIECES ? 0 : c->n % CLOCK_PIECES].wall);
        double every = age / 8 < PIECE_MIN_NS ? PIECE_MIN_NS : age / 8 > PIECE_MAX_NS ? PIECE_MAX_NS : age / 8;
        if ((double)(at - p->wall) < every)
                return;
        double slew = error / (STEER_PIECES * every);
        slew = slew > CLOCK_MAX_SLEW ? CLOCK_MAX_SLEW : slew < -CLOCK_MAX_SLEW ? -CLOCK_MAX_SLEW : slew;
        add_piece(c, tick, at, c->ns_per_tick * (1.0 + slew));
}
