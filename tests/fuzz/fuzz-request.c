/* SPDX-License-Identifier: MIT */
/* A query socket's request from any local user: what the daemon unpacks
 * before dispatching, and every field its handlers read (the strings are
 * NUL-terminated, a body is there when its case says so). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ferret.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Where the reads go, so that they are not optimised away. */
volatile size_t fuzz_sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        Ferret__Request *req = ferret__request__unpack(NULL, size, data);
        if (!req)
                return 0;
        size_t read = 0;
        switch (req->body_case) {
        case FERRET__REQUEST__BODY_SUMMARY:
                read += strlen(req->summary->run) + req->summary->all;
                break;
        case FERRET__REQUEST__BODY_TREE:
                read += strlen(req->tree->run) + strlen(req->tree->focus) + req->tree->depth +
                        req->tree->min_duration_ns + req->tree->cursor + req->tree->expand;
                break;
        case FERRET__REQUEST__BODY_REMOVE:
                read += strlen(req->remove->run);
                break;
        case FERRET__REQUEST__BODY_FLUSH:
                read += req->flush->client_id + req->flush->seq + req->flush->timeout_ms + req->flush->passive;
                break;
        default:
                break;
        }
        /* Keeps the reads: a sum of values a message chose can be anything. */
        fuzz_sink = read;
        ferret__request__free_unpacked(req, NULL);
        return 0;
}
