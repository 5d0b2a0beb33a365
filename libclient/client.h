/* SPDX-License-Identifier: MIT */
/*
 * Internals of libferret-client, shared by its files. Nothing here is
 * exported (the version script exports only ferret_*).
 *
 * A span lives in a slot of its thread's slot array from begin to end; ending
 * it copies the slot into the thread's ring buffer as one record, which the
 * flusher thread later encodes into a Batch. Each ring has one producer (the
 * thread that owns it) and one consumer (the flusher), so both sides only load
 * and store: no lock and no read-modify-write on the hot path.
 */
#pragma once

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>

#include "ferret.h"
#include "path.h"

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* Open spans a thread may hold at once: address space reserved for them,
 * made ready SLOT_CHUNK at a time as spans nest deeper (a deep recursion
 * of 100,000 spans costs 50 MB while it lasts; a thread that nests a few
 * touches one page). Past it spans are dropped, and the summary says so. */
#define SLOTS_PER_THREAD (1u << 17)
#define SLOT_CHUNK 128
#define LOST_PENDING 64               /* dropped spans remembered for their children */
#define SLOT_BYTES 512                /* a power of two: slots are found by shifting */
#define NAME_MAX_BYTES 255
#define TAG_KEY_MAX_BYTES 63
#define TAG_VALUE_MAX_BYTES 255

/* Entries of a slot's payload. Each starts with its kind byte. */
enum entry_kind {
        ENTRY_TAG_STRING = 0,         /* same numbers as the wire's TagType */
        ENTRY_TAG_INT = 1,
        ENTRY_TAG_DOUBLE = 2,
        ENTRY_TAG_BOOL = 3,
        ENTRY_MESSAGE = 4,
        ENTRY_KEY_ID = 0x80,          /* flag: the key is an interned number (4 bytes), not a string */
};

/* Global client state; the hot path tests it against READY in one branch. */
enum client_state {
        CLIENT_UNINIT = 0,
        CLIENT_READY,
        CLIENT_DISABLED,
        CLIENT_SHUTDOWN,
        CLIENT_RESTART,               /* a forked child that must start its flusher */
};

struct thread_state;

/* Ring records. Every record starts with a uint32_t size (a multiple of 8,
 * so every header is aligned) and has its type in byte 6. */
enum {
        RECORD_SPAN = 1,              /* struct record: an ended span */
        RECORD_PAD = 2,               /* filler up to the end of the buffer */
        RECORD_FUNC = 3,              /* struct func_record: a function call */
        RECORD_CONTEXT = 4,           /* struct context_record: trace and thread of the calls that follow */
        RECORD_FOLD = 5,              /* struct fold_record: short calls, counted, not recorded one by one */
        RECORD_LOST = 6,              /* struct lost_record: a span whose end was dropped, and its parent */
};

struct record_header {
        uint32_t size;
        uint16_t len;
        uint8_t type;
        uint8_t flags;
};

/* A func_record's h.flags: the wire's span flags. */
#define FUNC_FLAG_UNFINISHED FERRET__SPAN_FLAG__SPAN_FLAG_UNFINISHED
#define FUNC_FLAG_UNWOUND FERRET__SPAN_FLAG__SPAN_FLAG_UNWOUND

struct func_record {
        struct record_header h;
        uint64_t fn, t0, t1, span_id, parent_id;
        uint64_t path, parent_path;   /* call paths, see proto/path.h */
};

struct lost_record {
        struct record_header h;
        uint64_t span_id, parent_id;
        uint64_t path, parent_path;
};

struct context_record {
        struct record_header h;
        uint32_t tid, pad;
        uint64_t trace_hi, trace_lo;
};

struct fold_record {
        struct record_header h;
        uint64_t fn, count, total_ticks, max_ticks;
        uint64_t untimed;             /* calls counted without a duration (guarded) */
};

struct record {
        uint32_t size;
        uint16_t payload_len;
        uint8_t type;
        uint8_t flags;                /* wire SpanFlag bits */
        uint32_t name_id;             /* 0: the name is inline, first in the payload */
        uint32_t tid;
        uint64_t t0, t1;
        uint64_t trace_hi, trace_lo, span_id, parent_id;
        uint64_t path, parent_path;   /* call paths, see proto/path.h */
};

/* Sets the first 8 bytes of a span record without payload (its size, no
 * payload, the type, no flags) in one store: ending the span then copies the
 * slot's record as it is. */
static inline void record_header_reset(struct record *r)
{
        struct record_header h = { .size = sizeof(struct record), .len = 0, .type = RECORD_SPAN, .flags = 0 };
        memcpy(r, &h, sizeof(h));
}
_Static_assert(offsetof(struct record, size) == offsetof(struct record_header, size) &&
               offsetof(struct record, payload_len) == offsetof(struct record_header, len) &&
               offsetof(struct record, type) == offsetof(struct record_header, type) &&
               offsetof(struct record, flags) == offsetof(struct record_header, flags),
               "a span record starts with a record header");

static inline char *record_payload(const struct record *r)
{
        return (char *)(r + 1);
}

/* A slot's state word: 0 when free, else SLOT_OPEN with the bits below,
 * or SLOT_ENDED alone. */
enum {
        SLOT_OPEN = 1,                /* set by the owner only */
        SLOT_INHERITED = 2,           /* opened before fork(): the parent records it */
        SLOT_ORPHANED = 4,            /* recorded as unfinished when its thread exited */
        SLOT_ENDED = 8,               /* ended while not its thread's current span */
};

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

static inline bool slot_open(struct ferret_span *s)
{
        return atomic_load_explicit(&s->state, memory_order_acquire) & SLOT_OPEN;
}

/* Whether @s is taken: open, or ended but still in its owner's chain. */
static inline bool slot_busy(struct ferret_span *s)
{
        return atomic_load_explicit(&s->state, memory_order_acquire) != 0;
}

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
        char pad1[24];
        /* The producer's side: its segment, copied out for the hot path. */
        uint64_t tail_seen;           /* the producer's last view of tail, at least start */
        uint64_t wake_at;             /* head position past which to check on the flusher */
        uint32_t full_skip;           /* spans to drop before looking at tail again */
        uint64_t size;                /* seg->size */
        char *data;                   /* seg->data */
        uint64_t start;               /* seg->start */
        struct ring_segment *seg;
        struct ring_segment *home;
};

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
         * has room to say so (written with in_api up). */
        uint64_t lost[LOST_PENDING][4];   /* span id, parent id, path, parent path */
        unsigned n_lost;
        _Atomic uint64_t recorded;    /* producer-only counters: load + store */
        _Atomic uint64_t dropped;
        uint64_t dropped_reported;    /* flusher-only */
        _Atomic bool wake_pending;
        struct func_state *func;      /* function-call tracing, allocated on first use */
        /* The flusher's view of this ring's function calls (flusher only). */
        uint64_t func_trace_hi, func_trace_lo;
        uint32_t func_tid;
        struct thread_state *next;    /* in the list of every state (never removed) */
        struct thread_state *next_free;
};

/* Process-wide client. */
struct client {
        _Atomic int state;
        pid_t pid;
        uint64_t client_id;
        uint64_t id_base;                    /* span ids: id_base + counter */
        _Atomic uint64_t id_counter;
        ferret_ctx_t root_parent;            /* FERRET_TRACEPARENT, or the span open at fork() */
        uint64_t root_path;                  /* its call path (FERRET_TRACESTATE), PATH_NONE if none */
        uint64_t path_salt;                  /* random: this process's keys of names it numbers */

        /* Configuration, read once from the environment. */
        char runtime_dir[256];
        char run_id[256];
        char executable[512];
        char command_line[1024];      /* /proc/self/cmdline, arguments joined by spaces */
        char hostname[256];
        uint64_t start_wall_ns;
        uint64_t buffer_bytes;
        int exit_timeout_ms;
        int full_wait_ms;                    /* FERRET_ON_FULL=block:MS, else 0 (drop) */
        bool observer;                       /* FERRET_OBSERVER=1: ferret run's own client */

        /* Thread states. */
        _Atomic(struct thread_state *) all_states;
        pthread_mutex_t free_lock;
        struct thread_state *free_states;
        _Atomic uint64_t allocated_bytes;
        _Atomic uint64_t dropped_global;     /* spans lost before reaching a ring */
        _Atomic uint64_t dropped_sending;    /* spans lost by the flusher (queue full) */
        pthread_key_t thread_key;

        /* The flusher thread and the requests it serves. */
        pthread_t flusher;
        bool flusher_running;
        int wake_fd;                         /* eventfd that wakes the flusher */
        pthread_mutex_t flush_lock;
        pthread_cond_t flush_cond;
        uint64_t flush_requested;            /* generation numbers, under flush_lock */
        uint64_t flush_done;
        int flush_result;
        bool stop_requested;
        uint64_t flush_deadline_ns;          /* CLOCK_MONOTONIC */

        /* Counters published by the flusher. */
        _Atomic uint64_t sent_spans;
        _Atomic uint64_t sent_batches;
};

extern struct client client_g;
extern volatile int ferret_off_;
/* ferret_off_ is read by every thread without a lock (the header's macros
 * load it relaxed): it only lets them skip a call that would find the state
 * anyway, so relaxed stores suffice, but they must be atomic ones. */
static inline void client_set_off(int off)
{
        __atomic_store_n(&ferret_off_, off, __ATOMIC_RELAXED);
}

/* client.c: configuration and lifecycle. */
int client_start_slow(void);
int client_ensure_flusher(void);

/* thread.c: per-thread states. */
extern __thread struct thread_state *tls_state __attribute__((tls_model("initial-exec")));
struct thread_state *thread_state_create(void);
void thread_state_release(void *state);
void thread_states_after_fork_child(struct ferret_span *keep_current);
uint64_t thread_state_next_id_block(struct thread_state *ts);
void thread_state_wake_flusher(struct thread_state *ts);

/* function.c: function calls, through __cyg_profile_func_enter/exit. */
void func_configure(void);
void func_thread_exit(struct thread_state *ts);
void func_calibrated(double ns_per_tick);

/* symbols.c: code addresses to function names, off the hot path. */
const char *symbols_name(uint64_t address);

/* span.c: records the spans a exiting thread leaves open, as unfinished. */
void span_close_thread(struct thread_state *ts);
/* Says which spans of @ts had their end dropped, if the ring has room now
 * (ferret_flush() and thread exit call it). */
void span_write_lost(struct thread_state *ts);
/* The same for a function call whose record was dropped. */
void span_note_lost(struct thread_state *ts, uint64_t span_id, uint64_t parent_id, uint64_t path,
                    uint64_t parent_path);
/* The call path of the span of @ctx, as well as this process can know it:
 * the thread's current spans, the contexts it handed out lately, else the
 * parent's foreign path (proto/path.h). */
uint64_t span_path_of(ferret_ctx_t ctx);
/* Sets the parent of spans begun without one (FERRET_TRACEPARENT, fork()). */
void span_set_root_parent(ferret_ctx_t parent, uint64_t path);

/* intern.c: names known at compile time. */
uint32_t intern_name(const char *name);
const char *intern_lookup(uint32_t id, size_t *ret_len);
void intern_before_fork(void);
void intern_after_fork(bool child);

/* ids.c: random numbers and trace ids. */
uint64_t ids_random64(void);
int ids_tracestate_format(ferret_ctx_t parent, uint64_t path, char *buf, size_t size);
/* The path of @parent that @tracestate holds, 0 if it holds none. */
uint64_t ids_tracestate_path(const char *tracestate, ferret_ctx_t parent);
static inline uint64_t ids_next(uint64_t *state)
{
        /* xorshift64*: a thread-private generator for trace ids. */
        uint64_t x = *state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *state = x;
        return x * 0x2545F4914F6CDD1DULL;
}

/* flusher.c */
int flusher_start(void);
void flusher_stop(int timeout_ms);
int flusher_flush(int timeout_ms);
void flusher_after_fork_child(void);

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

/* Zeroed memory from mmap, not malloc: the library's first allocation on a
 * thread may come from a signal handler that interrupted malloc there.
 * NULL on failure; given back with munmap(). */
static inline void *map_zeroed(size_t size)
{
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? NULL : p;
}

/* strnlen(@s, @max), cut back to a character boundary when @s is longer,
 * so that a limit never splits a UTF-8 character. */
static inline size_t text_len(const char *s, size_t max)
{
        size_t n = strnlen(s, max);
        if (n == max && s[n])
                while (n && ((unsigned char)s[n] & 0xC0) == 0x80)
                        n--;
        return n;
}

/* Address space for arrays that grow as used: pages are backed when first
 * touched, and not charged against the commit limit before. */
static inline void *map_reserved(size_t size)
{
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        return p == MAP_FAILED ? NULL : p;
}

/* thread.c: makes SLOT_CHUNK more slots ready; false when all are. */
bool slots_extend(struct thread_state *ts);

/* Adds to a counter that only the calling thread writes. */
static inline void counter_add(_Atomic uint64_t *c, uint64_t n)
{
        atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                              memory_order_relaxed);
}
