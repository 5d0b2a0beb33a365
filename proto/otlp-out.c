/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "otlp-out.h"
#include "pb-write.h"
#include "utf8.h"

/* Field numbers of otlp.proto. */
enum {
        REQUEST_RESOURCE_SPANS = 1,
        RS_RESOURCE = 1, RS_SCOPE_SPANS = 2,
        RESOURCE_ATTRIBUTES = 1,
        SS_SCOPE = 1, SS_SPANS = 2,
        SCOPE_NAME = 1, SCOPE_VERSION = 2,
        SPAN_TRACE_ID = 1, SPAN_SPAN_ID = 2, SPAN_PARENT_SPAN_ID = 4, SPAN_NAME = 5, SPAN_KIND = 6,
        SPAN_START = 7, SPAN_END = 8, SPAN_ATTRIBUTES = 9, SPAN_STATUS = 15,
        STATUS_MESSAGE = 2, STATUS_CODE = 3,
        KV_KEY = 1, KV_VALUE = 2,
        ANY_STRING = 1, ANY_BOOL = 2, ANY_INT = 3, ANY_DOUBLE = 4,
};
#define SPAN_KIND_INTERNAL 1
#define STATUS_CODE_ERROR 2

/* OTLP strings must be UTF-8; what programs name things need not be. The
 * length of the text @s would take with each byte that is not part of a
 * valid sequence as U+FFFD (3 bytes). */
static size_t utf8_len(const char *s, bool *ret_valid)
{
        const unsigned char *p = (const unsigned char *)s;
        size_t len = 0;
        bool valid = true;
        while (*p) {
                size_t n = utf8_sequence(p);
                len += n ? n : 3;
                p += n ? n : 1;
                valid = valid && n;
        }
        *ret_valid = valid;
        return len;
}

/* A string field: @s as it is when it is UTF-8, else with U+FFFD for each
 * byte that is not. */
struct text {
        const char *s;
        size_t len;                   /* encoded */
        bool valid;
};

static struct text text_of(const char *s)
{
        struct text t = { .s = s ? s : "" };
        t.len = utf8_len(t.s, &t.valid);
        return t;
}

static uint8_t *put_text(uint8_t *p, unsigned field, const struct text *t)
{
        p = pb_put_len(p, field, t->len);
        if (t->valid) {
                memcpy(p, t->s, t->len);
                return p + t->len;
        }
        const unsigned char *q = (const unsigned char *)t->s;
        while (*q) {
                size_t n = utf8_sequence(q);
                if (n) {
                        memcpy(p, q, n);
                        p += n;
                        q += n;
                } else {
                        memcpy(p, "\xEF\xBF\xBD", 3);
                        p += 3;
                        q++;
                }
        }
        return p;
}

static size_t text_size(unsigned field, const struct text *t)
{
        return pb_len_size(field, t->len);
}

/* --- attributes --- */

enum attr_kind { ATTR_STRING, ATTR_INT, ATTR_DOUBLE, ATTR_BOOL };

struct attr {
        struct text key;
        enum attr_kind kind;
        struct text s;
        int64_t i;
        double d;
        size_t value_len, len;        /* the AnyValue's and the KeyValue's sizes */
};

static void attr_size(struct attr *a)
{
        switch (a->kind) {
        case ATTR_STRING: a->value_len = text_size(ANY_STRING, &a->s); break;
        case ATTR_INT: a->value_len = 1 + pb_varint_size((uint64_t)a->i); break;
        case ATTR_DOUBLE: a->value_len = 1 + 8; break;
        default: a->value_len = 2;
        }
        a->len = text_size(KV_KEY, &a->key) + pb_len_size(KV_VALUE, a->value_len);
}

static uint8_t *put_attr(uint8_t *p, unsigned field, const struct attr *a)
{
        p = pb_put_len(p, field, a->len);
        p = put_text(p, KV_KEY, &a->key);
        p = pb_put_len(p, KV_VALUE, a->value_len);
        switch (a->kind) {
        case ATTR_STRING:
                return put_text(p, ANY_STRING, &a->s);
        case ATTR_INT:
                return pb_put_varint(pb_put_tag(p, ANY_INT, PB_VARINT), (uint64_t)a->i);
        case ATTR_DOUBLE: {
                uint64_t bits;
                memcpy(&bits, &a->d, 8);
                return pb_put_fixed64(p, ANY_DOUBLE, bits);
        }
        default:
                return pb_put_varint(pb_put_tag(p, ANY_BOOL, PB_VARINT), a->i != 0);
        }
}

static struct attr attr_str(const char *key, const char *value)
{
        struct attr a = { .key = text_of(key), .kind = ATTR_STRING, .s = text_of(value) };
        attr_size(&a);
        return a;
}

static struct attr attr_int(const char *key, int64_t value, enum attr_kind kind)
{
        struct attr a = { .key = text_of(key), .kind = kind, .i = value };
        attr_size(&a);
        return a;
}

static struct attr attr_of_tag(const struct wire_tag *t)
{
        struct attr a = { .key = text_of(t->key) };
        switch (t->type) {
        case FERRET__TAG_TYPE__TAG_STRING:
                a.kind = ATTR_STRING;
                a.s = text_of(t->s);
                break;
        case FERRET__TAG_TYPE__TAG_INT:
                a.kind = ATTR_INT;
                a.i = t->i;
                break;
        case FERRET__TAG_TYPE__TAG_BOOL:
                a.kind = ATTR_BOOL;
                a.i = t->i;
                break;
        default:
                a.kind = ATTR_DOUBLE;
                a.d = t->d;
        }
        attr_size(&a);
        return a;
}

/* --- growing buffers --- */

static uint8_t *room(uint8_t **buf, size_t *len, size_t *cap, size_t need)
{
        if (*len + need > *cap) {
                size_t c = *cap ? *cap : 64 * 1024;
                while (c < *len + need)
                        c *= 2;
                uint8_t *p = realloc(*buf, c);
                if (!p)
                        return NULL;
                *buf = p;
                *cap = c;
        }
        return *buf + *len;
}

void otlp_request_init(struct otlp_request *r)
{
        *r = (struct otlp_request){ 0 };
}

static void free_open(struct otlp_request *r)
{
        free((char *)r->open.service_name);
        free((char *)r->open.run_id);
        free((char *)r->open.host_name);
        free((char *)r->open.executable);
        free((char *)r->open.command_line);
        r->open = (struct otlp_resource){ 0 };
        r->has_open = false;
}

static bool same_string(const char *a, const char *b)
{
        return (!a || !*a) ? (!b || !*b) : (b && strcmp(a, b) == 0);
}

static bool same_resource(const struct otlp_resource *a, const struct otlp_resource *b)
{
        return a->pid == b->pid && same_string(a->service_name, b->service_name) && same_string(a->run_id, b->run_id) &&
               same_string(a->host_name, b->host_name) && same_string(a->executable, b->executable) &&
               same_string(a->command_line, b->command_line);
}

static char *copy(const char *s)
{
        return s && *s ? strdup(s) : NULL;
}

/* The open resource's attributes; returns their number. */
static size_t resource_attrs(const struct otlp_resource *res, struct attr out[6])
{
        size_t n = 0;
        out[n++] = attr_str("service.name", res->service_name && *res->service_name ? res->service_name : "unknown_service");
        if (res->host_name && *res->host_name)
                out[n++] = attr_str("host.name", res->host_name);
        if (res->pid)
                out[n++] = attr_int("process.pid", res->pid, ATTR_INT);
        if (res->executable && *res->executable)
                out[n++] = attr_str("process.executable.path", res->executable);
        if (res->command_line && *res->command_line)
                out[n++] = attr_str("process.command_line", res->command_line);
        if (res->run_id && *res->run_id)
                out[n++] = attr_str("ferret.run.id", res->run_id);
        return n;
}

/* Closes the open ResourceSpans: moves its spans into the request. */
static int close_resource(struct otlp_request *r)
{
        if (!r->has_open)
                return 0;
        struct attr attrs[6];
        size_t n = resource_attrs(&r->open, attrs), resource_len = 0;
        for (size_t i = 0; i < n; i++)
                resource_len += pb_len_size(RESOURCE_ATTRIBUTES, attrs[i].len);
        struct text scope_name = text_of("ferret"), scope_version = text_of(FERRET_VERSION);
        size_t scope_len = text_size(SCOPE_NAME, &scope_name) + text_size(SCOPE_VERSION, &scope_version);
        size_t ss_len = pb_len_size(SS_SCOPE, scope_len) + r->spans_len;
        size_t rs_len = pb_len_size(RS_RESOURCE, resource_len) + pb_len_size(RS_SCOPE_SPANS, ss_len);
        uint8_t *p = room(&r->done, &r->done_len, &r->done_cap, pb_len_size(REQUEST_RESOURCE_SPANS, rs_len));
        if (!p)
                return -ENOMEM;
        uint8_t *start = p;
        p = pb_put_len(p, REQUEST_RESOURCE_SPANS, rs_len);
        p = pb_put_len(p, RS_RESOURCE, resource_len);
        for (size_t i = 0; i < n; i++)
                p = put_attr(p, RESOURCE_ATTRIBUTES, &attrs[i]);
        p = pb_put_len(p, RS_SCOPE_SPANS, ss_len);
        p = pb_put_len(p, SS_SCOPE, scope_len);
        p = put_text(p, SCOPE_NAME, &scope_name);
        p = put_text(p, SCOPE_VERSION, &scope_version);
        memcpy(p, r->spans, r->spans_len);
        p += r->spans_len;
        r->done_len += (size_t)(p - start);
        r->spans_len = 0;
        free_open(r);
        return 0;
}

static int open_resource(struct otlp_request *r, const struct otlp_resource *res)
{
        int ret = close_resource(r);
        if (ret < 0)
                return ret;
        r->open = (struct otlp_resource){
                .service_name = copy(res->service_name), .run_id = copy(res->run_id),
                .host_name = copy(res->host_name), .pid = res->pid,
                .executable = copy(res->executable), .command_line = copy(res->command_line),
        };
        r->has_open = true;
        return 0;
}

static uint8_t *put_be(uint8_t *p, uint64_t v)
{
        for (int i = 7; i >= 0; i--)
                *p++ = (uint8_t)(v >> (8 * i));
        return p;
}

/* Attributes a span carries beyond its tags: at most this many. */
#define EXTRA_ATTRS 6

int otlp_request_add(struct otlp_request *r, const struct otlp_resource *res, const struct wire_spans *spans,
                     const struct wire_span *s)
{
        if (!r->has_open || !same_resource(&r->open, res)) {
                int ret = open_resource(r, res);
                if (ret < 0)
                        return ret;
        }
        unsigned status = wire_span_status(s);
        struct attr extra[EXTRA_ATTRS];
        size_t n_extra = 0;
        extra[n_extra++] = attr_int("thread.id", s->tid, ATTR_INT);
        if (s->flags & FERRET__SPAN_FLAG__SPAN_FLAG_ASYNC)
                extra[n_extra++] = attr_str("ferret.kind", "async");
        if (s->flags & FERRET__SPAN_FLAG__SPAN_FLAG_UNFINISHED)
                extra[n_extra++] = attr_int("ferret.unfinished", 1, ATTR_BOOL);
        if (s->flags & FERRET__SPAN_FLAG__SPAN_FLAG_UNWOUND)
                extra[n_extra++] = attr_int("ferret.unwound", 1, ATTR_BOOL);
        if (status == WIRE_STATUS_WARNING) {
                extra[n_extra++] = attr_str("ferret.status", "warning");
                if (s->message)
                        extra[n_extra++] = attr_str("ferret.status_message", s->message);
        }

        struct text name = text_of(s->name), message = text_of(s->message);
        size_t span_len = pb_len_size(SPAN_TRACE_ID, 16) + pb_len_size(SPAN_SPAN_ID, 8) +
                          (s->parent_id ? pb_len_size(SPAN_PARENT_SPAN_ID, 8) : 0) + text_size(SPAN_NAME, &name) +
                          2 /* kind */ + 2 * (1 + 8) /* start, end */;
        for (size_t i = 0; i < n_extra; i++)
                span_len += pb_len_size(SPAN_ATTRIBUTES, extra[i].len);
        for (uint32_t k = 0; k < s->n_tags; k++) {
                struct attr a = attr_of_tag(&spans->tags[s->first_tag + k]);
                span_len += pb_len_size(SPAN_ATTRIBUTES, a.len);
        }
        size_t status_len = 0;
        if (status == WIRE_STATUS_ERROR) {
                status_len = (s->message ? text_size(STATUS_MESSAGE, &message) : 0) + 2;
                span_len += pb_len_size(SPAN_STATUS, status_len);
        }

        uint8_t *p = room(&r->spans, &r->spans_len, &r->spans_cap, pb_len_size(SS_SPANS, span_len));
        if (!p)
                return -ENOMEM;
        uint8_t *start = p;
        p = pb_put_len(p, SS_SPANS, span_len);
        p = pb_put_len(p, SPAN_TRACE_ID, 16);
        p = put_be(put_be(p, s->trace_hi), s->trace_lo);
        p = put_be(pb_put_len(p, SPAN_SPAN_ID, 8), s->span_id);
        if (s->parent_id)
                p = put_be(pb_put_len(p, SPAN_PARENT_SPAN_ID, 8), s->parent_id);
        p = put_text(p, SPAN_NAME, &name);
        p = pb_put_varint(pb_put_tag(p, SPAN_KIND, PB_VARINT), SPAN_KIND_INTERNAL);
        uint64_t end = s->start_ns + s->duration_ns;
        p = pb_put_fixed64(p, SPAN_START, s->start_ns);
        p = pb_put_fixed64(p, SPAN_END, end < s->start_ns ? UINT64_MAX : end);
        for (uint32_t k = 0; k < s->n_tags; k++) {
                struct attr a = attr_of_tag(&spans->tags[s->first_tag + k]);
                p = put_attr(p, SPAN_ATTRIBUTES, &a);
        }
        for (size_t i = 0; i < n_extra; i++)
                p = put_attr(p, SPAN_ATTRIBUTES, &extra[i]);
        if (status == WIRE_STATUS_ERROR) {
                p = pb_put_len(p, SPAN_STATUS, status_len);
                if (s->message)
                        p = put_text(p, STATUS_MESSAGE, &message);
                p = pb_put_varint(pb_put_tag(p, STATUS_CODE, PB_VARINT), STATUS_CODE_ERROR);
        }
        r->spans_len += (size_t)(p - start);
        r->n_spans++;
        r->bytes = r->done_len + r->spans_len;
        return 0;
}

int otlp_request_finish(struct otlp_request *r, const uint8_t **ret, size_t *ret_len)
{
        int e = close_resource(r);
        if (e < 0)
                return e;
        *ret = r->done;
        *ret_len = r->done_len;
        return 0;
}

void otlp_request_reset(struct otlp_request *r)
{
        free_open(r);
        r->done_len = r->spans_len = r->n_spans = r->bytes = 0;
}

void otlp_request_free(struct otlp_request *r)
{
        free_open(r);
        free(r->done);
        free(r->spans);
        *r = (struct otlp_request){ 0 };
}

static const char *basename_of(const char *path)
{
        const char *slash = path ? strrchr(path, '/') : NULL;
        return slash ? slash + 1 : path;
}

void otlp_resource_of_batch(const Ferret__Batch *b, const char *run_id, const char *service,
                            struct otlp_resource *ret)
{
        const Ferret__Process *p = b->process;
        *ret = (struct otlp_resource){
                .service_name = service && *service ? service : p ? basename_of(p->executable) : NULL,
                .run_id = run_id,
                .host_name = p ? p->hostname : NULL,
                .pid = p ? p->pid : 0,
                .executable = p ? p->executable : NULL,
                .command_line = p ? p->command_line : NULL,
        };
}

void otlp_resource_of_process_span(const struct wire_spans *spans, const struct wire_span *s, const Ferret__Batch *b,
                                   const char *run_id, const char *service, struct otlp_resource *ret)
{
        otlp_resource_of_batch(b, run_id, service, ret);
        ret->service_name = service && *service ? service : s->name;
        ret->executable = NULL;
        ret->command_line = NULL;
        ret->pid = 0;
        for (uint32_t k = 0; k < s->n_tags; k++) {
                const struct wire_tag *t = &spans->tags[s->first_tag + k];
                if (t->type == FERRET__TAG_TYPE__TAG_INT && strcmp(t->key, "pid") == 0)
                        ret->pid = (uint32_t)t->i;
                else if (t->type == FERRET__TAG_TYPE__TAG_STRING && strcmp(t->key, "cmdline") == 0)
                        ret->command_line = t->s;
        }
}
