/* SPDX-License-Identifier: MIT */
/*
 * Per-thread states: a ring buffer and the slots of open spans. A state is
 * created on a thread's first span and never freed: when its thread exits it
 * goes on a free list with whatever its ring still holds, and the next new
 * thread continues in the same ring while the flusher drains it. So
 * short-lived threads cost no allocation and lose no span.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "client.h"
#include "function.h"
#include "ids.h"
#include "notes.h"
#include "pages.h"
#include "ring.h"
#include "span.h"
#include "thread.h"

__thread struct thread_state *tls_state __attribute__((tls_model("initial-exec")));

#define ID_BLOCK 1024

/* Each thread has a home ring of its own (and 64 KiB of slots); bursts
 * that fill it overflow into FERRET_BUFFER_SIZE (ring.c). The slots and the
 * state share one mapping: mmap, not malloc, because a thread's first span
 * may come from a signal handler that interrupted malloc on this thread. */
static struct thread_state *state_alloc(void)
{
        size_t slots_bytes = SLOTS_PER_THREAD * sizeof(struct ferret_span);
        size_t bytes = slots_bytes + ((sizeof(struct thread_state) + 63) & ~(size_t)63);
        char *p = map_reserved(bytes);
        if (!p)
                return NULL;
        /* Zeroed by mmap; slots_bytes keeps the state 64-byte aligned. */
        struct thread_state *ts = (struct thread_state *)(p + slots_bytes);
        if (ring_init(&ts->ring, RING_HOME_BYTES) < 0) {
                munmap(p, bytes);
                return NULL;
        }
        ts->slots = (struct ferret_span *)p;

        /* Publish: the flusher walks this list without a lock. */
        struct thread_state *head = atomic_load(&client_g.all_states);
        do
                ts->next = head;
        while (!atomic_compare_exchange_weak(&client_g.all_states, &head, ts));
        return ts;
}

static void slots_prepare(struct thread_state *ts, unsigned from, unsigned to)
{
        for (unsigned i = from; i < to; i++) {
                struct ferret_span *s = &ts->slots[i];
                s->owner = ts;
                s->index = i;
                s->rec.type = RECORD_SPAN;
                s->rec.tid = ts->tid;
        }
}

/* What never changes while a thread owns the slots is written once here,
 * for the slots made ready so far. */
static void slots_adopt(struct thread_state *ts)
{
        if (ts->slots_ready < SLOT_CHUNK)
                ts->slots_ready = SLOT_CHUNK;
        slots_prepare(ts, 0, ts->slots_ready);
}

/* Called by the owner with its signal guard up (a handler drops instead). */
bool slots_extend(struct thread_state *ts)
{
        unsigned ready = ts->slots_ready;
        if (ready >= SLOTS_PER_THREAD) {
                static _Atomic bool said;
                if (!atomic_exchange_explicit(&said, true, memory_order_relaxed)) {
                        char note[160];
                        snprintf(note, sizeof(note), "spans nested more than %u deep in one thread were dropped",
                                 SLOTS_PER_THREAD);
                        notes_add(note);
                }
                return false;
        }
        slots_prepare(ts, ready, ready + SLOT_CHUNK);
        ts->slots_ready = ready + SLOT_CHUNK;
        return true;
}

static void state_adopt(struct thread_state *ts)
{
        ts->tid = (uint32_t)syscall(SYS_gettid);
        slots_adopt(ts);
        ts->rng = ids_random64() | 1;
        ts->trace_hi = ids_next(&ts->rng);
        ts->current = NULL;
        ts->in_api = 0;
        tls_state = ts;
        pthread_setspecific(client_g.thread_key, ts);
}

/* Set while this thread holds free_lock: a signal handler tracing in the
 * meantime must not take it again (it would wait for itself forever). */
static __thread bool creating __attribute__((tls_model("initial-exec")));

struct thread_state *thread_state_create(void)
{
        if (creating) {
                atomic_fetch_add(&client_g.dropped_global, 1);
                return NULL;
        }
        creating = true;
        atomic_signal_fence(memory_order_seq_cst);
        pthread_mutex_lock(&client_g.free_lock);
        struct thread_state *ts = client_g.free_states;
        if (ts)
                client_g.free_states = ts->next_free;
        pthread_mutex_unlock(&client_g.free_lock);

        if (!ts)
                ts = state_alloc();
        if (ts)
                state_adopt(ts);
        else
                atomic_fetch_add(&client_g.dropped_global, 1);
        atomic_signal_fence(memory_order_seq_cst);
        creating = false;
        return ts;
}

/* pthread key destructor: the thread is exiting. Its spans still in the ring
 * stay there for the flusher; its open slots stay open for whoever ends them. */
void thread_state_release(void *p)
{
        struct thread_state *ts = p;
        /* The thread is leaving: a signal handler that traces on it from
         * here on drops its spans. Otherwise it would begin spans while
         * the chain is being closed, or, once tls_state is cleared, create
         * a state and wait for free_lock, which this thread may hold. */
        ts->in_api = 1;
        creating = true;
        atomic_signal_fence(memory_order_seq_cst);
        if (atomic_load_explicit(&client_g.state, memory_order_relaxed) == CLIENT_READY) {
                span_close_thread(ts);
                func_thread_exit(ts);
        }
        ts->current = NULL;

        /* Spans left open keep their slots. Should they pile up (threads
         * that never end what they begin), the next thread gets fresh slots
         * and the old array stays alive for whoever still holds a handle. */
        unsigned open = 0;
        for (unsigned i = 0; i < ts->slots_ready; i++)
                open += slot_busy(&ts->slots[i]);
        if (open > SLOT_CHUNK / 4) {
                struct ferret_span *fresh = map_reserved(SLOTS_PER_THREAD * sizeof(*fresh));
                if (fresh) {
                        ts->slots = fresh;
                        ts->slots_ready = 0;
                        slots_adopt(ts);
                        ts->slot_hint = 0;
                }
        }
        if (tls_state == ts)
                tls_state = NULL;
        pthread_mutex_lock(&client_g.free_lock);
        ts->next_free = client_g.free_states;
        client_g.free_states = ts;
        pthread_mutex_unlock(&client_g.free_lock);
}

uint64_t thread_state_next_id_block(struct thread_state *ts)
{
        uint64_t n = atomic_fetch_add_explicit(&client_g.id_counter, ID_BLOCK, memory_order_relaxed);
        ts->id_next = client_g.id_base + n;
        ts->id_end = ts->id_next + ID_BLOCK;
        /* 0 means "no span": skip it if the block straddles it. */
        if (ts->id_next == 0 || ts->id_end < ts->id_next)
                return thread_state_next_id_block(ts);
        return ts->id_next;
}

/* Called when the ring's head passes wake_at (see ring_wake_check()). */
void ring_wake(struct ring *ring)
{
        struct thread_state *ts = (struct thread_state *)((char *)ring - offsetof(struct thread_state, ring));
        if (!ring_wake_check(ring))
                return;
        if (atomic_load_explicit(&ts->wake_pending, memory_order_relaxed))
                return;
        atomic_store_explicit(&ts->wake_pending, true, memory_order_relaxed);
        uint64_t one = 1;
        ssize_t w = write(client_g.wake_fd, &one, sizeof(one));
        (void)w; /* A full eventfd means the flusher is being woken anyway. */
}

/* In a forked child only the forking thread exists. Its ring holds spans the
 * parent will send, so it starts empty; its open spans belong to the parent
 * (ending them here records nothing) but stay current, so the child's first
 * spans are their children. Every other state is free for reuse. */
void thread_states_after_fork_child(void)
{
        client_g.free_states = NULL;
        for (struct thread_state *ts = atomic_load(&client_g.all_states); ts; ts = ts->next) {
                ring_reset_after_fork(&ts->ring);
                atomic_store(&ts->recorded, 0);
                atomic_store(&ts->dropped, 0);
                ts->dropped_reported = 0;
                atomic_store(&ts->wake_pending, false);
                ts->id_next = ts->id_end = 0;
                for (unsigned i = 0; i < ts->slots_ready; i++) {
                        struct ferret_span *s = &ts->slots[i];
                        if (ts != tls_state)
                                atomic_store(&s->state, 0);
                        else if (slot_open(s))
                                atomic_fetch_or(&s->state, SLOT_INHERITED);
                }
                if (ts == tls_state) {
                        ts->tid = (uint32_t)syscall(SYS_gettid);
                        slots_adopt(ts);
                        ts->rng = ids_random64() | 1;
                        ts->trace_hi = ids_next(&ts->rng);
                } else {
                        ts->next_free = client_g.free_states;
                        client_g.free_states = ts;
                }
        }
        /* Every ring is back home: no overflow segment is charged. */
        atomic_store(&client_g.allocated_bytes, 0);
}
