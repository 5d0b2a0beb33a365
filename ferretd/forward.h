/* SPDX-License-Identifier: MIT */
/*
 * The forwarder: ferretd --forward URL sends every span it stores to an
 * OpenTelemetry collector as OTLP/HTTP protobuf (proto/otlp-out.h has the
 * mapping), from a thread of its own. It reads what the ingest thread
 * stored through the backlog index (store-forward.c), in the order it was
 * stored, in requests of up to FORWARD_SPANS spans; it removes a request's
 * entries once the collector has taken it, so that a restart, or a
 * collector away for an hour, resumes where it stopped: nothing stored is
 * skipped, nothing is sent twice but the request in flight when ferretd
 * stopped. A collector that cannot take a request now (no answer, 429,
 * 502, 503, 504) gets it again after the wait it asks for (Retry-After) or
 * a growing one; one that refuses it for good (another 4xx) has its spans
 * counted as rejected. Past the backlog bound the oldest spans are dropped
 * and counted, as are spans removed (retention, ferret rm) before they were
 * sent: `ferret status` shows all of it.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

#define FORWARD_SPANS 8192                  /* at most a request */
#define FORWARD_BACKLOG_DEFAULT 10000000u    /* spans stored and not yet sent, at most */

struct forward_config {
        const char *url;              /* the collector; /v1/traces is added */
        const char *service;          /* service.name of every span; NULL: each process's program */
        uint64_t backlog_spans;
};

struct forward_status {
        uint64_t sent, dropped, rejected;   /* since forwarding began (kept in the database) */
        uint64_t backlog;                   /* stored, not yet sent */
        uint64_t failures;                  /* requests that failed and were tried again, since start */
        char last_error[256];
};

struct forwarder;

/* Starts forwarding what @store stores from now on (and what it had not
 * sent before). Returns 0, -EINVAL for a URL that is not http(s), or
 * -errno. */
int forward_start(struct store *store, const struct forward_config *cfg, struct forwarder **ret);
/* The ingest thread committed batches holding @spans spans. */
void forward_notify(struct forwarder *f, uint64_t spans);
void forward_get_status(struct forwarder *f, struct forward_status *ret);
/* The URL it posts to. */
const char *forward_url(const struct forwarder *f);
/* Sends what it can within @grace_ms, then stops (what is left stays in
 * the backlog for the next start). NULL is accepted. */
void forward_stop(struct forwarder *f, int grace_ms);
