/* SPDX-License-Identifier: MIT */
/*
 * A thread's ring (ring.c): the producer side, shared by spans (span.c)
 * and function calls (function.c), which only the owning thread calls, and
 * the flusher's side.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "client.h"

#define RING_MASK(r) ((r)->size - 1)
#define RING_FULL_SKIP 64
/* A thread's home segment: mapped lazily, so an idle thread touches a page
 * or two of it; big enough that a steady producer wakes the flusher rarely,
 * small enough to stay in the cache. */
#define RING_HOME_BYTES (1u << 20)

/* Whether this CPU has PREFETCHW (older ones fault on it): ring_detect_cpu()
 * sets it once, before the first ring is used. */
extern bool ring_prefetch_write;
void ring_detect_cpu(void);

/* The flusher reads every line of the ring, so each line the producer comes
 * back to is shared with the flusher's core, and the first store into it
 * waits for that copy to be invalidated. Asking for the line in exclusive
 * state a few records ahead starts that wait early, beside the work between
 * spans instead of in front of the store. */
#define RING_PREFETCH_AHEAD 512

static inline void ring_prefetch(struct ring *r, uint64_t head)
{
        if (likely(ring_prefetch_write))
                __asm__ volatile("prefetchw %0" : : "m"(r->data[(head + RING_PREFETCH_AHEAD) & RING_MASK(r)]));
}

/* The slow side of ring_reserve(): the ring is full, or looks full. */
char *ring_reserve_full(struct ring *r, uint64_t need, uint64_t *ret_head);

/* Reserves @need bytes of @r, writing a pad record first when the space left
 * before the end of the buffer is too short. Returns NULL when full and the
 * ring may not grow. */
static inline char *ring_reserve(struct ring *r, uint64_t need, uint64_t *ret_head)
{
        uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
        uint64_t off = head & RING_MASK(r);
        uint64_t pad = off + need > r->size ? r->size - off : 0;

        if (unlikely(head + pad + need - r->tail_seen > r->size))
                return ring_reserve_full(r, need, ret_head);
        if (unlikely(pad)) {
                struct record *p = (struct record *)(r->data + off);
                p->size = (uint32_t)pad;
                p->type = RECORD_PAD;
                head += pad;
        }
        ring_prefetch(r, head);
        *ret_head = head;
        return r->data + (head & RING_MASK(r));
}

/* The producer's view of the tail: positions before its segment's start are
 * in older segments and take no room in this one. */
static inline uint64_t ring_tail_for_producer(struct ring *r)
{
        uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
        return tail > r->start ? tail : r->start;
}

/* A new thread's ring: a home segment of @size bytes, not counted against
 * the budget. */
int ring_init(struct ring *r, uint64_t size);

/* Called when head passes wake_at: goes back home if it may, sets where to
 * look next, and says whether the flusher should be woken (more than half a
 * home of records waits). Reads the tail: a cache miss, so only here. */
bool ring_wake_check(struct ring *r);

/* In a forked child: the ring starts empty, on the producer's segment. */
void ring_reset_after_fork(struct ring *r);

/* The consumer's side: the segment holding @pos, given the head it loaded
 * (acquire) before. Moves to the next segment when @pos reaches the end of
 * the current one; retires the one left. */
struct ring_segment *ring_consumer_segment(struct ring *r, uint64_t pos);

/* The position up to which @seg holds records, given the head loaded. */
static inline uint64_t ring_segment_limit(struct ring_segment *seg, uint64_t head)
{
        struct ring_segment *next = atomic_load_explicit(&seg->next, memory_order_acquire);
        return next && seg->end < head ? seg->end : head;
}

/* Frees the segments the consumer left whose records the tail has passed
 * (the encoder points into them until the batch is sent), keeping one as
 * the spare. */
void ring_consumer_release(struct ring *r, uint64_t now_ns);

/* Waits up to @wait_ms for the flusher to make room (FERRET_ON_FULL=block,
 * and a thread's last counts) rather than drop. */
void *ring_wait_room(struct thread_state *ts, uint64_t need, uint64_t *ret_head, int wait_ms);

/* Makes what was written up to @new_head visible to the flusher. */
static inline void ring_publish(struct ring *r, uint64_t new_head)
{
        atomic_store_explicit(&r->head, new_head, memory_order_release);
}
