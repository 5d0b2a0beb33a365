/* SPDX-License-Identifier: MIT */
/*
 * An LTTng recording session for the benchmark, driven through the lttng
 * command: a tracepoint costs its real price only while a session has it
 * enabled. Starts a session daemon when none runs (and stops it again),
 * records into a temporary directory, and removes everything afterwards.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct bench_lttng {
        char name[64];
        char dir[160];          /* a temporary directory; the trace goes in it */
        pid_t sessiond;         /* the session daemon we started, else 0 */
        bool created;
};

/*
 * Creates and starts a session recording every ferret_bench:* user-space
 * event. Processes started afterwards register with the session daemon
 * before their main() and find the events enabled.
 * @return 0; -ENOENT when lttng-tools is not installed; another -errno,
 * with the reason in @why, when the session cannot be set up. Call
 * bench_lttng_cleanup() in every case.
 */
int bench_lttng_start(struct bench_lttng *l, char *why, size_t size);

/* Stops recording and reports the events the tracer discarded (its buffers
 * were full): the counterpart of Ferret's drops. */
int bench_lttng_stop(struct bench_lttng *l, uint64_t *ret_discarded);

/* Destroys the session, stops the session daemon if we started it, and
 * removes the trace. */
void bench_lttng_cleanup(struct bench_lttng *l);
