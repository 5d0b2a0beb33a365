/* SPDX-License-Identifier: MIT */
/*
 * A thread's state (thread.c): its ring, its slots, its span ids and its
 * counters. Created on the thread's first span, handed to the next thread
 * when it exits, never freed.
 */
#pragma once

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cpu.h"
#include "ring.h"
#include "slot.h"

#define LOST_PENDING 64               /* dropped spans remembered for their children */

struct func_state;

struct thread_state {
        struct ring ring;
        struct ferret_span *slots;
        unsigned slot_hint;
        unsigned slots_ready;         /* slots [0, slots_ready) have owner and index set */
        struct ferret_span *current;
        uint32_t tid;
        uint64_t id_next, id_end;     /* a block of span ids from the process counter */
        uint64_t rng;
        uint64_t trace_hi;            /* high half of the traces this thread starts */
        volatile sig_atomic_t in_api; /* a signal handler calling in drops instead */
        /* Spans whose end was dropped, with their parents, until the ring
         * has room to say so (written with in_api up): the last
         * LOST_PENDING, oldest at lost_first, in a circle. */
        uint64_t lost[LOST_PENDING][4];   /* span id, parent id, path, parent path */
        unsigned n_lost, lost_first;
        _Atomic uint64_t recorded;    /* producer-only counters: load + store */
        _Atomic uint64_t dropped;
        uint64_t dropped_reported;    /* flusher-only */
        _Atomic bool wake_pending;
        struct func_state *func;      /* function-call tracing, allocated on first use */
        /* The flusher's view of this ring's function calls (flusher only). */
        struct call_context calls;
        struct thread_state *next;    /* in the list of every state (never removed) */
        struct thread_state *next_free;
};

extern __thread struct thread_state *tls_state __attribute__((tls_model("initial-exec")));

/* The calling thread's state, made (or taken from an exited thread) now;
 * NULL when that fails, counted as a drop. */
struct thread_state *thread_state_create(void);
/* The pthread key's destructor: the thread is exiting. */
void thread_state_release(void *state);
/* In a forked child: every state but the calling thread's is free. */
void thread_states_after_fork_child(void);
/* Takes a new block of span ids for @ts; returns its first. */
uint64_t thread_state_next_id_block(struct thread_state *ts);
/* Makes SLOT_CHUNK more slots ready; false when all are. */
bool slots_extend(struct thread_state *ts);

/* Takes the next span id of the thread's block in one instruction: a
 * signal handler that begins a span of its own meanwhile gets the next one,
 * not the same. (Not an atomic read-modify-write: the block is shared with
 * nobody, only with the thread's signal handlers.) The id may be past the
 * block (id_end): the caller then takes a new block. */
static inline uint64_t id_claim(struct thread_state *ts)
{
        uint64_t id = 1;
        __asm__ volatile("xaddq %0, %1" : "+r"(id), "+m"(ts->id_next));
        return id;
}

/* Adds to a counter that only the calling thread writes. */
static inline void counter_add(_Atomic uint64_t *c, uint64_t n)
{
        atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                              memory_order_relaxed);
}
