/* SPDX-License-Identifier: MIT */
/*
 * A run written for other tools (ferret export --format ...). Each writer
 * streams what it reads: chrome and speedscope read every span through
 * span-stream.h in bounded memory, folded reads the run's merged tree
 * (its call paths). They print the daemon's errors and return a negative
 * errno; failed writes to @f are left for out_file_close() to report.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ferret.pb-c.h"

/* Chrome's trace-event JSON: complete events ("X") for spans, async
 * begin/end pairs ("b"/"e") for async spans, process and thread names as
 * metadata events, tags and status in "args". */
int export_chrome(const char *runtime_dir, const char *run, FILE *f);
/* speedscope's file format: one evented profile per thread (and one for a
 * thread's async spans), frames shared. */
int export_speedscope(const char *runtime_dir, const char *run, FILE *f);
/* OTLP/HTTP to the collector at @url (proto/otlp-out.h's mapping);
 * @service names every span's service (NULL: each process's program). */
int export_otlp(const char *runtime_dir, const char *run, const char *url, const char *service);
/* Folded stacks, "root;child;leaf SELF_NS", from a merged tree. */
int export_folded(const Ferret__TreeResponse *t, FILE *f);

/* The basename of @path ("" stays ""). */
const char *export_basename(const char *path);
/* What to call process @pid, of whose spans @p (NULL: unknown) sent a
 * batch: "python3.11 pid 123", or, for the process spans `ferret run`
 * records on behalf of the processes it follows, "ferret run (process
 * spans)". Every picture and export names processes so. */
const char *export_process_label(const Ferret__Process *p, uint32_t pid, char *buf, size_t size);
/* What to call thread @tid of process @pid: "main thread" or "thread 12". */
const char *export_thread_label(uint32_t pid, uint32_t tid, char *buf, size_t size);
