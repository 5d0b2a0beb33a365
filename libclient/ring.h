/* SPDX-License-Identifier: MIT */
/*
 * A thread's ring (ring.c): the producer side, shared by spans (span.c)
 * and function calls (function.c), which only the owning thread calls, and
 * the flusher's side. Each ring has one producer and one consumer, so both
 * sides only load and store: no lock and no read-modify-write on the hot
 * path. What the records in it hold is record.h's business.
 */
#pragma once

#include "cpu.h"          /* first: elsewhere than x86-64, a clear error before anything else */

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "compiler.h"
#include "record.h"

/* A thread's ring is a chain of segments. It starts in its home segment;
 * when that fills, the producer links an overflow segment twice the size
 * (charged to FERRET_BUFFER_SIZE) and writes there, while the flusher
 * finishes the older one and follows the link. Once the flusher has left
 * home, the producer goes back to it: the home segment stays warm in the
 * cache, overflow segments only absorb bursts. Segments are mmap()ed, so
 * that growing is safe in a signal handler; the descriptor sits in the page
 * after the data. */
struct ring_segment {
        char *data;
        uint64_t size;                        /* a power of two */
        uint64_t start;                       /* first ring position stored here */
        uint64_t end;                         /* one past the last; set before next */
        _Atomic(struct ring_segment *) next;  /* the segment the producer went on to */
        struct ring_segment *retired_next;    /* the flusher's list of segments to unmap */
        bool charged;                         /* counted in client.allocated_bytes */
};

struct ring {
        _Atomic uint64_t head;        /* written by the producer */
        char pad0[56];
        _Atomic uint64_t tail;        /* written by the consumer */
        _Atomic(struct ring_segment *) cseg;  /* the consumer's segment */
        struct ring_segment *retired; /* left by the consumer, unmapped once released */
        _Atomic(struct ring_segment *) spare; /* a released overflow segment, kept for the next burst */
        uint64_t spare_since_ns;      /* when the consumer kept it (consumer only) */
        _Atomic uint32_t released;    /* bumped as the consumer releases room to a
                                       * waiting producer: the futex it sleeps on */
        _Atomic uint32_t waiting;     /* the producer waits for room */
        char pad1[16];
        /* The producer's side: its segment, copied out for the hot path. */
        uint64_t tail_seen;           /* the producer's last view of tail, at least start */
        uint64_t wake_at;             /* head position past which to check on the flusher */
        uint32_t full_skip;           /* records to drop before looking at tail again */
        uint64_t size;                /* seg->size */
        char *data;                   /* seg->data */
        uint64_t start;               /* seg->start */
        struct ring_segment *seg;
        struct ring_segment *home;
};

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

/* The pad a record of @need bytes at @head needs first: the room left
 * before the end of the buffer when it is too short, else 0. */
static inline uint64_t ring_pad_before(const struct ring *r, uint64_t head, uint64_t need)
{
        uint64_t off = head & RING_MASK(r);
        return off + need > r->size ? r->size - off : 0;
}

/* Whether @bytes from @head on are free, as far as the producer has seen
 * the tail: the one test of room, on every path that writes. */
static inline bool ring_has_room(const struct ring *r, uint64_t head, uint64_t bytes)
{
        return head + bytes - r->tail_seen <= r->size;
}

/* Reserves @need bytes of @r, writing a pad record first when the space left
 * before the end of the buffer is too short. Returns NULL when full and the
 * ring may not grow. */
static inline char *ring_reserve(struct ring *r, uint64_t need, uint64_t *ret_head)
{
        uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
        uint64_t pad = ring_pad_before(r, head, need);

        if (unlikely(!ring_has_room(r, head, pad + need)))
                return ring_reserve_full(r, need, ret_head);
        if (unlikely(pad)) {
                struct record_header h = record_header_of(RECORD_PAD, (uint32_t)pad, 0);
                memcpy(r->data + (head & RING_MASK(r)), &h, sizeof(h));
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
        /* Sequentially consistent for ring_release()'s sake; on x86-64 it
         * is the same load as an acquire. */
        uint64_t tail = atomic_load_explicit(&r->tail, memory_order_seq_cst);
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

/* The consumer's side: the records before @tail are done with; wakes the
 * producer if it waits for room. */
void ring_release(struct ring *r, uint64_t tail);

/* ring_reserve() that waits up to @wait_ms for the flusher to make room
 * (FERRET_ON_FULL=block, and a thread's last counts) rather than drop. It
 * sleeps until ring_release() says room was made. */
char *ring_reserve_waiting(struct ring *r, uint64_t need, uint64_t *ret_head, int wait_ms);

/* The one commit: makes the records written up to @new_head visible to the
 * flusher. Returns true when the ring passed the mark past which the
 * producer looks at the flusher's progress: the caller then calls
 * ring_wake(), when it suits it (span.c's fast end does so last, having
 * released the span's slot, so that it keeps nothing live across a call). */
static inline bool ring_commit(struct ring *r, uint64_t new_head)
{
        atomic_store_explicit(&r->head, new_head, memory_order_release);
        return unlikely(new_head > r->wake_at);
}

/* After ring_commit() said so: checks on the flusher and wakes it when more
 * than half a home of records waits (thread.c). */
void ring_wake(struct ring *r);
