/* SPDX-License-Identifier: MIT */
/* FERRET_TRACEPARENT from the environment of any process: what parses
 * formats back to itself, lower-cased, and parses to the same context. */
#include <ferret.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
        }
        free(s);
        return 0;
}
