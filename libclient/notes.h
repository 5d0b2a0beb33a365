/* SPDX-License-Identifier: MIT */
/*
 * Notes: lines for the run's summary (the function guard's "stopped
 * recording ..."). They do not go through a thread's ring, where a full
 * ring would drop them with the spans they explain.
 */
#pragma once

struct encoder;

/* Queues @text (truncated to 511 bytes). Safe in a signal handler. */
void notes_add(const char *text);

/* Adds the notes from @*next on that are complete; advances @*next. */
void notes_encode(struct encoder *e, unsigned *next);

/* In a forked child: the parent sends its own notes. */
void notes_after_fork_child(void);
