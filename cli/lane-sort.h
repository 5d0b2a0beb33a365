/* SPDX-License-Identifier: MIT */
/*
 * A run's spans put back in time order, lane by lane. A lane is one
 * thread's synchronous spans, or its asynchronous ones (which overlap
 * freely). Pictures and exports that lay out each thread over time (the
 * report's timeline, speedscope's evented profiles) need a thread's spans
 * by start, and a parent before the children that start with it; ferretd
 * streams them in the order their batches were stored. The spans are
 * sorted in memory up to a bound, then in sorted runs written to temporary
 * files and merged: memory stays at the bound (16 MiB by default, and as
 * much again for glibc's qsort, which merges through a copy) whatever the
 * size of the run.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "name-table.h"
#include "wire.h"

struct lane_span {
        uint64_t start_ns, end_ns;     /* wall clock */
        uint32_t lane;                 /* index in lane_sort.lanes */
        uint32_t name;                 /* index in lane_sort.names */
        uint32_t flags;                /* FERRET__SPAN_FLAG__* (status, async...) */
        uint32_t reserved;
};

struct lane {
        uint32_t pid, tid;
        bool async;
        char *label;                   /* "python3.11 pid 12, thread 14 (async)" (export.h's names) */
        uint64_t spans;
};

struct lane_sort {
        struct lane_span *buf;
        size_t n, cap;                 /* cap: the in-memory bound, in spans */
        FILE **runs;                   /* sorted runs spilled to temporary files */
        size_t n_runs, cap_runs;
        struct name_table names;
        struct lane *lanes;
        size_t n_lanes, cap_lanes;
        uint32_t *lane_slots;          /* open addressing: index + 1 */
        size_t n_lane_slots;
};

#define LANE_SORT_DEFAULT_SPANS (1u << 19)   /* 16 MiB of lane_span (and as much for qsort's merge) */
#define LANE_SORT_MAX_NAMES 100000u          /* as ferretd's statistics */

int lane_sort_init(struct lane_sort *s, size_t memory_spans);
/* Adds @spans, of a batch from process @process (which names the lanes). Returns 0, or -ENOMEM / -errno of a temporary file. */
int lane_sort_add(struct lane_sort *s, const Ferret__Process *process, const struct wire_spans *spans);
/* Calls @fn with every span added, lane by lane (in lane index order),
 * each lane's spans by start, the longer first when two start together.
 * Stops at @fn's first negative result and returns it. */
int lane_sort_each(struct lane_sort *s, int (*fn)(void *ctx, const struct lane_span *sp), void *ctx);
void lane_sort_free(struct lane_sort *s);
