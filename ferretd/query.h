/* SPDX-License-Identifier: MIT */
/*
 * The query thread: answers Requests on the ROUTER socket (runs, summary,
 * tree, status, flush). Reads go through RocksDB iterators, which see a
 * consistent snapshot and never block the ingest thread's writes.
 */
#pragma once

#include "daemon.h"
#include "ingest.h"
#include "retention.h"
#include "store.h"

struct query;

struct query_config {
        const char *runtime_dir;
        struct retention_config retention;     /* shown by status */
        struct peers *peers;                   /* the socket's connections; may be NULL */
        struct forwarder *forwarder;           /* --forward, shown by status; may be NULL */
        const char *otlp_listen;               /* --otlp-listen's address, or NULL */
};

/* @socket is a bound ROUTER socket; the query thread owns it from now on.
 * @ingest may be NULL (a read-only daemon). */
int query_start(struct store *store, struct acks *acks, struct ingest *ingest, void *socket,
                const struct query_config *config, struct query **ret);
void query_stop(struct query *q);
