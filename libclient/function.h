/* SPDX-License-Identifier: MIT */
/* Function calls, through __cyg_profile_func_enter/exit (function.c). */
#pragma once

struct thread_state;

/* Reads FERRET_MAX_DEPTH, FERRET_MIN_DURATION_NS, FERRET_GUARD,
 * FERRET_INCLUDE and FERRET_EXCLUDE. */
void func_configure(void);
/* The thread is exiting: its open calls are recorded as unfinished, its
 * folded counts written out. */
void func_thread_exit(struct thread_state *ts);
/* The flusher measured the clock: thresholds can be set in ticks. */
void func_calibrated(double ns_per_tick);
