/* SPDX-License-Identifier: MIT */
/*
 * Writing protocol buffers by hand, for the two encoders that are on a hot
 * path (the client's batches, wire-encode.c; the spans ferretd forwards as
 * OTLP, otlp-out.c): a message's size is computed from what it holds, then
 * it is written straight into a buffer sized for it, with no intermediate
 * structures. The callers size every message they nest before writing it.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum { PB_VARINT = 0, PB_I64 = 1, PB_LEN = 2, PB_I32 = 5 };

static inline size_t pb_varint_size(uint64_t v)
{
        return 1 + (size_t)(63 - __builtin_clzll(v | 1)) / 7;
}

static inline uint8_t *pb_put_varint(uint8_t *p, uint64_t v)
{
        while (v >= 0x80) {
                *p++ = (uint8_t)(v | 0x80);
                v >>= 7;
        }
        *p++ = (uint8_t)v;
        return p;
}

static inline uint64_t pb_zigzag(int64_t v)
{
        return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline uint8_t *pb_put_tag(uint8_t *p, unsigned field, unsigned wire_type)
{
        return pb_put_varint(p, (uint64_t)field << 3 | wire_type);
}

static inline size_t pb_tag_size(unsigned field)
{
        return pb_varint_size((uint64_t)field << 3);
}

/* A length-delimited field of @len bytes (a string, bytes, a message). */
static inline size_t pb_len_size(unsigned field, size_t len)
{
        return pb_tag_size(field) + pb_varint_size(len) + len;
}

static inline uint8_t *pb_put_len(uint8_t *p, unsigned field, size_t len)
{
        p = pb_put_tag(p, field, PB_LEN);
        return pb_put_varint(p, len);
}

static inline uint8_t *pb_put_bytes(uint8_t *p, unsigned field, const void *data, size_t len)
{
        p = pb_put_len(p, field, len);
        memcpy(p, data, len);
        return p + len;
}

static inline uint8_t *pb_put_fixed64(uint8_t *p, unsigned field, uint64_t v)
{
        p = pb_put_tag(p, field, PB_I64);
        for (int i = 0; i < 8; i++)
                *p++ = (uint8_t)(v >> (8 * i));
        return p;
}
