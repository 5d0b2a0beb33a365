/* SPDX-License-Identifier: MIT */
/*
 * The contract between the threads that record and the flusher that
 * encodes: the records a thread's ring holds, and the payload (inline name,
 * tags, status message) behind a span record. The span code writes them
 * (span.c, tags.c, function.c) with the writers below, and the flusher
 * reads them (flusher.c, encode.c) with the reader below; nothing else
 * knows their layout. Where a field carries a value of the wire protocol
 * (ferret.proto), the assertions at the end check that the numbers agree.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ferret.h"
#include "ferret.pb-c.h"
#include "wire.h"

/* Limits of what a span copies in; longer text is cut (text_len()). */
#define NAME_MAX_BYTES 255
#define TAG_KEY_MAX_BYTES 63
#define TAG_VALUE_MAX_BYTES 255

/* strnlen(@s, @max), cut back to a character boundary when @s is longer,
 * so that a limit never splits a UTF-8 character. */
static inline size_t text_len(const char *s, size_t max)
{
        size_t n = strnlen(s, max);
        if (n == max && s[n])
                while (n && ((unsigned char)s[n] & 0xC0) == 0x80)
                        n--;
        return n;
}

/* --- Records. ---
 *
 * Every record starts with a record_header: its size (a multiple of 8, so
 * that every header is aligned), its type, and per type a length and flags.
 * Records of a ring are in the order their spans ended. */
enum record_type {
        RECORD_SPAN = 1,              /* struct record: an ended span */
        RECORD_PAD = 2,               /* filler up to the end of the buffer */
        RECORD_FUNC = 3,              /* struct func_record: a function call */
        RECORD_CONTEXT = 4,           /* struct context_record: trace and thread of the calls that follow */
        RECORD_FOLD = 5,              /* struct fold_record: short calls, counted, not recorded one by one */
        RECORD_LOST = 6,              /* struct lost_record: a span whose end was dropped, and its parent */
};

struct record_header {
        uint32_t size;
        uint16_t len;                 /* RECORD_SPAN: its payload's bytes */
        uint8_t type;
        uint8_t flags;                /* RECORD_SPAN, RECORD_FUNC: the wire's SpanFlag bits */
};

/* An ended span, as its slot holds it from begin on (struct ferret_span). */
struct record {
        uint32_t size;
        uint16_t payload_len;
        uint8_t type;
        uint8_t flags;
        uint32_t name_id;             /* 0: the name is inline, first in the payload */
        uint32_t tid;
        uint64_t t0, t1;
        uint64_t trace_hi, trace_lo, span_id, parent_id;
        uint64_t path, parent_path;   /* call paths, see proto/path.h */
};
_Static_assert(offsetof(struct record, size) == offsetof(struct record_header, size) &&
               offsetof(struct record, payload_len) == offsetof(struct record_header, len) &&
               offsetof(struct record, type) == offsetof(struct record_header, type) &&
               offsetof(struct record, flags) == offsetof(struct record_header, flags),
               "a span record starts with a record header");
_Static_assert(sizeof(struct record) == 80, "a span record is five 16-byte moves (span.c copies it so)");

/* A func_record's h.flags: the wire's span flags. */
#define FUNC_FLAG_UNFINISHED FERRET__SPAN_FLAG__SPAN_FLAG_UNFINISHED
#define FUNC_FLAG_UNWOUND FERRET__SPAN_FLAG__SPAN_FLAG_UNWOUND

struct func_record {
        struct record_header h;
        uint64_t fn, t0, t1, span_id, parent_id;
        uint64_t path, parent_path;
};

struct lost_record {
        struct record_header h;
        uint64_t span_id, parent_id;
        uint64_t path, parent_path;
};

struct context_record {
        struct record_header h;
        uint32_t tid, pad;
        uint64_t trace_hi, trace_lo;
};

/* What a ring's last context record said, as its reader keeps it: the
 * trace and thread of the function calls that follow. */
struct call_context {
        uint64_t trace_hi, trace_lo;
        uint32_t tid;
};

struct fold_record {
        struct record_header h;
        uint64_t fn, count, total_ticks, max_ticks;
        uint64_t untimed;             /* calls counted without a duration (guarded) */
};

/* The header of a record of fixed size. */
static inline struct record_header record_header_of(enum record_type type, uint32_t size, uint8_t flags)
{
        return (struct record_header){ .size = size, .type = (uint8_t)type, .flags = flags };
}

/* Sets the first 8 bytes of a span record without payload (its size, no
 * payload, the type, no flags) in one store: ending the span then copies the
 * slot's record as it is. */
static inline void record_header_reset(struct record *r)
{
        struct record_header h = record_header_of(RECORD_SPAN, sizeof(struct record), 0);
        memcpy(r, &h, sizeof(h));
}

/* The bytes a span record takes in a ring: itself, its payload, rounded to 8. */
static inline uint64_t record_span_size(const struct record *r)
{
        return (sizeof(struct record) + r->payload_len + 7) & ~(uint64_t)7;
}

static inline char *record_payload(const struct record *r)
{
        return (char *)(r + 1);
}

/* --- The payload. ---
 *
 * A span's payload is its inline name, if it has one (the bytes and a NUL),
 * then entries, each starting with its kind byte:
 *
 *   key as text:   kind, key length with its NUL (1 byte), key, NUL, value
 *   key as number: kind | ENTRY_KEY_ID, the interned key (4 bytes), value
 *   a message:     ENTRY_MESSAGE, 0, value
 *
 * and a value is, by kind: a string (its length with the NUL in 2 bytes,
 * the bytes, a NUL), an int64 or a double (8 bytes), a bool (1 byte). */
enum entry_kind {
        ENTRY_TAG_STRING = 0,         /* the wire's TagType numbers */
        ENTRY_TAG_INT = 1,
        ENTRY_TAG_DOUBLE = 2,
        ENTRY_TAG_BOOL = 3,
        ENTRY_MESSAGE = 4,            /* the status message */
        ENTRY_KEY_ID = 0x80,          /* flag: the key is an interned number, not text */
};

#define ENTRY_KEY_ID_BYTES 5

static inline bool entry_is_string(enum entry_kind kind)
{
        return kind == ENTRY_TAG_STRING || kind == ENTRY_MESSAGE;
}

/* The bytes of an entry's value of @kind, @len the string's (no NUL). */
static inline size_t entry_value_bytes(enum entry_kind kind, size_t len)
{
        return entry_is_string(kind) ? 2 + len + 1 : kind == ENTRY_TAG_BOOL ? 1 : 8;
}

/* Writers: each returns where the next field goes. */
static inline char *payload_put_text_key(char *p, enum entry_kind kind, const char *key, size_t key_len)
{
        *p++ = (char)kind;
        *p++ = (char)(key_len + 1);
        memcpy(p, key, key_len);
        p[key_len] = '\0';
        return p + key_len + 1;
}

static inline char *payload_put_message_key(char *p)
{
        p[0] = (char)ENTRY_MESSAGE;
        p[1] = 0;
        return p + 2;
}

static inline char *payload_put_id_key(char *p, enum entry_kind kind, uint32_t id)
{
        *p = (char)(kind | ENTRY_KEY_ID);
        memcpy(p + 1, &id, 4);
        return p + ENTRY_KEY_ID_BYTES;
}

/* A string value's length field: the bytes, at @p + 2, are the caller's. */
static inline char *payload_put_string_length(char *p, size_t len)
{
        uint16_t stored = (uint16_t)(len + 1);
        memcpy(p, &stored, 2);
        return p + 2;
}

static inline char *payload_put_string(char *p, const char *value, size_t len)
{
        p = payload_put_string_length(p, len);
        memcpy(p, value, len);
        p[len] = '\0';
        return p + len + 1;
}

/* An int, double or bool value, as @kind says. */
static inline char *payload_put_scalar(char *p, enum entry_kind kind, const void *value)
{
        size_t n = entry_value_bytes(kind, 0);
        memcpy(p, value, n);
        return p + n;
}

/* The name at the start of a payload: the bytes and a NUL. */
static inline size_t payload_put_name(char *p, const char *name, size_t len)
{
        memcpy(p, name, len);
        p[len] = '\0';
        return len + 1;
}

/* The reader. */
struct payload_entry {
        enum entry_kind kind;         /* without ENTRY_KEY_ID */
        uint32_t key_id;              /* nonzero: the key is this interned number */
        const char *key;              /* else the key's text (NUL-terminated), NULL for a message */
        size_t key_len;
        const char *value;            /* strings: the bytes (NUL-terminated); else the 1 or 8 bytes */
        size_t value_len;             /* strings: the bytes without the NUL */
};

/* The span's inline name, or NULL when it has an interned one; @ret_len its
 * bytes, @ret_entries where the entries start. */
static inline const char *payload_name(const struct record *r, size_t *ret_len, const char **ret_entries)
{
        const char *p = record_payload(r);
        if (r->name_id) {
                *ret_entries = p;
                return NULL;
        }
        *ret_len = strlen(p);
        *ret_entries = p + *ret_len + 1;
        return p;
}

/* Reads the entry at @p, before @end, into @ret; returns where the next one
 * starts, or NULL when no entry is left (or what is left is not a whole
 * entry). */
static inline const char *payload_next(const char *p, const char *end, struct payload_entry *ret)
{
        if (p + 2 > end)
                return NULL;
        ret->kind = (enum entry_kind)((uint8_t)p[0] & ~ENTRY_KEY_ID);
        ret->key_id = 0;
        ret->key = NULL;
        ret->key_len = 0;
        if ((uint8_t)p[0] & ENTRY_KEY_ID) {
                if (p + ENTRY_KEY_ID_BYTES > end)
                        return NULL;
                memcpy(&ret->key_id, p + 1, 4);
                p += ENTRY_KEY_ID_BYTES;
        } else {
                size_t stored = (uint8_t)p[1];
                if (stored) {
                        ret->key = p + 2;
                        ret->key_len = stored - 1;
                }
                p += 2 + stored;
        }
        size_t bytes;
        if (entry_is_string(ret->kind)) {
                uint16_t stored;
                if (p + 2 > end)
                        return NULL;
                memcpy(&stored, p, 2);
                ret->value = p + 2;
                ret->value_len = stored ? stored - 1u : 0;
                bytes = 2 + (size_t)stored;
        } else {
                ret->value = p;
                ret->value_len = bytes = entry_value_bytes(ret->kind, 0);
        }
        return p + bytes <= end ? p + bytes : NULL;
}

/* --- Agreement with the protocol. --- (As ints: the enums differ.) */
_Static_assert((int)ENTRY_TAG_STRING == (int)FERRET__TAG_TYPE__TAG_STRING &&
               (int)ENTRY_TAG_INT == (int)FERRET__TAG_TYPE__TAG_INT &&
               (int)ENTRY_TAG_DOUBLE == (int)FERRET__TAG_TYPE__TAG_DOUBLE &&
               (int)ENTRY_TAG_BOOL == (int)FERRET__TAG_TYPE__TAG_BOOL,
               "payload tag kinds are the wire's TagType numbers");
_Static_assert((int)ENTRY_MESSAGE > (int)FERRET__TAG_TYPE__TAG_BOOL && ENTRY_MESSAGE < ENTRY_KEY_ID,
               "a message is no tag type, and the key flag leaves every kind its bits");
_Static_assert((int)FERRET_STATUS_OK == (int)WIRE_STATUS_OK && (int)FERRET_STATUS_WARNING == (int)WIRE_STATUS_WARNING &&
               (int)FERRET_STATUS_ERROR == (int)WIRE_STATUS_ERROR,
               "the API's statuses are the wire's");
_Static_assert(((int)FERRET_STATUS_ERROR & ~(int)FERRET__SPAN_FLAG__SPAN_FLAG_STATUS_MASK) == 0,
               "a status fits in the flags' status bits");
_Static_assert((FERRET__SPAN_FLAG__SPAN_FLAG_STATUS_MASK | FERRET__SPAN_FLAG__SPAN_FLAG_ASYNC |
                FERRET__SPAN_FLAG__SPAN_FLAG_UNFINISHED | FERRET__SPAN_FLAG__SPAN_FLAG_UNWOUND |
                FERRET__SPAN_FLAG__SPAN_FLAG_SUSPENSION | FERRET__SPAN_FLAG__SPAN_FLAG_HANDED_ON) <= UINT8_MAX,
               "the span flags fit a record header's flags byte");
