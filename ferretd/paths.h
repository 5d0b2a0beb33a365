/* SPDX-License-Identifier: MIT */
/*
 * Per-call-path statistics of a run, kept by the ingest thread as it writes
 * spans and stored in the same commit (StoredPath records), so that a call
 * tree is built from them, in time and memory that grow with the number of
 * distinct paths, never with the spans. A client computes each span's path
 * when the span begins (proto/path.h); here a path is a node (its spans'
 * statistics, its name, its parent's path) or an alias, which stands for
 * its parent: the path of a span whose end was dropped, the stand-in path
 * of a parent known only by its span id, a path folded into "(other
 * paths)" past the cap.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "runs.h"
#include "store.h"
#include "wire.h"

/* Distinct call paths a run keeps by default (ferretd --max-paths): a
 * recursion as deep as a thread may nest spans fits. */
#define PATHS_MAX_DEFAULT 131072u
#define PATHS_OTHER_NAME "(other paths)"

struct path_stats {
        uint64_t path, parent;
        char *name;                   /* NULL for an alias */
        uint32_t pid;
        uint64_t start_ns;            /* earliest start, UINT64_MAX before the first */
        struct name_stats st;
        bool listed;                  /* in the run's list of paths to write */
        uint8_t *exemplar;            /* a packed TreeNode: the first span's details */
        size_t exemplar_len;
};

/* The run's paths; all of them are in memory while the run is. */
struct run_paths;

/* Sets the cap of distinct paths per run (nodes; aliases are capped at
 * twice as many). */
void paths_set_max(uint32_t max);
uint32_t paths_max(void);

/* Loads @run's paths from @store (none for a new run). */
int paths_load(struct store *store, uint32_t run, struct run_paths **ret);
void paths_free(struct run_paths *p);

/* Accounts one span of @spans (its self time computed already), and the
 * lost spans of @cols. A span without a path (an older client) is only
 * counted. *ret is where the span was counted (NULL: nowhere). Returns 0
 * or -ENOMEM. */
int paths_add_span(struct run *run, const struct wire_spans *spans, const struct wire_span *s, uint64_t self_ns,
                   struct path_stats **ret);
/* A child came after its parent (started at @start_ns), counted in @ps: @ns
 * less self time. Returns 0 or -ENOMEM. */
int paths_take_self(struct run *run, struct path_stats *ps, uint64_t start_ns, uint64_t ns);
int paths_add_lost(struct run *run, const Ferret__SpanColumns *cols);

/* Spans of the run stored without a path, since it was loaded. */
uint64_t paths_without(const struct run_paths *p);

/* Adds every path changed since the last call to @b, and what the spans
 * since add to the run's time buckets. */
void paths_write_dirty(struct run_paths *p, uint32_t run, struct store_batch *b);

/* StoredPath -> struct path_stats (for the query side too), and its
 * histogram record into it. */
int path_from_stored(struct path_stats *ps, uint64_t path, const void *value, size_t len);
int path_histogram_from_stored(struct path_stats *ps, const void *value, size_t len);
void path_stats_clear(struct path_stats *ps);
