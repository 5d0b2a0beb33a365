/* SPDX-License-Identifier: MIT */
/*
 * Writing into a thread's ring: the producer side, shared by spans
 * (span.c) and function calls (function.c). Only the owning thread calls
 * these.
 */
#pragma once

#include <stdatomic.h>
#include <stdint.h>

#include "client.h"

#define RING_MASK(r) ((r)->size - 1)
#define RING_FULL_SKIP 64

/* Reserves @need bytes of @r, writing a pad record first when the space left
 * before the end of the buffer is too short. Returns NULL when full. */
static inline char *ring_reserve(struct ring *r, uint64_t need, uint64_t *ret_head)
{
        uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
        uint64_t off = head & RING_MASK(r);
        uint64_t pad = off + need > r->size ? r->size - off : 0;

        if (unlikely(head + pad + need - r->tail_seen > r->size)) {
                /* Full. Reading tail costs a cache miss (the flusher writes
                 * it), so a full ring is looked at again only every so many
                 * spans: dropping stays cheap while the flusher catches up. */
                if (r->full_skip) {
                        r->full_skip--;
                        return NULL;
                }
                r->tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
                if (head + pad + need - r->tail_seen > r->size) {
                        r->full_skip = RING_FULL_SKIP;
                        return NULL;
                }
        }
        if (unlikely(pad)) {
                struct record *p = (struct record *)(r->data + off);
                p->size = (uint32_t)pad;
                p->type = RECORD_PAD;
                head += pad;
        }
        *ret_head = head;
        return r->data + (head & RING_MASK(r));
}

/* FERRET_ON_FULL=block:MS: waits (up to MS) for the flusher to make room
 * rather than drop. For tests and benchmarks that must be complete. */
void *ring_wait_room(struct thread_state *ts, uint64_t need, uint64_t *ret_head);

/* Makes what was written up to @new_head visible to the flusher. */
static inline void ring_publish(struct ring *r, uint64_t new_head)
{
        atomic_store_explicit(&r->head, new_head, memory_order_release);
}
