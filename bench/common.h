/* SPDX-License-Identifier: MIT */
/*
 * What the benchmarks share: the clock, percentiles, temporary directories,
 * running a helper program with its output captured, a description of the
 * machine and of the build, and a tiny JSON string writer.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* CLOCK_MONOTONIC in nanoseconds: the clock the client library also uses. */
uint64_t bench_now_ns(void);

/* The nearest-rank percentile @p (0..100) of @n values; sorts them in place.
 * With 31 values, p99 is the largest: say so where it is printed. */
double bench_percentile(double *v, size_t n, double p);

/* Creates a private directory /tmp/PREFIX-XXXXXX into @ret. 0 or -errno. */
int bench_mkdtemp(const char *prefix, char *ret, size_t size);

/* Removes a directory tree; errors are ignored (it is only clean-up). */
void bench_rmtree(const char *path);

/*
 * Runs @argv (searched in PATH) and waits for it. Its stdout and stderr are
 * captured into *ret_out and *ret_err when these are not NULL (free them),
 * else stdout goes to /dev/null and stderr is passed through.
 * @return the wait status, or -errno when it could not be started.
 */
int bench_run(char *const argv[], char **ret_out, char **ret_err);
/* The same, with the child's resource usage (its peak resident memory is
 * ru_maxrss, in KiB) in *@ret_usage when it is not NULL. */
struct rusage;
int bench_run_usage(char *const argv[], char **ret_out, char **ret_err, struct rusage *ret_usage);

/* The daemon and the command: $FERRETD and $FERRET_CLI when set, else the
 * ones of the build tree this benchmark was built in. */
const char *bench_ferretd_path(void);
const char *bench_ferret_cli_path(void);

struct bench_machine {
        char cpu[256];          /* "model name" of /proc/cpuinfo */
        char clocksource[64];   /* the kernel's current clocksource */
        char kernel[128];
        long cpus;
};
void bench_machine_get(struct bench_machine *ret);

/*
 * With two CPUs or more, the recording thread gets one CPU and everything
 * else (the daemon, the library's flusher, LTTng's daemons) the others, so
 * that the measured thread is not preempted by the work it hands off.
 * bench_pin_services() moves the calling process to all the CPUs it may use
 * but one (processes it starts inherit that) and returns the one left for
 * the recorder, or -1 when there is only one CPU. bench_pin_recorder() moves
 * the calling thread to @cpu.
 */
int bench_pin_services(void);
bool bench_pin_recorder(int cpu);

/* How the client library was built: "debugoptimized (-O2)". */
const char *bench_build_description(void);

/* A warning when the build makes the numbers meaningless (no optimisation,
 * sanitizers), else NULL. */
const char *bench_build_warning(void);

/* Writes @s as a JSON string, quotes included. */
void bench_json_string(FILE *f, const char *s);

/* The number after "@key": in flat JSON such as `ferret query --json`
 * prints. 0 or -EINVAL. */
int bench_json_get_u64(const char *json, const char *key, uint64_t *ret);

/* Counts the spans a run has in the database of the daemon listening in
 * @runtime_dir, through `ferret query --run RUN --json`. 0 or -errno. */
int bench_stored_spans(const char *runtime_dir, const char *run_id, uint64_t *ret);
