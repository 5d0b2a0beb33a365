/* SPDX-License-Identifier: MIT */
/* An OTLP request from anyone who reaches --otlp-listen: the JSON reader of
 * ours (otlp-json.c), protobuf-c's unpacker of the OTLP messages, and the
 * check of every string the mapping then reads (otlp-in.c). The first byte
 * chooses the encoding, as the Content-Type does. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otlp-in.h"
#include "otlp-json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Where the reads go, so that they are not optimised away. */
volatile size_t fuzz_sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (!size)
                return 0;
        char why[256];
        Otlp__ExportTraceServiceRequest *req =
                data[0] == '{' ? otlp_json_parse((const char *)data, size, why, sizeof(why))
                               : otlp__export_trace_service_request__unpack(NULL, size - 1, data + 1);
        if (!req)
                return 0;
        size_t read = otlp_in_check_text(req) != NULL;
        for (size_t r = 0; r < req->n_resource_spans; r++)
                for (size_t k = 0; k < req->resource_spans[r]->n_scope_spans; k++) {
                        const Otlp__ScopeSpans *ss = req->resource_spans[r]->scope_spans[k];
                        for (size_t i = 0; i < ss->n_spans; i++)
                                read += strlen(ss->spans[i]->name) + ss->spans[i]->n_attributes +
                                        ss->spans[i]->trace_id.len + ss->spans[i]->span_id.len;
                }
        fuzz_sink = read;
        otlp__export_trace_service_request__free_unpacked(req, NULL);
        return 0;
}
