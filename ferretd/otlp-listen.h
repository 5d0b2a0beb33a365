/* SPDX-License-Identifier: MIT */
/*
 * ferretd --otlp-listen ADDR:PORT: an OTLP/HTTP receiver (libmicrohttpd),
 * so that any language's OpenTelemetry SDK can send its spans to ferretd.
 * POST /v1/traces with a protobuf or JSON body (gzip or not) is decoded and
 * stored (otlp-in.h); the answer is OTLP's: 200 with an
 * ExportTraceServiceResponse (its partial success counting spans rejected),
 * 400 for a body that does not decode, 413 past OTLP_MAX_BODY, 415 for
 * another content type or encoding, 404 and 405 elsewhere, 503 when the
 * store did not confirm in time (the SDK tries again). Every refusal is
 * counted with the rejected messages of `ferret status`.
 *
 * It listens on loopback addresses only, unless the operator says
 * otherwise (--otlp-allow-remote): OTLP has no authentication here, and
 * anyone who reaches the port could write into any run and fill the disk,
 * where the Unix sockets are the ferret group's alone.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "daemon.h"

#define OTLP_MAX_BODY (4u << 20)      /* bytes of a request, inflated */
#define OTLP_MAX_CONNECTIONS 16

struct otlp_listen;
struct otlp_in;

/* Listens on @address ("127.0.0.1:4318", "[::1]:4318", "localhost:4318";
 * port 0 picks a free one, said in the log) and stores what comes through
 * @in. Returns 0, -EPERM for an address that is not loopback without
 * @allow_remote (logged), -EINVAL for one that does not parse, or -errno. */
int otlp_listen_start(const char *address, bool allow_remote, struct otlp_in *in, struct otlp_listen **ret);
/* The port it listens on, and "ADDRESS:PORT" with it. */
uint16_t otlp_listen_port(const struct otlp_listen *l);
const char *otlp_listen_address(const struct otlp_listen *l);
void otlp_listen_stop(struct otlp_listen *l);
