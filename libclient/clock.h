/* SPDX-License-Identifier: MIT */
/*
 * The span clock. The hot path reads raw ticks: the TSC when it is invariant
 * and the kernel itself keeps time with it (about 10 ns a read, against 25-30
 * for clock_gettime), else CLOCK_MONOTONIC nanoseconds. The flusher turns
 * ticks into nanoseconds with a ratio it measures against CLOCK_MONOTONIC
 * over the whole life of the process, off the hot path.
 */
#pragma once

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

/* A conversion from ticks to nanoseconds, valid for one batch. */
struct clock_conversion {
        uint64_t ref_tick;            /* read together with ref_wall */
        uint64_t ref_wall;
        double ns_per_tick;
};

/* Decides which clock to use and records the first calibration point. */
void clock_init(void);
/* Measures the ratio afresh (the flusher, before each batch). */
void clock_convert_now(struct clock_conversion *c);

static inline uint64_t clock_to_wall(const struct clock_conversion *c, uint64_t tick)
{
        return c->ref_wall + (uint64_t)((double)(int64_t)(tick - c->ref_tick) * c->ns_per_tick);
}

static inline uint64_t clock_to_ns(const struct clock_conversion *c, uint64_t ticks)
{
        return (uint64_t)((double)ticks * c->ns_per_tick);
}
