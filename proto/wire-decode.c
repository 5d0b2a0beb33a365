/* SPDX-License-Identifier: MIT */
/*
 * A Batch decoder for the daemon's hot path. protobuf-c's generic unpacker
 * allocates every repeated field and walks each one twice through tables;
 * it was the largest single cost of ingest. This one reads the protobuf
 * wire format of Batch directly into one reusable arena: a first pass
 * counts every repeated field, a second decodes into slices of the arena.
 * It fills the same Ferret__Batch and Ferret__SpanColumns structures the
 * rest of the code uses. Repeated scalars are accepted packed or not, as
 * proto3 requires; unknown fields are skipped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

struct reader {
        const uint8_t *p, *end;
};

static inline __attribute__((always_inline)) bool read_varint(struct reader *r, uint64_t *ret)
{
        /* Most values of a column fit one byte. */
        if (r->p < r->end && !(*r->p & 0x80)) {
                *ret = *r->p++;
                return true;
        }
        uint64_t v = 0;
        for (int shift = 0; shift < 64 && r->p < r->end; shift += 7) {
                uint8_t b = *r->p++;
                v |= (uint64_t)(b & 0x7f) << shift;
                if (!(b & 0x80)) {
                        *ret = v;
                        return true;
                }
        }
        return false;
}

static bool read_len(struct reader *r, struct reader *ret)
{
        uint64_t n;
        if (!read_varint(r, &n) || n > (uint64_t)(r->end - r->p))
                return false;
        *ret = (struct reader){ r->p, r->p + n };
        r->p += n;
        return true;
}

static bool skip(struct reader *r, unsigned wt)
{
        uint64_t v;
        struct reader sub;
        switch (wt) {
        case WT_VARINT: return read_varint(r, &v);
        case WT_I64: if (r->end - r->p < 8) return false; r->p += 8; return true;
        case WT_LEN: return read_len(r, &sub);
        case WT_I32: if (r->end - r->p < 4) return false; r->p += 4; return true;
        default: return false;
        }
}

static uint64_t fixed64(const uint8_t *p)
{
        uint64_t v;
        memcpy(&v, p, 8);       /* the wire is little-endian, as is x86 */
        return v;
}

static int64_t unzigzag(uint64_t v)
{
        return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* SpanColumns' repeated fields, by field number. */
enum col_kind { COL_NONE, COL_U32, COL_S64, COL_U64, COL_F64, COL_ENUM };

#define MAX_FIELD 29

static enum col_kind col_kind(unsigned field)
{
        switch (field) {
        case 2: case 18: case 27: return COL_F64;   /* traces, paths (fixed64), tag_double (double) */
        case 3: case 6: case 10: case 11: case 12: case 13: case 14: case 15: case 19: case 26: case 28:
                return COL_U32;
        case 4: case 5: case 7: case 17: return COL_S64;
        case 9: case 20: case 21: case 22: case 23: case 24: case 25: return COL_U64;
        case 16: return COL_ENUM;
        default: return COL_NONE;
        }
}

/* Elements of a packed run of @kind in @r. */
static bool count_packed(struct reader r, enum col_kind kind, size_t *n)
{
        if (kind == COL_F64) {
                if ((r.end - r.p) % 8)
                        return false;
                *n += (size_t)(r.end - r.p) / 8;
                return true;
        }
        for (const uint8_t *p = r.p; p < r.end; p++)
                *n += !(*p & 0x80);
        return r.p == r.end || !(r.end[-1] & 0x80);
}

struct counts {
        size_t field[MAX_FIELD];
        size_t strings, string_bytes, notes, note_bytes;
};

struct arena {
        uint8_t *base;
        size_t used, cap;
};

static void *take(struct arena *a, size_t bytes)
{
        size_t at = (a->used + 7) & ~(size_t)7;
        a->used = at + bytes;
        return a->base + at;
}

static char *take_string(struct arena *a, struct reader s)
{
        size_t n = (size_t)(s.end - s.p);
        char *out = take(a, n + 1);
        memcpy(out, s.p, n);
        out[n] = '\0';
        return out;
}

/* Pass one over SpanColumns: how many of everything. */
static bool count_columns(struct reader r, struct counts *c)
{
        while (r.p < r.end) {
                uint64_t tag;
                if (!read_varint(&r, &tag))
                        return false;
                unsigned field = (unsigned)(tag >> 3), wt = tag & 7;
                enum col_kind kind = field < MAX_FIELD ? col_kind(field) : COL_NONE;
                if (field == 1 && wt == WT_LEN) {
                        struct reader s;
                        if (!read_len(&r, &s))
                                return false;
                        c->strings++;
                        c->string_bytes += (size_t)(s.end - s.p) + 8;
                } else if (kind != COL_NONE && wt == WT_LEN) {
                        struct reader s;
                        if (!read_len(&r, &s) || !count_packed(s, kind, &c->field[field]))
                                return false;
                } else if (kind != COL_NONE && wt == (kind == COL_F64 ? WT_I64 : WT_VARINT)) {
                        c->field[field]++;
                        if (!skip(&r, wt))
                                return false;
                } else if (kind != COL_NONE || field == 1 || (field == 8 && wt != WT_VARINT)) {
                        return false;   /* a known field with the wrong wire type */
                } else if (!skip(&r, wt))
                        return false;
        }
        return true;
}

struct column_slot {
        size_t *n;
        void **array;
};

/* Where field @field of @c goes. */
static struct column_slot slot(Ferret__SpanColumns *c, unsigned field)
{
        switch (field) {
        case 2: return (struct column_slot){ &c->n_traces, (void **)&c->traces };
        case 3: return (struct column_slot){ &c->n_trace, (void **)&c->trace };
        case 4: return (struct column_slot){ &c->n_span_id, (void **)&c->span_id };
        case 5: return (struct column_slot){ &c->n_parent, (void **)&c->parent };
        case 6: return (struct column_slot){ &c->n_name, (void **)&c->name };
        case 7: return (struct column_slot){ &c->n_start, (void **)&c->start };
        case 9: return (struct column_slot){ &c->n_duration, (void **)&c->duration };
        case 10: return (struct column_slot){ &c->n_tid, (void **)&c->tid };
        case 11: return (struct column_slot){ &c->n_flags, (void **)&c->flags };
        case 12: return (struct column_slot){ &c->n_message, (void **)&c->message };
        case 13: return (struct column_slot){ &c->n_tag_count, (void **)&c->tag_count };
        case 14: return (struct column_slot){ &c->n_pid, (void **)&c->pid };
        case 15: return (struct column_slot){ &c->n_tag_key, (void **)&c->tag_key };
        case 16: return (struct column_slot){ &c->n_tag_type, (void **)&c->tag_type };
        case 17: return (struct column_slot){ &c->n_tag_value, (void **)&c->tag_value };
        case 18: return (struct column_slot){ &c->n_tag_double, (void **)&c->tag_double };
        case 19: return (struct column_slot){ &c->n_folded_name, (void **)&c->folded_name };
        case 20: return (struct column_slot){ &c->n_folded_count, (void **)&c->folded_count };
        case 21: return (struct column_slot){ &c->n_folded_total_ns, (void **)&c->folded_total_ns };
        case 22: return (struct column_slot){ &c->n_folded_max_ns, (void **)&c->folded_max_ns };
        case 23: return (struct column_slot){ &c->n_folded_untimed, (void **)&c->folded_untimed };
        case 24: return (struct column_slot){ &c->n_lost_span, (void **)&c->lost_span };
        case 25: return (struct column_slot){ &c->n_lost_parent, (void **)&c->lost_parent };
        case 26: return (struct column_slot){ &c->n_path, (void **)&c->path };
        case 27: return (struct column_slot){ &c->n_paths, (void **)&c->paths };
        case 28: return (struct column_slot){ &c->n_lost_path, (void **)&c->lost_path };
        default: return (struct column_slot){ NULL, NULL };
        }
}

static inline void put(enum col_kind kind, void *array, size_t i, uint64_t v)
{
        switch (kind) {
        case COL_U32: ((uint32_t *)array)[i] = (uint32_t)v; break;
        case COL_ENUM: ((Ferret__TagType *)array)[i] = (Ferret__TagType)v; break;
        case COL_S64: ((int64_t *)array)[i] = unzigzag(v); break;
        default: ((uint64_t *)array)[i] = v; break;   /* u64, and the bits of fixed64/double */
        }
}

/* A packed run of varints, one loop per element type. */
#define DECODE_RUN(type, convert) \
        do { \
                type *out = (type *)*s.array + *s.n, *start = out; \
                uint64_t v_; \
                while (run.p < run.end && read_varint(&run, &v_)) \
                        *out++ = (type)convert(v_); \
                *s.n += (size_t)(out - start); \
        } while (0)
#define AS_IS(v) (v)

static size_t elem_size(enum col_kind kind)
{
        return kind == COL_U32 || kind == COL_ENUM ? 4 : 8;
}

/* Pass two: decode into the slices. */
static bool decode_columns(struct reader r, Ferret__SpanColumns *c, const struct counts *k, struct arena *a)
{
        c->strings = take(a, (k->strings + 1) * sizeof(char *));
        for (unsigned f = 2; f < MAX_FIELD; f++) {
                struct column_slot s = slot(c, f);
                if (s.n && k->field[f])
                        *s.array = take(a, k->field[f] * elem_size(col_kind(f)));
        }
        while (r.p < r.end) {
                uint64_t tag = 0, v = 0;
                read_varint(&r, &tag);
                unsigned field = (unsigned)(tag >> 3), wt = tag & 7;
                enum col_kind kind = field < MAX_FIELD ? col_kind(field) : COL_NONE;
                if (field == 1) {
                        struct reader s = { 0 };
                        read_len(&r, &s);
                        c->strings[c->n_strings++] = take_string(a, s);
                } else if (field == 8 && wt == WT_VARINT) {
                        read_varint(&r, &c->base_start_ns);
                } else if (kind != COL_NONE) {
                        struct column_slot s = slot(c, field);
                        if (wt == WT_LEN) {
                                struct reader run = { 0 };
                                read_len(&r, &run);
                                switch (kind) {
                                case COL_F64: {
                                        size_t n = (size_t)(run.end - run.p) / 8;
                                        memcpy((uint64_t *)*s.array + *s.n, run.p, n * 8);
                                        *s.n += n;
                                        break;
                                }
                                case COL_U32: DECODE_RUN(uint32_t, AS_IS); break;
                                case COL_ENUM: DECODE_RUN(Ferret__TagType, AS_IS); break;
                                case COL_S64: DECODE_RUN(int64_t, unzigzag); break;
                                default: DECODE_RUN(uint64_t, AS_IS); break;
                                }
                        } else if (wt == WT_I64) {
                                put(kind, *s.array, (*s.n)++, fixed64(r.p));
                                r.p += 8;
                        } else {
                                read_varint(&r, &v);
                                put(kind, *s.array, (*s.n)++, v);
                        }
                } else
                        skip(&r, wt);
        }
        return true;
}

static bool decode_process(struct reader r, Ferret__Process *p, struct arena *a)
{
        while (r.p < r.end) {
                uint64_t tag, v;
                if (!read_varint(&r, &tag))
                        return false;
                unsigned field = (unsigned)(tag >> 3), wt = tag & 7;
                struct reader s;
                if ((field == 1 || field == 2 || field == 5 || field == 6) && wt == WT_VARINT) {
                        if (!read_varint(&r, &v))
                                return false;
                        if (field == 1)
                                p->pid = (uint32_t)v;
                        else if (field == 2)
                                p->ppid = (uint32_t)v;
                        else if (field == 5)
                                p->start_ns = v;
                        else
                                p->observer = v != 0;
                } else if ((field == 3 || field == 4 || field == 7) && wt == WT_LEN) {
                        if (!read_len(&r, &s))
                                return false;
                        *(field == 3 ? &p->executable : field == 4 ? &p->hostname : &p->command_line) = take_string(a, s);
                } else if (field <= 7 || !skip(&r, wt))
                        return false;
        }
        return true;
}

int wire_batch_decode(struct wire_decoder *d, const void *data, size_t size, Ferret__Batch **ret)
{
        struct reader r = { data, (const uint8_t *)data + size }, cols = { 0 };
        struct counts k = { 0 };
        bool have_cols = false;

        if (size > WIRE_MAX_MESSAGE_BYTES)
                return -EPROTO;
        /* Pass one: check the framing and count. */
        while (r.p < r.end) {
                uint64_t tag;
                if (!read_varint(&r, &tag))
                        return -EPROTO;
                unsigned field = (unsigned)(tag >> 3), wt = tag & 7;
                struct reader s = { 0 };
                bool ok;
                switch (field) {
                case 1: case 5: case 6: case 9: case 10: ok = wt == WT_VARINT && skip(&r, wt); break;
                case 4: ok = wt == WT_I64 && skip(&r, wt); break;
                case 2: case 3:
                        ok = wt == WT_LEN && read_len(&r, &s);
                        /* A process's strings, or the run id. */
                        if (ok)
                                k.string_bytes += (size_t)(s.end - s.p) + 32;
                        break;
                case 7:
                        ok = wt == WT_LEN && read_len(&r, &cols) && count_columns(cols, &k);
                        have_cols = true;
                        break;
                case 8:
                        ok = wt == WT_LEN && read_len(&r, &s);
                        if (ok) {
                                k.notes++;
                                k.note_bytes += (size_t)(s.end - s.p) + 8;
                        }
                        break;
                default: ok = field > 0 && skip(&r, wt);
                }
                if (!ok)
                        return -EPROTO;
        }

        size_t need = sizeof(Ferret__Batch) + sizeof(Ferret__SpanColumns) + sizeof(Ferret__Process) + 64 +
                      k.string_bytes + (k.strings + 1) * sizeof(char *) + k.note_bytes +
                      (k.notes + 1) * sizeof(char *) + 8 * MAX_FIELD;
        for (unsigned f = 0; f < MAX_FIELD; f++)
                need += k.field[f] * 8 + 8;
        if (need > d->arena_cap) {
                uint8_t *p = realloc(d->arena, need);
                if (!p)
                        return -ENOMEM;
                d->arena = p;
                d->arena_cap = need;
        }
        struct arena a = { d->arena, 0, d->arena_cap };

        Ferret__Batch *b = take(&a, sizeof(*b));
        *b = (Ferret__Batch)FERRET__BATCH__INIT;
        b->notes = take(&a, (k.notes + 1) * sizeof(char *));
        /* Pass two: decode. The framing was checked, so reads succeed. */
        r = (struct reader){ data, (const uint8_t *)data + size };
        while (r.p < r.end) {
                uint64_t tag = 0, v = 0;
                read_varint(&r, &tag);
                struct reader s = { 0 };
                switch (tag >> 3) {
                case 1: read_varint(&r, &v); b->version = (uint32_t)v; break;
                case 5: read_varint(&r, &b->seq); break;
                case 6: read_varint(&r, &b->dropped); break;
                case 9: read_varint(&r, &b->sent_before); break;
                case 10: read_varint(&r, &b->first_unacked); break;
                case 4: b->client_id = fixed64(r.p); r.p += 8; break;
                case 3: read_len(&r, &s); b->run_id = take_string(&a, s); break;
                case 2:
                        read_len(&r, &s);
                        b->process = take(&a, sizeof(*b->process));
                        *b->process = (Ferret__Process)FERRET__PROCESS__INIT;
                        if (!decode_process(s, b->process, &a))
                                return -EPROTO;
                        break;
                case 7:
                        read_len(&r, &s);
                        break;          /* below, once */
                case 8: read_len(&r, &s); b->notes[b->n_notes++] = take_string(&a, s); break;
                default: skip(&r, tag & 7);
                }
        }
        if (have_cols) {
                b->spans = take(&a, sizeof(*b->spans));
                *b->spans = (Ferret__SpanColumns)FERRET__SPAN_COLUMNS__INIT;
                decode_columns(cols, b->spans, &k, &a);
        }
        *ret = b;
        return 0;
}

void wire_decoder_free(struct wire_decoder *d)
{
        if (!d)
                return;
        free(d->arena);
        *d = (struct wire_decoder){ 0 };
}
