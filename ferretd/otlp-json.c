/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otlp-json.h"

struct parse {
        char *error;
        size_t error_size;
        bool failed;
};

static void fail(struct parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct parse *p, const char *fmt, ...)
{
        if (p->failed)
                return;
        p->failed = true;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->error, p->error_size, fmt, ap);
        va_end(ap);
}

/* A member by its lowerCamelCase name, or as the .proto spells it. */
static json_t *member(json_t *o, const char *camel, const char *snake)
{
        json_t *v = json_object_get(o, camel);
        return v ? v : snake ? json_object_get(o, snake) : NULL;
}

static char *string_of(struct parse *p, json_t *v, const char *what)
{
        if (!v || json_is_null(v))
                return strdup("");
        if (!json_is_string(v)) {
                fail(p, "%s is not a string", what);
                return NULL;
        }
        /* JSON strings may hold NUL (\u0000); OTLP's may not. */
        if (strlen(json_string_value(v)) != json_string_length(v)) {
                fail(p, "%s holds a NUL character", what);
                return NULL;
        }
        char *s = strdup(json_string_value(v));
        if (!s)
                fail(p, "out of memory");
        return s;
}

/* A 64-bit integer: a decimal string or a number. */
static bool int64_of(struct parse *p, json_t *v, const char *what, int64_t *ret, bool is_unsigned)
{
        if (!v || json_is_null(v)) {
                *ret = 0;
                return true;
        }
        if (json_is_integer(v)) {
                *ret = json_integer_value(v);
                return true;
        }
        if (json_is_string(v)) {
                const char *s = json_string_value(v);
                char *end;
                errno = 0;
                if (is_unsigned) {
                        unsigned long long u = strtoull(s, &end, 10);
                        *ret = (int64_t)u;
                        if (!errno && end != s && !*end && s[0] != '-')
                                return true;
                } else {
                        long long i = strtoll(s, &end, 10);
                        *ret = i;
                        if (!errno && end != s && !*end)
                                return true;
                }
        }
        fail(p, "%s is not an integer", what);
        return false;
}

/* Hex of exactly @len bytes (or "" for none). */
static bool bytes_of_hex(struct parse *p, json_t *v, size_t len, const char *what, ProtobufCBinaryData *ret)
{
        *ret = (ProtobufCBinaryData){ 0 };
        if (!v || json_is_null(v))
                return true;
        const char *s = json_is_string(v) ? json_string_value(v) : NULL;
        if (s && !*s)
                return true;
        if (!s || strlen(s) != 2 * len) {
                fail(p, "%s is not %zu bytes of hex", what, len);
                return false;
        }
        uint8_t *data = malloc(len);
        if (!data) {
                fail(p, "out of memory");
                return false;
        }
        for (size_t i = 0; i < len; i++) {
                unsigned hi, lo;
                char h[3] = { s[2 * i], s[2 * i + 1], 0 };
                if (sscanf(h, "%1x%1x", &hi, &lo) != 2) {
                        free(data);
                        fail(p, "%s is not hex", what);
                        return false;
                }
                data[i] = (uint8_t)(hi << 4 | lo);
        }
        *ret = (ProtobufCBinaryData){ .len = len, .data = data };
        return true;
}

/* A JSON array as @n pointers made by @make, each from an element. */
#define ARRAY_OF(type, make) \
        static type **array_##make(struct parse *p, json_t *a, const char *what, size_t *ret_n) \
        { \
                *ret_n = 0; \
                if (!a || json_is_null(a)) \
                        return NULL; \
                if (!json_is_array(a)) { \
                        fail(p, "%s is not an array", what); \
                        return NULL; \
                } \
                size_t n = json_array_size(a); \
                type **out = calloc(n ? n : 1, sizeof(*out)); \
                if (!out) { \
                        fail(p, "out of memory"); \
                        return NULL; \
                } \
                for (size_t i = 0; i < n && !p->failed; i++) { \
                        out[i] = make(p, json_array_get(a, i)); \
                        if (out[i]) \
                                (*ret_n)++; \
                } \
                return out; \
        }

static Otlp__KeyValue *key_value(struct parse *p, json_t *o);
ARRAY_OF(Otlp__KeyValue, key_value)

static Otlp__AnyValue *any_value(struct parse *p, json_t *o);
ARRAY_OF(Otlp__AnyValue, any_value)

static Otlp__AnyValue *any_value(struct parse *p, json_t *o)
{
        Otlp__AnyValue *v = calloc(1, sizeof(*v));
        if (!v) {
                fail(p, "out of memory");
                return NULL;
        }
        otlp__any_value__init(v);
        json_t *x;
        if (!o || json_is_null(o))
                return v;
        if (!json_is_object(o)) {
                fail(p, "an attribute's value is not an object");
                return v;
        }
        if ((x = member(o, "stringValue", "string_value"))) {
                v->value_case = OTLP__ANY_VALUE__VALUE_STRING_VALUE;
                v->string_value = string_of(p, x, "stringValue");
        } else if ((x = member(o, "boolValue", "bool_value"))) {
                if (!json_is_boolean(x))
                        fail(p, "boolValue is not a boolean");
                v->value_case = OTLP__ANY_VALUE__VALUE_BOOL_VALUE;
                v->bool_value = json_is_true(x);
        } else if ((x = member(o, "intValue", "int_value"))) {
                v->value_case = OTLP__ANY_VALUE__VALUE_INT_VALUE;
                int64_of(p, x, "intValue", &v->int_value, false);
        } else if ((x = member(o, "doubleValue", "double_value"))) {
                v->value_case = OTLP__ANY_VALUE__VALUE_DOUBLE_VALUE;
                if (json_is_number(x))
                        v->double_value = json_number_value(x);
                else if (json_is_string(x) && (!strcmp(json_string_value(x), "NaN") ||
                                               !strcmp(json_string_value(x), "Infinity") ||
                                               !strcmp(json_string_value(x), "-Infinity")))
                        v->double_value = strtod(json_string_value(x), NULL);
                else
                        fail(p, "doubleValue is not a number");
        } else if ((x = member(o, "arrayValue", "array_value"))) {
                v->value_case = OTLP__ANY_VALUE__VALUE_ARRAY_VALUE;
                v->array_value = calloc(1, sizeof(*v->array_value));
                if (!v->array_value) {
                        fail(p, "out of memory");
                        return v;
                }
                otlp__array_value__init(v->array_value);
                v->array_value->values = array_any_value(p, json_is_object(x) ? member(x, "values", NULL) : NULL,
                                                         "arrayValue.values", &v->array_value->n_values);
        } else if ((x = member(o, "kvlistValue", "kvlist_value"))) {
                v->value_case = OTLP__ANY_VALUE__VALUE_KVLIST_VALUE;
                v->kvlist_value = calloc(1, sizeof(*v->kvlist_value));
                if (!v->kvlist_value) {
                        fail(p, "out of memory");
                        return v;
                }
                otlp__key_value_list__init(v->kvlist_value);
                v->kvlist_value->values = array_key_value(p, json_is_object(x) ? member(x, "values", NULL) : NULL,
                                                          "kvlistValue.values", &v->kvlist_value->n_values);
        } else if ((x = member(o, "bytesValue", "bytes_value"))) {
                /* Base64 in JSON: kept as the text, which is what a tag shows. */
                v->value_case = OTLP__ANY_VALUE__VALUE_STRING_VALUE;
                v->string_value = string_of(p, x, "bytesValue");
        }
        return v;
}

static Otlp__KeyValue *key_value(struct parse *p, json_t *o)
{
        Otlp__KeyValue *kv = calloc(1, sizeof(*kv));
        if (!kv) {
                fail(p, "out of memory");
                return NULL;
        }
        otlp__key_value__init(kv);
        if (!json_is_object(o)) {
                fail(p, "an attribute is not an object");
                kv->key = strdup("");
                return kv;
        }
        kv->key = string_of(p, member(o, "key", NULL), "an attribute's key");
        if (!kv->key)
                kv->key = strdup("");
        kv->value = any_value(p, member(o, "value", NULL));
        return kv;
}

static Otlp__Span__Event *event(struct parse *p, json_t *o)
{
        Otlp__Span__Event *e = calloc(1, sizeof(*e));
        if (!e) {
                fail(p, "out of memory");
                return NULL;
        }
        otlp__span__event__init(e);
        e->name = string_of(p, json_is_object(o) ? member(o, "name", NULL) : NULL, "an event's name");
        if (!e->name)
                e->name = strdup("");
        if (json_is_object(o))
                e->attributes = array_key_value(p, member(o, "attributes", NULL), "an event's attributes",
                                                &e->n_attributes);
        return e;
}
ARRAY_OF(Otlp__Span__Event, event)

static Otlp__Span__Link *link_of(struct parse *p, json_t *o)
{
        Otlp__Span__Link *l = calloc(1, sizeof(*l));
        if (!l) {
                fail(p, "out of memory");
                return NULL;
        }
        otlp__span__link__init(l);
        return l;
}
ARRAY_OF(Otlp__Span__Link, link_of)

static Otlp__Span *span(struct parse *p, json_t *o)
{
        Otlp__Span *s = calloc(1, sizeof(*s));
        if (!s) {
                fail(p, "out of memory");
                return NULL;
        }
        otlp__span__init(s);
        s->name = strdup("");
        s->trace_state = strdup("");
        if (!json_is_object(o)) {
                fail(p, "a span is not an object");
                return s;
        }
        bytes_of_hex(p, member(o, "traceId", "trace_id"), 16, "traceId", &s->trace_id);
        bytes_of_hex(p, member(o, "spanId", "span_id"), 8, "spanId", &s->span_id);
        bytes_of_hex(p, member(o, "parentSpanId", "parent_span_id"), 8, "parentSpanId", &s->parent_span_id);
        free(s->name);
        s->name = string_of(p, member(o, "name", NULL), "a span's name");
        if (!s->name)
                s->name = strdup("");
        int64_t v;
        if (int64_of(p, member(o, "kind", NULL), "kind", &v, false))
                s->kind = v >= 0 && v <= 5 ? (Otlp__Span__SpanKind)v : OTLP__SPAN__SPAN_KIND__SPAN_KIND_UNSPECIFIED;
        if (int64_of(p, member(o, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano", &v, true))
                s->start_time_unix_nano = (uint64_t)v;
        if (int64_of(p, member(o, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano", &v, true))
                s->end_time_unix_nano = (uint64_t)v;
        s->attributes = array_key_value(p, member(o, "attributes", NULL), "a span's attributes", &s->n_attributes);
        if (int64_of(p, member(o, "droppedAttributesCount", "dropped_attributes_count"), "droppedAttributesCount", &v,
                     true))
                s->dropped_attributes_count = (uint32_t)v;
        s->events = array_event(p, member(o, "events", NULL), "a span's events", &s->n_events);
        s->links = array_link_of(p, member(o, "links", NULL), "a span's links", &s->n_links);
        json_t *st = member(o, "status", NULL);
        if (json_is_object(st)) {
                s->status = calloc(1, sizeof(*s->status));
                if (!s->status) {
                        fail(p, "out of memory");
                        return s;
                }
                otlp__status__init(s->status);
                s->status->message = string_of(p, member(st, "message", NULL), "a status's message");
                if (!s->status->message)
                        s->status->message = strdup("");
                if (int64_of(p, member(st, "code", NULL), "a status's code", &v, false))
                        s->status->code = v >= 0 && v <= 2 ? (Otlp__Status__StatusCode)v : 0;
        }
        return s;
}
ARRAY_OF(Otlp__Span, span)

static Otlp__ScopeSpans *scope_spans(struct parse *p, json_t *o)
{
        Otlp__ScopeSpans *ss = calloc(1, sizeof(*ss));
        if (!ss) {
                fail(p, "out of memory");
                return NULL;
        }
        otlp__scope_spans__init(ss);
        ss->schema_url = strdup("");
        if (!json_is_object(o)) {
                fail(p, "a scopeSpans is not an object");
                return ss;
        }
        json_t *scope = member(o, "scope", NULL);
        if (json_is_object(scope)) {
                ss->scope = calloc(1, sizeof(*ss->scope));
                if (!ss->scope) {
                        fail(p, "out of memory");
                        return ss;
                }
                otlp__instrumentation_scope__init(ss->scope);
                ss->scope->name = string_of(p, member(scope, "name", NULL), "a scope's name");
                ss->scope->version = string_of(p, member(scope, "version", NULL), "a scope's version");
                if (!ss->scope->name)
                        ss->scope->name = strdup("");
                if (!ss->scope->version)
                        ss->scope->version = strdup("");
        }
        ss->spans = array_span(p, member(o, "spans", NULL), "spans", &ss->n_spans);
        return ss;
}
ARRAY_OF(Otlp__ScopeSpans, scope_spans)

static Otlp__ResourceSpans *resource_spans(struct parse *p, json_t *o)
{
        Otlp__ResourceSpans *rs = calloc(1, sizeof(*rs));
        if (!rs) {
                fail(p, "out of memory");
                return NULL;
        }
        otlp__resource_spans__init(rs);
        rs->schema_url = strdup("");
        if (!json_is_object(o)) {
                fail(p, "a resourceSpans is not an object");
                return rs;
        }
        json_t *res = member(o, "resource", NULL);
        if (json_is_object(res)) {
                rs->resource = calloc(1, sizeof(*rs->resource));
                if (!rs->resource) {
                        fail(p, "out of memory");
                        return rs;
                }
                otlp__resource__init(rs->resource);
                rs->resource->attributes = array_key_value(p, member(res, "attributes", NULL),
                                                           "a resource's attributes", &rs->resource->n_attributes);
        }
        rs->scope_spans = array_scope_spans(p, member(o, "scopeSpans", "scope_spans"), "scopeSpans",
                                            &rs->n_scope_spans);
        return rs;
}
ARRAY_OF(Otlp__ResourceSpans, resource_spans)

Otlp__ExportTraceServiceRequest *otlp_json_parse(const char *json, size_t len, char *ret_error, size_t error_size)
{
        struct parse p = { .error = ret_error, .error_size = error_size };
        json_error_t err;
        json_t *root = json_loadb(json, len, 0, &err);
        if (!root) {
                snprintf(ret_error, error_size, "not JSON: %s (line %d)", err.text, err.line);
                return NULL;
        }
        Otlp__ExportTraceServiceRequest *req = calloc(1, sizeof(*req));
        if (!req) {
                json_decref(root);
                snprintf(ret_error, error_size, "out of memory");
                return NULL;
        }
        otlp__export_trace_service_request__init(req);
        if (!json_is_object(root))
                fail(&p, "the body is not a JSON object");
        else
                req->resource_spans = array_resource_spans(&p, member(root, "resourceSpans", "resource_spans"),
                                                           "resourceSpans", &req->n_resource_spans);
        json_decref(root);
        if (p.failed) {
                otlp__export_trace_service_request__free_unpacked(req, NULL);
                return NULL;
        }
        return req;
}
