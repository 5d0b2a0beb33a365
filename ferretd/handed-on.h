/* SPDX-License-Identifier: MIT */
/*
 * Children whose parent is not their thread's current span (handed to
 * another thread, or under the process's parent: SPAN_FLAG_HANDED_ON) that
 * reach ferretd before their parent. Such a child may have begun after its
 * parent ended, and then none of its time is the parent's: so each is kept
 * with its start until the parent comes, not only summed as children that
 * nest are. Bounded: past HANDED_ON_MAX waiting, a child is summed as the
 * others are.
 */
#pragma once

#include <stdint.h>

#include "map.h"

#define HANDED_ON_MAX 65536u

struct handed_on_child {
        uint64_t start_ns, ns;
        uint32_t next;                /* the parent's next child + 1, 0 for none */
};

struct handed_on {
        struct u64map first;          /* parent span id -> its latest child + 1 */
        struct handed_on_child *children;
        uint32_t n, cap;
        uint32_t free;                /* a free entry + 1, 0 for none */
        uint32_t waiting;
};

/* Returns 0, -ENOSPC past the bound, or -ENOMEM. */
int handed_on_add(struct handed_on *h, uint64_t parent_id, uint64_t start_ns, uint64_t ns);
/* The time of @parent_id's waiting children that began before @end_ns;
 * they all stop waiting. */
uint64_t handed_on_take(struct handed_on *h, uint64_t parent_id, uint64_t end_ns);
void handed_on_free(struct handed_on *h);
