/* SPDX-License-Identifier: MIT */
/*
 * The hot path: begin, tag and end a span. Nothing here locks, allocates
 * (after a thread's first span) or enters the kernel, except the rare wake-up
 * of the flusher when a ring passes half full.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "clock.h"
#include "ring.h"
#include "ferret.pb-c.h"


/* Exported for the header's macros: nonzero once tracing is known to be off
 * (disabled or shut down), so that they skip the calls altogether. */
volatile int ferret_off_;

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

/* Without the TSC. Out of line and called last, so that the begin paths
 * keep nothing live across a call and need no saved registers. */
static __attribute__((noinline)) struct ferret_span *begin_clock_fallback(struct ferret_span *s)
{
        s->rec.t0 = clock_ticks_fallback();
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

/* The end of every begin: @s, filled in, becomes the thread's current span
 * (the one before it its prev), the signal guard is lifted, and the clock
 * starts last, so that none of this counts in the span. */
static inline __attribute__((always_inline)) struct ferret_span *slot_make_current(struct thread_state *ts,
                                                                                   struct ferret_span *s)
{
        s->prev = ts->current;
        atomic_store_explicit(&s->state, SLOT_OPEN, memory_order_relaxed);
        ts->current = s;
        atomic_signal_fence(memory_order_seq_cst);
        ts->in_api = 0;
        return begin_clock_start(s);
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

static inline __attribute__((always_inline)) struct ferret_span *
begin_common(struct thread_state *ts, const ferret_ctx_t *parent_in, uint32_t name_id, const char *name)
{
        if (unlikely(ts->in_api)) {
                drop_one(ts);
                return NULL;
        }
        /* A signal handler that begins a span in the middle of this one
         * would take the same slot: it drops instead (see in_api). */
        ts->in_api = 1;
        atomic_signal_fence(memory_order_seq_cst);
        if (unlikely(ring_full_drop(ts))) {
                atomic_signal_fence(memory_order_seq_cst);
                ts->in_api = 0;
                return NULL;
        }
        struct ferret_span *s = slot_alloc(ts);
        if (unlikely(!s)) {
                ts->in_api = 0;
                drop_one(ts);
                return NULL;
        }
        struct record *r = &s->rec;

        ferret_ctx_t parent;
        bool handed_on = true;
        if (parent_in) {
                parent = *parent_in;
                r->parent_path = span_path_of(parent);
        } else {
                struct ferret_span *cur = thread_current(ts);
                parent = implicit_parent(cur);
                r->parent_path = implicit_parent_path(cur);
                handed_on = !cur;
        }
        if (unlikely(ts->id_next >= ts->id_end))
                thread_state_next_id_block(ts);
        record_place(ts, r, parent, ts->id_next++);
        r->name_id = name_id;
        record_header_reset(r);
        if (handed_on && parent.span_id)
                r->flags = FERRET__SPAN_FLAG__SPAN_FLAG_HANDED_ON;
        uint64_t key;
        if (!name_id) {
                size_t len = text_len(name ? name : "", NAME_MAX_BYTES);
                memcpy(s->payload, name ? name : "", len);
                s->payload[len] = '\0';
                r->payload_len = (uint16_t)(len + 1);
                key = path_key_bytes(s->payload, len);
        } else {
                key = path_key_local(client_g.path_salt, name_id);
        }
        r->path = path_step(r->parent_path, key);
        return slot_make_current(ts, s);
}

ferret_span_t *ferret_span_begin(const char *name)
{
        if (!client_ready())
                return NULL;
        struct thread_state *ts = thread_get();
        return ts ? begin_common(ts, NULL, 0, name) : NULL;
}

/* Everything ferret_span_begin_named() does not do itself: the first span of
 * the process or thread, a name not yet interned, a signal handler, a slot
 * search, a new block of span ids, a current span ended elsewhere. */
static __attribute__((noinline)) ferret_span_t *begin_named_slow(ferret_name_t *cache, const char *name)
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
        return begin_common(ts, NULL, id, name);
}

/* The common case, a literal name in a thread that has recorded before, is
 * begin_common() with every rare case left to begin_named_slow(): with no
 * calls on the way, it is about sixty instructions, the rdtsc among them.
 *
 * It runs without the signal guard (in_api), so a signal handler may begin
 * and end spans of its own anywhere in it; each step is safe against that,
 * as the handler has returned, its spans ended and the thread's current
 * span restored, before the next step runs. The slot is claimed before it
 * is filled (a handler then takes another), the id in one instruction, and
 * the span becomes current last. */
ferret_span_t *ferret_span_begin_named(ferret_name_t *cache, const char *name)
{
        struct thread_state *ts = tls_state;
        /* Acquire: pairs with the release that published the number, so
         * the name's entry in the table is written before this thread's
         * record carries the number to the flusher (see intern.c). A plain
         * load on x86. */
        uint32_t name_id = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
        if (unlikely(!ts || !name_id || ts->in_api || ts->ring.full_skip ||
                     atomic_load_explicit(&client_g.state, memory_order_relaxed) != CLIENT_READY))
                return begin_named_slow(cache, name);
        /* Spans nest, so the slot after the current span's is nearly
         * always free. */
        struct ferret_span *cur = ts->current;
        struct ferret_span *s = cur ? cur + 1 : ts->slots;
        if (unlikely((cur && (atomic_load_explicit(&cur->state, memory_order_relaxed) != SLOT_OPEN ||
                              cur->index + 1 >= ts->slots_ready)) ||
                     slot_busy(s)))
                return begin_named_slow(cache, name);
        atomic_store_explicit(&s->state, SLOT_OPEN, memory_order_relaxed);
        atomic_signal_fence(memory_order_seq_cst);
        uint64_t span_id = id_claim(ts);
        if (unlikely(span_id >= ts->id_end)) {
                atomic_store_explicit(&s->state, 0, memory_order_relaxed);
                return begin_named_slow(cache, name);
        }
        struct record *r = &s->rec;
        record_place(ts, r, implicit_parent(cur), span_id);
        r->parent_path = implicit_parent_path(cur);
        r->path = path_step(r->parent_path, path_key_local(client_g.path_salt, name_id));
        r->name_id = name_id;
        record_header_reset(r);
        if (unlikely(!cur) && client_g.root_parent.span_id)
                r->flags = FERRET__SPAN_FLAG__SPAN_FLAG_HANDED_ON;
        s->prev = cur;
        atomic_signal_fence(memory_order_seq_cst);
        ts->current = s;
        return begin_clock_start(s);
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

/* FERRET_ON_FULL=block:MS, and a thread's last counts: wait (up to
 * @wait_ms) for the flusher to make room rather than drop. */
__attribute__((noinline)) void *ring_wait_room(struct thread_state *ts, uint64_t need, uint64_t *ret_head, int wait_ms)
{
        uint64_t until = clock_mono_ns() + (uint64_t)wait_ms * 1000000u;
        ts->ring.wake_at = 0;
        ts->ring.full_skip = 0;
        do {
                ts->ring.full_skip = 0;
                thread_state_wake_flusher(ts);
                struct timespec pause = { 0, 20000 };
                nanosleep(&pause, NULL);
                char *r = ring_reserve(&ts->ring, need, ret_head);
                if (r)
                        return r;
        } while (clock_mono_ns() < until);
        return NULL;
}

/* Hands the records up to @new_head to the flusher, counts the span, and
 * wakes the flusher when the ring passed the mark it set. */
static inline void span_commit(struct thread_state *ts, uint64_t new_head)
{
        ring_publish(&ts->ring, new_head);
        counter_add(&ts->recorded, 1);
        if (unlikely(new_head > ts->ring.wake_at))
                thread_state_wake_flusher(ts);
}

/* A span whose end could not be recorded: its children, recorded with it
 * as their parent, are to hang under its parent. Remembered until the ring
 * has room: the last LOST_PENDING, since a parent ends after its children
 * (whose own ends, dropped in the same burst, come before it). Called with
 * in_api up. */
static void lost_push(struct thread_state *ts, uint64_t span_id, uint64_t parent_id, uint64_t path,
                      uint64_t parent_path)
{
        if (ts->n_lost == LOST_PENDING) {
                memmove(ts->lost, ts->lost + 1, (LOST_PENDING - 1) * sizeof(ts->lost[0]));
                ts->n_lost--;
        }
        ts->lost[ts->n_lost][0] = span_id;
        ts->lost[ts->n_lost][1] = parent_id;
        ts->lost[ts->n_lost][2] = path;
        ts->lost[ts->n_lost][3] = parent_path;
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
                uint64_t head;
                struct lost_record *r = (struct lost_record *)ring_reserve(&ts->ring, sizeof(*r), &head);
                if (!r)
                        break;
                r->h = (struct record_header){ .size = sizeof(*r), .type = RECORD_LOST };
                r->span_id = ts->lost[done][0];
                r->parent_id = ts->lost[done][1];
                r->path = ts->lost[done][2];
                r->parent_path = ts->lost[done][3];
                ring_publish(&ts->ring, head + sizeof(*r));
        }
        memmove(ts->lost, ts->lost + done, (ts->n_lost - done) * sizeof(ts->lost[0]));
        ts->n_lost -= done;
}

static inline __attribute__((always_inline)) void record_span(struct thread_state *ts, struct ferret_span *s,
                                                             uint64_t t1)
{
        uint64_t need = (sizeof(struct record) + s->rec.payload_len + 7) & ~(uint64_t)7;
        uint64_t head;
        struct record *r = (struct record *)ring_reserve(&ts->ring, need, &head);
        if (unlikely(!r) && !(client_g.full_wait_ms && (r = ring_wait_room(ts, need, &head, client_g.full_wait_ms)))) {
                note_lost(ts, s);
                drop_one(ts);
                return;
        }
        /* A fixed-size copy the compiler turns into a few vector moves; the
         * fields known only now go straight to the copy (written into the
         * slot first, they would stall the vector loads that follow). */
        memcpy(r, &s->rec, sizeof(*r));
        r->size = (uint32_t)need;
        r->t1 = t1;
        if (s->rec.payload_len)
                memcpy(record_payload(r), s->payload, s->rec.payload_len);
        span_commit(ts, head + need);
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
                else if (likely(atomic_load_explicit(&client_g.state, memory_order_relaxed) == CLIENT_READY)) {
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
        _Static_assert(sizeof(struct record) == 80, "a record is five 16-byte moves");
        __m128i a = _mm_loadu_si128((const __m128i *)src), b = _mm_loadu_si128((const __m128i *)src + 1),
                c = _mm_loadu_si128((const __m128i *)src + 2), d = _mm_loadu_si128((const __m128i *)src + 3),
                e = _mm_loadu_si128((const __m128i *)src + 4);
        _mm_storeu_si128((__m128i *)dst, a);
        _mm_storeu_si128((__m128i *)dst + 1, b);
        _mm_storeu_si128((__m128i *)dst + 2, c);
        _mm_storeu_si128((__m128i *)dst + 3, d);
        _mm_storeu_si128((__m128i *)dst + 4, e);
}

/* span_commit()'s wake-up check, for ferret_span_end(): it moves the
 * producer's view of the ring, so it runs under the signal guard too. */
static __attribute__((noinline)) void end_wake(struct thread_state *ts)
{
        ts->in_api = 1;
        atomic_signal_fence(memory_order_seq_cst);
        thread_state_wake_flusher(ts);
        atomic_signal_fence(memory_order_seq_cst);
        ts->in_api = 0;
}

static __attribute__((noinline)) void end_clock_fallback(ferret_span_t *s)
{
        end_slow(s, clock_ticks_fallback());
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
        uint64_t off = head & RING_MASK(ring);
        if (unlikely(off + copy > ring->size || head + copy - ring->tail_seen > ring->size)) {
                /* A pad first, or full: end_slow() drops, grows or waits. */
                atomic_signal_fence(memory_order_seq_cst);
                ts->in_api = 0;
                return end_slow(s, t1);
        }
        ring_prefetch(ring, head);
        struct record *r = (struct record *)(ring->data + off);
        if (copy == sizeof(struct record))
                copy_record(r, &s->rec);
        else
                copy_blocks(r, &s->rec, copy);
        /* Known only now, so written into the copy: stored into the slot,
         * they would stall the loads that follow. The slot's size is a
         * record's without payload (record_header_reset()). */
        if (need != sizeof(struct record))
                r->size = (uint32_t)need;
        r->t1 = t1;
        uint64_t new_head = head + need;
        ring_publish(ring, new_head);
        counter_add(&ts->recorded, 1);
        atomic_signal_fence(memory_order_seq_cst);
        ts->in_api = 0;
        slot_release(ts, s, true);
        if (unlikely(new_head > ring->wake_at))
                end_wake(ts);
}

/* The common case: the thread's current span, room in the ring. The record
 * is the slot's, its tags behind it, copied whole with the end time. Every
 * other case goes to end_slow() as the last thing done, and the wake-up
 * comes last, so that the fast path calls nothing and keeps nothing across
 * a call: no saved registers, no stack frame. */
void ferret_span_end(ferret_span_t *s)
{
        if (unlikely(!s))
                return;
        if (unlikely(!clock_use_tsc))
                return end_clock_fallback(s);
        uint64_t t1 = __rdtsc();
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
        uint64_t need = (sizeof(struct record) + s->rec.payload_len + 7) & ~(uint64_t)7;
        end_record(ts, s, t1, need, (need + 15) & ~(uint64_t)15);
}

/* What does not fit in a span's payload is not dropped unseen: an int tag
 * OMITTED_KEY counts the entries (tags, the status message) left out. Room
 * for it is kept at the end, and its offset in the payload's last two bytes
 * (plus one), which no entry reaches; an offset left by the slot's previous
 * span is told apart by what it points at. */
#define OMITTED_KEY "ferret.omitted"
#define OMITTED_ENTRY_BYTES (2 + sizeof(OMITTED_KEY) + 8)
#define PAYLOAD_ROOM (SLOT_PAYLOAD - OMITTED_ENTRY_BYTES - 2)

static bool omitted_entry_at(const struct ferret_span *s, size_t at)
{
        const char *p = s->payload + at;
        return at + OMITTED_ENTRY_BYTES <= s->rec.payload_len && p[0] == (char)ENTRY_TAG_INT &&
               p[1] == (char)sizeof(OMITTED_KEY) && memcmp(p + 2, OMITTED_KEY, sizeof(OMITTED_KEY)) == 0;
}

static __attribute__((noinline)) void payload_omit(struct ferret_span *s)
{
        char *where = s->payload + SLOT_PAYLOAD - 2;
        uint16_t stored;
        int64_t n = 1;
        memcpy(&stored, where, 2);
        if (stored && omitted_entry_at(s, stored - 1u)) {
                char *count = s->payload + stored - 1 + 2 + sizeof(OMITTED_KEY);
                memcpy(&n, count, 8);
                n++;
                memcpy(count, &n, 8);
                return;
        }
        uint16_t at = s->rec.payload_len;
        char *p = s->payload + at;
        p[0] = (char)ENTRY_TAG_INT;
        p[1] = (char)sizeof(OMITTED_KEY);
        memcpy(p + 2, OMITTED_KEY, sizeof(OMITTED_KEY));
        memcpy(p + 2 + sizeof(OMITTED_KEY), &n, 8);
        s->rec.payload_len = (uint16_t)(at + OMITTED_ENTRY_BYTES);
        stored = (uint16_t)(at + 1);
        memcpy(where, &stored, 2);
}
_Static_assert(PAYLOAD_ROOM + OMITTED_ENTRY_BYTES + 2 == SLOT_PAYLOAD, "the count always has room");

/* Appends a payload entry; entries that do not fit are counted (above). */
static void payload_put(struct ferret_span *s, enum entry_kind kind, const char *key,
                        const void *value, size_t value_len)
{
        size_t key_len = 0;
        if (kind != ENTRY_MESSAGE)
                key_len = text_len(key ? key : "", TAG_KEY_MAX_BYTES) + 1;
        bool is_string = kind == ENTRY_TAG_STRING || kind == ENTRY_MESSAGE;
        size_t need = 2 + key_len + (is_string ? 2 + value_len + 1 : value_len);
        if (s->rec.payload_len + need > PAYLOAD_ROOM) {
                payload_omit(s);
                return;
        }

        char *p = s->payload + s->rec.payload_len;
        *p++ = (char)kind;
        *p++ = (char)key_len;
        if (key_len) {
                memcpy(p, key ? key : "", key_len - 1);
                p[key_len - 1] = '\0';
                p += key_len;
        }
        if (is_string) {
                uint16_t len = (uint16_t)(value_len + 1);
                memcpy(p, &len, 2);
                memcpy(p + 2, value, value_len);
                p[2 + value_len] = '\0';
        } else
                memcpy(p, value, value_len);
        s->rec.payload_len = (uint16_t)(s->rec.payload_len + need);
}

void (ferret_span_tag_str)(ferret_span_t *s, const char *key, const char *value)
{
        if (!s)
                return;
        value = value ? value : "";
        payload_put(s, ENTRY_TAG_STRING, key, value, text_len(value, TAG_VALUE_MAX_BYTES));
}

void (ferret_span_tag_int)(ferret_span_t *s, const char *key, int64_t value)
{
        if (s)
                payload_put(s, ENTRY_TAG_INT, key, &value, sizeof(value));
}

void (ferret_span_tag_double)(ferret_span_t *s, const char *key, double value)
{
        if (s)
                payload_put(s, ENTRY_TAG_DOUBLE, key, &value, sizeof(value));
}

void (ferret_span_tag_bool)(ferret_span_t *s, const char *key, bool value)
{
        uint8_t v = value;
        if (s)
                payload_put(s, ENTRY_TAG_BOOL, key, &v, 1);
}

/* The same with the key as its interned number: fixed-size stores only. */
static inline void payload_put_id(struct ferret_span *s, enum entry_kind kind, ferret_name_t *cache, const char *key,
                                  const void *value, size_t value_len)
{
        uint32_t id = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
        if (unlikely(!id)) {
                id = intern_name(key);
                if (!id) {
                        payload_put(s, kind, key, value, value_len);
                        return;
                }
                __atomic_store_n(cache, id, __ATOMIC_RELEASE);
        }
        bool is_string = kind == ENTRY_TAG_STRING;
        size_t need = 1 + 4 + (is_string ? 2 + value_len + 1 : value_len);
        if (unlikely(s->rec.payload_len + need > PAYLOAD_ROOM)) {
                payload_omit(s);
                return;
        }
        char *p = s->payload + s->rec.payload_len;
        *p = (char)(kind | ENTRY_KEY_ID);
        memcpy(p + 1, &id, 4);
        if (is_string) {
                uint16_t len = (uint16_t)(value_len + 1);
                memcpy(p + 5, &len, 2);
                memcpy(p + 7, value, value_len);
                p[7 + value_len] = '\0';
        } else
                memcpy(p + 5, value, value_len);
        s->rec.payload_len = (uint16_t)(s->rec.payload_len + need);
}

static __attribute__((noinline)) void tag_str_slow(struct ferret_span *s, ferret_name_t *cache, const char *key,
                                                    const char *value)
{
        value = value ? value : "";
        payload_put_id(s, ENTRY_TAG_STRING, cache, key, value, text_len(value, TAG_VALUE_MAX_BYTES));
}

/* Values are mostly short: up to TAG_STR_SHORT bytes are measured while
 * they are copied, without the calls to strnlen() and memcpy(). */
#define TAG_STR_SHORT 16

void ferret_span_tag_str_named(ferret_span_t *s, ferret_name_t *cache, const char *key, const char *value)
{
        if (!s)
                return;
        uint32_t id = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
        size_t used = s->rec.payload_len;
        if (unlikely(!id || !value || used + 7 + TAG_STR_SHORT + 1 > PAYLOAD_ROOM))
                return tag_str_slow(s, cache, key, value);
        char *p = s->payload + used;
        size_t n = 0;
        while (n < TAG_STR_SHORT && value[n]) {
                p[7 + n] = value[n];
                n++;
        }
        if (unlikely(n == TAG_STR_SHORT && value[n]))
                return tag_str_slow(s, cache, key, value);     /* overwrites what was copied */
        p[7 + n] = '\0';
        *p = (char)(ENTRY_TAG_STRING | ENTRY_KEY_ID);
        memcpy(p + 1, &id, 4);
        uint16_t len = (uint16_t)(n + 1);
        memcpy(p + 5, &len, 2);
        s->rec.payload_len = (uint16_t)(used + 7 + n + 1);
}

static __attribute__((noinline)) void tag_int_slow(struct ferret_span *s, ferret_name_t *cache, const char *key,
                                                    int64_t value)
{
        payload_put_id(s, ENTRY_TAG_INT, cache, key, &value, sizeof(value));
}

void ferret_span_tag_int_named(ferret_span_t *s, ferret_name_t *cache, const char *key, int64_t value)
{
        if (!s)
                return;
        uint32_t id = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
        size_t used = s->rec.payload_len;
        if (unlikely(!id || used + 1 + 4 + 8 > PAYLOAD_ROOM))
                return tag_int_slow(s, cache, key, value);
        char *p = s->payload + used;
        *p = (char)(ENTRY_TAG_INT | ENTRY_KEY_ID);
        memcpy(p + 1, &id, 4);
        memcpy(p + 5, &value, 8);
        s->rec.payload_len = (uint16_t)(used + 1 + 4 + 8);
}

void ferret_span_tag_double_named(ferret_span_t *s, ferret_name_t *cache, const char *key, double value)
{
        if (s)
                payload_put_id(s, ENTRY_TAG_DOUBLE, cache, key, &value, sizeof(value));
}

void ferret_span_tag_bool_named(ferret_span_t *s, ferret_name_t *cache, const char *key, bool value)
{
        uint8_t v = value;
        if (s)
                payload_put_id(s, ENTRY_TAG_BOOL, cache, key, &v, 1);
}

void ferret_span_set_status(ferret_span_t *s, ferret_status_t status, const char *message)
{
        if (!s || (unsigned)status > FERRET_STATUS_ERROR)
                return;
        s->rec.flags = (uint8_t)((s->rec.flags & ~FERRET__SPAN_FLAG__SPAN_FLAG_STATUS_MASK) | status);
        if (message)
                payload_put(s, ENTRY_MESSAGE, NULL, message, text_len(message, TAG_VALUE_MAX_BYTES));
}

void ferret_span_set_kind(ferret_span_t *s, ferret_kind_t kind)
{
        if (!s)
                return;
        uint8_t bits = (kind & FERRET_KIND_ASYNC ? FERRET__SPAN_FLAG__SPAN_FLAG_ASYNC : 0) |
                       (kind & FERRET_KIND_SUSPENSION ? FERRET__SPAN_FLAG__SPAN_FLAG_SUSPENSION : 0);
        s->rec.flags = (uint8_t)((s->rec.flags & ~(FERRET__SPAN_FLAG__SPAN_FLAG_ASYNC |
                                                   FERRET__SPAN_FLAG__SPAN_FLAG_SUSPENSION)) | bits);
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
                if (atomic_load(&s->state) == SLOT_OPEN) {
                        s->rec.flags |= FERRET__SPAN_FLAG__SPAN_FLAG_UNFINISHED;
                        if ((s->rec.flags & FERRET__SPAN_FLAG__SPAN_FLAG_STATUS_MASK) == FERRET_STATUS_OK)
                                ferret_span_set_status(s, FERRET_STATUS_WARNING, "not ended before its thread exited");
                        record_span(ts, s, t1);
                }
                atomic_fetch_or(&s->state, SLOT_ORPHANED);
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
