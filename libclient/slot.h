/* SPDX-License-Identifier: MIT */
/*
 * A span from begin to end: a slot of its thread's slot array, holding the
 * record that ending it copies into the ring (record.h). Only the owning
 * thread takes slots; any thread may end the span in one.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "record.h"

/* Open spans a thread may hold at once: address space reserved for them,
 * made ready SLOT_CHUNK at a time as spans nest deeper (a deep recursion
 * of 100,000 spans costs 50 MB while it lasts; a thread that nests a few
 * touches one page). Past it spans are dropped, and the summary says so. */
#define SLOTS_PER_THREAD (1u << 17)
#define SLOT_CHUNK 128
#define SLOT_BYTES 512                /* a power of two: slots are found by shifting */

/* A slot's state word: 0 when free, else SLOT_OPEN with the bits below,
 * or SLOT_ENDED alone. */
enum {
        SLOT_OPEN = 1,                /* set by the owner only */
        SLOT_INHERITED = 2,           /* opened before fork(): the parent records it */
        SLOT_ORPHANED = 4,            /* recorded as unfinished when its thread exited */
        SLOT_ENDED = 8,               /* ended while not its thread's current span */
        SLOT_ENDING = 16,             /* being ended by a call that is not the owner's fast path */
};

/* Who records a span that is ended while its thread exits: the end sets
 * SLOT_ENDING, the exit SLOT_ORPHANED, each with one atomic OR, and the one
 * that finds the other's bit absent records it (the other leaves it). */

struct thread_state;

/* A thread's open spans form a chain from its current span down through
 * each one's prev. A span ended as the current one leaves the chain at once
 * and its slot is free. One ended otherwise (by another thread, or out of
 * order) stays in the chain as SLOT_ENDED, and its owner frees it when the
 * chain is next walked past it (thread_current()), or unlinks it when it
 * runs out of slots (chain_compact()): so no slot is reused while a prev
 * link still points at it, and the links need no generation numbers to be
 * trusted. */
struct ferret_span {
        struct ferret_span *prev;     /* the thread's current span at begin */
        _Atomic uint32_t state;       /* SLOT_* bits */
        uint32_t index;               /* in its thread's array; set once, like owner */
        struct thread_state *owner;
        uint64_t reserved;            /* keeps rec 32-byte aligned: no copy splits a line */
        /* Ending the span copies rec and the payload behind it as they are;
         * rec.type and rec.tid are set when the thread takes the slots. */
        struct record rec;
        char payload[SLOT_BYTES - 32 - sizeof(struct record)];   /* inline name, tags, message */
};
#define SLOT_PAYLOAD sizeof(((struct ferret_span *)0)->payload)
_Static_assert(sizeof(struct ferret_span) == SLOT_BYTES, "slot size");
_Static_assert(offsetof(struct ferret_span, payload) == offsetof(struct ferret_span, rec) + sizeof(struct record),
               "a slot's payload follows its record, as in the ring");

static inline bool slot_open(struct ferret_span *s)
{
        return atomic_load_explicit(&s->state, memory_order_acquire) & SLOT_OPEN;
}

/* Whether @s is taken: open, or ended but still in its owner's chain. */
static inline bool slot_busy(struct ferret_span *s)
{
        return atomic_load_explicit(&s->state, memory_order_acquire) != 0;
}
