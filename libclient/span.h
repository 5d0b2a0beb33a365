/* SPDX-License-Identifier: MIT */
/* What span.c offers the rest of the library, besides the API. */
#pragma once

#include <stdint.h>

#include "ferret.h"

struct thread_state;

/* Records the spans an exiting thread leaves open, as unfinished. */
void span_close_thread(struct thread_state *ts);
/* Says which spans of @ts had their end dropped, if the ring has room now
 * (ferret_flush() and thread exit call it). */
void span_write_lost(struct thread_state *ts);
/* The same for a function call whose record was dropped. */
void span_note_lost(struct thread_state *ts, uint64_t span_id, uint64_t parent_id, uint64_t path,
                    uint64_t parent_path);
/* The call path of the span of @ctx, as well as this process can know it:
 * the thread's current spans, the contexts it handed out lately, else the
 * parent's foreign path (proto/path.h). */
uint64_t span_path_of(ferret_ctx_t ctx);
/* Sets the parent of spans begun without one (FERRET_TRACEPARENT, fork()). */
void span_set_root_parent(ferret_ctx_t parent, uint64_t path);
