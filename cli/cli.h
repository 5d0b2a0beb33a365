/* SPDX-License-Identifier: MIT */
/*
 * Shared pieces of the ferret command: options every verb understands, the
 * connection to a daemon, a private daemon of our own, and output helpers.
 * Errors are printed once, where they are detected, as one line on stderr;
 * callers just return a negative errno up to main().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "ferret.pb-c.h"
#include "runtime-daemon.h"

struct cli {
        bool json;
        bool color;
        const struct glyphs *glyphs;   /* the characters output may use, for the locale */
        const char *runtime_dir;       /* --runtime-dir, or NULL */
};

/* Every character beyond ASCII that output prints, once: Unicode where the
 * locale's codeset is UTF-8, ASCII otherwise (the C locale of a minimal
 * system shows UTF-8 as escapes). */
struct glyphs {
        const char *branch, *last_branch, *pipe;   /* "├── ", "└── ", "│   " */
        const char *times;                         /* "×" in "name ×3" */
        const char *delta;                         /* "Δ" in "P50 Δ" */
        const char *micro;                         /* "µ" in "µs" */
        const char *dot;                           /* " · " between header fields */
};

/* Prints "ferret: <message>" on stderr and returns -abs(error) (or -EINVAL
 * when @error is 0), so that `return cli_error(r, "...")` reads naturally. */
int cli_error(int error, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* --- Talking to a daemon (connect.c) --- */

/* The runtime directory to use, as runtime_find() decides it for every
 * part of Ferret: --runtime-dir, FERRET_RUNTIME_DIR, the user's daemon if
 * one listens, else /run/ferret. */
void cli_find_runtime_dir(const struct cli *cli, char *buf, size_t size);
/* Sends @req to the daemon in @dir and returns its response (free with
 * ferret__response__free_unpacked()), which carries the body that answers
 * @req. A response carrying an error, or another body, is printed and
 * turned into an error. */
int cli_request(const char *dir, Ferret__Request *req, int timeout_ms, Ferret__Response **ret);

/* --- A private daemon (spawn-daemon.c; runtime-daemon.h starts it) --- */

/* Starts a read-only ferretd on @db, with its sockets in a new private
 * directory, and waits until it is ready; says why not. */
int private_daemon_start(const char *db, struct runtime_daemon *ret);
/* SIGTERM, then waits for it to store everything and exit; says so when
 * it did not stop cleanly. */
int private_daemon_stop(struct runtime_daemon *d);
/* The path of a helper program or library installed beside us: 0, or
 * -ENOENT. cli_find_helper() says so. */
int cli_locate_helper(const char *name, const char *build_subdir, char *buf, size_t size);
int cli_find_helper(const char *name, const char *build_subdir, char *buf, size_t size);

/* --- Output (format.c) --- */

void cli_setup_output(struct cli *cli);
/* "950 ns", "12.3 µs" (or "us" without UTF-8), "120.50 ms", "2.35 s". */
const char *format_duration(uint64_t ns, char *buf, size_t size);
/* Local time, "2026-11-26 10:53:56". */
const char *format_time(uint64_t wall_ns, char *buf, size_t size);
const char *format_bytes(uint64_t bytes, char *buf, size_t size);
/* @escape when colour is on, else "". */
const char *color(const struct cli *cli, const char *escape);
#define C_RESET "\033[0m"
#define C_BOLD "\033[1m"
#define C_DIM "\033[2m"
#define C_RED "\033[31m"
#define C_YELLOW "\033[33m"
#define C_CYAN "\033[36m"
#define C_GREEN "\033[32m"

/* --- Verbs --- */

int cmd_run(struct cli *cli, int argc, char **argv);
int cmd_query(struct cli *cli, int argc, char **argv);
int cmd_analyze(struct cli *cli, int argc, char **argv);
int cmd_runs(struct cli *cli, int argc, char **argv);
int cmd_status(struct cli *cli, int argc, char **argv);
int cmd_rm(struct cli *cli, int argc, char **argv);
int cmd_diff(struct cli *cli, int argc, char **argv);
int cmd_export(struct cli *cli, int argc, char **argv);
int cmd_flame(struct cli *cli, int argc, char **argv);
int cmd_report(struct cli *cli, int argc, char **argv);

/* Summary and tree of a run, shared by query and analyze (render-*.c). */
struct query_options {
        const char *run;
        bool all;
        bool tree;
        bool expand;                   /* every span, not merged call paths */
        uint32_t depth;
        uint64_t min_duration_ns;
        const char *focus;
        uint64_t since_ns, until_ns;   /* spans that start in [since, until); 0: unbounded */
        bool whole_buckets;            /* a bound is relative: widen to whole time buckets */
        bool from_spans;               /* the merged tree from the spans, not the path records */
};
int query_execute(struct cli *cli, const char *runtime_dir, const struct query_options *o);
int render_summary(const struct cli *cli, const Ferret__SummaryResponse *s);
/* Every span, from the run's batches (gathered over the chunks of --expand). */
int render_spans(const struct cli *cli, const Ferret__RunInfo *run, ProtobufCBinaryData *const *batches, size_t n);
/* Merged call paths. */
int render_merged(const struct cli *cli, const Ferret__TreeResponse *t);
/* " [error: message]" after a span, coloured; nothing for ok. */
void print_status(const struct cli *cli, unsigned status, const char *message);
/* "1.5ms", "250us", "2s", "100ns" or a number of nanoseconds. */
int parse_duration(const char *s, uint64_t *ret);
/* A count from 1 to @max, in decimal digits only (no sign, no space):
 * 0, or -EINVAL. strtoul() alone takes "-1" for ULONG_MAX. */
int parse_count(const char *s, unsigned long max, unsigned long *ret);
/* A bound of a time window, as Unix ns: a duration back from @now_ns
 * ("5m", "2h", "1d", "30s"), a local time ("2026-12-04 10:30",
 * "2026-12-04T10:30:15", "2026-12-04", "10:30" today), or "@SECONDS" since
 * the epoch. Returns 0, 1 for a duration back from now (a time that
 * ferretd may widen to its time buckets' edges), or -EINVAL. */
int parse_time_bound(const char *s, uint64_t now_ns, uint64_t *ret);
/* parse_time_bound() for option --@name: sets *@whole_buckets when the
 * bound is relative. Prints the error and returns -EINVAL. */
int parse_window_bound(const char *name, const char *s, uint64_t now_ns, uint64_t *ret, bool *whole_buckets);
/* CLOCK_REALTIME in ns. */
uint64_t wall_now_ns(void);
