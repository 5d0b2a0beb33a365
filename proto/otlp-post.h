/* SPDX-License-Identifier: MIT */
/*
 * Posting OTLP/HTTP requests (protobuf bodies) to a collector, through one
 * libcurl handle that keeps its connection: for ferretd's forwarder and
 * `ferret export --format otlp --to URL`. Each post says whether it may be
 * tried again (the connection failed or timed out, or the collector said
 * 429, 502, 503 or 504, as OTLP's specification lists) and after how long
 * the collector asked (Retry-After, in seconds or as a date).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct otlp_post;

struct otlp_post_result {
        long status;                  /* HTTP status, 0 when none came */
        bool ok;                      /* 2xx */
        bool retryable;
        int64_t retry_after_ms;       /* asked by the collector, -1: not said */
        int64_t rejected_spans;       /* of a 2xx: the partial success's count */
        char message[256];            /* why it failed, or the partial success's message */
};

/* Call once, before any thread starts (libcurl's global setup). */
void otlp_post_global_init(void);

/* A poster to the collector at @url: "http://host:4318" (/v1/traces is
 * added) or a URL ending in /v1/traces. Returns 0, -EINVAL for a URL that
 * is not http(s)://..., or -ENOMEM. */
int otlp_post_new(const char *url, struct otlp_post **ret);
/* The URL posted to. */
const char *otlp_post_url(const struct otlp_post *p);
/* Posts @body (an encoded ExportTraceServiceRequest) and waits for the
 * answer, at most @timeout_ms. Returns 0 when it came and was 2xx, else
 * -EIO with *@ret saying why. */
int otlp_post_send(struct otlp_post *p, const void *body, size_t len, long timeout_ms, struct otlp_post_result *ret);
void otlp_post_free(struct otlp_post *p);
