/* SPDX-License-Identifier: MIT */
/*
 * How many peers a listening socket serves at once. ZeroMQ accepts every
 * connection and bounds each one only in messages; its monitor reports
 * each accepted connection (with its descriptor) and each departure, and a
 * connection past the cap is shut down at once and counted. A client cut
 * this way is like one whose daemon restarted: it reconnects later and
 * sends again every batch not acknowledged, so nothing it kept is lost.
 */
#pragma once

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Defaults, also in the README's limits table and ferretd --help. */
#define PEERS_MAX_DEFAULT 1024
/* Messages ZeroMQ queues per connection before it stops reading from it:
 * with one message more being read, a connection holds at most
 * (PEER_QUEUE_MESSAGES + 1) x the message limit of its socket. */
#define PEER_QUEUE_MESSAGES 2

struct peers {
        void *monitor;                /* PAIR on the socket's monitor endpoint */
        char path[256];               /* the socket's file: a descriptor must be ours to be cut */
        int *fds;                     /* connections served, unordered */
        size_t n, max;
        _Atomic uint64_t *refused;
};

/* Starts watching @socket (listening on the file @path) from a monitor in
 * @ctx. Call before the socket is bound. Returns 0 or a negative errno. */
int peers_watch(struct peers *p, void *ctx, void *socket, const char *path, size_t max, _Atomic uint64_t *refused);
/* Reads the monitor's events without waiting, cutting what is over the cap.
 * Call when p->monitor is readable, from the thread that owns it. */
void peers_handle(struct peers *p);
void peers_free(struct peers *p);
