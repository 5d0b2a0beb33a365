/* SPDX-License-Identifier: MIT */
/*
 * A private ferretd for a benchmark: its own temporary directory holding the
 * database, the sockets and the log; started and awaited through the systemd
 * notify protocol (READY=1), never a sleep; stopped with SIGTERM and waitpid.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct bench_daemon {
        char dir[128];
        char db[192];
        char runtime_dir[192];
        char log[192];
        pid_t pid;
        char *const *extra;     /* more arguments of ferretd (NULL-terminated), or NULL */
};

/* Creates the directory, starts ferretd and waits until it is ready.
 * 0, or -errno with a message on stderr (and the daemon's log); on
 * failure nothing is left behind. */
int bench_daemon_start(struct bench_daemon *d);
/* The same, with @extra (NULL-terminated, kept by the caller) after the
 * daemon's usual arguments: --forward URL, --otlp-listen ADDR:PORT. */
int bench_daemon_start_args(struct bench_daemon *d, char *const *extra);

/* Starts ferretd again, stopped before with bench_daemon_stop(), on the
 * same database and runtime directory, and waits until it is ready.
 * 0, or -errno with a message on stderr; the directory stays either way. */
int bench_daemon_restart(struct bench_daemon *d);

/* The daemon's CPU time so far (user + system), from /proc/PID/stat. */
int bench_daemon_cpu_ns(const struct bench_daemon *d, uint64_t *ret);

/* The daemon's peak and current resident memory (VmHWM, VmRSS of
 * /proc/PID/status), in KiB. 0 or -errno. */
int bench_daemon_memory(const struct bench_daemon *d, uint64_t *ret_peak_kb, uint64_t *ret_rss_kb);

/* Makes the daemon's current resident memory its peak (clear_refs), so
 * that a later bench_daemon_memory() gives the peak of what came between.
 * 0 or -errno. */
int bench_daemon_reset_peak(const struct bench_daemon *d);

/* Whether the daemon still runs. When it has exited, reaps it and says so
 * on stderr, with its exit status and its log. */
bool bench_daemon_alive(struct bench_daemon *d);

/* SIGTERM, then waits: ferretd stores what it received before it exits.
 * Returns its wait status (0 when it was not running). */
int bench_daemon_stop(struct bench_daemon *d);

/* Prints the daemon's log on stderr, for a failure. */
void bench_daemon_print_log(const struct bench_daemon *d);

/* Stops the daemon if it runs, and removes its directory. */
void bench_daemon_cleanup(struct bench_daemon *d);
