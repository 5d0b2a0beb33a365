/* SPDX-License-Identifier: MIT */
/* Speaking the wire protocol directly, to send what no client library would:
 * exact durations, malformed and hostile messages. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

struct raw_client {
        void *ctx, *push, *dealer;
        uint64_t client_id;
        uint64_t seq;
        uint64_t next_id;             /* span ids for raw_send_spans */
        uint64_t sent;                /* spans sent or dropped before: Batch.sent_before */
        uint64_t dropped;             /* Batch.dropped of the next batch (then 0) */
        uint64_t first_unacked;       /* Batch.first_unacked; 0: this batch's seq (keeps nothing) */
};

void raw_open(struct raw_client *c, const char *runtime_dir);
void raw_close(struct raw_client *c);
void raw_send_bytes(struct raw_client *c, const void *data, size_t len);
/* Sends a batch of spans named @name with the given durations (ns). */
void raw_send_spans(struct raw_client *c, const char *run, const char *name, const uint64_t *durations, size_t n,
                    unsigned status);
/* The general form: span i is named names[i], lasts durations[i], starts
 * at start_ns + i µs, has id ids[i] and parent parents[i] (0: a root), and
 * status @status. */
struct raw_spans {
        size_t n;
        const char *const *names;
        const uint64_t *durations;
        const uint64_t *ids, *parents;
        uint64_t start_ns;
        unsigned status;              /* of every span */
        /* Optional: each span's start (Unix ns), status, and call path and
         * its parent's path (proto/path.h), as a client computes them. */
        const uint64_t *starts;
        const unsigned *statuses;
        const uint64_t *paths, *parent_paths;
};
void raw_send_batch(struct raw_client *c, const char *run, const struct raw_spans *s);

/* Sends @data as a request on the query socket; the reply's error (0, or
 * a negative errno), or -ETIMEDOUT without one. */
int raw_request_bytes(struct raw_client *c, const void *data, size_t len, int timeout_ms);
/* Waits until the daemon has stored every batch this client sent. */
int raw_flush(struct raw_client *c, int timeout_ms);
