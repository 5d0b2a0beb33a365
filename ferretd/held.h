/* SPDX-License-Identifier: MIT */
/*
 * Messages received while the store cannot take them (a full disk), kept
 * in arrival order until it can. Reading them off ZeroMQ's queues keeps
 * those short (a few messages a connection) whatever the number of
 * clients, so what ferretd holds is bounded here, in bytes, in total.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <zmq.h>

/* Also in the README's limits table. */
#define HELD_MAX_BYTES (128u << 20)
/* What a held message costs beyond its bytes: its zmq_msg_t, its slot, the
 * allocator's rounding. A flood of tiny messages counts at least this. */
#define HELD_MESSAGE_OVERHEAD 256u
/* ZeroMQ reads messages up to its 8 KiB receive buffer as references into
 * that buffer (zero-copy): held, each would keep a whole buffer alive. */
#define HELD_COPY_BELOW 16384u

struct held {
        zmq_msg_t *msgs;              /* a ring, oldest at first */
        size_t first, n, cap;
        size_t bytes;
};

static inline bool held_full(const struct held *h)
{
        return h->bytes >= HELD_MAX_BYTES;
}

/* Takes @msg over (it is left empty), or a copy of it when it is small
 * (@msg is then closed). Returns 0 or -ENOMEM (@msg kept). */
int held_push(struct held *h, zmq_msg_t *msg);
/* The oldest message, or NULL; held_pop() lets go of it. */
zmq_msg_t *held_front(struct held *h);
void held_pop(struct held *h);
void held_free(struct held *h);
