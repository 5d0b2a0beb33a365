/* SPDX-License-Identifier: MIT */
/*
 * Builds one column-wise Batch from ring records. Strings are referenced, not
 * copied: the records must stay in their rings until encoder_pack() returns.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "record.h"
#include "wire.h"

#define ENCODER_MAX_SPANS 4096
/* A batch is closed once its encoded size could pass this, leaving room
 * under WIRE_MAX_MESSAGE_BYTES for the largest record, the header, the
 * notes and the lost pairs (each column counted at its widest). */
#define ENCODER_MAX_BYTES (640u << 10)

struct encoder {
        struct wire_strtab strtab;
        uint32_t *name_index;            /* interned name id -> string index + 1 */
        uint32_t *name_stamp;            /* ... valid when equal to stamp */
        size_t name_cap;
        uint32_t stamp;

        uint64_t *traces;                /* (hi, lo) pairs */
        size_t n_traces;

        size_t n;
        uint64_t prev_id, prev_start, base_start;
        uint32_t *trace, *name, *tid, *flags, *message, *tag_count;
        int64_t *span_id, *parent, *start;
        uint64_t *duration;

        uint32_t *tag_key;
        Ferret__TagType *tag_type;
        int64_t *tag_value;
        double *tag_double;
        size_t n_tags, n_values, n_doubles, cap_tags;

        /* Ticks to nanoseconds, measured by the flusher before each drain. */
        struct clock_conversion conv;

        /* Function addresses to string indexes, valid for one batch. */
        uint64_t *addr_keys;
        uint32_t *addr_index, *addr_stamp;

        uint64_t *lost_span, *lost_parent;
        uint32_t *lost_path;
        size_t n_lost, cap_lost;

        /* The batch's call paths: (path, parent path) pairs, each once,
         * found again through an open-addressed index valid for one batch. */
        uint32_t *path;                  /* per span, its pair */
        uint64_t *paths;
        size_t n_paths;
        uint64_t *path_keys;
        uint32_t *path_slot, *path_stamp;

        uint32_t *folded_name;
        uint64_t *folded_count, *folded_total, *folded_max, *folded_untimed;
        size_t n_folded, cap_folded;
        const char **notes;
        size_t n_notes, cap_notes;

        uint8_t *packed;
        size_t packed_cap;
};

int encoder_init(struct encoder *e);
void encoder_free(struct encoder *e);
void encoder_reset(struct encoder *e);
/* Adds one span record. Returns 0, -ENOSPC when the batch is full (in spans
 * or in bytes), -ENOMEM. */
int encoder_add(struct encoder *e, const struct record *r);
/* A function call; @ctx gives the trace and thread its ring last announced. */
int encoder_add_func(struct encoder *e, const struct func_record *r, const struct call_context *ctx);
int encoder_add_fold(struct encoder *e, const struct fold_record *r);
int encoder_add_lost(struct encoder *e, const struct lost_record *r);
int encoder_add_note(struct encoder *e, const char *text);
/* Whether the batch holds anything to send besides drop counts. */
bool encoder_has_content(const struct encoder *e);
/* Encodes the batch; the result stays valid until the next call. */
int encoder_pack(struct encoder *e, const Ferret__Batch *header, const uint8_t **ret, size_t *ret_len);
