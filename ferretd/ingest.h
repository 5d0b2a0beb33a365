/* SPDX-License-Identifier: MIT */
/*
 * The ingest thread: receives Batches on the PULL socket, validates them,
 * updates statistics and groups everything into RocksDB write batches,
 * committed when large enough or after a short time bound.
 */
#pragma once

#include "daemon.h"
#include "retention.h"
#include "store.h"

struct ingest;
struct peers;

/* @socket is a bound PULL socket; the ingest thread owns it from now on.
 * The retention bounds are applied once before this returns, then every
 * few seconds. */
/* @peers (may be NULL) watches @socket's connections; the thread serves
 * its events. */
/* @forwarder (may be NULL) is told what each commit stored. */
struct forwarder;
int ingest_start(struct store *store, struct acks *acks, void *socket, struct peers *peers,
                 const struct retention_config *retention, struct forwarder *forwarder, struct ingest **ret);
/* Removes a run, from another thread: the ingest thread does it between
 * commits and this waits for it. Returns 0, -ENOENT, -ETIMEDOUT or -EIO. */
int ingest_remove_run(struct ingest *in, const char *run_id);
/* Stops receiving, stores everything received, and joins the thread. */
void ingest_stop(struct ingest *in);
/* Asks for a commit as soon as possible (a client is waiting in flush). */
void ingest_hurry(struct ingest *in);
