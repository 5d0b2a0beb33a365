/* SPDX-License-Identifier: MIT */
/*
 * The CPUs the client library is written for. Its hot path is x86-64 code:
 * it reads the TSC with rdtsc (clock.h, clock.c, span.c), copies records
 * with SSE2 moves (span.c), claims span ids with xaddq (thread.h),
 * prefetches ring lines with prefetchw (ring.h) and asks cpuid whether the
 * TSC is invariant and PREFETCHW present (clock.c, ring.c). A port needs
 * each of those in portable form, and its lock-free code (rings, slots,
 * the name table) run on a weakly ordered CPU, where it never has.
 * libclient/meson.build refuses other CPUs when the build is configured;
 * this says the same to a build made another way.
 */
#pragma once

#if !defined(__x86_64__)
#error "libferret-client supports x86-64 only: its hot path uses rdtsc, SSE2, xaddq, prefetchw and cpuid (see libclient/cpu.h)"
#endif
