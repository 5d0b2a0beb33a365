/* SPDX-License-Identifier: MIT */
/*
 * The hot path: begin and end a span (tags.c writes what it carries).
 * Nothing here locks, allocates (after a thread's first span) or enters the
 * kernel, except the rare wake-up of the flusher when a ring passes half
 * full.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "clock.h"
#include "compiler.h"
#include "hooks.h"
#include "ids.h"
#include "intern.h"
#include "path.h"
#include "ring.h"
#include "slot.h"
#include "span.h"
#include "thread.h"

/* Exported for the header's macros: nonzero once tracing is known to be off
 * (disabled or shut down), so that they skip the calls altogether. */
volatile int ferret__off;

static inline bool client_ready(void)
{
        int state = atomic_load_explicit(&client_g.state, memory_order_relaxed);
        if (likely(state == CLIENT_READY))
                return true;
        if (state == CLIENT_DISABLED || state == CLIENT_SHUTDOWN)
                return false;
        return client_start_slow() == 0;
}

static inline struct thread_state *thread_get(void)
{
        struct thread_state *ts = tls_state;
        return likely(ts) ? ts : thread_state_create();
}

/* The thread's current span, past the spans of its chain that were ended
 * while not current (by another thread, or out of order): their slots are
 * this thread's, and free from here on (see struct ferret_span). */
static __attribute__((noinline)) struct ferret_span *thread_current_slow(struct thread_state *ts)
{
        struct ferret_span *c = ts->current;
        while (c && !(atomic_load_explicit(&c->state, memory_order_acquire) & SLOT_OPEN)) {
                struct ferret_span *prev = c->prev;
                atomic_store_explicit(&c->state, 0, memory_order_relaxed);
                c = prev;
        }
        ts->current = c;
        return c;
}

static inline struct ferret_span *thread_current(struct thread_state *ts)
{
        struct ferret_span *c = ts->current;
        if (likely(!c || atomic_load_explicit(&c->state, memory_order_relaxed) == SLOT_OPEN))
                return c;
        return thread_current_slow(ts);
}

/* Unlinks from the thread's chain the spans ended out of turn that it still
 * holds below open ones (see struct ferret_span), freeing their slots. They
 * would otherwise wait for every span above them to end: a thread that
 * interleaves long spans (coroutines, handed-over work) could run out of
 * slots with few spans open. Called when the slots run out. Returns how
 * many were freed. */
static unsigned chain_compact(struct thread_state *ts)
{
        unsigned freed = 0;
        for (struct ferret_span *c = thread_current(ts); c; c = c->prev) {
                struct ferret_span *p;
                while ((p = c->prev) && !(atomic_load_explicit(&p->state, memory_order_acquire) & SLOT_OPEN)) {
                        c->prev = p->prev;
                        atomic_store_explicit(&p->state, 0, memory_order_relaxed);
                        freed++;
                }
        }
        return freed;
}

/* A slot that no thread uses, searching from the hint; when none is free,
 * once more after chain_compact(). Only the owner allocates, so a slot seen
 * free stays free until this thread takes it. */
static __attribute__((noinline)) struct ferret_span *slot_search(struct thread_state *ts)
{
        unsigned h = ts->slot_hint;
        for (int pass = 0; pass < 2; pass++) {
                unsigned n = ts->slots_ready;
                for (unsigned i = 1; i <= n; i++) {
                        struct ferret_span *s = &ts->slots[(h + i) % n];
                        if (!slot_busy(s)) {
                                ts->slot_hint = (h + i) % n;
                                return s;
                        }
                }
                if (!chain_compact(ts))
                        break;
        }
        /* Nested deeper than ever in this thread: more slots. */
        unsigned first = ts->slots_ready;
        return slots_extend(ts) ? &ts->slots[first] : NULL;
}

/* Spans nest, so the hinted slot (the one after the current span's) is
 * nearly always free. Moves the hint past the slot it returns. */
static inline struct ferret_span *slot_alloc(struct thread_state *ts)
{
        unsigned h = ts->slot_hint;
        struct ferret_span *s = &ts->slots[h];
        if (likely(!slot_busy(s))) {
                ts->slot_hint = (h + 1) % ts->slots_ready;
                return s;
        }
        s = slot_search(ts);
        if (s)
                ts->slot_hint = (s->index + 1) % ts->slots_ready;
        return s;
}

static ferret_ctx_t slot_context(const struct ferret_span *s)
{
        return (ferret_ctx_t){ .trace_hi = s->rec.trace_hi, .trace_lo = s->rec.trace_lo, .span_id = s->rec.span_id };
}

static __attribute__((noinline)) void drop_one(struct thread_state *ts)
{
        counter_add(&ts->dropped, 1);
}

/* The parent of a span begun without an explicit one: the thread's current
 * span, else FERRET_TRACEPARENT's (or the span open at fork()), else none. */
static inline ferret_ctx_t implicit_parent(const struct ferret_span *cur)
{
        return cur ? slot_context(cur) : client_g.root_parent;
}

static inline uint64_t implicit_parent_path(const struct ferret_span *cur)
{
        return cur ? cur->rec.path : client_g.root_path;
}

/* Contexts handed out lately (ferret_span_context(), ferret_current()),
 * with their spans' paths: a span begun under one of them by another thread
 * finds its parent's path here. Each entry is two words written without a
 * lock; check holds span id ^ path, so a reader that sees the words of two
 * writers mixed finds a mismatch, not a wrong path. */
#define CONTEXT_PATHS 4096
static struct {
        _Atomic uint64_t path, check;
} context_paths[CONTEXT_PATHS];

static inline void context_path_remember(uint64_t span_id, uint64_t path)
{
        size_t i = (size_t)path_mix(span_id) & (CONTEXT_PATHS - 1);
        atomic_store_explicit(&context_paths[i].path, path, memory_order_relaxed);
        atomic_store_explicit(&context_paths[i].check, span_id ^ path, memory_order_relaxed);
}

uint64_t span_path_of(ferret_ctx_t ctx)
{
        if (!ctx.span_id)
                return PATH_NONE;
        if (ctx.span_id == client_g.root_parent.span_id && client_g.root_path)
                return client_g.root_path;
        struct thread_state *ts = tls_state;
        unsigned looked = 0;
        for (struct ferret_span *s = ts ? ts->current : NULL; s && looked < 8; s = s->prev, looked++)
                if (s->rec.span_id == ctx.span_id)
                        return s->rec.path;
        size_t i = (size_t)path_mix(ctx.span_id) & (CONTEXT_PATHS - 1);
        uint64_t path = atomic_load_explicit(&context_paths[i].path, memory_order_relaxed);
        uint64_t check = atomic_load_explicit(&context_paths[i].check, memory_order_relaxed);
        if (path && (check ^ path) == ctx.span_id)
                return path;
        return path_foreign(ctx.span_id);
}

/* Here, not in ids.c with the tracestate's format: that file is the
 * parsers alone (its fuzzer compiles it by itself). */
int ferret_ctx_tracestate(ferret_ctx_t ctx, char *buf, size_t size)
{
        if (!buf || !ferret_ctx_is_valid(ctx))
                return -EINVAL;
        if (size < FERRET_TRACESTATE_LEN + 1)
                return -ENOBUFS;
        return ids_tracestate_format(ctx, span_path_of(ctx), buf, size);
}

void span_set_root_parent(ferret_ctx_t parent, uint64_t path)
{
        client_g.root_parent = parent;
        client_g.root_path = parent.span_id ? (path ? path : path_foreign(parent.span_id)) : PATH_NONE;
}

/* --- Beginning a span. ---
 *
 * Every begin takes the same steps, in this order: claim a free slot (its
 * state becomes SLOT_OPEN), take a span id, fill the slot's record
 * (slot_fill(), then the name and the call path), link the slot in as the
 * thread's current span (slot_link()), and read the clock last, so that
 * none of this counts in the span. A signal handler may begin and end
 * spans of its own between any two steps: by the time the next step runs it
 * has returned, its spans ended and the current span restored, and the
 * order makes each step safe against it (a claimed slot is not the
 * handler's, an id is taken in one instruction, the span is current only
 * once filled).
 *
 * The common case, a literal name in a thread that has recorded before,
 * needs nothing more (ferret__span_begin_named()). Every other begin has a
 * step that is not one instruction (searching for a slot, compacting the
 * chain, taking a block of ids, freeing ended spans, copying a name) and
 * runs with the thread's signal guard up (in_api): a handler that begins a
 * span meanwhile drops it instead. */

/* Gives @r its id and its place: under @parent, or first of a new trace.
 * A trace id needs to be unique, not secret: the thread's random high half
 * and the root span's own id (random per process, then counted) as the low
 * half make it so without a random draw per span. Chosen before it is
 * stored, without a branch: a loop of top-level spans starts a trace each
 * time. */
static inline void record_place(struct thread_state *ts, struct record *r, ferret_ctx_t parent, uint64_t span_id)
{
        bool root = !parent.span_id;
        r->span_id = span_id;
        r->parent_id = parent.span_id;
        r->trace_hi = root ? ts->trace_hi : parent.trace_hi;
        r->trace_lo = root ? span_id : parent.trace_lo;
}

/* Fills the record of a claimed slot: its id and place under @parent (whose
 * call path is @parent_path), its name's number (0: the caller copies the
 * name into the payload), no payload and no flags, but HANDED_ON when the
 * parent is not the thread's current span (@handed_on: given explicitly, or
 * the process's). The call path follows, once the name's key is known. */
static inline __attribute__((always_inline)) void slot_fill(struct thread_state *ts, struct record *r,
                                                            ferret_ctx_t parent, uint64_t parent_path,
                                                            bool handed_on, uint64_t span_id, uint32_t name_id)
{
        record_place(ts, r, parent, span_id);
        r->parent_path = parent_path;
        r->name_id = name_id;
        record_header_reset(r);
        if (handed_on && parent.span_id)
                r->flags = FERRET__SPAN_FLAG__SPAN_FLAG_HANDED_ON;
}

/* Makes @s, filled in, the thread's current span, @prev the one it was. */
static inline __attribute__((always_inline)) void slot_link(struct thread_state *ts, struct ferret_span *s,
                                                            struct ferret_span *prev)
{
        s->prev = prev;
        atomic_signal_fence(memory_order_seq_cst);
        ts->current = s;
}

/* Without the TSC. Out of line and called last, so that the begin paths
 * keep nothing live across a call and need no saved registers. */
static __attribute__((noinline)) struct ferret_span *begin_clock_fallback(struct ferret_span *s)
{
        s->rec.t0 = clock_mono_ns();
        return s;
}

/* The last step of every begin: the span's clock starts, so that nothing
 * of the begin counts in it. */
static inline __attribute__((always_inline)) struct ferret_span *begin_clock_start(struct ferret_span *s)
{
        if (likely(clock_use_tsc)) {
                s->rec.t0 = __rdtsc();
                return s;
        }
        return begin_clock_fallback(s);
}

/* The end of every end. Ended as its thread's current span, @s leaves the
 * chain and its slot is free for its owner again; @known says the caller
 * has checked that it is. Ended otherwise, it stays in the chain as
 * SLOT_ENDED for the owner to free, unless its thread has exited (then it is
 * in no chain). The exchange settles a race with the owner ending it too. */
static inline __attribute__((always_inline)) void slot_release(struct thread_state *ts, struct ferret_span *s,
                                                               bool known)
{
        if (known || (ts && ts->current == s)) {
                ts->current = s->prev;
                if (!known)   /* the fast paths find slots without the hint */
                        ts->slot_hint = s->index;
                atomic_store_explicit(&s->state, 0, memory_order_release);
                return;
        }
        uint32_t state = atomic_load_explicit(&s->state, memory_order_relaxed);
        if (state & SLOT_OPEN)
                atomic_compare_exchange_strong_explicit(&s->state, &state, state & SLOT_ORPHANED ? 0 : SLOT_ENDED,
                                                        memory_order_release, memory_order_relaxed);
}

/* The ring was full a moment ago (ring_reserve_full() then skips looking
 * at it again for a while): a new span is dropped as it begins, before it
 * takes a slot and reads the clock, so that a program that produces faster
 * than the flusher drains pays least for what is lost. Its children become
 * its parent's. With FERRET_ON_FULL=block, spans wait at their end instead. */
static inline bool ring_full_drop(struct thread_state *ts)
{
        if (likely(!ts->ring.full_skip) || client_g.full_wait_ms)
                return false;
        ts->ring.full_skip--;
        counter_add(&ts->dropped, 1);
        return true;
}

/* Every begin but the common case (see above), with the signal guard up. */
static inline __attribute__((always_inline)) struct ferret_span *
begin_common(struct thread_state *ts, const ferret_ctx_t *parent_in, uint32_t name_id, const char *name)
{
        if (unlikely(ts->in_api)) {
                drop_one(ts);
                return NULL;
        }
        ts->in_api = 1;
        atomic_signal_fence(memory_order_seq_cst);
        struct ferret_span *s = NULL;
        if (likely(!ring_full_drop(ts)) && unlikely(!(s = slot_alloc(ts))))
                drop_one(ts);
        if (unlikely(!s)) {
                atomic_signal_fence(memory_order_seq_cst);
                ts->in_api = 0;
                return NULL;
        }
        atomic_store_explicit(&s->state, SLOT_OPEN, memory_order_relaxed);

        struct ferret_span *cur = thread_current(ts);
        /* A parent given that is the current span is the implicit one. */
        if (parent_in && parent_in->span_id == implicit_parent(cur).span_id)
                parent_in = NULL;
        ferret_ctx_t parent = parent_in ? *parent_in : implicit_parent(cur);
        uint64_t parent_path = parent_in ? span_path_of(parent) : implicit_parent_path(cur);
        if (unlikely(ts->id_next >= ts->id_end))
                thread_state_next_id_block(ts);
        struct record *r = &s->rec;
        slot_fill(ts, r, parent, parent_path, parent_in || !cur, id_claim(ts), name_id);
        uint64_t key;
        if (!name_id) {
                size_t len = text_len(name ? name : "", NAME_MAX_BYTES);
                r->payload_len = (uint16_t)payload_put_name(s->payload, name ? name : "", len);
                key = path_key_bytes(s->payload, len);
        } else {
                key = path_key_local(client_g.path_salt, name_id);
        }
        r->path = path_step(parent_path, key);
        slot_link(ts, s, cur);
        atomic_signal_fence(memory_order_seq_cst);
        ts->in_api = 0;
        return begin_clock_start(s);
}

ferret_span_t *ferret_span_begin(const char *name)
{
        if (!client_ready())
                return NULL;
        struct thread_state *ts = thread_get();
        return ts ? begin_common(ts, NULL, 0, name) : NULL;
}

/* Everything begin_named() does not do itself: the first span of the
 * process or thread, a name not yet interned, a signal handler, a slot
 * search, a new block of span ids, a current span ended elsewhere, a parent
 * other than the current span. */
static __attribute__((noinline)) ferret_span_t *begin_named_slow(ferret_name_t *cache, const char *name,
                                                                 const ferret_ctx_t *parent)
{
        if (unlikely(!client_ready()))
                return NULL;
        struct thread_state *ts = thread_get();
        if (unlikely(!ts))
                return NULL;
        uint32_t id = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
        if (unlikely(!id)) {
                id = intern_name(name);
                __atomic_store_n(cache, id, __ATOMIC_RELEASE);
        }
        return begin_common(ts, parent, id, name);
}

/* The common case, a literal name in a thread that has recorded before,
 * under the thread's current span (which @parent, when given, must be):
 * begin_common()'s steps without a guard, each safe against a signal
 * handler by itself (see above), and every rare case left to
 * begin_named_slow(). With no calls on the way, it is about sixty
 * instructions, the rdtsc among them. */
static inline __attribute__((always_inline)) ferret_span_t *begin_named(ferret_name_t *cache, const char *name,
                                                                        const ferret_ctx_t *parent)
{
        struct thread_state *ts = tls_state;
        /* Acquire: pairs with the release that published the number, so
         * the name's entry in the table is written before this thread's
         * record carries the number to the flusher (see intern.c). A plain
         * load on x86. */
        uint32_t name_id = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
        if (unlikely(!ts || !name_id || ts->in_api || ts->ring.full_skip ||
                     atomic_load_explicit(&client_g.state, memory_order_relaxed) != CLIENT_READY))
                return begin_named_slow(cache, name, parent);
        /* Spans nest, so the slot after the current span's is nearly
         * always free. */
        struct ferret_span *cur = ts->current;
        struct ferret_span *s = cur ? cur + 1 : ts->slots;
        if (unlikely((cur && (atomic_load_explicit(&cur->state, memory_order_relaxed) != SLOT_OPEN ||
                              cur->index + 1 >= ts->slots_ready)) ||
                     slot_busy(s) ||
                     (parent && parent->span_id != (cur ? cur->rec.span_id : client_g.root_parent.span_id))))
                return begin_named_slow(cache, name, parent);
        atomic_store_explicit(&s->state, SLOT_OPEN, memory_order_relaxed);
        atomic_signal_fence(memory_order_seq_cst);
        uint64_t span_id = id_claim(ts);
        if (unlikely(span_id >= ts->id_end)) {
                atomic_store_explicit(&s->state, 0, memory_order_relaxed);
                return begin_named_slow(cache, name, parent);
        }
        struct record *r = &s->rec;
        uint64_t parent_path = implicit_parent_path(cur);
        slot_fill(ts, r, implicit_parent(cur), parent_path, !cur, span_id, name_id);
        r->path = path_step(parent_path, path_key_local(client_g.path_salt, name_id));
        slot_link(ts, s, cur);
        return begin_clock_start(s);
}

ferret_span_t *ferret__span_begin_named(ferret_name_t *cache, const char *name)
{
        return begin_named(cache, name, NULL);
}

ferret_span_t *ferret__span_begin_named_in(ferret_ctx_t parent, ferret_name_t *cache, const char *name,
                                           ferret_ctx_t *ret_ctx)
{
        ferret_span_t *s = begin_named(cache, name, &parent);
        *ret_ctx = s ? slot_context(s) : parent;
        return s;
}

ferret_span_t *ferret_span_beginf(const char *fmt, ...)
{
        if (!client_ready() || !fmt)
                return NULL;
        char name[NAME_MAX_BYTES + 4];      /* the bytes past the limit tell where a character ends */
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(name, sizeof(name), fmt, ap);
        va_end(ap);
        name[text_len(name, NAME_MAX_BYTES)] = '\0';
        struct thread_state *ts = thread_get();
        return ts ? begin_common(ts, NULL, 0, name) : NULL;
}

ferret_span_t *ferret_span_begin_in(ferret_ctx_t parent, const char *name)
{
        if (!client_ready())
                return NULL;
        struct thread_state *ts = thread_get();
        return ts ? begin_common(ts, &parent, 0, name) : NULL;
}

/* A span whose end could not be recorded: its children, recorded with it
 * as their parent, are to hang under its parent. Remembered until the ring
 * has room: the last LOST_PENDING, since a parent ends after its children
 * (whose own ends, dropped in the same burst, come before it). Called with
 * in_api up. */
static void lost_push(struct thread_state *ts, uint64_t span_id, uint64_t parent_id, uint64_t path,
                      uint64_t parent_path)
{
        if (ts->n_lost == LOST_PENDING) {     /* the oldest goes */
                ts->lost_first = (ts->lost_first + 1) % LOST_PENDING;
                ts->n_lost--;
        }
        uint64_t *at = ts->lost[(ts->lost_first + ts->n_lost) % LOST_PENDING];
        at[0] = span_id;
        at[1] = parent_id;
        at[2] = path;
        at[3] = parent_path;
        ts->n_lost++;
}

static __attribute__((noinline)) void note_lost(struct thread_state *ts, const struct ferret_span *s)
{
        lost_push(ts, s->rec.span_id, s->rec.parent_id, s->rec.path, s->rec.parent_path);
}

void span_note_lost(struct thread_state *ts, uint64_t span_id, uint64_t parent_id, uint64_t path,
                    uint64_t parent_path)
{
        if (ts->in_api)
                return;         /* a signal handler inside the span code: its children stay under the process */
        ts->in_api = 1;
        atomic_signal_fence(memory_order_seq_cst);
        lost_push(ts, span_id, parent_id, path, parent_path);
        atomic_signal_fence(memory_order_seq_cst);
        ts->in_api = 0;
}

static __attribute__((noinline)) void write_lost(struct thread_state *ts)
{
        unsigned done = 0;
        /* Rare, and worth a look at the flusher's progress: no skipping. */
        ts->ring.full_skip = 0;
        for (; done < ts->n_lost; done++) {
                const uint64_t *lost = ts->lost[(ts->lost_first + done) % LOST_PENDING];
                uint64_t head;
                struct lost_record *r = (struct lost_record *)ring_reserve(&ts->ring, sizeof(*r), &head);
                if (!r)
                        break;
                r->h = record_header_of(RECORD_LOST, sizeof(*r), 0);
                r->span_id = lost[0];
                r->parent_id = lost[1];
                r->path = lost[2];
                r->parent_path = lost[3];
                if (ring_commit(&ts->ring, head + sizeof(*r)))
                        ring_wake(&ts->ring);
        }
        ts->lost_first = (ts->lost_first + done) % LOST_PENDING;
        ts->n_lost -= done;
}

/* --- Ending a span. ---
 *
 * Ending copies the slot's record and its payload into the ring with the
 * end time, commits it, and releases the slot, with the signal guard up
 * from the copy to the commit (a handler's span would go to the same place
 * in the ring). The common case, the thread's current span with room in
 * the ring and no pad needed, is ferret_span_end() through end_record();
 * every other goes through end_slow() and record_span(), which pad, grow
 * the ring, wait or drop as ring_reserve() decides. */

/* The fields of the copy @r of a span's record known only now: written
 * into the copy, not the slot, where they would stall the loads that copy
 * it. The slot's size is a record's without payload (record_header_reset()). */
static inline __attribute__((always_inline)) void record_finish(struct record *r, uint64_t size, uint64_t t1)
{
        if (size != sizeof(struct record))
                r->size = (uint32_t)size;
        r->t1 = t1;
}

static inline __attribute__((always_inline)) void record_span(struct thread_state *ts, struct ferret_span *s,
                                                             uint64_t t1)
{
        uint64_t need = record_span_size(&s->rec);
        uint64_t head;
        struct record *r = (struct record *)ring_reserve(&ts->ring, need, &head);
        if (unlikely(!r) && client_g.full_wait_ms)
                r = (struct record *)ring_reserve_waiting(&ts->ring, need, &head, client_g.full_wait_ms);
        if (unlikely(!r)) {
                note_lost(ts, s);
                drop_one(ts);
                return;
        }
        memcpy(r, &s->rec, sizeof(*r) + s->rec.payload_len);
        record_finish(r, need, t1);
        counter_add(&ts->recorded, 1);
        if (ring_commit(&ts->ring, head + need))
                ring_wake(&ts->ring);
        if (unlikely(ts->n_lost))
                write_lost(ts);
}

static __attribute__((noinline)) struct thread_state *thread_for_end(void)
{
        return atomic_load_explicit(&client_g.state, memory_order_relaxed) == CLIENT_READY ? thread_state_create() : NULL;
}

/* Everything ferret_span_end() does not do itself: a span ended by another
 * thread or out of order, tags, a full ring, a signal handler, shutdown. */
static __attribute__((noinline)) void end_slow(ferret_span_t *s, uint64_t t1)
{
        struct thread_state *ts = tls_state;
        if (unlikely(!ts))
                ts = thread_for_end();

        uint32_t state = atomic_load_explicit(&s->state, memory_order_relaxed);
        if (likely(ts && state == SLOT_OPEN)) {
                if (unlikely(ts->in_api))
                        drop_one(ts);
                else if (likely(atomic_load_explicit(&client_g.state, memory_order_relaxed) == CLIENT_READY) &&
                         atomic_fetch_or_explicit(&s->state, SLOT_ENDING, memory_order_acquire) == SLOT_OPEN) {
                        ts->in_api = 1;
                        atomic_signal_fence(memory_order_seq_cst);
                        record_span(ts, s, t1);
                        atomic_signal_fence(memory_order_seq_cst);
                        ts->in_api = 0;
                }
        }

        slot_release(ts, s, false);
}

/* Copies @n bytes, a multiple of 16, in 16-byte moves: a call to memcpy()
 * would cost more than the copy for the few lines of a record. */
static inline void copy_blocks(void *dst, const void *src, size_t n)
{
        for (size_t i = 0; i < n; i += 16)
                _mm_storeu_si128((__m128i *)((char *)dst + i), _mm_loadu_si128((const __m128i *)((const char *)src + i)));
}

/* copy_blocks() of a record without payload, unrolled. */
static inline void copy_record(struct record *dst, const struct record *src)
{
        __m128i a = _mm_loadu_si128((const __m128i *)src), b = _mm_loadu_si128((const __m128i *)src + 1),
                c = _mm_loadu_si128((const __m128i *)src + 2), d = _mm_loadu_si128((const __m128i *)src + 3),
                e = _mm_loadu_si128((const __m128i *)src + 4);
        _mm_storeu_si128((__m128i *)dst, a);
        _mm_storeu_si128((__m128i *)dst + 1, b);
        _mm_storeu_si128((__m128i *)dst + 2, c);
        _mm_storeu_si128((__m128i *)dst + 3, d);
        _mm_storeu_si128((__m128i *)dst + 4, e);
}

/* ring_wake() for ferret_span_end(): it moves the producer's view of the
 * ring, so it runs under the signal guard too. */
static __attribute__((noinline)) void end_wake(struct thread_state *ts)
{
        ts->in_api = 1;
        atomic_signal_fence(memory_order_seq_cst);
        ring_wake(&ts->ring);
        atomic_signal_fence(memory_order_seq_cst);
        ts->in_api = 0;
}

/* ferret_span_end() from the signal guard on, for a record of @need bytes
 * copied as @copy (@need rounded up to 16: the room the copy takes past the
 * record is free, as the next record goes there, but must be in the ring).
 * Inlined twice, once with the sizes of a record without tags as constants. */
static inline __attribute__((always_inline)) void end_record(struct thread_state *ts, struct ferret_span *s,
                                                            uint64_t t1, uint64_t need, uint64_t copy)
{
        struct ring *ring = &ts->ring;
        uint64_t head = atomic_load_explicit(&ring->head, memory_order_relaxed);
        if (unlikely(ring_pad_before(ring, head, copy) || !ring_has_room(ring, head, copy))) {
                /* A pad first, or full: end_slow() drops, grows or waits. */
                atomic_signal_fence(memory_order_seq_cst);
                ts->in_api = 0;
                return end_slow(s, t1);
        }
        ring_prefetch(ring, head);
        struct record *r = (struct record *)(ring->data + (head & RING_MASK(ring)));
        if (copy == sizeof(struct record))
                copy_record(r, &s->rec);
        else
                copy_blocks(r, &s->rec, copy);
        record_finish(r, need, t1);
        counter_add(&ts->recorded, 1);
        bool wake = ring_commit(ring, head + need);
        atomic_signal_fence(memory_order_seq_cst);
        ts->in_api = 0;
        slot_release(ts, s, true);
        if (wake)
                end_wake(ts);
}

/* The common case: the thread's current span, room in the ring. The record
 * is the slot's, its tags behind it, copied whole with the end time @t1.
 * Every other case goes to end_slow() as the last thing done, and the
 * wake-up comes last, so that the fast path calls nothing and keeps nothing
 * across a call: no saved registers, no stack frame. */
static inline __attribute__((always_inline)) void end_at(ferret_span_t *s, uint64_t t1)
{
        struct thread_state *ts = tls_state;
        if (unlikely(!ts || ts->current != s || ts->in_api || ts->n_lost ||
                     atomic_load_explicit(&s->state, memory_order_relaxed) != SLOT_OPEN ||
                     atomic_load_explicit(&client_g.state, memory_order_relaxed) != CLIENT_READY))
                return end_slow(s, t1);
        ts->in_api = 1;
        atomic_signal_fence(memory_order_seq_cst);
        /* A span without tags, the usual one, is a copy of fixed size. */
        if (likely(!s->rec.payload_len))
                return end_record(ts, s, t1, sizeof(struct record), sizeof(struct record));
        uint64_t need = record_span_size(&s->rec);
        end_record(ts, s, t1, need, (need + 15) & ~(uint64_t)15);
}

/* Without the TSC: the clock read is a call, so this copy of the fast path
 * has a frame of its own, and the TSC's copy none. */
static __attribute__((noinline)) void end_clock_fallback(ferret_span_t *s)
{
        end_at(s, clock_mono_ns());
}

void ferret_span_end(ferret_span_t *s)
{
        if (unlikely(!s))
                return;
        if (unlikely(!clock_use_tsc))
                return end_clock_fallback(s);
        end_at(s, __rdtsc());
}

void ferret_span_set_start_monotonic(ferret_span_t *s, uint64_t monotonic_ns)
{
        if (!s)
                return;
        uint64_t t0 = clock_ticks_at_mono(monotonic_ns);
        if (t0 < s->rec.t0)
                s->rec.t0 = t0;
}

ferret_ctx_t ferret_span_context(const ferret_span_t *s)
{
        if (!s)
                return (ferret_ctx_t){ 0 };
        context_path_remember(s->rec.span_id, s->rec.path);
        return slot_context(s);
}

ferret_ctx_t ferret_current(void)
{
        if (!client_ready())
                return (ferret_ctx_t){ 0 };
        struct thread_state *ts = tls_state;
        struct ferret_span *cur = ts ? thread_current(ts) : NULL;
        if (!cur)
                return client_g.root_parent;
        context_path_remember(cur->rec.span_id, cur->rec.path);
        return slot_context(cur);
}

/* The thread is exiting with spans open in its chain of current spans: it
 * can no longer end them, so they are recorded now, flagged unfinished. The
 * slots stay in use, in case another thread holds a handle and ends one
 * (which then records nothing more). */
void span_close_thread(struct thread_state *ts)
{
        uint64_t t1 = clock_ticks();
        for (struct ferret_span *s = thread_current(ts); s; s = thread_current(ts)) {
                /* Another thread may be ending it right now (see slot.h). */
                if (atomic_fetch_or(&s->state, SLOT_ORPHANED) == SLOT_OPEN) {
                        s->rec.flags |= FERRET__SPAN_FLAG__SPAN_FLAG_UNFINISHED;
                        if ((s->rec.flags & FERRET__SPAN_FLAG__SPAN_FLAG_STATUS_MASK) == FERRET_STATUS_OK)
                                ferret_span_set_status(s, FERRET_STATUS_WARNING, "not ended before its thread exited");
                        record_span(ts, s, t1);
                }
                ts->current = s->prev;
        }
        span_write_lost(ts);
}

void span_write_lost(struct thread_state *ts)
{
        if (!ts || !ts->n_lost || ts->in_api)
                return;
        ts->in_api = 1;
        atomic_signal_fence(memory_order_seq_cst);
        write_lost(ts);
        atomic_signal_fence(memory_order_seq_cst);
        ts->in_api = 0;
}
