/* SPDX-License-Identifier: MIT */
/*
 * The ingest thread: receives Batches on the PULL socket, validates them,
 * updates statistics and groups everything into RocksDB write batches,
 * committed when large enough or after a short time bound.
 */
#pragma once

#include "daemon.h"
#include "store.h"

struct ingest;

/* @socket is a bound PULL socket; the ingest thread owns it from now on. */
int ingest_start(struct store *store, struct acks *acks, void *socket, struct ingest **ret);
/* Stops receiving, stores everything received, and joins the thread. */
void ingest_stop(struct ingest *in);
/* Asks for a commit as soon as possible (a client is waiting in flush). */
void ingest_hurry(struct ingest *in);
