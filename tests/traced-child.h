/* SPDX-License-Identifier: MIT */
/*
 * The child process a client test forks to trace in: the test's own process
 * never starts the client, so that each child starts one of its own, with
 * the environment (run, buffer size, what to do when full) the test gives
 * it, and a child that crashes or hangs fails its test instead of taking
 * the harness down. These are the steps such children share: forking into a run,
 * a profiling timer that interrupts them, numbers they report back, and
 * their exit status, which says how their flush went.
 */
#pragma once

#include <signal.h>
#include <stdnoreturn.h>
#include <sys/types.h>
#include <time.h>

/* Forks a child whose spans belong to run @run (NULL leaves FERRET_RUN_ID
 * as it is); returns its pid (0 in it). A @watchdog_seconds other than 0
 * kills the child with SIGALRM after that long: a child that blocks fails
 * its test rather than hanging it. */
pid_t fork_in_run(const char *run, unsigned watchdog_seconds);

/* In a child: waits until everything is stored, and exits with 0 only if
 * nothing was dropped. */
noreturn void exit_when_all_stored(void);

/* In a child: flushes, and exits with 0 if what was not dropped is stored
 * (ferret_flush() returned 0, or -ENODATA: the drops are counted). */
noreturn void exit_when_flushed(void);

/* In a child: sends SIGPROF to it every @interval_us microseconds (less
 * than a second), caught by @handler (SA_RESTART), until timer_delete(*ret).
 * Returns 0, or -1 with errno set. */
int start_profiling_timer(void (*handler)(int), long interval_us, timer_t *ret);

/* Two numbers a child sends its parent, through a pipe. */
struct child_report {
        int fds[2];
};

/* fork_in_run() for a child that reports to its parent through @ret. */
pid_t fork_reporting(const char *run, unsigned watchdog_seconds, struct child_report *ret);
/* In the child; exits with 4 if it cannot write them. */
void child_report_send(struct child_report *r, int a, int b);
/* In the parent, after the child sent them. */
void child_report_receive(struct child_report *r, int ret[2]);
