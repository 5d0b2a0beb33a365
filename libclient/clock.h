/* SPDX-License-Identifier: MIT */
/*
 * The span clock. The hot path reads raw ticks: the TSC when it is invariant
 * and the kernel itself keeps time with it (about 10 ns a read, against 25-30
 * for clock_gettime), else CLOCK_MONOTONIC nanoseconds. The flusher turns
 * ticks into nanoseconds with a ratio it measures against CLOCK_MONOTONIC
 * over the whole life of the process, off the hot path.
 */
#pragma once

#include "cpu.h"          /* first: elsewhere than x86-64, a clear error before <x86intrin.h>'s */

#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <x86intrin.h>

extern bool clock_use_tsc;

static inline uint64_t clock_mono_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t clock_wall_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* clock_mono_ns() out of line: inlined, its timespec would give every
 * function that reads the clock a stack frame, fallback or not. */
uint64_t clock_ticks_fallback(void);

static inline uint64_t clock_ticks(void)
{
        if (__builtin_expect(clock_use_tsc, 1))
                return __rdtsc();
        return clock_ticks_fallback();
}

/* Ticks to wall-clock nanoseconds: one continuous, increasing function of
 * the tick for the life of the process (piecewise linear), so that a span
 * converted in one batch and its sibling converted in the next keep their
 * order however close they are. Each piece starts where the one before it
 * ends; its slope is the measured ratio, steered so that the offset from
 * CLOCK_REALTIME goes back to zero over the next few pieces. Only a step of
 * the wall clock (more than CLOCK_STEP_NS) breaks the continuity. */
#define CLOCK_PIECES 1024             /* kept, newest last: hours of them (see clock.c) */

struct clock_piece {
        uint64_t tick;                /* where it starts */
        uint64_t wall;                /* ns at tick: an integer, since a double
                                       * holds today's epoch ns only to 256 */
        double ns_per_tick;           /* its slope */
};

struct clock_conversion {
        struct clock_piece piece[CLOCK_PIECES];   /* a ring: [n - 1] is the newest */
        unsigned n;                   /* pieces made so far */
        double ns_per_tick;           /* the measured ratio, for durations */
};

/* Decides which clock to use and records the first calibration point. */
void clock_init(void);
/* Measures the ratio afresh and extends the conversion to now (the flusher,
 * before each batch). */
void clock_convert_now(struct clock_conversion *c);
/* The tick at @mono_ns, a CLOCK_MONOTONIC instant of the past (another
 * process's, say: the clock is system-wide). Exact without the TSC; with
 * it, through the ratio measured since clock_init(), to a few microseconds
 * for an instant milliseconds back. Never later than now. */
uint64_t clock_ticks_at_mono(uint64_t mono_ns);
/* clock_to_wall() for ticks before the newest piece. */
uint64_t clock_to_wall_past(const struct clock_conversion *c, uint64_t tick);

/* The piece's value at @tick, at or after its start: the offset in a
 * double (exact to well under a nanosecond for hours), rounded down, so
 * that the next piece can start exactly where this one arrives. */
static inline uint64_t clock_piece_at(const struct clock_piece *p, uint64_t tick)
{
        return p->wall + (uint64_t)((double)(tick - p->tick) * p->ns_per_tick);
}

static inline uint64_t clock_to_wall(const struct clock_conversion *c, uint64_t tick)
{
        const struct clock_piece *p = &c->piece[(c->n - 1) % CLOCK_PIECES];
        if (__builtin_expect(tick >= p->tick, 1))
                return clock_piece_at(p, tick);
        return clock_to_wall_past(c, tick);
}

/* A span's duration: the difference of its converted ends, so that a child
 * never starts before its parent nor ends after it (the conversion is
 * increasing). Across a step of the wall clock, the measured ratio. */
static inline uint64_t clock_span_ns(const struct clock_conversion *c, uint64_t t0, uint64_t t1, uint64_t start)
{
        uint64_t end = clock_to_wall(c, t1);
        return end >= start && t1 >= t0 ? end - start : (uint64_t)((double)(t1 - t0) * c->ns_per_tick);
}

static inline uint64_t clock_to_ns(const struct clock_conversion *c, uint64_t ticks)
{
        return (uint64_t)((double)ticks * c->ns_per_tick);
}
