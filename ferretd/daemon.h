/* SPDX-License-Identifier: MIT */
/* What ferretd's threads share: counters for `ferret status`, and the
 * acknowledgements that let ferret_flush() know its spans are stored. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "map.h"

struct counters {
        _Atomic uint64_t received_batches;
        _Atomic uint64_t received_spans;
        _Atomic uint64_t stored_spans;
        _Atomic uint64_t rejected_messages;
        _Atomic uint64_t dropped_by_clients;
        _Atomic uint64_t runs_removed;
        _Atomic uint64_t lost_in_transit;   /* counted in their runs' dropped too */
        _Atomic uint64_t duplicate_batches; /* resent, and already stored */
        _Atomic uint64_t early_batches;     /* ahead of one the client resends */
        _Atomic uint64_t refused_connections; /* over the cap of clients, on either socket */
        _Atomic uint64_t held_bytes;          /* of messages received while the disk is full */
        _Atomic bool disk_full;             /* ingest holds what it has and waits for space */
        _Atomic uint64_t otlp_requests;     /* --otlp-listen: requests stored */
        _Atomic uint64_t otlp_refused_requests; /* ... refused (400, 404, 405, 413, 415, 503) */
        _Atomic uint64_t otlp_rejected_spans;   /* ... spans of stored requests rejected (no valid ids) */
        uint64_t start_mono_ns;
};

extern struct counters counters_g;

/* client id -> highest batch seq stored. Written by ingest after each
 * commit, read by the query thread; @event_fd wakes the query thread.
 * Bounded: once ACKS_GENERATION clients have had batches stored, the map
 * becomes the older generation and the one before it is forgotten. A
 * client asks about its own batches within a second of sending them, long
 * before that many other clients can pass. */
#define ACKS_GENERATION 65536u

struct acks {
        pthread_mutex_t lock;
        pthread_cond_t published;    /* broadcast at each publish (acks_wait) */
        struct u64map stored, older;
        int event_fd;
};

int acks_init(struct acks *a);
void acks_free(struct acks *a);
/* Merges @pending (client id -> seq) into the stored map and wakes readers. */
void acks_publish(struct acks *a, const struct u64map *pending);
uint64_t acks_stored(struct acks *a, uint64_t client_id);
/* Waits until @client_id's batches up to @seq are stored, or
 * CLOCK_MONOTONIC passes @until_mono_ns. Returns 0 or -ETIMEDOUT. */
int acks_wait(struct acks *a, uint64_t client_id, uint64_t seq, uint64_t until_mono_ns);

uint64_t now_mono_ns(void);
uint64_t now_wall_ns(void);
