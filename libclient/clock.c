/* SPDX-License-Identifier: MIT */
#include <cpuid.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

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
#define PAIR_TRIES 16
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

void clock_convert_now(struct clock_conversion *c)
{
        if (!clock_use_tsc) {
                c->ref_tick = clock_mono_ns();
                c->ref_wall = clock_wall_ns();
                c->ns_per_tick = 1.0;
                return;
        }
        uint64_t mono, tick;
        do
                read_pair(clock_mono_ns, &tick, &mono);
        while (mono - first_mono < MIN_CALIBRATION_NS);
        c->ns_per_tick = (double)(mono - first_mono) / (double)(tick - first_tick);
        read_pair(clock_wall_ns, &c->ref_tick, &c->ref_wall);
}
