/* SPDX-License-Identifier: MIT */
/*
 * The span clock. The hot path reads raw ticks; the flusher turns them into
 * nanoseconds. Ticks are CLOCK_MONOTONIC nanoseconds, read through the vDSO.
 */
#pragma once

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_ticks(void)
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

/* The wall-clock time of a tick, given one (tick, wall) pair read together. */
static inline uint64_t clock_tick_to_wall(uint64_t tick, uint64_t ref_tick, uint64_t ref_wall)
{
        return ref_wall + (tick - ref_tick);
}

static inline uint64_t clock_ticks_to_ns(uint64_t ticks)
{
        return ticks;
}
