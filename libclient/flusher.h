/* SPDX-License-Identifier: MIT */
/* The flusher thread (flusher.c). */
#pragma once

/* Opens the sockets and starts the thread; 0 or a negative errno. */
int flusher_start(void);
/* Flushes (up to @timeout_ms) and stops the thread. */
void flusher_stop(int timeout_ms);
/* ferret_flush(). */
int flusher_flush(int timeout_ms);
/* In a forked child: there is no flusher thread. */
void flusher_after_fork_child(void);
