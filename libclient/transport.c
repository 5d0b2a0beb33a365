/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <zmq.h>

#include "clock.h"
#include "runtime-dir.h"
#include "transport.h"
#include "wire.h"

/* Batches queued in ZeroMQ while the daemon is away or slow; beyond this the
 * flusher drops (and counts) instead of using more memory. */
#define SEND_QUEUE_BATCHES 64

/* The batch socket and its monitor, connected to @ingest. The monitor's
 * name tells apart the sockets of one transport (@generation) and of the
 * transports of one process. */
static int open_push(struct transport *t, const char *ingest, unsigned generation)
{
        char monitor[80];
        int zero = 0, one = 1, hwm = SEND_QUEUE_BATCHES, ivl = 200, ivl_max = 2000;

        t->push = zmq_socket(t->ctx, ZMQ_PUSH);
        t->monitor = zmq_socket(t->ctx, ZMQ_PAIR);
        if (!t->push || !t->monitor)
                return -1;
        /* No bound on queued events: ZeroMQ's I/O thread would block on a
         * full monitor. */
        zmq_setsockopt(t->monitor, ZMQ_RCVHWM, &zero, sizeof(zero));
        zmq_setsockopt(t->push, ZMQ_SNDHWM, &hwm, sizeof(hwm));
        zmq_setsockopt(t->push, ZMQ_IMMEDIATE, &one, sizeof(one));
        zmq_setsockopt(t->push, ZMQ_LINGER, &zero, sizeof(zero));
        zmq_setsockopt(t->push, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl));
        zmq_setsockopt(t->push, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof(ivl_max));
        snprintf(monitor, sizeof(monitor), "inproc://ferret-monitor-%p-%u", (void *)t, generation);
        if (zmq_socket_monitor(t->push, monitor,
                               ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CONNECT_RETRIED) < 0 ||
            zmq_connect(t->monitor, monitor) < 0 || zmq_connect(t->push, ingest) < 0)
                return -1;
        return 0;
}

static void close_push(struct transport *t)
{
        if (t->push)
                zmq_socket_monitor(t->push, NULL, 0);
        if (t->monitor)
                zmq_close(t->monitor);
        if (t->push)
                zmq_close(t->push);
        t->push = t->monitor = NULL;
}

int transport_open(struct transport *t, const char *runtime_dir)
{
        char query[512], dealer_monitor[64];
        int zero = 0, ivl = 200, ivl_max = 2000;

        *t = (struct transport){ .peer = PEER_UNKNOWN };
        snprintf(t->runtime_dir, sizeof(t->runtime_dir), "%s", runtime_dir);
        if (runtime_endpoint(runtime_dir, RUNTIME_INGEST_SOCKET, t->ingest, sizeof(t->ingest)) < 0 ||
            runtime_endpoint(runtime_dir, RUNTIME_QUERY_SOCKET, query, sizeof(query)) < 0)
                return -ENAMETOOLONG;

        t->ctx = zmq_ctx_new();
        if (!t->ctx)
                return -errno;
        /* ZeroMQ's own threads must not add to the program's thread count
         * more than needed, nor survive a blocked exit. */
        zmq_ctx_set(t->ctx, ZMQ_IO_THREADS, 1);
        zmq_ctx_set(t->ctx, ZMQ_BLOCKY, 0);

        t->dealer = zmq_socket(t->ctx, ZMQ_DEALER);
        t->dealer_monitor = zmq_socket(t->ctx, ZMQ_PAIR);
        if (!t->dealer || !t->dealer_monitor)
                goto fail;
        zmq_setsockopt(t->dealer_monitor, ZMQ_RCVHWM, &zero, sizeof(zero));
        zmq_setsockopt(t->dealer, ZMQ_LINGER, &zero, sizeof(zero));
        zmq_setsockopt(t->dealer, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl));
        zmq_setsockopt(t->dealer, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof(ivl_max));
        snprintf(dealer_monitor, sizeof(dealer_monitor), "inproc://ferret-dealer-monitor-%p", (void *)t);
        if (open_push(t, t->ingest, 0) < 0 ||
            zmq_socket_monitor(t->dealer, dealer_monitor, ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED) < 0 ||
            zmq_connect(t->dealer_monitor, dealer_monitor) < 0 || zmq_connect(t->dealer, query) < 0)
                goto fail;
        return 0;

fail:;
        int r = -errno;
        transport_close(t);
        return r ? r : -EIO;
}

void transport_close(struct transport *t)
{
        close_push(t);
        if (t->dealer)
                zmq_socket_monitor(t->dealer, NULL, 0);
        if (t->dealer_monitor)
                zmq_close(t->dealer_monitor);
        if (t->dealer)
                zmq_close(t->dealer);
        if (t->ctx)
                zmq_ctx_term(t->ctx);
        *t = (struct transport){ 0 };
}

static void handle_monitor(struct transport *t);

int transport_send_batch(struct transport *t, const void *data, size_t len, uint64_t first_unacked,
                         int timeout_ms)
{
        /* A departure or an arrival not yet read would change who gets it. */
        handle_monitor(t);
        if (t->peer != PEER_CONNECTED)
                return -ENOTCONN;
        uint8_t suffix[WIRE_FIRST_UNACKED_MAX];
        size_t n = wire_batch_first_unacked(suffix, first_unacked);
        zmq_msg_t msg;
        if (zmq_msg_init_size(&msg, len + n) < 0)
                return -errno;
        memcpy(zmq_msg_data(&msg), data, len);
        memcpy((uint8_t *)zmq_msg_data(&msg) + len, suffix, n);
        int r = zmq_msg_send(&msg, t->push, ZMQ_DONTWAIT);
        if (r < 0 && errno == EAGAIN && timeout_ms > 0) {
                uint64_t connections = t->connections;
                zmq_pollitem_t item = { .socket = t->push, .events = ZMQ_POLLOUT };
                int ready = zmq_poll(&item, 1, timeout_ms);
                /* Room may have come from a new connection, to whoever
                 * listens now: only to the one that was checked. */
                handle_monitor(t);
                if (ready > 0 && t->peer == PEER_CONNECTED && t->connections == connections)
                        r = zmq_msg_send(&msg, t->push, ZMQ_DONTWAIT);
                else
                        errno = EAGAIN;
        }
        int e = errno;
        if (r < 0)
                zmq_msg_close(&msg);
        return r < 0 ? -e : 0;
}

int transport_last_word(struct transport *t, const void *data, size_t len, uint64_t first_unacked,
                        int timeout_ms)
{
        uint64_t until = clock_mono_ns() + (uint64_t)timeout_ms * 1000000u;
        /* What the old connection still queues goes: what it had written
         * reaches the daemon, which takes it even after this. */
        close_push(t);
        t->peer = PEER_UNKNOWN;
        if (open_push(t, t->ingest, 1) < 0) {
                int e = errno;
                return e ? -e : -EIO;
        }
        for (;;) {
                handle_monitor(t);
                uint64_t now = clock_mono_ns();
                if (t->peer != PEER_UNKNOWN || now >= until)
                        break;
                zmq_pollitem_t item = { .socket = t->monitor, .events = ZMQ_POLLIN };
                zmq_poll(&item, 1, (long)((until - now + 999999) / 1000000));
        }
        /* Connected is not yet ready to take it (the handshake follows). */
        uint64_t now = clock_mono_ns();
        int r = transport_send_batch(t, data, len, first_unacked,
                                     now < until ? (int)((until - now + 999999) / 1000000) : 0);
        if (r == 0) {
                /* Closing waits this long for the message to be written. */
                now = clock_mono_ns();
                int linger = now < until ? (int)((until - now) / 1000000) + 1 : 1;
                zmq_setsockopt(t->push, ZMQ_LINGER, &linger, sizeof(linger));
        }
        return r;
}

int transport_request_flush(struct transport *t, uint64_t client_id, uint64_t seq, uint32_t timeout_ms,
                            bool passive)
{
        Ferret__FlushRequest flush = FERRET__FLUSH_REQUEST__INIT;
        Ferret__Request req = FERRET__REQUEST__INIT;
        uint8_t buf[64];

        flush.client_id = client_id;
        flush.seq = seq;
        flush.timeout_ms = timeout_ms;
        flush.passive = passive;
        req.version = WIRE_PROTOCOL_VERSION;
        req.body_case = FERRET__REQUEST__BODY_FLUSH;
        req.flush = &flush;
        size_t len = ferret__request__pack(&req, buf);
        /* DEALER speaks to the daemon's ROUTER like REQ would: an empty
         * delimiter frame, then the request. */
        if (zmq_send(t->dealer, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
            zmq_send(t->dealer, buf, len, ZMQ_DONTWAIT) < 0)
                return -errno;
        return 0;
}

/* Whether the connection @fd, just made, goes to a listener we trust: a
 * socket named @name (checked first, as the event is read late and the
 * descriptor may have closed and been reused by the program; the peer's
 * address is the path ferretd bound, which may be spelled otherwise than
 * ours, so only its name is compared). Returns 1 when trusted, 0 when it
 * was not ours to judge, -EPERM after cutting it (the descriptor stays
 * ZeroMQ's, which sees the end of the stream) and telling the program. */
static int check_peer(struct transport *t, int fd, const char *name)
{
        char why[128];
        struct sockaddr_un addr = { 0 };
        socklen_t len = sizeof(addr) - 1;
        if (getpeername(fd, (struct sockaddr *)&addr, &len) < 0 || addr.sun_family != AF_UNIX)
                return 0;       /* gone already: its departure follows */
        const char *base = strrchr(addr.sun_path, '/');
        if (strcmp(base ? base + 1 : addr.sun_path, name) != 0)
                return 0;
        if (runtime_peer_check(fd, why, sizeof(why)) == 0)
                return 1;
        shutdown(fd, SHUT_RDWR);
        if (!t->refused_told) {
                fprintf(stderr, "ferret: not sending spans to %s: %s\n", t->runtime_dir, why);
                t->refused_told = true;
        }
        return -EPERM;
}

static void connected(struct transport *t, int fd)
{
        int r = check_peer(t, fd, RUNTIME_INGEST_SOCKET);
        if (r > 0) {
                t->peer = PEER_CONNECTED;
                t->connections++;
        } else if (r < 0)
                t->peer = PEER_ABSENT;
}

/* Reads the events waiting on @monitor, a socket monitor's PAIR, and hands
 * each with its file descriptor to @on_event. */
static void read_monitor(struct transport *t, void *monitor, void (*on_event)(struct transport *t, uint16_t event,
                                                                             int fd))
{
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        while (zmq_msg_recv(&msg, monitor, ZMQ_DONTWAIT) >= 0) {
                if (zmq_msg_size(&msg) == 6) {
                        uint16_t event;
                        uint32_t fd;
                        memcpy(&event, zmq_msg_data(&msg), 2);
                        memcpy(&fd, (const char *)zmq_msg_data(&msg) + 2, 4);
                        on_event(t, event, (int)fd);
                }
                /* The second frame (the endpoint) carries nothing we need. */
                while (zmq_msg_more(&msg) && zmq_msg_recv(&msg, monitor, ZMQ_DONTWAIT) >= 0)
                        ;
        }
        zmq_msg_close(&msg);
}

/* Not undone by a departure: a daemon's last answer may be read after it
 * has gone. A new listener's arrival is read before anything it sends. */
static void dealer_event(struct transport *t, uint16_t event, int fd)
{
        if (event != ZMQ_EVENT_CONNECTED)
                return;
        int r = check_peer(t, fd, RUNTIME_QUERY_SOCKET);
        if (r != 0)
                t->dealer_refused = r < 0;
}

static void push_event(struct transport *t, uint16_t event, int fd)
{
        if (event == ZMQ_EVENT_CONNECTED)
                connected(t, fd);
        else if (event == ZMQ_EVENT_DISCONNECTED || event == ZMQ_EVENT_CONNECT_RETRIED)
                t->peer = PEER_ABSENT;
}

/* Acknowledgements are believed from a checked listener only: a forged
 * one would make the library let go of batches never stored. */
static void handle_dealer_monitor(struct transport *t)
{
        read_monitor(t, t->dealer_monitor, dealer_event);
}

static void handle_monitor(struct transport *t)
{
        read_monitor(t, t->monitor, push_event);
}

static void handle_replies(struct transport *t)
{
        zmq_msg_t msg;
        handle_dealer_monitor(t);
        zmq_msg_init(&msg);
        while (zmq_msg_recv(&msg, t->dealer, ZMQ_DONTWAIT) >= 0) {
                if (zmq_msg_size(&msg) == 0 && zmq_msg_more(&msg))
                        continue;       /* the delimiter */
                if (t->dealer_refused)
                        continue;
                Ferret__Response *resp = ferret__response__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
                /* A flush that timed out still says how far the daemon got. */
                if (resp && resp->body_case == FERRET__RESPONSE__BODY_FLUSH && resp->flush &&
                    resp->flush->stored_seq > t->stored_seq)
                        t->stored_seq = resp->flush->stored_seq;
                ferret__response__free_unpacked(resp, NULL);
        }
        zmq_msg_close(&msg);
}

void transport_poll(struct transport *t, int wake_fd, int timeout_ms, bool want_room)
{
        zmq_pollitem_t items[5] = {
                { .fd = wake_fd, .events = ZMQ_POLLIN },
                { .socket = t->monitor, .events = ZMQ_POLLIN },
                { .socket = t->dealer, .events = ZMQ_POLLIN },
                { .socket = t->dealer_monitor, .events = ZMQ_POLLIN },
                { .socket = t->push, .events = ZMQ_POLLOUT },
        };
        if (zmq_poll(items, want_room ? 5 : 4, timeout_ms) <= 0)
                return;
        if (items[3].revents & ZMQ_POLLIN)
                handle_dealer_monitor(t);
        if (items[0].revents & ZMQ_POLLIN) {
                uint64_t v;
                ssize_t r = read(wake_fd, &v, sizeof(v));
                (void)r;
        }
        if (items[1].revents & ZMQ_POLLIN)
                handle_monitor(t);
        if (items[2].revents & ZMQ_POLLIN)
                handle_replies(t);
}
