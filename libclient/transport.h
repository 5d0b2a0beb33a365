/* SPDX-License-Identifier: MIT */
/*
 * The client's sockets, owned by the flusher thread alone: a PUSH socket for
 * batches, a DEALER for flush acknowledgements, and a monitor that tells
 * whether a daemon is there, so that exit never waits for an absent one.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum peer_state {
        PEER_UNKNOWN,                 /* connecting */
        PEER_CONNECTED,
        PEER_ABSENT,                  /* refused, missing, or went away */
};

struct transport {
        void *ctx, *push, *dealer, *monitor;
        void *dealer_monitor;         /* the same for the DEALER: whose acknowledgements to believe */
        bool dealer_refused;          /* its latest connection went to a listener not trusted */
        char runtime_dir[256];
        char ingest[512];             /* the batch socket's endpoint */
        enum peer_state peer;         /* PEER_CONNECTED only once the peer's user is trusted */
        bool refused_told;            /* the program was told once of an untrusted peer */
        uint64_t stored_seq;          /* the highest seq the daemon acknowledged */
        uint64_t connections;         /* times the batch socket connected */
};

int transport_open(struct transport *t, const char *runtime_dir);
void transport_close(struct transport *t);
/* Sends a packed batch with its first_unacked field appended. Returns 0,
 * -EAGAIN when the queue stays full past @timeout_ms (0: no wait), or
 * -ENOTCONN before a trusted daemon is connected: ZeroMQ queues messages
 * only on completed connections (ZMQ_IMMEDIATE), and the flusher keeps
 * them meanwhile, so none waits in ZeroMQ for whoever connects next. */
int transport_send_batch(struct transport *t, const void *data, size_t len, uint64_t first_unacked,
                         int timeout_ms);
/* Sends a batch, the client's last, on a new connection: the old one's
 * queue, which the daemon did not read in time, is given up (and counted
 * lost by the daemon from this batch's sent_before). Waits up to
 * @timeout_ms for the connection; closing the transport then waits what
 * remains of it for the batch to be written. Returns as
 * transport_send_batch() does. */
int transport_last_word(struct transport *t, const void *data, size_t len, uint64_t first_unacked,
                        int timeout_ms);
/* Asks the daemon to answer once @seq is stored or @timeout_ms has passed;
 * @passive: without making it commit sooner than it would. */
int transport_request_flush(struct transport *t, uint64_t client_id, uint64_t seq, uint32_t timeout_ms,
                            bool passive);
/* Waits up to @timeout_ms for @wake_fd, a monitor event or a flush answer
 * (and, with @want_room, for ZeroMQ's send queue to take a batch again),
 * and handles whatever arrived. */
void transport_poll(struct transport *t, int wake_fd, int timeout_ms, bool want_room);
