/* SPDX-License-Identifier: MIT */
/*
 * OTLP in: the spans of an ExportTraceServiceRequest (protobuf or JSON, as
 * otlp-listen.c received it) become Ferret spans, handed to the ingest
 * thread as a client hands its batches, and waited for until they are
 * stored: a 200 means the spans are in the database. The mapping:
 *
 *  - a run per resource: its ferret.run.id attribute, else its
 *    service.name ("unknown_service" without either); a process per
 *    resource: process.pid (else a number made from service.name and
 *    service.instance.id), named after the service, host.name as its host;
 *  - trace id, span id and parent as they are; start and duration from the
 *    span's times; status ERROR is an error with its message, OK and UNSET
 *    are ok; the span's kind is the tag otel.kind (server, client...), and
 *    the Ferret kind is async: OTLP spans belong to no thread, so they need
 *    not nest in one;
 *  - attributes as tags of their type (arrays, maps and bytes as their
 *    text), names, keys and strings cut to 1 KiB, at most 250 attributes a
 *    span (the rest counted in ferret.omitted), events and links counted
 *    in otel.events and otel.links;
 *  - a call path each, computed here: OTLP has none. A parent in the same
 *    request gives its path; one that is not (it comes later, or never)
 *    gives its foreign path (proto/path.h), which ferretd links to the
 *    parent's when the parent comes, within its bounds for such links; a
 *    parent that never comes leaves its children under their process.
 *
 * Spans without a valid trace id or span id are rejected and counted (a
 * partial success); text that is not UTF-8 makes the request undecodable.
 */
#pragma once

#include <stdint.h>

#include "daemon.h"
#include "otlp.pb-c.h"

struct ingest;
struct otlp_in;

struct otlp_in_result {
        uint64_t accepted, rejected;    /* spans */
        char message[256];              /* why some were rejected */
};

/* Hands batches to the ingest socket at @endpoint (ZeroMQ, in @zmq_ctx)
 * and waits for them in @acks. */
int otlp_in_new(void *zmq_ctx, const char *endpoint, struct acks *acks, struct ingest *ingest, struct otlp_in **ret);
/* Stores the spans of @req; thread-safe. Returns 0 (see *@ret for spans
 * rejected), -EBADMSG when text in it is not UTF-8 (*@ret says where),
 * -ETIMEDOUT when the store did not confirm in time, or -ENOMEM. */
int otlp_in_store(struct otlp_in *in, const Otlp__ExportTraceServiceRequest *req, struct otlp_in_result *ret);
void otlp_in_free(struct otlp_in *in);
/* NULL when every string in @req is UTF-8 (else the request is not OTLP),
 * or what holds one that is not ("a span's name"). */
const char *otlp_in_check_text(const Otlp__ExportTraceServiceRequest *req);
