/* SPDX-License-Identifier: MIT */
/* The daemon's ingest decoding of one message from any client: the column
 * decoder, the span and tag tables built from it, the lost pairs. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Where the reads go, so that they are not optimised away. */
volatile size_t fuzz_sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static struct wire_decoder decoder;
        static struct wire_spans spans;
        Ferret__Batch *b;
        if (wire_batch_decode(&decoder, data, size, &b) < 0)
                return 0;
        wire_spans_clear(&spans);
        const char *reason = NULL;
        if (b->spans && wire_spans_append(&spans, b->spans, 1, &reason) == 0) {
                /* What the trees read of every span. */
                size_t sum = 0;
                for (size_t i = 0; i < spans.n; i++)
                        sum += strlen(spans.spans[i].name) + wire_span_status(&spans.spans[i]);
                /* Keeps the reads: a sum of values a message chose can be anything. */
                fuzz_sink = sum;
                struct wire_lost lost = { 0 };
                if (wire_lost_add(&lost, b->spans) == 0 && b->spans->n_lost_span)
                        (void)wire_lost_resolve(&lost, b->spans->lost_span[0]);
                wire_lost_free(&lost);
        }
        /* And the protobuf-c decoder the command line uses on stored batches. */
        Ferret__Batch *again = wire_batch_unpack(data, size);
        if (again)
                ferret__batch__free_unpacked(again, NULL);
        return 0;
}
