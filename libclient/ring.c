/* SPDX-License-Identifier: MIT */
/*
 * Rings that absorb bursts. A thread writes into its home segment
 * (RING_HOME_BYTES, mapped lazily, so an idle thread costs a page or two).
 * When home fills, the producer links an overflow segment twice the size,
 * charged to FERRET_BUFFER_SIZE, and goes on writing there; a later fill
 * links one twice that, or what the budget has left. The flusher finishes each older segment, follows the
 * link, and once the batch that points into an overflow segment is sent,
 * keeps it as the ring's spare for the next burst (unmapped after two idle
 * seconds). When the flusher has left home and released it, the producer goes
 * back home, whose lines are still in the cache: a large ring kept for good
 * would make every write a cache miss.
 *
 * Positions stay one monotonic count across segments: a segment holds
 * positions [start, end) at offset (position & (size - 1)).
 */
#include "client.h"
#include "clock.h"
#include "ring.h"

#include <cpuid.h>
#include <errno.h>
#include <linux/futex.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define DESCRIPTOR_ROOM 4096u
#define RING_SPARE_KEEP_NS 2000000000ull

bool ring_prefetch_write;

void ring_detect_cpu(void)
{
        unsigned a, b, c, d;
        /* CPUID 0x80000001, ECX bit 8: PREFETCHW (PRFCHW). */
        ring_prefetch_write = __get_cpuid(0x80000001, &a, &b, &c, &d) && (c & (1u << 8));
}

static struct ring_segment *segment_new(uint64_t size, uint64_t start, bool charged)
{
        /* mmap, not malloc: the producer may be a signal handler. */
        char *data = mmap(NULL, size + DESCRIPTOR_ROOM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (data == MAP_FAILED)
                return NULL;
        struct ring_segment *seg = (struct ring_segment *)(data + size);
        seg->data = data;
        seg->size = size;
        seg->start = start;
        seg->end = UINT64_MAX;
        atomic_init(&seg->next, NULL);
        seg->retired_next = NULL;
        seg->charged = charged;
        return seg;
}

static void segment_free(struct ring_segment *seg)
{
        if (seg->charged)
                atomic_fetch_sub(&client_g.allocated_bytes, seg->size);
        munmap(seg->data, seg->size + DESCRIPTOR_ROOM);
}

static void producer_use(struct ring *r, struct ring_segment *seg)
{
        r->seg = seg;
        r->data = seg->data;
        r->size = seg->size;
        r->start = seg->start;
        r->tail_seen = seg->start;
        /* Checked every half home in any segment: a flusher that fell
         * behind is woken as early, and the way home is seen soon. */
        r->wake_at = seg->start + r->home->size / 2;
        r->full_skip = 0;
}

/* The producer leaves its segment at @head for @seg. */
static void producer_switch(struct ring *r, struct ring_segment *seg, uint64_t head)
{
        seg->start = head;
        seg->end = UINT64_MAX;
        atomic_store_explicit(&seg->next, NULL, memory_order_relaxed);
        r->seg->end = head;
        atomic_store_explicit(&r->seg->next, seg, memory_order_release);
        producer_use(r, seg);
}

int ring_init(struct ring *r, uint64_t size)
{
        struct ring_segment *home = segment_new(size, 0, false);
        if (!home)
                return -1;
        atomic_init(&r->head, 0);
        atomic_init(&r->tail, 0);
        atomic_init(&r->cseg, home);
        atomic_init(&r->spare, NULL);
        atomic_init(&r->released, 0);
        atomic_init(&r->waiting, 0);
        r->retired = NULL;
        r->home = home;
        producer_use(r, home);
        return 0;
}

/* The child starts empty, at home. Overflow segments are left mapped: the
 * parent's flusher may have been part way through unmapping them, and they
 * are copies on write that the child never touches. */
void ring_reset_after_fork(struct ring *r)
{
        struct ring_segment *home = r->home;
        home->start = 0;
        home->end = UINT64_MAX;
        atomic_store(&home->next, NULL);
        atomic_store(&r->head, 0);
        atomic_store(&r->tail, 0);
        atomic_store(&r->cseg, home);
        atomic_store(&r->spare, NULL);
        atomic_store(&r->waiting, 0);
        r->retired = NULL;
        producer_use(r, home);
}

/* Links an overflow segment twice the size, or as large as the budget has
 * room for (not smaller than home), or the spare the flusher kept if it is
 * large enough: its pages are mapped already. */
static bool ring_grow(struct ring *r)
{
        uint64_t size = r->size * 2;
        uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
        struct ring_segment *spare = atomic_exchange_explicit(&r->spare, NULL, memory_order_acquire);
        if (spare && spare->size >= size) {
                producer_switch(r, spare, head);
                return true;
        }
        if (spare)
                segment_free(spare);
        for (; size >= r->home->size; size /= 2) {
                uint64_t before = atomic_fetch_add(&client_g.allocated_bytes, size);
                if (before + size <= client_g.buffer_bytes)
                        break;
                atomic_fetch_sub(&client_g.allocated_bytes, size);
        }
        if (size < r->home->size)
                return false;
        struct ring_segment *seg = segment_new(size, head, true);
        if (!seg) {
                atomic_fetch_sub(&client_g.allocated_bytes, size);
                return false;
        }
        producer_switch(r, seg, head);
        return true;
}

/* Home is free again once the flusher has moved off it (it reads home's
 * descriptor no more) and released its records (no batch points there). */
static void ring_try_home(struct ring *r, uint64_t head, uint64_t tail)
{
        struct ring_segment *home = r->home;
        if (r->seg == home || tail < home->end || atomic_load_explicit(&r->cseg, memory_order_acquire) == home)
                return;
        producer_switch(r, home, head);
}

static bool ring_fits(struct ring *r, uint64_t need)
{
        uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
        return ring_has_room(r, head, ring_pad_before(r, head, need) + need);
}

__attribute__((noinline)) char *ring_reserve_full(struct ring *r, uint64_t need, uint64_t *ret_head)
{
        /* Reading tail costs a cache miss (the flusher writes it), so once
         * the ring is full and cannot grow it is looked at again only every
         * so many spans: dropping stays cheap while the flusher catches up. */
        if (r->full_skip) {
                r->full_skip--;
                return NULL;
        }
        r->tail_seen = ring_tail_for_producer(r);
        if (!ring_fits(r, need) && !ring_grow(r)) {
                r->full_skip = RING_FULL_SKIP;
                /* Full: head stops moving, so no write will pass wake_at.
                 * A flusher that went to sleep just before must be woken
                 * here, or it sleeps its whole idle period while spans drop. */
                ring_wake(r);
                return NULL;
        }
        return ring_reserve(r, need, ret_head);
}

void ring_release(struct ring *r, uint64_t tail)
{
        /* Against ring_reserve_waiting(), both sequentially consistent (no
         * fence: ThreadSanitizer cannot follow one): either it reads this
         * tail after saying it waits, or this reads that it waits and wakes
         * it. */
        atomic_store_explicit(&r->tail, tail, memory_order_seq_cst);
        if (atomic_load_explicit(&r->waiting, memory_order_seq_cst)) {
                atomic_fetch_add_explicit(&r->released, 1, memory_order_release);
                syscall(SYS_futex, &r->released, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
        }
}

/* Room also comes back without this ring's tail moving (another thread's
 * segments unmapped, leaving budget to grow into): a sleep lasts at most
 * this long before looking again. */
#define WAIT_LOOK_AGAIN_NS 1000000u

/* Looks at the tail now, not after RING_FULL_SKIP more tries. */
static char *ring_reserve_looking(struct ring *r, uint64_t need, uint64_t *ret_head)
{
        r->full_skip = 0;
        return ring_reserve(r, need, ret_head);
}

__attribute__((noinline)) char *ring_reserve_waiting(struct ring *r, uint64_t need, uint64_t *ret_head, int wait_ms)
{
        char *p = ring_reserve(r, need, ret_head);
        if (p || wait_ms <= 0)
                return p;
        int program_errno = errno;    /* futex() and the wake-up's write() set it */
        uint64_t now = clock_mono_ns(), until = now + (uint64_t)wait_ms * 1000000u;
        do {
                uint32_t released = atomic_load_explicit(&r->released, memory_order_acquire);
                atomic_store_explicit(&r->waiting, 1, memory_order_seq_cst);
                r->wake_at = 0;
                ring_wake(r);
                /* Reads the tail (seq_cst, ring_tail_for_producer()) after
                 * saying it waits: see ring_release(). */
                if ((p = ring_reserve_looking(r, need, ret_head)))
                        break;
                uint64_t left = until - now < WAIT_LOOK_AGAIN_NS ? until - now : WAIT_LOOK_AGAIN_NS;
                struct timespec pause = { 0, (long)left };
                /* Async-signal-safe, as the producer may be a handler. */
                syscall(SYS_futex, &r->released, FUTEX_WAIT_PRIVATE, released, &pause, NULL, 0);
        } while ((now = clock_mono_ns()) < until);
        atomic_store_explicit(&r->waiting, 0, memory_order_relaxed);
        if (!p)
                p = ring_reserve_looking(r, need, ret_head);
        errno = program_errno;
        return p;
}

bool ring_wake_check(struct ring *r)
{
        uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
        uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
        uint64_t half = r->home->size / 2;
        ring_try_home(r, head, tail);
        r->tail_seen = ring_tail_for_producer(r);
        if (head - r->tail_seen <= half) {
                r->wake_at = r->tail_seen + half;
                return false;
        }
        /* Still over half a home behind: look again after another sixteenth. */
        r->wake_at = head + r->home->size / 16;
        return true;
}

struct ring_segment *ring_consumer_segment(struct ring *r, uint64_t pos)
{
        struct ring_segment *seg = atomic_load_explicit(&r->cseg, memory_order_relaxed);
        struct ring_segment *next;
        while ((next = atomic_load_explicit(&seg->next, memory_order_acquire)) && pos >= seg->end) {
                if (seg != r->home) {
                        seg->retired_next = r->retired;
                        r->retired = seg;
                }
                seg = next;
        }
        atomic_store_explicit(&r->cseg, seg, memory_order_release);
        return seg;
}

/* Keeps @seg as the spare (the larger, if there is one already), so that
 * the next burst does not map and fault in fresh pages. */
static void keep_spare(struct ring *r, struct ring_segment *seg, uint64_t now_ns)
{
        struct ring_segment *old = atomic_exchange_explicit(&r->spare, NULL, memory_order_acquire);
        if (old && old->size > seg->size) {
                struct ring_segment *t = old;
                old = seg;
                seg = t;
        }
        if (old)
                segment_free(old);
        seg->retired_next = NULL;
        atomic_store_explicit(&r->spare, seg, memory_order_release);
        r->spare_since_ns = now_ns;
}

void ring_consumer_release(struct ring *r, uint64_t now_ns)
{
        uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
        struct ring_segment **link = &r->retired;
        while (*link) {
                struct ring_segment *seg = *link;
                if (tail >= seg->end) {
                        *link = seg->retired_next;
                        keep_spare(r, seg, now_ns);
                } else {
                        link = &seg->retired_next;
                }
        }
        /* A spare no burst wanted for a while goes back to the system. */
        if (atomic_load_explicit(&r->spare, memory_order_relaxed) && now_ns - r->spare_since_ns > RING_SPARE_KEEP_NS) {
                struct ring_segment *seg = atomic_exchange_explicit(&r->spare, NULL, memory_order_acquire);
                if (seg)
                        segment_free(seg);
        }
}
