/* SPDX-License-Identifier: MIT */
/*
 * A run's latest spans, by id, as ingest accounted them: a child that
 * reaches ferretd after its parent (its thread's buffer was sent in a later
 * batch) still counts in the parent's self time, and a span whose parent
 * the client knew by id only finds the parent's call path. Set-associative
 * (recent.c): later spans push older ones out, so the memory is fixed
 * (RECENT_SPANS entries a run, 3.5 MiB).
 */
#pragma once

#include <stdint.h>

#include "runs.h"

#define RECENT_SPANS 65536u

struct recent_span {
        uint64_t id, path;
        uint64_t start_ns, end_ns;
        uint64_t self_left;           /* its self time, which a late child can still take from */
        struct name_stats *stats;     /* its name's, in the run */
        struct path_stats *path_stats;/* its path's (paths.h), or NULL */
};

void recent_put(struct recent_spans *r, const struct recent_span *s);
/* The span @id if it is still remembered, else NULL. */
struct recent_span *recent_get(struct recent_spans *r, uint64_t id);
void recent_free(struct recent_spans *r);
