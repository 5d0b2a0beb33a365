/* SPDX-License-Identifier: MIT */
/*
 * The store benchmark's workload, generated with the real client library by
 * forked producer processes: 40 span names, two tags a span (an int and a
 * short string), a parent with 3 children repeated, and durations made
 * random by a random amount of work inside each child span.
 *
 * The caller sets FERRET_RUNTIME_DIR (and FERRET_ON_FULL=block:MS, so that
 * nothing is dropped) in its environment before calling these, and never
 * records a span itself: each producer must start a client of its own.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* How many distinct span names the workload uses. */
#define WORKLOAD_NAMES 40

/* What one run's producers did, added up over them. */
struct workload_result {
        uint64_t emitted;       /* spans ended */
        uint64_t dropped;       /* spans the clients dropped (0 when blocking) */
        int flush_failures;     /* producers whose final ferret_flush() did not return 0 */
        int flush_error;        /* one of their results */
        double seconds;         /* start of emission until every producer's flush returned */
};

/*
 * Emits @spans spans into the run @run_id from @procs producer processes
 * that start together; each ends with ferret_flush(). When @slow_name is
 * not NULL, spans of that name do twice the work, for a run to diff
 * against another. 0, or -errno when a producer could not be started or
 * failed (a message is on stderr).
 */
int workload_emit(const char *run_id, uint64_t spans, unsigned procs, const char *slow_name,
                  struct workload_result *ret);

/*
 * Emits @count runs named PREFIX-NNNN of @spans spans each, one producer
 * process per run (the client reads FERRET_RUN_ID once per process), at
 * most @parallel at a time. Adds every producer's counters into *ret.
 * 0, or -errno (a message is on stderr).
 */
int workload_small_runs(const char *prefix, unsigned count, uint64_t spans, unsigned parallel,
                        struct workload_result *ret);

/* The name workload_emit() slows down in the second run of a diff. */
const char *workload_slow_name(void);
