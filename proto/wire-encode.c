/* SPDX-License-Identifier: MIT */
/*
 * The client's batch packer, the counterpart of wire-decode.c: protobuf-c
 * walks every repeated field twice through generic tables (once to size,
 * once to write); the flusher's columns are known, so they are written
 * directly, each packed field sized by a quick pass over its values.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pb-write.h"
#include "wire.h"

/* One packed column: its values' sizes first, then the values. */
#define PACKED(kind, type, convert) \
        static size_t packed_##kind##_len(const type *v, size_t n) \
        { \
                size_t len = 0; \
                for (size_t i = 0; i < n; i++) \
                        len += pb_varint_size(convert(v[i])); \
                return len; \
        } \
        static uint8_t *put_packed_##kind(uint8_t *p, unsigned field, const type *v, size_t n, size_t len) \
        { \
                if (!n) \
                        return p; \
                p = pb_put_tag(p, field, PB_LEN); \
                p = pb_put_varint(p, len); \
                for (size_t i = 0; i < n; i++) \
                        p = pb_put_varint(p, convert(v[i])); \
                return p; \
        }
#define AS_U64(x) ((uint64_t)(x))
PACKED(u32, uint32_t, AS_U64)
PACKED(u64, uint64_t, AS_U64)
PACKED(s64, int64_t, pb_zigzag)
PACKED(tag, Ferret__TagType, AS_U64)

/* The columns, in field order, with their encoded lengths. */
struct column {
        unsigned field;
        int kind;                     /* 0 u32, 1 u64, 2 s64, 3 tag type, 4 fixed64/double */
        const void *values;
        size_t n, len;
};

static size_t column_len(struct column *c)
{
        switch (c->kind) {
        case 0: c->len = packed_u32_len(c->values, c->n); break;
        case 1: c->len = packed_u64_len(c->values, c->n); break;
        case 2: c->len = packed_s64_len(c->values, c->n); break;
        case 3: c->len = packed_tag_len(c->values, c->n); break;
        default: c->len = 8 * c->n;
        }
        return c->n ? pb_len_size(c->field, c->len) : 0;
}

static uint8_t *put_column(uint8_t *p, const struct column *c)
{
        switch (c->kind) {
        case 0: return put_packed_u32(p, c->field, c->values, c->n, c->len);
        case 1: return put_packed_u64(p, c->field, c->values, c->n, c->len);
        case 2: return put_packed_s64(p, c->field, c->values, c->n, c->len);
        case 3: return put_packed_tag(p, c->field, c->values, c->n, c->len);
        default: return c->n ? pb_put_bytes(p, c->field, c->values, c->len) : p;
        }
}

static size_t process_len(const Ferret__Process *pr)
{
        size_t len = 0;
        if (pr->pid)
                len += 1 + pb_varint_size(pr->pid);
        if (pr->ppid)
                len += 1 + pb_varint_size(pr->ppid);
        if (pr->executable && *pr->executable)
                len += pb_len_size(3, strlen(pr->executable));
        if (pr->hostname && *pr->hostname)
                len += pb_len_size(4, strlen(pr->hostname));
        if (pr->start_ns)
                len += 1 + pb_varint_size(pr->start_ns);
        if (pr->observer)
                len += 2;
        if (pr->command_line && *pr->command_line)
                len += pb_len_size(7, strlen(pr->command_line));
        return len;
}

static uint8_t *put_process(uint8_t *p, const Ferret__Process *pr, size_t len)
{
        p = pb_put_tag(p, 2, PB_LEN);
        p = pb_put_varint(p, len);
        if (pr->pid)
                p = pb_put_varint(pb_put_tag(p, 1, PB_VARINT), pr->pid);
        if (pr->ppid)
                p = pb_put_varint(pb_put_tag(p, 2, PB_VARINT), pr->ppid);
        if (pr->executable && *pr->executable)
                p = pb_put_bytes(p, 3, pr->executable, strlen(pr->executable));
        if (pr->hostname && *pr->hostname)
                p = pb_put_bytes(p, 4, pr->hostname, strlen(pr->hostname));
        if (pr->start_ns)
                p = pb_put_varint(pb_put_tag(p, 5, PB_VARINT), pr->start_ns);
        if (pr->observer)
                p = pb_put_varint(pb_put_tag(p, 6, PB_VARINT), 1);
        if (pr->command_line && *pr->command_line)
                p = pb_put_bytes(p, 7, pr->command_line, strlen(pr->command_line));
        return p;
}

int wire_batch_pack(const Ferret__Batch *b, uint8_t **buf, size_t *cap, size_t *ret_len)
{
        const Ferret__SpanColumns *c = b->spans;
        struct column cols[] = {
                { 2, 4, c->traces, c->n_traces, 0 },
                { 3, 0, c->trace, c->n_trace, 0 },
                { 4, 2, c->span_id, c->n_span_id, 0 },
                { 5, 2, c->parent, c->n_parent, 0 },
                { 6, 0, c->name, c->n_name, 0 },
                { 7, 2, c->start, c->n_start, 0 },
                { 9, 1, c->duration, c->n_duration, 0 },
                { 10, 0, c->tid, c->n_tid, 0 },
                { 11, 0, c->flags, c->n_flags, 0 },
                { 12, 0, c->message, c->n_message, 0 },
                { 13, 0, c->tag_count, c->n_tag_count, 0 },
                { 14, 0, c->pid, c->n_pid, 0 },
                { 15, 0, c->tag_key, c->n_tag_key, 0 },
                { 16, 3, c->tag_type, c->n_tag_type, 0 },
                { 17, 2, c->tag_value, c->n_tag_value, 0 },
                { 18, 4, c->tag_double, c->n_tag_double, 0 },
                { 19, 0, c->folded_name, c->n_folded_name, 0 },
                { 20, 1, c->folded_count, c->n_folded_count, 0 },
                { 21, 1, c->folded_total_ns, c->n_folded_total_ns, 0 },
                { 22, 1, c->folded_max_ns, c->n_folded_max_ns, 0 },
                { 23, 1, c->folded_untimed, c->n_folded_untimed, 0 },
                { 24, 1, c->lost_span, c->n_lost_span, 0 },
                { 25, 1, c->lost_parent, c->n_lost_parent, 0 },
                { 26, 0, c->path, c->n_path, 0 },
                { 27, 4, c->paths, c->n_paths, 0 },
                { 28, 0, c->lost_path, c->n_lost_path, 0 },
        };
        size_t n_cols = sizeof(cols) / sizeof(cols[0]);

        size_t spans_len = 0;
        for (size_t i = 0; i < c->n_strings; i++)
                spans_len += pb_len_size(1, strlen(c->strings[i]));
        if (c->base_start_ns)
                spans_len += 1 + pb_varint_size(c->base_start_ns);
        for (size_t i = 0; i < n_cols; i++)
                spans_len += column_len(&cols[i]);
        size_t proc_len = b->process ? process_len(b->process) : 0;
        size_t run_len = strlen(b->run_id);

        /* proto3: scalars equal to zero are left out, as protobuf-c does. */
        size_t total = (b->version ? 1 + pb_varint_size(b->version) : 0) +
                       (b->process ? pb_len_size(2, proc_len) : 0) + (run_len ? pb_len_size(3, run_len) : 0) +
                       (b->client_id ? 1 + 8 : 0) + (b->seq ? 1 + pb_varint_size(b->seq) : 0) +
                       (b->dropped ? 1 + pb_varint_size(b->dropped) : 0) + pb_len_size(7, spans_len) +
                       (b->sent_before ? 1 + pb_varint_size(b->sent_before) : 0);
        for (size_t i = 0; i < b->n_notes; i++)
                total += pb_len_size(8, strlen(b->notes[i]));
        if (total > *cap) {
                uint8_t *p = realloc(*buf, total);
                if (!p)
                        return -ENOMEM;
                *buf = p;
                *cap = total;
        }

        uint8_t *p = *buf;
        if (b->version)
                p = pb_put_varint(pb_put_tag(p, 1, PB_VARINT), b->version);
        if (b->process)
                p = put_process(p, b->process, proc_len);
        if (run_len)
                p = pb_put_bytes(p, 3, b->run_id, run_len);
        if (b->client_id) {
                p = pb_put_tag(p, 4, PB_I64);
                memcpy(p, &b->client_id, 8);
                p += 8;
        }
        if (b->seq)
                p = pb_put_varint(pb_put_tag(p, 5, PB_VARINT), b->seq);
        if (b->dropped)
                p = pb_put_varint(pb_put_tag(p, 6, PB_VARINT), b->dropped);
        p = pb_put_tag(p, 7, PB_LEN);
        p = pb_put_varint(p, spans_len);
        for (size_t i = 0; i < c->n_strings; i++)
                p = pb_put_bytes(p, 1, c->strings[i], strlen(c->strings[i]));
        /* Fields in number order, as protobuf-c writes them: 8 sits among
         * the columns. */
        for (size_t i = 0; i < n_cols; i++) {
                if (cols[i].field == 9 && c->base_start_ns)
                        p = pb_put_varint(pb_put_tag(p, 8, PB_VARINT), c->base_start_ns);
                p = put_column(p, &cols[i]);
        }
        for (size_t i = 0; i < b->n_notes; i++)
                p = pb_put_bytes(p, 8, b->notes[i], strlen(b->notes[i]));
        if (b->sent_before)
                p = pb_put_varint(pb_put_tag(p, 9, PB_VARINT), b->sent_before);
        *ret_len = (size_t)(p - *buf);
        return 0;
}

size_t wire_batch_first_unacked(uint8_t out[WIRE_FIRST_UNACKED_MAX], uint64_t first_unacked)
{
        return (size_t)(pb_put_varint(pb_put_tag(out, 10, PB_VARINT), first_unacked) - out);
}
