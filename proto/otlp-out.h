/* SPDX-License-Identifier: MIT */
/*
 * Ferret's spans as OTLP: an ExportTraceServiceRequest (otlp.proto) built a
 * span at a time, for ferretd's forwarder and `ferret export --format otlp`.
 * The mapping, in one place:
 *
 *  - trace id, span id and parent span id as they are (big-endian bytes);
 *    name; start, and end = start + duration, in Unix ns; kind INTERNAL;
 *  - status ok: unset; error: ERROR with its message; warning: unset, with
 *    the attributes ferret.status = "warning" and ferret.status_message;
 *  - tags as attributes of their type; the span's thread as thread.id; an
 *    async span has ferret.kind = "async", an unfinished or unwound one
 *    ferret.unfinished or ferret.unwound = true;
 *  - a resource per process: service.name, host.name, process.pid,
 *    process.executable.path, process.command_line where known, and
 *    ferret.run.id; the scope is "ferret" and its version.
 *
 * The request is written by hand (pb-write.h), each span as it is added,
 * straight from the decoded columns: no intermediate message structures,
 * as the forwarder must keep up with what ferretd stores.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

struct otlp_resource {
        const char *service_name;     /* service.name */
        const char *run_id;           /* ferret.run.id */
        const char *host_name;        /* host.name, or NULL */
        uint32_t pid;                 /* process.pid; 0: not said */
        const char *executable;       /* process.executable.path, or NULL */
        const char *command_line;     /* process.command_line, or NULL */
};

struct otlp_request {
        uint8_t *done;                /* the complete ResourceSpans so far */
        size_t done_len, done_cap;
        uint8_t *spans;               /* the open resource's spans, each a Span field */
        size_t spans_len, spans_cap;
        struct otlp_resource open;    /* its resource (copies of the strings) */
        bool has_open;
        size_t n_spans;               /* in the request */
        size_t bytes;                 /* about what the request takes encoded */
};

void otlp_request_init(struct otlp_request *r);
/* Adds span @s (its tags in @spans) under resource @res: a new ResourceSpans
 * when @res is not the one the previous span was added under. Returns 0 or
 * -ENOMEM. */
int otlp_request_add(struct otlp_request *r, const struct otlp_resource *res, const struct wire_spans *spans,
                     const struct wire_span *s);
/* The encoded request, valid until the next call on @r. */
int otlp_request_finish(struct otlp_request *r, const uint8_t **ret, size_t *ret_len);
/* Empties @r for the next request (keeps its memory). */
void otlp_request_reset(struct otlp_request *r);
void otlp_request_free(struct otlp_request *r);

/* Where a Ferret batch's spans come from, as an OTLP resource: @service
 * (NULL: the process's executable's name) for batch @b of run @run_id.
 * The strings point into @b. */
void otlp_resource_of_batch(const Ferret__Batch *b, const char *run_id, const char *service,
                            struct otlp_resource *ret);
/* The process spans `ferret run` records (a batch of an observer) each
 * stand for a process of their own: their resource comes from the span's
 * name and its tags pid and cmdline. */
void otlp_resource_of_process_span(const struct wire_spans *spans, const struct wire_span *s, const Ferret__Batch *b,
                                   const char *run_id, const char *service, struct otlp_resource *ret);
