/* SPDX-License-Identifier: MIT */
/*
 * The batches a client has encoded and the daemon has not yet acknowledged
 * storing, oldest first. They are sent from here, and sent again from the
 * oldest after a reconnection: a daemon restarted under load loses what
 * was queued in it, and gets it back from its clients. Bounded in batches
 * and bytes; past the bound the oldest is let go (the daemon counts what it
 * never got, from the next batch's sent_before).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RETAIN_MAX_BATCHES 256
#define RETAIN_MAX_BYTES (16u << 20)

struct retained_batch {
        uint64_t seq;
        uint64_t spans;
        uint8_t *data;
        size_t len;
};

struct retain {
        struct retained_batch slot[RETAIN_MAX_BATCHES];
        size_t first, n;              /* a ring of slots, oldest at first */
        size_t n_sent;                /* the oldest n_sent were handed to ZeroMQ */
        size_t bytes;
};

/* Takes a copy of a batch. Spans of batches let go unsent to make room are
 * added to *evicted_unsent. Returns 0 or -ENOMEM (nothing is kept). */
int retain_push(struct retain *r, uint64_t seq, uint64_t spans, const void *data, size_t len,
                uint64_t *evicted_unsent);
/* Lets go of every batch up to @stored_seq, which the daemon has stored. */
void retain_acknowledged(struct retain *r, uint64_t stored_seq);
/* After a reconnection: everything kept is to be sent again. */
void retain_rewind(struct retain *r);
/* The oldest batch not handed to ZeroMQ yet, or NULL. */
const struct retained_batch *retain_next_unsent(const struct retain *r);
void retain_mark_sent(struct retain *r);
/* The seq of the oldest batch kept, or @otherwise when there is none. */
uint64_t retain_first_seq(const struct retain *r, uint64_t otherwise);
/* Spans in the batches kept (at exit: never acknowledged). */
uint64_t retain_spans(const struct retain *r);
bool retain_has_sent(const struct retain *r);
/* Whether keeping a batch of @len bytes would let go of one not yet handed
 * to ZeroMQ: the daemon is that far behind. */
bool retain_would_evict_unsent(const struct retain *r, size_t len);
void retain_free(struct retain *r);
