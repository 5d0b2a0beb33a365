/* SPDX-License-Identifier: MIT */
/* Random numbers and the W3C trace context formats (ids.c). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "ferret.h"

uint64_t ids_random64(void);
int ids_tracestate_format(ferret_ctx_t parent, uint64_t path, char *buf, size_t size);
/* The path of @parent that @tracestate holds, 0 if it holds none. */
uint64_t ids_tracestate_path(const char *tracestate, ferret_ctx_t parent);

static inline uint64_t ids_next(uint64_t *state)
{
        /* xorshift64*: a thread-private generator for trace ids. */
        uint64_t x = *state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *state = x;
        return x * 0x2545F4914F6CDD1DULL;
}
