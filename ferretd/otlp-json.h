/* SPDX-License-Identifier: MIT */
/*
 * OTLP/JSON (OTLP's specification, "JSON Protobuf Encoding"): a request
 * body read into the same ExportTraceServiceRequest as a protobuf one, so
 * that one mapping (otlp-in.c) serves both. Ids are hex strings, times and
 * 64-bit integers decimal strings (numbers are taken too), enums numbers;
 * field names in lowerCamelCase, or as the .proto spells them. Unknown
 * fields are ignored, as the specification asks.
 */
#pragma once

#include <stddef.h>

#include "otlp.pb-c.h"

/* Parses @len bytes of JSON. Returns the request (free with
 * otlp__export_trace_service_request__free_unpacked(r, NULL)), or NULL
 * with *@ret_error saying why (@error_size bytes). */
Otlp__ExportTraceServiceRequest *otlp_json_parse(const char *json, size_t len, char *ret_error, size_t error_size);
