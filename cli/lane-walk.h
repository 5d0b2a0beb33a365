/* SPDX-License-Identifier: MIT */
/*
 * A lane's spans as a stack over time: what every consumer that draws or
 * lists a thread's spans in order needs (speedscope's evented profiles, the
 * samples of the Chrome export, the report's timeline). The spans come from
 * lane-sort.h, by start; each opens on top of the spans still open, and
 * those that end at or before its start close first. A span that would
 * outlive the span it opened in (ended by another thread, or one of a
 * thread's async spans) is closed with it, so that the spans always form a
 * stack, as those consumers need.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lane-sort.h"

struct lane_walk_ops {
        /* Lane @index begins (lanes come in index order, each once). */
        int (*lane)(void *ctx, uint32_t index);
        /* @sp opens at depth @depth (0: nothing else open), and will close
         * at @end_ns (its own end, or its enclosing span's if earlier). */
        int (*open)(void *ctx, const struct lane_span *sp, uint64_t end_ns, size_t depth);
        /* The span named @name at depth @depth closes at @at_ns. */
        int (*close)(void *ctx, uint32_t name, uint64_t at_ns, size_t depth);
        /* The lane being walked has ended (everything in it closed). */
        int (*lane_end)(void *ctx);
};

/* Walks every lane of @sort (lane_sort_each(): once only). Any callback may
 * be NULL. Stops at a callback's first negative result and returns it;
 * -ENOMEM, or what lane_sort_each() returns. */
int lane_walk(struct lane_sort *sort, const struct lane_walk_ops *ops, void *ctx);
