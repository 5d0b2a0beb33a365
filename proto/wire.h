/* SPDX-License-Identifier: MIT */
/*
 * The column codec of the wire contract: turns the SpanColumns of a Batch into
 * plain span records (validating every index on the way), and builds the
 * per-batch string table on the encoding side. Shared by the client library,
 * ferretd and the ferret command.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferret.pb-c.h"

#define WIRE_PROTOCOL_VERSION 1

/* Limits on what a peer may send; a batch beyond them is rejected. */
/* A client's batch stays well under this (libclient/encode.h); it bounds
 * what one queued message can cost ferretd. */
#define WIRE_MAX_MESSAGE_BYTES (1u << 20)
/* Requests name runs and filters: a few hundred bytes. */
#define WIRE_MAX_REQUEST_BYTES (64u << 10)
#define WIRE_MAX_NAME_BYTES 1024u
#define WIRE_MAX_TAGS_PER_SPAN 255u

enum {
        WIRE_STATUS_OK = 0,
        WIRE_STATUS_WARNING = 1,
        WIRE_STATUS_ERROR = 2,
};

struct wire_tag {
        const char *key;
        int type;                /* FERRET__TAG_TYPE__TAG_* */
        int64_t i;               /* int and bool values */
        double d;                /* double values */
        const char *s;           /* string values */
};

/* Makes room for @need elements of @elem bytes in *@array (of *@cap),
 * doubling. Returns 0 or -ENOMEM (the array is kept). */
int wire_grow(void **array, size_t *cap, size_t need, size_t elem);

/* @t as a protocol Tag; the strings stay @t's. */
void wire_tag_to_proto(const struct wire_tag *t, Ferret__Tag *ret);

struct wire_span {
        uint64_t trace_hi, trace_lo;
        uint64_t span_id, parent_id;     /* parent 0: a root */
        const char *name;
        uint64_t start_ns, duration_ns;
        uint32_t pid, tid;
        uint32_t flags;                  /* FERRET__SPAN_FLAG__* bits */
        const char *message;             /* NULL when there is none */
        uint32_t first_tag, n_tags;      /* a range of wire_spans.tags */
        uint64_t path, parent_path;      /* call paths (path.h); 0 when the client sent none */
};

/* Decoded spans; the strings point into the SpanColumns they came from. */
struct wire_spans {
        struct wire_span *spans;
        size_t n, cap;
        struct wire_tag *tags;
        size_t n_tags, cap_tags;
};

/*
 * Decodes and validates @cols, appending to @out (whose arrays are reused
 * across calls). Spans without a pid column get @default_pid.
 * Returns 0, -EPROTO when a column is inconsistent (nothing is appended), or
 * -ENOMEM. On -EPROTO, *ret_reason (if not NULL) names what was wrong.
 */
int wire_spans_append(struct wire_spans *out, const Ferret__SpanColumns *cols,
                      uint32_t default_pid, const char **ret_reason);
void wire_spans_clear(struct wire_spans *s);
void wire_spans_free(struct wire_spans *s);

static inline unsigned wire_span_status(const struct wire_span *s)
{
        return s->flags & FERRET__SPAN_FLAG__SPAN_FLAG_STATUS_MASK;
}

const char *wire_status_name(unsigned status);

/*
 * A string table under construction: strings are added once and referred to
 * by index. Index 0 is always "". The table copies nothing: added strings
 * must live until the table is reset.
 */
struct wire_strtab {
        const char **strings;
        size_t n, cap;
        size_t bytes;                    /* of the strings added, without their terminators */
        uint32_t *slots;                 /* open addressing: index + 1, 0 empty */
        size_t n_slots;
};

int wire_strtab_init(struct wire_strtab *t);
void wire_strtab_reset(struct wire_strtab *t);
void wire_strtab_free(struct wire_strtab *t);
/* Returns the index of @s (adding it if new), or -ENOMEM. */
int64_t wire_strtab_add(struct wire_strtab *t, const char *s, size_t len);

/* Unpacks a Batch, refusing messages above WIRE_MAX_MESSAGE_BYTES. */
Ferret__Batch *wire_batch_unpack(const void *data, size_t size);

/* The fast path for the same: decodes into an arena the decoder keeps and
 * reuses, so the Batch it returns is valid until the next call (do not
 * free it). Returns 0, -EPROTO for a malformed message, or -ENOMEM. */
struct wire_decoder {
        uint8_t *arena;
        size_t arena_cap;
};
int wire_batch_decode(struct wire_decoder *d, const void *data, size_t size, Ferret__Batch **ret);
void wire_decoder_free(struct wire_decoder *d);

/* Encodes @b (whose spans must not be NULL) into *buf, growing it (and
 * *cap) as needed; the same bytes protobuf-c would accept. Returns 0 or
 * -ENOMEM. */
int wire_batch_pack(const Ferret__Batch *b, uint8_t **buf, size_t *cap, size_t *ret_len);

/* Batch.first_unacked, as bytes to append to a packed Batch (a field given
 * after the others is decoded as part of the message). Returns their number,
 * at most WIRE_FIRST_UNACKED_MAX. */
#define WIRE_FIRST_UNACKED_MAX 11
size_t wire_batch_first_unacked(uint8_t out[WIRE_FIRST_UNACKED_MAX], uint64_t first_unacked);

/* Spans whose end a client dropped (SpanColumns.lost_span/lost_parent),
 * gathered from a run's batches: a child of a lost span hangs under the
 * lost span's parent, as ferret.h promises. */
struct wire_lost {
        uint64_t (*entries)[4];       /* (lost span, its parent, its call path, the parent's; 0: unknown) */
        size_t n, cap;
        bool sorted;
        uint64_t (*by_path)[2];       /* (path, parent path), sorted, made when first asked */
        size_t n_by_path;
};
int wire_lost_add(struct wire_lost *l, const Ferret__SpanColumns *c);
/* @parent_id if it was not lost, else its nearest ancestor that was not
 * (a chain of at most 64). */
uint64_t wire_lost_resolve(struct wire_lost *l, uint64_t parent_id);
/* Whether @span_id was lost; if so its parent (span id) and its call path
 * (0: unknown; @ret_path may be NULL). */
bool wire_lost_find(struct wire_lost *l, uint64_t span_id, uint64_t *ret_parent, uint64_t *ret_path);
/* Whether a lost span had call path @path; if so the parent's path. */
bool wire_lost_path_parent(struct wire_lost *l, uint64_t path, uint64_t *ret_parent_path);
void wire_lost_free(struct wire_lost *l);

/* Parent links between spans, by index: WIRE_NO_PARENT for a root. Spans
 * that are their own ancestors can only come from a forged batch, and no
 * walk from a root would ever reach them: wire_cut_cycles() makes one span
 * of each cycle a root (the first its walk comes back to), so that every
 * span stays in the tree. Returns the links cut. O(n), @n bytes of scratch. */
#define WIRE_NO_PARENT UINT32_MAX
int wire_cut_cycles(uint32_t *parent, size_t n, size_t *ret_cut);
