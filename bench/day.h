/* SPDX-License-Identifier: MIT */
/*
 * The store benchmark's day-long run: spans whose timestamps spread over the
 * 24 hours before now, as a service traced for a day leaves them, sent to
 * ferretd as the client library would send them (batches with call paths),
 * but with the start times made up, which the library cannot do. Requests of
 * six spans: request > (db, cache > db, render > template).
 */
#pragma once

#include <stdint.h>

struct day_run {
        uint64_t spans;           /* sent and stored */
        uint64_t first_ns, end_ns;/* the timestamps span [first, end) */
        uint64_t *starts;         /* every span's start, sorted (for the truth of a window) */
        double seconds;           /* sending until ferretd said it stored the last batch */
};

/* Sends about @spans spans into run @run of the ferretd at @runtime_dir,
 * starting over the day before now. 0 or -errno (a message on stderr). */
int day_emit(const char *runtime_dir, const char *run, uint64_t spans, struct day_run *ret);
/* Spans that start at @since_ns or later. */
uint64_t day_spans_since(const struct day_run *d, uint64_t since_ns);
void day_run_free(struct day_run *d);
