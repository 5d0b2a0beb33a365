/* SPDX-License-Identifier: MIT */
/*
 * The flusher thread: drains every thread's ring into column-wise batches,
 * sends them, and answers ferret_flush() once the daemon acknowledges that it
 * stored them. It sleeps in poll() while there is nothing to do, and wakes
 * when a ring passes half full, when a flush is asked for, or every
 * IDLE_WAKE_MS to collect what accumulated.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "clock.h"
#include "encode.h"
#include "flusher.h"
#include "function.h"
#include "notes.h"
#include "retain.h"
#include "ring.h"
#include "thread.h"
#include "transport.h"

#define IDLE_WAKE_MS 250
#define BUSY_WAKE_MS 5
/* While batches wait for the daemon's acknowledgement, the flusher asks for
 * it this often (the daemon answers as soon as they are stored). */
#define ACK_POLL_MS 100
/* How long exit may wait, past FERRET_EXIT_TIMEOUT_MS, to tell a daemon
 * that did not store everything in time how much it missed. */
#define LAST_WORD_MS 200

struct pending {
        struct thread_state *ts;
        uint64_t pos;
};

struct flusher {
        struct encoder enc;
        struct transport transport;
        bool transport_ok;
        uint64_t seq;                 /* of the last batch sent */
        uint64_t local_dropped;       /* spans lost here: send or encode failures */
        uint64_t global_reported;
        uint64_t dropped_total;       /* reported to the daemon so far */
        unsigned notes_sent;          /* notes.c's index of the next note to send */

        struct pending *pending;      /* ring positions to release after a send */
        size_t n_pending, cap_pending;
        struct cursor *cursors;       /* drain_all()'s, one per ring with records */
        size_t cap_cursors;

        /* The flush being served: its generation, target and deadline. */
        uint64_t flush_gen;
        uint64_t flush_target;
        uint64_t flush_dropped_mark;
        uint64_t dropped_at_last_flush;
        bool flush_active;
        uint64_t flush_deadline_ns;

        Ferret__Process process;
        uint64_t sent_total;

        /* Batches until the daemon says it stored them, resent from the
         * oldest after each reconnection. */
        struct retain retain;
        uint64_t connections_seen;
        uint64_t next_ack_poll_ns;
};

static void release_pending(struct flusher *f)
{
        for (size_t i = 0; i < f->n_pending; i++)
                ring_release(&f->pending[i].ts->ring, f->pending[i].pos);
        f->n_pending = 0;
}

static void note_pending(struct flusher *f, struct thread_state *ts, uint64_t pos)
{
        if (f->n_pending && f->pending[f->n_pending - 1].ts == ts) {
                f->pending[f->n_pending - 1].pos = pos;
                return;
        }
        if (f->n_pending == f->cap_pending) {
                size_t cap = f->cap_pending ? f->cap_pending * 2 : 64;
                struct pending *p = realloc(f->pending, cap * sizeof(*p));
                if (!p) {
                        /* Cannot remember the position: release what we have
                         * now; the spans are already encoded. */
                        ring_release(&ts->ring, pos);
                        return;
                }
                f->pending = p;
                f->cap_pending = cap;
        }
        f->pending[f->n_pending++] = (struct pending){ ts, pos };
}

/* Spans dropped anywhere since the previous batch. Producers only add to
 * their counters, so the difference from what was reported is exact. */
static uint64_t collect_dropped(struct flusher *f)
{
        uint64_t n = f->local_dropped;
        f->local_dropped = 0;
        for (struct thread_state *ts = atomic_load(&client_g.all_states); ts; ts = ts->next) {
                uint64_t d = atomic_load_explicit(&ts->dropped, memory_order_relaxed);
                n += d - ts->dropped_reported;
                ts->dropped_reported = d;
        }
        uint64_t g = atomic_load(&client_g.dropped_global);
        n += g - f->global_reported;
        f->global_reported = g;
        return n;
}

/* Hands kept batches to ZeroMQ, oldest first, while it takes them. */
static void send_retained(struct flusher *f, bool patient)
{
        if (!f->transport_ok)
                return;
        int wait = 0;
        /* Waiting for room only makes sense when a daemon reads. In
         * FERRET_ON_FULL=block mode the flusher waits like producers. */
        if (f->transport.peer == PEER_CONNECTED) {
                uint64_t now = clock_mono_ns();
                if (patient)
                        wait = f->flush_deadline_ns > now ? (int)((f->flush_deadline_ns - now) / 1000000) : 0;
                if (client_g.full_wait_ms > wait)
                        wait = client_g.full_wait_ms;
        }
        const struct retained_batch *b;
        while ((b = retain_next_unsent(&f->retain))) {
                uint64_t first_unacked = retain_first_seq(&f->retain, b->seq);
                if (transport_send_batch(&f->transport, b->data, b->len, first_unacked, wait) < 0)
                        break;
                retain_mark_sent(&f->retain);
        }
}

/* Lets go of what the daemon stored, sends everything again after a
 * reconnection (a restarted daemon lost what was queued in the old one),
 * and asks for acknowledgements while some are outstanding. */
static void follow_acks(struct flusher *f)
{
        if (!f->transport_ok)
                return;
        /* Never past what was sent, whatever an answer says. */
        retain_acknowledged(&f->retain, f->transport.stored_seq < f->seq ? f->transport.stored_seq : f->seq);
        if (f->transport.connections != f->connections_seen) {
                if (f->connections_seen)
                        retain_rewind(&f->retain);
                f->connections_seen = f->transport.connections;
        }
        uint64_t now = clock_mono_ns();
        if (retain_has_sent(&f->retain) && f->transport.peer == PEER_CONNECTED && now >= f->next_ack_poll_ns) {
                transport_request_flush(&f->transport, client_g.client_id, f->seq, ACK_POLL_MS, true);
                f->next_ack_poll_ns = now + ACK_POLL_MS * 1000000ull;
        }
}

/* The header of the next batch, which reports @dropped. */
static void next_header(struct flusher *f, Ferret__Batch *header, uint64_t dropped)
{
        *header = (Ferret__Batch)FERRET__BATCH__INIT;
        header->version = WIRE_PROTOCOL_VERSION;
        header->process = &f->process;
        header->run_id = client_g.run_id;
        header->client_id = client_g.client_id;
        header->seq = f->seq + 1;
        header->dropped = dropped;
        /* Spans sent or counted dropped, so that the daemon counts as lost
         * both kinds of a batch it never gets. */
        header->sent_before = f->sent_total + f->dropped_total;
}

/* Whether a connected daemon is so far behind that another batch would
 * push out one it has not even been handed. The records then stay in the
 * rings until ZeroMQ takes batches again: encoding them only to throw a
 * batch away would take a core from the program, and a full ring drops a
 * span as it begins, before the clock is read. (With no daemon connected
 * the flusher drains as before, keeping the newest batches.) */
static bool daemon_behind(const struct flusher *f)
{
        return f->transport_ok && f->transport.peer == PEER_CONNECTED &&
               retain_would_evict_unsent(&f->retain, ENCODER_MAX_BYTES);
}

static void send_batch(struct flusher *f, bool patient)
{
        uint64_t dropped = collect_dropped(f);
        size_t n = f->enc.n;
        if (!encoder_has_content(&f->enc) && dropped == 0)
                return;

        Ferret__Batch header;
        next_header(f, &header, dropped);
        const uint8_t *data;
        size_t len;
        uint64_t evicted = 0;
        int r = f->transport_ok ? encoder_pack(&f->enc, &header, &data, &len) : -ENOTCONN;
        /* A flush waits for room before pushing out an unsent batch. */
        if (r == 0 && patient && daemon_behind(f))
                send_retained(f, true);
        if (r == 0)
                r = retain_push(&f->retain, header.seq, n, data, len, &evicted);
        if (r == 0) {
                f->seq++;
                f->sent_total += n;
                f->dropped_total += dropped;
                atomic_fetch_add(&client_g.sent_spans, n);
                atomic_fetch_add(&client_g.sent_batches, 1);
                /* Never sent, so the daemon will count them from sent_before;
                 * here they count for this client's own statistics. */
                atomic_fetch_add(&client_g.dropped_sending, evicted);
        } else {
                f->local_dropped += dropped + n;
                atomic_fetch_add(&client_g.dropped_sending, n);
        }
        encoder_reset(&f->enc);
        release_pending(f);
        send_retained(f, patient);
}

/* Where drain_all() is in one ring. */
struct cursor {
        struct thread_state *ts;
        uint64_t pos, head, limit;
        struct ring_segment *seg;
};

static const struct record_header *cursor_record(struct cursor *c)
{
        if (c->pos == c->limit) {
                c->seg = ring_consumer_segment(&c->ts->ring, c->pos);
                c->limit = ring_segment_limit(c->seg, c->head);
        }
        return (const void *)(c->seg->data + (c->pos & (c->seg->size - 1)));
}

/* When the record ended, in ticks; 0 for records that are not spans. */
static uint64_t record_end(const struct record_header *h)
{
        if (h->type == RECORD_SPAN)
                return ((const struct record *)h)->t1;
        if (h->type == RECORD_FUNC)
                return ((const struct func_record *)h)->t1;
        return 0;
}

static int encode_record(struct flusher *f, struct thread_state *ts, const struct record_header *h)
{
        switch (h->type) {
        case RECORD_SPAN:
                return encoder_add(&f->enc, (const struct record *)h);
        case RECORD_FUNC:
                return encoder_add_func(&f->enc, (const struct func_record *)h, &ts->calls);
        case RECORD_CONTEXT: {
                const struct context_record *c = (const void *)h;
                ts->calls = (struct call_context){ .trace_hi = c->trace_hi, .trace_lo = c->trace_lo, .tid = c->tid };
                return 0;
        }
        case RECORD_FOLD:
                return encoder_add_fold(&f->enc, (const struct fold_record *)h);
        case RECORD_LOST:
                return encoder_add_lost(&f->enc, (const struct lost_record *)h);
        }
        return 0;
}

/* A full batch goes, and every ring gives back what went in it. */
static void send_full_batch(struct flusher *f, struct cursor *c, size_t n, bool patient)
{
        for (size_t i = 0; i < n; i++)
                note_pending(f, c[i].ts, c[i].pos);
        send_batch(f, patient);
}

/* Encodes the records of rings @c[0..n) in the order they ended, across
 * rings (each ring is in that order already): a parent comes after the
 * children that ended before it, whatever their threads, so that ferretd
 * counts their time in the parent's self time. A run of one ring's records
 * goes without looking at the others until it passes the next ring's. */
static void drain_merged(struct flusher *f, struct cursor *c, size_t n, bool patient)
{
        size_t active = n;
        while (active) {
                size_t first = SIZE_MAX;
                uint64_t best = UINT64_MAX, second = UINT64_MAX;
                for (size_t i = 0; i < n; i++) {
                        if (c[i].pos >= c[i].head)
                                continue;
                        uint64_t t = record_end(cursor_record(&c[i]));
                        if (first == SIZE_MAX || t < best) {
                                second = best;
                                best = t;
                                first = i;
                        } else if (t < second) {
                                second = t;
                        }
                }
                struct cursor *k = &c[first];
                while (k->pos < k->head) {
                        const struct record_header *h = cursor_record(k);
                        uint64_t t = record_end(h);
                        if (t > second)
                                break;
                        int e = encode_record(f, k->ts, h);
                        if (e == -ENOSPC) {
                                send_full_batch(f, c, n, patient);
                                continue;
                        }
                        if (e < 0) {
                                f->local_dropped++;
                                atomic_fetch_add(&client_g.dropped_sending, 1);
                        }
                        k->pos += h->size;
                }
                active -= k->pos >= k->head;
        }
}

static void drain_all(struct flusher *f, bool patient)
{
        clock_convert_now(&f->enc.conv);
        func_calibrated(f->enc.conv.ns_per_tick);
        uint64_t now_ns = clock_mono_ns();
        /* Every ring up to where it was at one instant: a span that ended
         * before another, in any thread, is in this drain if the other is. */
        size_t n = 0;
        for (struct thread_state *ts = atomic_load(&client_g.all_states); ts; ts = ts->next) {
                struct ring *ring = &ts->ring;
                ring_consumer_release(ring, now_ns);
                uint64_t tail = atomic_load_explicit(&ring->tail, memory_order_relaxed);
                uint64_t head = atomic_load_explicit(&ring->head, memory_order_acquire);
                atomic_store_explicit(&ts->wake_pending, false, memory_order_relaxed);
                if (tail == head) {
                        ring_consumer_segment(ring, tail);   /* off a finished segment: the producer may go home */
                        continue;
                }
                if (n == f->cap_cursors) {
                        size_t cap = f->cap_cursors ? 2 * f->cap_cursors : 16;
                        struct cursor *p = realloc(f->cursors, cap * sizeof(*p));
                        if (!p)
                                break;  /* the others wait for the next drain */
                        f->cursors = p;
                        f->cap_cursors = cap;
                }
                struct ring_segment *seg = ring_consumer_segment(ring, tail);
                f->cursors[n++] = (struct cursor){ .ts = ts, .pos = tail, .head = head, .seg = seg,
                                                   .limit = ring_segment_limit(seg, head) };
        }
        drain_merged(f, f->cursors, n, patient);
        for (size_t i = 0; i < n; i++) {
                /* Off a finished segment now, so that the producer may go home. */
                ring_consumer_segment(&f->cursors[i].ts->ring, f->cursors[i].pos);
                note_pending(f, f->cursors[i].ts, f->cursors[i].pos);
        }
        notes_encode(&f->enc, &f->notes_sent);
        send_batch(f, patient);
}

static void complete_flush(struct flusher *f, int result)
{
        pthread_mutex_lock(&client_g.flush_lock);
        if (f->flush_gen > client_g.flush_done) {
                client_g.flush_done = f->flush_gen;
                client_g.flush_result = result;
        }
        pthread_cond_broadcast(&client_g.flush_cond);
        pthread_mutex_unlock(&client_g.flush_lock);
        f->flush_active = false;
}

static void start_flush(struct flusher *f, uint64_t gen)
{
        f->flush_gen = gen;
        f->flush_target = f->seq;
        f->flush_dropped_mark = f->dropped_total + f->local_dropped;
        if (!f->transport_ok || f->transport.peer == PEER_ABSENT) {
                complete_flush(f, -ECONNREFUSED);
                return;
        }
        if (f->flush_target == 0 || f->transport.stored_seq >= f->flush_target) {
                complete_flush(f, 0);
                return;
        }
        uint64_t now = clock_mono_ns();
        transport_request_flush(&f->transport, client_g.client_id, f->flush_target,
                                f->flush_deadline_ns > now ? (uint32_t)((f->flush_deadline_ns - now) / 1000000) : 0,
                                false);
        f->flush_active = true;
}

static void check_flush(struct flusher *f)
{
        if (!f->flush_active)
                return;
        if (f->transport.stored_seq >= f->flush_target) {
                bool lost = f->flush_dropped_mark != f->dropped_at_last_flush;
                f->dropped_at_last_flush = f->flush_dropped_mark;
                complete_flush(f, lost ? -ENODATA : 0);
        } else if (f->transport.peer == PEER_ABSENT)
                complete_flush(f, -ECONNREFUSED);
        else if (clock_mono_ns() >= f->flush_deadline_ns)
                complete_flush(f, -ETIMEDOUT);
}

/* A daemon too slow for the exit's timeout still gets what this client
 * sent or dropped in all, so that what it never gets is counted: an empty
 * batch, on a connection of its own, as the old one's queue goes unread. */
static void send_last_word(struct flusher *f)
{
        Ferret__Batch header;
        next_header(f, &header, collect_dropped(f));
        encoder_reset(&f->enc);
        const uint8_t *data;
        size_t len;
        if (encoder_pack(&f->enc, &header, &data, &len) == 0)
                transport_last_word(&f->transport, data, len, header.seq, LAST_WORD_MS);
}

static void *flusher_main(void *arg)
{
        struct flusher *f = arg;

        /* Told apart from the program's threads in top -H and ps -L. */
        pthread_setname_np(pthread_self(), "ferret-flusher");

        /* Measure the clock now rather than at the first batch: function
         * calls shorter than --min-duration are told apart only from then
         * on. This takes a couple of milliseconds, in this thread. */
        clock_convert_now(&f->enc.conv);
        func_calibrated(f->enc.conv.ns_per_tick);
        for (;;) {
                pthread_mutex_lock(&client_g.flush_lock);
                bool stop = client_g.stop_requested;
                uint64_t requested = client_g.flush_requested;
                uint64_t deadline = client_g.flush_deadline_ns;
                pthread_mutex_unlock(&client_g.flush_lock);

                bool new_flush = requested > f->flush_gen;
                if (new_flush)
                        f->flush_deadline_ns = deadline;
                bool busy = new_flush || f->flush_active ||
                            (retain_next_unsent(&f->retain) && f->transport.peer == PEER_CONNECTED);
                int idle = retain_has_sent(&f->retain) ? ACK_POLL_MS : IDLE_WAKE_MS;
                if (f->transport_ok && !new_flush)
                        transport_poll(&f->transport, client_g.wake_fd, busy ? BUSY_WAKE_MS : idle,
                                       daemon_behind(f));
                else if (!f->transport_ok && !new_flush && !stop) {
                        struct timespec ts = { 0, IDLE_WAKE_MS * 1000000L };
                        nanosleep(&ts, NULL);
                }

                /* A flush waits for the connection outcome before deciding
                 * there is no daemon. */
                if (new_flush && f->transport.peer == PEER_UNKNOWN && f->transport_ok &&
                    clock_mono_ns() < f->flush_deadline_ns) {
                        transport_poll(&f->transport, client_g.wake_fd, 1, false);
                        if (f->transport.peer == PEER_UNKNOWN)
                                continue;
                }

                follow_acks(f);
                send_retained(f, false);
                if (!daemon_behind(f) || new_flush || f->flush_active)
                        drain_all(f, new_flush || f->flush_active);
                if (new_flush)
                        start_flush(f, requested);
                check_flush(f);
                if (stop && !f->flush_active)
                        break;
        }
        /* Batches never acknowledged: at stop, when the daemon is gone or did
         * not answer, they are lost, and count as dropped. */
        /* Never past what was sent, whatever an answer says. */
        retain_acknowledged(&f->retain, f->transport.stored_seq < f->seq ? f->transport.stored_seq : f->seq);
        atomic_fetch_add(&client_g.dropped_sending, retain_spans(&f->retain));
        if (retain_first_seq(&f->retain, 0) && f->transport_ok && f->transport.connections)
                send_last_word(f);
        retain_free(&f->retain);
        if (f->transport_ok)
                transport_close(&f->transport);
        return NULL;
}

static struct flusher flusher_g;

int flusher_start(void)
{
        struct flusher *f = &flusher_g;
        encoder_free(&f->enc);
        free(f->pending);
        free(f->cursors);
        retain_free(&f->retain);
        *f = (struct flusher){ 0 };
        if (encoder_init(&f->enc) < 0)
                return -ENOMEM;
        f->process = (Ferret__Process)FERRET__PROCESS__INIT;
        f->process.pid = (uint32_t)client_g.pid;
        f->process.ppid = (uint32_t)getppid();
        f->process.executable = client_g.executable;
        f->process.command_line = client_g.command_line;
        f->process.hostname = client_g.hostname;
        f->process.start_ns = client_g.start_wall_ns;
        f->process.observer = client_g.observer;

        /* The sockets are made here, on the thread that starts the client:
         * creating them reads the environment (libzmq initialises libpgm,
         * which calls getenv), and a background thread doing that could
         * race with the program's own setenv. pthread_create's barrier
         * hands them over to the flusher thread. */
        /* Signals belong to the program. Blocked while the sockets are
         * made: ZeroMQ's calls wait on its I/O thread, and a signal arriving
         * meanwhile fails them with EINTR (a 50 us profiling timer did, one
         * start in thirty), leaving the client without a daemon. The
         * flusher thread inherits the mask and takes no signal at all. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        f->transport_ok = transport_open(&f->transport, client_g.runtime_dir) == 0;
        int r = -pthread_create(&client_g.flusher, NULL, flusher_main, f);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r == 0)
                client_g.flusher_running = true;
        else if (f->transport_ok)
                transport_close(&f->transport);
        return r;
}

static void deadline_after(struct timespec *ts, int timeout_ms)
{
        clock_gettime(CLOCK_MONOTONIC, ts);
        ts->tv_sec += timeout_ms / 1000;
        ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (ts->tv_nsec >= 1000000000L) {
                ts->tv_sec++;
                ts->tv_nsec -= 1000000000L;
        }
}

/* Asks the flusher for a flush (and to stop afterwards, if @stop) and waits
 * for its answer. Called with nothing locked. */
static int request_flush(int timeout_ms, bool stop)
{
        struct timespec until;
        if (timeout_ms < 0)
                timeout_ms = 24 * 3600 * 1000;
        deadline_after(&until, timeout_ms);

        /* A fatal signal's handler may flush (the agent's, the Python
         * extension's): while this thread holds the lock, those signals
         * wait, or the handler would wait for the lock for ever. */
        sigset_t held, old;
        sigemptyset(&held);
        sigaddset(&held, SIGTERM);
        sigaddset(&held, SIGINT);
        sigaddset(&held, SIGHUP);
        sigaddset(&held, SIGQUIT);
        pthread_sigmask(SIG_BLOCK, &held, &old);
        pthread_mutex_lock(&client_g.flush_lock);
        uint64_t gen = ++client_g.flush_requested;
        client_g.flush_deadline_ns = (uint64_t)until.tv_sec * 1000000000u + (uint64_t)until.tv_nsec;
        if (stop)
                client_g.stop_requested = true;
        uint64_t one = 1;
        ssize_t w = write(client_g.wake_fd, &one, sizeof(one));
        (void)w;
        int r = 0;
        while (client_g.flush_done < gen && r != ETIMEDOUT)
                r = pthread_cond_timedwait(&client_g.flush_cond, &client_g.flush_lock, &until);
        int result = client_g.flush_done >= gen ? client_g.flush_result : -ETIMEDOUT;
        pthread_mutex_unlock(&client_g.flush_lock);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return result;
}

int flusher_flush(int timeout_ms)
{
        return request_flush(timeout_ms, false);
}

void flusher_stop(int timeout_ms)
{
        if (!client_g.flusher_running)
                return;
        request_flush(timeout_ms, true);
        /* Whatever the answer, the thread leaves at its next turn: the stop
         * flag is set and the flush it served has completed or expired. */
        uint64_t one = 1;
        ssize_t w = write(client_g.wake_fd, &one, sizeof(one));
        (void)w;
        pthread_join(client_g.flusher, NULL);
        client_g.flusher_running = false;
}

/* The child of fork() has no flusher thread and must not touch the parent's
 * ZeroMQ context: forget both (the memory is the parent's copy). */
void flusher_after_fork_child(void)
{
        flusher_g = (struct flusher){ 0 };
        client_g.flusher_running = false;
        /* A child is a process of the run, whoever forked it. */
        client_g.observer = false;
}
