/* SPDX-License-Identifier: MIT */
/* FERRET_TRACEPARENT from the environment of any process: what parses
 * formats back to itself, lower-cased, and parses to the same context.
 * FERRET_TRACESTATE beside it: the path found under a context formats back
 * to an entry that gives that path again. */
#include <ferret.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ids.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *s = malloc(size + 1);
        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = '\0';
        ferret_ctx_t ctx, again;
        char out[FERRET_TRACEPARENT_LEN + 1];
        if (ferret_ctx_parse(s, &ctx) == 0) {
                if (ferret_ctx_format(ctx, out, sizeof(out)) != 0 || ferret_ctx_parse(out, &again) != 0 ||
                    memcmp(&ctx, &again, sizeof(ctx)) != 0)
                        abort();
                uint64_t path = ids_tracestate_path(s, ctx);
                char entry[FERRET_TRACESTATE_LEN + 1];
                if (path && (ids_tracestate_format(ctx, path, entry, sizeof(entry)) != 0 ||
                             ids_tracestate_path(entry, ctx) != path))
                        abort();
        }
        /* Any bytes as a tracestate, under any context. */
        ferret_ctx_t any = { .trace_hi = 1, .trace_lo = 2, .span_id = 3 };
        if (size >= 8)
                memcpy(&any.span_id, data, 8);
        (void)ids_tracestate_path(s, any);
        free(s);
        return 0;
}
