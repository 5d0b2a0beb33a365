/* SPDX-License-Identifier: MIT */
/*
 * Function calls of programs built with -finstrument-functions: the agent's
 * __cyg_profile_func_enter/exit call ferret__function_enter/exit here. This
 * path is leaner than a span's: enter pushes (function, start, id) on a
 * per-thread stack; exit pops it and writes a 48-byte record. Names are
 * resolved from addresses later, by the flusher (symbols.c).
 *
 * Every call has a frame, recorded or not, with the stack address of its
 * hook, so that an exit is matched to its own frame. A longjmp (or
 * anything else that leaves functions without their exit hook) leaves
 * frames behind; they are closed, marked unwound, at the first hook after
 * the jump: an enter at or above their stack address, or an exit above it
 * or of a function further down. C++ exceptions run the exit hooks as they
 * unwind, and need none of this.
 *
 * A per-thread table indexed by address holds what is decided per
 * function: whether to record it (--include/--exclude), the calls shorter
 * than --min-duration folded into counters instead of recorded, and the
 * guard that stops recording a function called millions of times for a
 * few nanoseconds each.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "clock.h"
#include "compiler.h"
#include "function.h"
#include "hooks.h"
#include "notes.h"
#include "pages.h"
#include "path.h"
#include "ring.h"
#include "span.h"
#include "symbols.h"
#include "thread.h"

/* Frames a thread may hold: reserved address space, touched as deep as the
 * program goes. Deeper calls are counted as dropped, and the run's summary
 * says so. */
#define FUNC_STACK_MAX (1u << 20)
/* Two hook addresses further apart than this are on different stacks (a
 * signal handler's alternate stack): neither says the other's frame is gone. */
#define SAME_STACK_BYTES (16u << 20)
/* A call site this far past a function's start is not in it. */
#define MAX_FUNCTION_BYTES (1u << 20)
#define FUNC_TABLE 1024               /* functions a thread tells apart at once */
#define FOLD_FLUSH_COUNT (1u << 20)   /* a folded entry is written out at this count */
#define GUARD_CHECK_EVERY 16384
#define GUARD_CALLS 1000000
#define GUARD_TINY_NS 250.0           /* a call this short costs as much to record as it lasts */
#define GUARD_TINY_SHARE 0.5
#define MAX_PATTERNS 32

enum {
        FUNC_UNKNOWN = 0,
        FUNC_RECORD,
        FUNC_SKIP,                    /* excluded: not recorded, not counted */
        FUNC_GUARDED,                 /* counted, no longer timed nor recorded */
};

struct func_frame {
        uint64_t fn, t0, id;
        uint64_t ctx;                 /* the span current while it is on top: its own if
                                       * recorded, else its caller's (0: the thread's) */
        uint64_t path;                /* that span's call path */
        uintptr_t sp;                 /* where its hook's frame was */
        uint32_t entry;               /* its table index */
        bool recorded;
};

struct func_entry {
        uint64_t fn;
        uint8_t state;
        bool dirty;                   /* has folded calls not yet written (and is in the dirty list) */
        uint32_t calls;               /* timed, recorded or not: for the guard */
        uint32_t tiny;                /* of which shorter than GUARD_TINY_NS */
        uint64_t fold_count, fold_ticks, fold_max;
        uint64_t untimed;             /* guarded calls: counted only */
};

#define DIRTY_MAX 64

struct func_state {
        uint32_t top;                 /* frames, recorded or not */
        uint32_t n_recorded;          /* of which recorded */
        uint32_t too_deep;            /* calls past FUNC_STACK_MAX, not yet returned */
        bool jumped;                  /* ferret__function_jumped(): find the landing */
        uint64_t base_parent;         /* the parent of the bottom recorded frame */
        uint64_t base_path;           /* and its call path */
        uint32_t n_dirty;             /* entries with folded calls, to write out */
        uint16_t dirty[DIRTY_MAX];
        struct func_frame *stack;     /* FUNC_STACK_MAX of them */
        struct func_entry table[FUNC_TABLE];
};

/* Settings from the environment (ferret run passes its options so). */
static struct {
        uint32_t max_depth;
        uint64_t min_ns;
        _Atomic uint64_t min_ticks;   /* from min_ns once the clock is calibrated */
        _Atomic uint64_t guard_ticks; /* a call shorter than this is tiny, for the guard */
        bool guard_off;               /* FERRET_GUARD=0 */
        char *include[MAX_PATTERNS], *exclude[MAX_PATTERNS];
        size_t n_include, n_exclude;
} func_g = { .max_depth = UINT32_MAX };

static void split_patterns(const char *list, char **out, size_t *n)
{
        if (!list || !*list)
                return;
        char *copy = strdup(list), *save = NULL;
        for (char *p = copy ? strtok_r(copy, ",", &save) : NULL; p && *n < MAX_PATTERNS; p = strtok_r(NULL, ",", &save))
                out[(*n)++] = strdup(p);
        free(copy);
}

void func_configure(void)
{
        const char *depth = getenv("FERRET_MAX_DEPTH"), *min = getenv("FERRET_MIN_DURATION_NS");
        if (depth && *depth)
                func_g.max_depth = (uint32_t)strtoul(depth, NULL, 10);
        if (min && *min)
                func_g.min_ns = strtoull(min, NULL, 10);
        const char *guard = getenv("FERRET_GUARD");
        func_g.guard_off = guard && strcmp(guard, "0") == 0;
        split_patterns(getenv("FERRET_INCLUDE"), func_g.include, &func_g.n_include);
        split_patterns(getenv("FERRET_EXCLUDE"), func_g.exclude, &func_g.n_exclude);

        /* The flusher measures the tick rate within a few milliseconds, but
         * a short program does all its calls before that. With a minimum
         * duration asked for, measure a first rate now: 1 ms of the
         * starting thread, once per process. */
        if (func_g.min_ns && clock_use_tsc) {
                uint64_t m0 = clock_mono_ns(), t0 = clock_ticks(), m1, t1;
                do {
                        m1 = clock_mono_ns();
                        t1 = clock_ticks();
                } while (m1 - m0 < 1000000);
                func_calibrated((double)(m1 - m0) / (double)(t1 - t0));
        } else if (func_g.min_ns)
                func_calibrated(1.0);
}

/* The flusher measured the clock: thresholds can be set in ticks. Until
 * then every call is recorded. */
void func_calibrated(double ns_per_tick)
{
        if (ns_per_tick <= 0)
                return;
        atomic_store_explicit(&func_g.min_ticks, (uint64_t)((double)func_g.min_ns / ns_per_tick), memory_order_relaxed);
        atomic_store_explicit(&func_g.guard_ticks, (uint64_t)(GUARD_TINY_NS / ns_per_tick), memory_order_relaxed);
}

static inline uint32_t slot_of(uint64_t fn)
{
        return (uint32_t)((fn >> 4) ^ (fn >> 14)) & (FUNC_TABLE - 1);
}

static bool matches(char *const *patterns, size_t n, const char *name)
{
        for (size_t i = 0; i < n; i++)
                if (fnmatch(patterns[i], name, 0) == 0)
                        return true;
        return false;
}

static void *ring_write(struct thread_state *ts, uint64_t size, uint64_t *ret_head)
{
        return ring_reserve(&ts->ring, size, ret_head);
}

static void ring_done(struct thread_state *ts, uint64_t head)
{
        if (ring_commit(&ts->ring, head))
                ring_wake(&ts->ring);
}

static void mark_dirty(struct func_state *fs, struct func_entry *e, uint32_t index);

/* What write_fold() does when the ring has no room. */
enum fold_full {
        FOLD_KEEP,                    /* the counts stay, to be written later */
        FOLD_DROP,                    /* the entry is reused: counted as dropped */
        FOLD_WAIT,                    /* the thread ends: wait for the flusher first */
};

static void write_fold(struct thread_state *ts, struct func_entry *e, enum fold_full when_full)
{
        uint64_t head;
        struct fold_record *r = ring_write(ts, sizeof(*r), &head);
        if (!r && when_full == FOLD_WAIT)
                r = (struct fold_record *)ring_reserve_waiting(&ts->ring, sizeof(*r), &head, client_g.exit_timeout_ms);
        if (!r && when_full == FOLD_KEEP)
                return;
        if (r) {
                r->h = record_header_of(RECORD_FOLD, sizeof(*r), 0);
                r->fn = e->fn;
                r->count = e->fold_count;
                r->total_ticks = e->fold_ticks;
                r->max_ticks = e->fold_max;
                r->untimed = e->untimed;
                ring_done(ts, head + sizeof(*r));
        } else
                counter_add(&ts->dropped, e->fold_count + e->untimed);
        e->fold_count = e->fold_ticks = e->fold_max = e->untimed = 0;
        e->dirty = false;
}

static void flush_folds(struct thread_state *ts, struct func_state *fs)
{
        for (uint32_t i = 0; i < fs->n_dirty; i++)
                if (fs->table[fs->dirty[i]].dirty)
                        write_fold(ts, &fs->table[fs->dirty[i]], FOLD_KEEP);
        fs->n_dirty = 0;
}

/* A function not in the table yet (or a collision): decide about it. The
 * old occupant's folded calls are written out first. */
static __attribute__((noinline)) struct func_entry *entry_slow(struct thread_state *ts, struct func_state *fs,
                                                               uint64_t fn, uint32_t h)
{
        struct func_entry *e = &fs->table[h];
        if (e->dirty)
                write_fold(ts, e, FOLD_DROP);
        *e = (struct func_entry){ .fn = fn, .state = FUNC_RECORD };
        if (func_g.n_include || func_g.n_exclude) {
                const char *name = symbols_name(fn);
                if ((func_g.n_include && !matches(func_g.include, func_g.n_include, name)) ||
                    matches(func_g.exclude, func_g.n_exclude, name))
                        e->state = FUNC_SKIP;
        }
        return e;
}

static __attribute__((noinline)) struct thread_state *thread_for_functions(void)
{
        if (__atomic_load_n(&ferret__off, __ATOMIC_RELAXED) || client_start_slow() < 0)
                return NULL;
        struct thread_state *ts = tls_state ? tls_state : thread_state_create();
        if (ts && !ts->func) {
                /* mmap, not malloc: the thread's first traced call may be a
                 * signal handler's, with malloc interrupted on this thread.
                 * Never freed: an exited thread's state, this included, goes
                 * to the next thread. */
                struct func_state *fs = map_zeroed(sizeof(*fs));
                void *stack = mmap(NULL, (size_t)FUNC_STACK_MAX * sizeof(struct func_frame), PROT_READ | PROT_WRITE,
                                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
                if (fs && stack != MAP_FAILED) {
                        fs->stack = stack;
                        ts->func = fs;
                } else {
                        if (fs)
                                munmap(fs, sizeof(*fs));
                        if (stack != MAP_FAILED)
                                munmap(stack, (size_t)FUNC_STACK_MAX * sizeof(struct func_frame));
                }
        }
        return ts && ts->func ? ts : NULL;
}

/* The trace and thread of the calls that follow, written when a thread's
 * stack of recorded calls starts from empty. */
static __attribute__((noinline)) uint64_t context_parent(struct thread_state *ts, uint64_t *ret_path)
{
        ferret_ctx_t ctx = ferret_current();
        *ret_path = span_path_of(ctx);
        uint64_t head;
        struct context_record *r = ring_write(ts, sizeof(*r), &head);
        if (r) {
                r->h = record_header_of(RECORD_CONTEXT, sizeof(*r), 0);
                r->tid = ts->tid;
                r->trace_hi = ctx.span_id ? ctx.trace_hi : ts->trace_hi;
                r->trace_lo = ctx.span_id ? ctx.trace_lo : ts->id_next;
                ring_done(ts, head + sizeof(*r));
        }
        return ctx.span_id;
}

static void abandon_top(struct thread_state *ts, struct func_state *fs, uint64_t t1, uint8_t flags);

/* Frames a jump left behind: those whose hook was at or below @sp (deeper
 * on the same stack), closed now; at an exit, the frame at @sp itself is
 * the one returning. */
static __attribute__((noinline)) void unwind_below(struct thread_state *ts, struct func_state *fs, uintptr_t sp,
                                                   bool exiting)
{
        uint64_t t1 = clock_ticks();
        while (fs->top) {
                uintptr_t at = fs->stack[fs->top - 1].sp;
                if (at > sp || sp - at >= SAME_STACK_BYTES || (exiting && at == sp))
                        break;
                abandon_top(ts, fs, t1, FUNC_FLAG_UNWOUND);
        }
        /* Calls past the bound were deeper still: gone too. */
        fs->too_deep = 0;
}

static __attribute__((noinline)) void too_deep(struct thread_state *ts, struct func_state *fs)
{
        static _Atomic bool said;
        fs->too_deep++;
        counter_add(&ts->dropped, 1);
        if (!atomic_exchange_explicit(&said, true, memory_order_relaxed)) {
                char note[160];
                snprintf(note, sizeof(note), "function calls deeper than %u frames were not recorded "
                         "(counted as dropped)", FUNC_STACK_MAX);
                notes_add(note);
        }
}

/* The first enter after a jump: it landed in the function holding the call
 * site, and whatever is above that function's frame was left. Functions do
 * not overlap, so among the frames the one with the greatest start at or
 * below the call site is it (if it is on the stack at all). */
static __attribute__((noinline)) void land(struct thread_state *ts, struct func_state *fs, uint64_t call_site,
                                           uintptr_t sp)
{
        fs->jumped = false;
        if (!call_site)
                return;
        uint32_t best = UINT32_MAX;
        for (uint32_t k = fs->top; k-- > 0;) {
                const struct func_frame *f = &fs->stack[k];
                if (f->fn <= call_site && call_site - f->fn < MAX_FUNCTION_BYTES && f->sp > sp &&
                    (best == UINT32_MAX || f->fn > fs->stack[best].fn))
                        best = k;
        }
        if (best == UINT32_MAX)
                return;
        uint64_t t1 = clock_ticks();
        while (fs->top > best + 1)
                abandon_top(ts, fs, t1, FUNC_FLAG_UNWOUND);
        fs->too_deep = 0;
}

void ferret__function_jumped(void *target_sp)
{
        struct thread_state *ts = tls_state;
        if (!ts || !ts->func)
                return;
        struct func_state *fs = ts->func;
        if (!target_sp) {
                fs->jumped = true;
                return;
        }
        /* The frames below the stack pointer the jump restores are left:
         * closed now, when they are. The frame at it is where it lands. */
        uintptr_t target = (uintptr_t)target_sp;
        uint64_t t1 = clock_ticks();
        while (fs->top) {
                uintptr_t at = fs->stack[fs->top - 1].sp;
                if (at >= target || target - at >= SAME_STACK_BYTES)
                        break;
                abandon_top(ts, fs, t1, FUNC_FLAG_UNWOUND);
        }
        fs->too_deep = 0;
}

static void guard_check(struct thread_state *ts, struct func_entry *e);

/* A call the guard counts without its duration (dropped as it began): as
 * the calls timed so far, tiny if most of them were. */
static inline void guard_count_untimed(struct thread_state *ts, struct func_entry *e)
{
        e->tiny += 2 * e->tiny >= e->calls;
        if (unlikely(++e->calls % GUARD_CHECK_EVERY == 0))
                guard_check(ts, e);
}

static inline __attribute__((always_inline)) void enter(void *fn, uint64_t call_site, uintptr_t sp)
{
        struct thread_state *ts = tls_state;
        if (unlikely(!ts || !ts->func) && !(ts = thread_for_functions()))
                return;
        struct func_state *fs = ts->func;
        if (unlikely(fs->jumped))
                land(ts, fs, call_site, sp);
        if (unlikely(fs->top && fs->stack[fs->top - 1].sp <= sp))
                unwind_below(ts, fs, sp, false);
        if (unlikely(fs->top == FUNC_STACK_MAX || fs->too_deep)) {
                too_deep(ts, fs);
                return;
        }
        struct func_frame *f = &fs->stack[fs->top];
        f->fn = (uint64_t)fn;
        f->sp = sp;
        f->recorded = false;
        f->ctx = fs->top ? fs->stack[fs->top - 1].ctx : 0;
        f->path = fs->top ? fs->stack[fs->top - 1].path : 0;
        if (unlikely(++fs->top > func_g.max_depth))
                return;
        uint32_t h = slot_of((uint64_t)fn);
        struct func_entry *e = &fs->table[h];
        if (unlikely(e->fn != (uint64_t)fn))
                e = entry_slow(ts, fs, (uint64_t)fn, h);
        if (e->state != FUNC_RECORD) {
                if (e->state == FUNC_GUARDED) {
                        /* Counted, not timed: reading the clock is what
                         * the guard saves. */
                        if (!e->dirty)
                                mark_dirty(fs, e, h);
                        e->untimed++;
                }
                return;
        }
        /* The ring was full a moment ago (see ring_reserve_full()): the
         * call is dropped as it begins, without reading the clock, and its
         * callees hang under its caller, as span.c's ring_full_drop() does
         * for spans. A program that calls faster than the flusher drains
         * pays least for what is lost. With FERRET_ON_FULL=block calls wait
         * at their exit instead. */
        if (unlikely(ts->ring.full_skip) && !client_g.full_wait_ms) {
                ts->ring.full_skip--;
                counter_add(&ts->dropped, 1);
                guard_count_untimed(ts, e);
                return;
        }
        if (unlikely(fs->n_recorded == 0))
                fs->base_parent = context_parent(ts, &fs->base_path);
        uint64_t id = id_claim(ts);
        if (unlikely(id >= ts->id_end)) {
                thread_state_next_id_block(ts);
                id = id_claim(ts);
        }
        f->entry = h;
        f->path = path_step(f->ctx ? f->path : fs->base_path, path_key_local(client_g.path_salt, (uint64_t)fn));
        f->id = f->ctx = id;
        f->recorded = true;
        fs->n_recorded++;
        f->t0 = clock_ticks();
}

void ferret__function_enter(void *fn)
{
        enter(fn, 0, (uintptr_t)__builtin_frame_address(0));
}

void ferret__function_enter_at(void *fn, void *call_site, void *sp)
{
        enter(fn, (uint64_t)call_site, sp ? (uintptr_t)sp : (uintptr_t)__builtin_frame_address(0));
}

static void mark_dirty(struct func_state *fs, struct func_entry *e, uint32_t index)
{
        if (fs->n_dirty == DIRTY_MAX) {
                /* Full list: the first entry waits for the next flush. */
                e->dirty = true;
                return;
        }
        fs->dirty[fs->n_dirty++] = (uint16_t)index;
        e->dirty = true;
}

static __attribute__((noinline)) void fold(struct thread_state *ts, struct func_state *fs, const struct func_frame *f,
                                          uint64_t ticks)
{
        struct func_entry *e = &fs->table[f->entry];
        if (e->fn != f->fn)           /* evicted meanwhile: take the slot back */
                e = entry_slow(ts, fs, f->fn, f->entry);
        if (!e->dirty) {
                if (fs->n_dirty == DIRTY_MAX)
                        flush_folds(ts, fs);
                mark_dirty(fs, e, f->entry);
        }
        e->fold_count++;
        e->fold_ticks += ticks;
        if (ticks > e->fold_max)
                e->fold_max = ticks;
        if (e->fold_count >= FOLD_FLUSH_COUNT)
                write_fold(ts, e, FOLD_KEEP);
}

/* Every GUARD_CHECK_EVERY recorded calls of a function: past GUARD_CALLS,
 * if most of them were shorter than GUARD_TINY_NS, recording it costs more
 * than it lasts. From then on its calls are only counted (at the average
 * duration seen so far), and the run's summary says so. */
static __attribute__((noinline)) void guard_check(struct thread_state *ts, struct func_entry *e)
{
        if (func_g.guard_off || e->calls < GUARD_CALLS || (double)e->tiny < GUARD_TINY_SHARE * e->calls)
                return;
        e->state = FUNC_GUARDED;
        char note[512];
        snprintf(note, sizeof(note), "stopped recording %s after %u calls, %u%% of them under %.0f ns; "
                 "its further calls are counted, not recorded", symbols_name(e->fn), e->calls,
                 (unsigned)(100.0 * e->tiny / e->calls), GUARD_TINY_NS);
        notes_add(note);
}

/* Writes the call of @f, popped already: its parent is the frame now on
 * top, or the thread's context. */
static inline void record_call(struct thread_state *ts, struct func_state *fs, const struct func_frame *f,
                               uint64_t t1, uint8_t flags)
{
        uint64_t head;
        bool under_frame = fs->top && fs->stack[fs->top - 1].ctx;
        uint64_t parent = under_frame ? fs->stack[fs->top - 1].ctx : fs->base_parent;
        uint64_t parent_path = under_frame ? fs->stack[fs->top - 1].path : fs->base_path;
        struct func_record *r = ring_write(ts, sizeof(*r), &head);
        if (unlikely(!r) && client_g.full_wait_ms)
                r = (struct func_record *)ring_reserve_waiting(&ts->ring, sizeof(*r), &head, client_g.full_wait_ms);
        if (unlikely(!r)) {
                counter_add(&ts->dropped, 1);
                span_note_lost(ts, f->id, parent, f->path, parent_path);   /* its recorded calls hang under its parent */
                return;
        }
        r->h = record_header_of(RECORD_FUNC, sizeof(*r), flags);
        r->fn = f->fn;
        r->t0 = f->t0;
        r->t1 = t1;
        r->span_id = f->id;
        r->parent_id = parent;
        r->path = f->path;
        r->parent_path = parent_path;
        ring_done(ts, head + sizeof(*r));
        counter_add(&ts->recorded, 1);
        if (unlikely(ts->n_lost))
                span_write_lost(ts);
}

static void abandon_top(struct thread_state *ts, struct func_state *fs, uint64_t t1, uint8_t flags)
{
        struct func_frame *f = &fs->stack[--fs->top];
        if (!f->recorded)
                return;
        fs->n_recorded--;
        record_call(ts, fs, f, t1, flags);
}

/* An exit that is not of the frame on top: frames deeper than it were left
 * by a jump; or its frame is further down (the jump's landing was above the
 * frames between). Returns false for an exit without its enter (tracing
 * began in between). */
static __attribute__((noinline)) bool match_exit(struct thread_state *ts, struct func_state *fs, uint64_t fn,
                                                 uintptr_t sp)
{
        unwind_below(ts, fs, sp, true);
        if (!fs->top)
                return false;
        if (fs->stack[fs->top - 1].fn == fn)
                return true;
        for (uint32_t k = fs->top - 1; k-- > 0;) {
                const struct func_frame *f = &fs->stack[k];
                if (f->fn == fn && f->sp >= sp && f->sp - sp < SAME_STACK_BYTES) {
                        uint64_t t1 = clock_ticks();
                        while (fs->top > k + 1)
                                abandon_top(ts, fs, t1, FUNC_FLAG_UNWOUND);
                        return true;
                }
        }
        return false;
}

static inline __attribute__((always_inline)) void leave(void *fn, uintptr_t sp)
{
        struct thread_state *ts = tls_state;
        if (unlikely(!ts || !ts->func))
                return;
        struct func_state *fs = ts->func;
        if (unlikely(fs->too_deep)) {
                fs->too_deep--;
                return;
        }
        if (unlikely(!fs->top))
                return;               /* an exit without its enter: tracing began in between */
        const struct func_frame *top = &fs->stack[fs->top - 1];
        if (unlikely(top->fn != (uint64_t)fn || top->sp < sp) && !match_exit(ts, fs, (uint64_t)fn, sp))
                return;
        struct func_frame *f = &fs->stack[--fs->top];
        if (!f->recorded)
                return;               /* this call was not recorded: no clock to read */
        fs->n_recorded--;
        uint64_t t1 = clock_ticks();
        uint64_t ticks = t1 - f->t0;
        if (unlikely(ticks < atomic_load_explicit(&func_g.min_ticks, memory_order_relaxed))) {
                fold(ts, fs, f, ticks);
                goto out;
        }
        if (likely(!ts->in_api))
                record_call(ts, fs, f, t1, 0);
        else
                counter_add(&ts->dropped, 1);

        /* The guard counts calls whether or not the ring had room: it is
         * about what the function costs to record, not where it went. */
        struct func_entry *e = &fs->table[f->entry];
        if (e->fn == f->fn) {
                e->tiny += ticks < atomic_load_explicit(&func_g.guard_ticks, memory_order_relaxed);
                if (unlikely(++e->calls % GUARD_CHECK_EVERY == 0))
                        guard_check(ts, e);
        }
out:
        if (unlikely(!fs->n_recorded))
                flush_folds(ts, fs);
}

void ferret__function_exit(void *fn)
{
        leave(fn, (uintptr_t)__builtin_frame_address(0));
}

void ferret__function_exit_at(void *fn, void *sp)
{
        leave(fn, sp ? (uintptr_t)sp : (uintptr_t)__builtin_frame_address(0));
}

/* The thread is exiting, or the process: what it folded or counted must
 * not be lost, including entries that did not fit the dirty list. */
void func_thread_exit(struct thread_state *ts)
{
        if (!ts || !ts->func)
                return;
        struct func_state *fs = ts->func;
        /* Calls still open (exit() called from inside them, or a thread
         * that ends in pthread_exit): recorded as unfinished, ending now. */
        uint64_t t1 = clock_ticks();
        while (fs->top)
                abandon_top(ts, fs, t1, FUNC_FLAG_UNFINISHED);
        for (uint32_t i = 0; i < FUNC_TABLE; i++)
                if (fs->table[i].dirty)
                        write_fold(ts, &fs->table[i], FOLD_WAIT);
        fs->n_dirty = 0;
        fs->n_recorded = fs->too_deep = 0;
}
