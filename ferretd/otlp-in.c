/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "ingest.h"
#include "log.h"
#include "map.h"
#include "otlp-in.h"
#include "path.h"
#include "utf8.h"
#include "wire.h"

#define MAX_ATTRIBUTES 250            /* a span's tags, leaving room for ours */
#define BATCH_BYTES (512u << 10)      /* a batch closes past about this much */
#define STORE_TIMEOUT_MS 10000        /* for ferretd to confirm a request's spans stored */
#define CLIENTS 1024                  /* (run, process) pairs remembered */
#define RUN_ID_MAX 255                /* what ingest takes */

/* What a (run, process) pair looks like to ingest: a client of its own,
 * whose batches are numbered and count what came before them. */
struct client {
        char *run;
        uint32_t pid;
        uint64_t id, seq, sent;
        uint64_t used;                /* for eviction: the request that last used it */
};

/* The columns of one batch being built (ferret.proto's SpanColumns). */
struct columns {
        struct wire_strtab strings;
        uint64_t *traces;
        size_t n_traces, cap_traces;
        uint32_t *trace, *name, *tid, *flags, *message, *tag_count, *path;
        int64_t *span_id, *parent, *start;
        uint64_t *duration, *paths;
        size_t n, cap;
        uint32_t *tag_key;
        Ferret__TagType *tag_type;
        size_t n_tags, cap_tags;
        int64_t *tag_value;
        size_t n_values, cap_values;
        double *tag_double;
        size_t n_doubles, cap_doubles;
        char **owned;                 /* strings the table points to that we made */
        size_t n_owned, cap_owned;
        uint64_t prev_id, prev_start, base_start;
        size_t bytes;
};

struct otlp_in {
        pthread_mutex_t lock;
        void *socket;                 /* PUSH, to the ingest socket */
        struct acks *acks;
        struct ingest *ingest;
        struct client clients[CLIENTS];
        uint64_t requests;
        uint64_t salt;
        struct columns cols;
        uint8_t *packed;
        size_t packed_cap;
        /* The request's spans, flattened, and their paths. */
        const Otlp__Span **spans;
        uint64_t *span_paths;
        size_t cap_spans;
        struct u64map by_id;          /* span id -> index + 1 */
};

/* --- text --- */

static bool text_ok(const char *s)
{
        return !s || utf8_valid(s, strlen(s));
}

static bool value_ok(const Otlp__AnyValue *v);

static bool attributes_ok(Otlp__KeyValue *const *kv, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (!kv[i] || !text_ok(kv[i]->key) || (kv[i]->value && !value_ok(kv[i]->value)))
                        return false;
        return true;
}

/* Arrays and maps nest: a hostile request nests them deep, and the
 * protobuf decoder already bounded the depth by the message's size. */
static bool value_ok(const Otlp__AnyValue *v)
{
        switch (v->value_case) {
        case OTLP__ANY_VALUE__VALUE_STRING_VALUE:
                return text_ok(v->string_value);
        case OTLP__ANY_VALUE__VALUE_ARRAY_VALUE:
                if (v->array_value)
                        for (size_t i = 0; i < v->array_value->n_values; i++)
                                if (v->array_value->values[i] && !value_ok(v->array_value->values[i]))
                                        return false;
                return true;
        case OTLP__ANY_VALUE__VALUE_KVLIST_VALUE:
                return !v->kvlist_value || attributes_ok(v->kvlist_value->values, v->kvlist_value->n_values);
        default:
                return true;
        }
}

const char *otlp_in_check_text(const Otlp__ExportTraceServiceRequest *req)
{
        for (size_t r = 0; r < req->n_resource_spans; r++) {
                const Otlp__ResourceSpans *rs = req->resource_spans[r];
                if (rs->resource && !attributes_ok(rs->resource->attributes, rs->resource->n_attributes))
                        return "a resource attribute";
                for (size_t k = 0; k < rs->n_scope_spans; k++) {
                        const Otlp__ScopeSpans *ss = rs->scope_spans[k];
                        if (ss->scope && (!text_ok(ss->scope->name) || !text_ok(ss->scope->version)))
                                return "a scope";
                        for (size_t i = 0; i < ss->n_spans; i++) {
                                const Otlp__Span *s = ss->spans[i];
                                if (!text_ok(s->name))
                                        return "a span's name";
                                if (!attributes_ok(s->attributes, s->n_attributes))
                                        return "a span's attribute";
                                if (s->status && !text_ok(s->status->message))
                                        return "a span's status";
                                for (size_t e = 0; e < s->n_events; e++)
                                        if (!text_ok(s->events[e]->name) ||
                                            !attributes_ok(s->events[e]->attributes, s->events[e]->n_attributes))
                                                return "an event";
                        }
                }
        }
        return NULL;
}

/* The length of @s cut to at most @max bytes at a character boundary. */
static size_t cut_len(const char *s, size_t max)
{
        size_t len = strlen(s);
        if (len <= max)
                return len;
        len = max;
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
                len--;
        return len;
}

/* @s cut to at most @max bytes at a character boundary, as a copy when
 * cut (added to the batch's owned strings); NULL when memory is short. */
static const char *cut(struct columns *c, const char *s, size_t max)
{
        size_t len = cut_len(s, max);
        if (!s[len])
                return s;
        char *copy = strndup(s, len);
        if (!copy || wire_grow((void **)&c->owned, &c->cap_owned, c->n_owned + 1, sizeof(*c->owned)) < 0) {
                free(copy);
                return NULL;
        }
        c->owned[c->n_owned++] = copy;
        return copy;
}

/* An array, a map or bytes as text, for a tag: JSON-like, cut to the
 * wire's bound. */
static void render(FILE *f, const Otlp__AnyValue *v, int depth)
{
        if (!v || depth > 8) {
                fputs("null", f);
                return;
        }
        switch (v->value_case) {
        case OTLP__ANY_VALUE__VALUE_STRING_VALUE:
                fputc('"', f);
                for (const char *p = v->string_value; *p; p++)
                        fputs(*p == '"' ? "\\\"" : *p == '\\' ? "\\\\" : (char[2]){ *p, 0 }, f);
                fputc('"', f);
                break;
        case OTLP__ANY_VALUE__VALUE_BOOL_VALUE:
                fputs(v->bool_value ? "true" : "false", f);
                break;
        case OTLP__ANY_VALUE__VALUE_INT_VALUE:
                fprintf(f, "%" PRId64, v->int_value);
                break;
        case OTLP__ANY_VALUE__VALUE_DOUBLE_VALUE:
                fprintf(f, "%.17g", v->double_value);
                break;
        case OTLP__ANY_VALUE__VALUE_ARRAY_VALUE:
                fputc('[', f);
                for (size_t i = 0; v->array_value && i < v->array_value->n_values; i++) {
                        if (i)
                                fputc(',', f);
                        render(f, v->array_value->values[i], depth + 1);
                }
                fputc(']', f);
                break;
        case OTLP__ANY_VALUE__VALUE_KVLIST_VALUE:
                fputc('{', f);
                for (size_t i = 0; v->kvlist_value && i < v->kvlist_value->n_values; i++) {
                        const Otlp__KeyValue *kv = v->kvlist_value->values[i];
                        fprintf(f, "%s\"%s\":", i ? "," : "", kv->key);
                        render(f, kv->value, depth + 1);
                }
                fputc('}', f);
                break;
        case OTLP__ANY_VALUE__VALUE_BYTES_VALUE:
                for (size_t i = 0; i < v->bytes_value.len; i++)
                        fprintf(f, "%02x", v->bytes_value.data[i]);
                break;
        default:
                fputs("null", f);
        }
}

static const char *rendered(struct columns *c, const Otlp__AnyValue *v)
{
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return NULL;
        render(f, v, 0);
        if (fclose(f) != 0) {
                free(text);
                return NULL;
        }
        if (wire_grow((void **)&c->owned, &c->cap_owned, c->n_owned + 1, sizeof(*c->owned)) < 0) {
                free(text);
                return NULL;
        }
        c->owned[c->n_owned++] = text;
        return cut(c, text, WIRE_MAX_NAME_BYTES);
}

/* --- the batch's columns --- */

static void columns_clear(struct columns *c)
{
        wire_strtab_reset(&c->strings);
        for (size_t i = 0; i < c->n_owned; i++)
                free(c->owned[i]);
        c->n_owned = c->n_traces = c->n = c->n_tags = c->n_values = c->n_doubles = 0;
        c->prev_id = c->prev_start = c->base_start = 0;
        c->bytes = 0;
}

static void columns_free(struct columns *c)
{
        columns_clear(c);
        wire_strtab_free(&c->strings);
        free(c->owned);
        free(c->traces);
        free(c->trace);
        free(c->name);
        free(c->tid);
        free(c->flags);
        free(c->message);
        free(c->tag_count);
        free(c->path);
        free(c->span_id);
        free(c->parent);
        free(c->start);
        free(c->duration);
        free(c->paths);
        free(c->tag_key);
        free(c->tag_type);
        free(c->tag_value);
        free(c->tag_double);
}

static int64_t str(struct columns *c, const char *s)
{
        if (!s)
                return 0;
        int64_t i = wire_strtab_add(&c->strings, s, strlen(s));
        if (i >= 0)
                c->bytes += strlen(s) + 2;
        return i;
}

static int grow_spans(struct columns *c)
{
        if (c->n < c->cap)
                return 0;
        size_t cap = c->cap ? c->cap * 2 : 256;
#define GROW(field) \
        do { \
                void *p = realloc(c->field, cap * sizeof(*c->field)); \
                if (!p) \
                        return -ENOMEM; \
                c->field = p; \
        } while (0)
        GROW(trace);
        GROW(name);
        GROW(tid);
        GROW(flags);
        GROW(message);
        GROW(tag_count);
        GROW(path);
        GROW(span_id);
        GROW(parent);
        GROW(start);
        GROW(duration);
#undef GROW
        void *p = realloc(c->paths, 2 * cap * sizeof(*c->paths));
        if (!p)
                return -ENOMEM;
        c->paths = p;
        c->cap = cap;
        return 0;
}

static int add_tag(struct columns *c, const char *key, Ferret__TagType type, int64_t value, double d)
{
        int64_t k = str(c, key);
        if (k < 0 || wire_grow((void **)&c->tag_key, &c->cap_tags, c->n_tags + 1, sizeof(*c->tag_key)) < 0)
                return -ENOMEM;
        size_t cap = c->cap_tags;
        void *types = realloc(c->tag_type, cap * sizeof(*c->tag_type));
        if (!types)
                return -ENOMEM;
        c->tag_type = types;
        c->tag_key[c->n_tags] = (uint32_t)k;
        c->tag_type[c->n_tags++] = type;
        c->bytes += 12;
        if (type == FERRET__TAG_TYPE__TAG_DOUBLE) {
                if (wire_grow((void **)&c->tag_double, &c->cap_doubles, c->n_doubles + 1, sizeof(*c->tag_double)) < 0)
                        return -ENOMEM;
                c->tag_double[c->n_doubles++] = d;
        } else {
                if (wire_grow((void **)&c->tag_value, &c->cap_values, c->n_values + 1, sizeof(*c->tag_value)) < 0)
                        return -ENOMEM;
                c->tag_value[c->n_values++] = value;
        }
        return 0;
}

static int add_string_tag(struct columns *c, const char *key, const char *value)
{
        int64_t v = value ? str(c, value) : -ENOMEM;
        return v < 0 ? -ENOMEM : add_tag(c, key, FERRET__TAG_TYPE__TAG_STRING, v, 0);
}

/* One attribute as a tag; 0, or -ENOMEM. */
static int add_attribute(struct columns *c, const Otlp__KeyValue *kv)
{
        const char *key = cut(c, kv->key, WIRE_MAX_NAME_BYTES);
        const Otlp__AnyValue *v = kv->value;
        if (!key)
                return -ENOMEM;
        switch (v ? v->value_case : OTLP__ANY_VALUE__VALUE__NOT_SET) {
        case OTLP__ANY_VALUE__VALUE_STRING_VALUE:
                return add_string_tag(c, key, cut(c, v->string_value, WIRE_MAX_NAME_BYTES));
        case OTLP__ANY_VALUE__VALUE_BOOL_VALUE:
                return add_tag(c, key, FERRET__TAG_TYPE__TAG_BOOL, v->bool_value, 0);
        case OTLP__ANY_VALUE__VALUE_INT_VALUE:
                return add_tag(c, key, FERRET__TAG_TYPE__TAG_INT, v->int_value, 0);
        case OTLP__ANY_VALUE__VALUE_DOUBLE_VALUE:
                return add_tag(c, key, FERRET__TAG_TYPE__TAG_DOUBLE, 0, v->double_value);
        case OTLP__ANY_VALUE__VALUE__NOT_SET:
                return add_string_tag(c, key, "");
        default:
                return add_string_tag(c, key, rendered(c, v));
        }
}

static const char *const kinds[] = { "unspecified", "internal", "server", "client", "producer", "consumer" };

static uint64_t be64(const uint8_t *p)
{
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
                v = v << 8 | p[i];
        return v;
}

/* Adds @s, whose call path is @path under @parent_path. 0, or -ENOMEM. */
static int add_span(struct columns *c, const Otlp__Span *s, uint64_t path, uint64_t parent_path)
{
        if (grow_spans(c) < 0 || wire_grow((void **)&c->traces, &c->cap_traces, c->n_traces + 2, sizeof(*c->traces)) < 0)
                return -ENOMEM;
        uint64_t hi = be64(s->trace_id.data), lo = be64(s->trace_id.data + 8);
        if (!c->n_traces || c->traces[c->n_traces - 2] != hi || c->traces[c->n_traces - 1] != lo) {
                c->traces[c->n_traces++] = hi;
                c->traces[c->n_traces++] = lo;
        }
        uint64_t id = be64(s->span_id.data), parent = s->parent_span_id.len == 8 ? be64(s->parent_span_id.data) : 0;
        uint64_t start = s->start_time_unix_nano;
        if (!c->n)
                c->base_start = c->prev_start = start;
        const char *name = cut(c, *s->name ? s->name : "(unnamed)", WIRE_MAX_NAME_BYTES);
        int64_t name_i = name ? str(c, name) : -ENOMEM;
        bool error = s->status && s->status->code == OTLP__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
        int64_t message = error && s->status->message && *s->status->message
                                  ? str(c, cut(c, s->status->message, WIRE_MAX_NAME_BYTES))
                                  : 0;
        if (name_i < 0 || message < 0)
                return -ENOMEM;

        size_t tags_before = c->n_tags;
        size_t n_attrs = s->n_attributes < MAX_ATTRIBUTES ? s->n_attributes : MAX_ATTRIBUTES;
        for (size_t i = 0; i < n_attrs; i++)
                if (add_attribute(c, s->attributes[i]) < 0)
                        return -ENOMEM;
        uint64_t omitted = s->n_attributes - n_attrs + s->dropped_attributes_count;
        if ((size_t)s->kind < sizeof(kinds) / sizeof(kinds[0]) && s->kind != 0 &&
            add_string_tag(c, "otel.kind", kinds[s->kind]) < 0)
                return -ENOMEM;
        if (s->n_events && add_tag(c, "otel.events", FERRET__TAG_TYPE__TAG_INT, (int64_t)s->n_events, 0) < 0)
                return -ENOMEM;
        if (s->n_links && add_tag(c, "otel.links", FERRET__TAG_TYPE__TAG_INT, (int64_t)s->n_links, 0) < 0)
                return -ENOMEM;
        if (omitted && add_tag(c, "ferret.omitted", FERRET__TAG_TYPE__TAG_INT, (int64_t)omitted, 0) < 0)
                return -ENOMEM;

        size_t i = c->n++;
        c->trace[i] = (uint32_t)(c->n_traces / 2 - 1);
        c->span_id[i] = (int64_t)(id - c->prev_id);
        c->prev_id = id;
        c->parent[i] = parent && parent != id ? (int64_t)(id - parent) : 0;
        c->name[i] = (uint32_t)name_i;
        c->start[i] = (int64_t)(start - c->prev_start);
        c->prev_start = start;
        c->duration[i] = s->end_time_unix_nano > start ? s->end_time_unix_nano - start : 0;
        c->tid[i] = 0;
        c->flags[i] = (error ? WIRE_STATUS_ERROR : WIRE_STATUS_OK) | FERRET__SPAN_FLAG__SPAN_FLAG_ASYNC;
        c->message[i] = (uint32_t)message;
        c->tag_count[i] = (uint32_t)(c->n_tags - tags_before);
        c->path[i] = (uint32_t)i;
        c->paths[2 * i] = path;
        c->paths[2 * i + 1] = parent_path;
        c->bytes += 64;
        return 0;
}

/* --- clients and batches --- */

static uint64_t mix(uint64_t x)
{
        return path_mix(x ^ 0x6a09e667f3bcc909ull);
}

static struct client *client_of(struct otlp_in *in, const char *run, uint32_t pid)
{
        struct client *oldest = &in->clients[0];
        for (size_t i = 0; i < CLIENTS; i++) {
                struct client *c = &in->clients[i];
                if (c->run && c->pid == pid && strcmp(c->run, run) == 0) {
                        c->used = in->requests;
                        return c;
                }
                if (!c->run || c->used < oldest->used)
                        oldest = c;
        }
        char *copy = strdup(run);
        if (!copy)
                return NULL;
        free(oldest->run);
        /* A new client to ingest: its own id, batches from 1. */
        *oldest = (struct client){ .run = copy, .pid = pid, .used = in->requests,
                                   .id = mix(in->salt + path_key_bytes(run, strlen(run)) + pid + in->requests) | 1 };
        return oldest;
}

struct resource {
        const char *run;
        const char *service;
        const char *host;
        const char *command_line;
        uint32_t pid;
};

static const char *string_attribute(Otlp__KeyValue *const *kv, size_t n, const char *key)
{
        for (size_t i = 0; i < n; i++)
                if (kv[i]->value && kv[i]->value->value_case == OTLP__ANY_VALUE__VALUE_STRING_VALUE &&
                    strcmp(kv[i]->key, key) == 0)
                        return kv[i]->value->string_value;
        return NULL;
}

static void resource_of(const Otlp__ResourceSpans *rs, struct resource *ret)
{
        Otlp__KeyValue *const *kv = rs->resource ? rs->resource->attributes : NULL;
        size_t n = rs->resource ? rs->resource->n_attributes : 0;
        struct resource r = { 0 };
        r.service = string_attribute(kv, n, "service.name");
        if (!r.service || !*r.service)
                r.service = "unknown_service";
        r.run = string_attribute(kv, n, "ferret.run.id");
        if (!r.run || !*r.run)
                r.run = r.service;
        r.host = string_attribute(kv, n, "host.name");
        r.command_line = string_attribute(kv, n, "process.command_line");
        for (size_t i = 0; i < n; i++)
                if (kv[i]->value && kv[i]->value->value_case == OTLP__ANY_VALUE__VALUE_INT_VALUE &&
                    strcmp(kv[i]->key, "process.pid") == 0 && kv[i]->value->int_value > 0 &&
                    kv[i]->value->int_value <= UINT32_MAX)
                        r.pid = (uint32_t)kv[i]->value->int_value;
        if (!r.pid) {
                /* No pid: a number of its own for the service's instance. */
                const char *instance = string_attribute(kv, n, "service.instance.id");
                uint64_t h = path_key_bytes(r.service, strlen(r.service)) ^
                             (instance ? path_key_bytes(instance, strlen(instance)) * 3 : 0);
                r.pid = (uint32_t)(h % 2000000000u) + 1;
        }
        *ret = r;
}

struct pending_ack {
        uint64_t client, seq;
};

/* Packs the columns into a batch of @c's and sends it to ingest. */
static int send_batch(struct otlp_in *in, const struct resource *res, struct client *c, struct pending_ack *ack)
{
        struct columns *k = &in->cols;
        if (!k->n)
                return 0;
        Ferret__Batch b = FERRET__BATCH__INIT;
        Ferret__Process p = FERRET__PROCESS__INIT;
        Ferret__SpanColumns sc = FERRET__SPAN_COLUMNS__INIT;
        p.pid = res->pid;
        p.executable = (char *)cut(k, res->service, WIRE_MAX_NAME_BYTES);
        p.hostname = (char *)(res->host ? res->host : "");
        p.command_line = (char *)(res->command_line ? cut(k, res->command_line, WIRE_MAX_NAME_BYTES) : "");
        if (!p.executable || !p.command_line)
                return -ENOMEM;
        sc.n_strings = k->strings.n;
        sc.strings = (char **)k->strings.strings;
        sc.n_traces = k->n_traces;
        sc.traces = k->traces;
        sc.n_trace = sc.n_span_id = sc.n_parent = sc.n_name = sc.n_start = sc.n_duration = sc.n_tid = sc.n_flags =
                sc.n_message = sc.n_tag_count = sc.n_path = k->n;
        sc.trace = k->trace;
        sc.span_id = k->span_id;
        sc.parent = k->parent;
        sc.name = k->name;
        sc.start = k->start;
        sc.base_start_ns = k->base_start;
        sc.duration = k->duration;
        sc.tid = k->tid;
        sc.flags = k->flags;
        sc.message = k->message;
        sc.tag_count = k->tag_count;
        sc.path = k->path;
        sc.n_paths = 2 * k->n;
        sc.paths = k->paths;
        sc.n_tag_key = sc.n_tag_type = k->n_tags;
        sc.tag_key = k->tag_key;
        sc.tag_type = k->tag_type;
        sc.n_tag_value = k->n_values;
        sc.tag_value = k->tag_value;
        sc.n_tag_double = k->n_doubles;
        sc.tag_double = k->tag_double;
        b.version = WIRE_PROTOCOL_VERSION;
        b.process = &p;
        b.run_id = (char *)res->run;
        b.client_id = c->id;
        b.seq = ++c->seq;
        b.first_unacked = b.seq;          /* nothing older is kept for resending */
        b.sent_before = c->sent;
        b.spans = &sc;
        size_t len;
        int r = wire_batch_pack(&b, &in->packed, &in->packed_cap, &len);
        if (r < 0)
                return r;
        if (zmq_send(in->socket, in->packed, len, 0) < 0)
                return -errno;
        c->sent += k->n;
        *ack = (struct pending_ack){ c->id, b.seq };
        columns_clear(k);
        return 0;
}

/* --- paths --- */

/* The call path of span @i of the request: its parent's (in the request,
 * or foreign), stepped by its name. An explicit walk up the chain of
 * parents in the request whose paths are not known yet; a chain that comes
 * back on itself (a forged request) is cut. */
static uint64_t path_of(struct otlp_in *in, size_t i, size_t n, uint64_t *parent_path)
{
        size_t chain[64];
        size_t depth = 0, at = i;
        uint64_t base = PATH_NONE;
        for (;;) {
                const Otlp__Span *s = in->spans[at];
                if (in->span_paths[2 * at]) {
                        base = in->span_paths[2 * at];
                        break;
                }
                uint64_t up_id = s->parent_span_id.len == 8 ? be64(s->parent_span_id.data) : 0, up;
                if (depth == sizeof(chain) / sizeof(chain[0])) {
                        base = up_id ? path_foreign(up_id) : PATH_NONE;
                        break;
                }
                chain[depth++] = at;
                if (!up_id || up_id == be64(s->span_id.data)) {
                        base = PATH_NONE;
                        break;
                }
                if (!u64map_get(&in->by_id, up_id, &up) || up - 1 >= n) {
                        base = path_foreign(up_id);
                        break;
                }
                at = (size_t)(up - 1);
                bool cycle = false;
                for (size_t k = 0; k < depth; k++)
                        cycle = cycle || chain[k] == at;
                if (cycle) {
                        base = PATH_NONE;
                        break;
                }
        }
        /* Down the chain again, each span's path from its parent's. */
        while (depth) {
                size_t k = chain[--depth];
                const char *name = *in->spans[k]->name ? in->spans[k]->name : "(unnamed)";
                in->span_paths[2 * k + 1] = base;
                base = path_step(base, path_key_bytes(name, cut_len(name, WIRE_MAX_NAME_BYTES)));
                in->span_paths[2 * k] = base;
        }
        *parent_path = in->span_paths[2 * i + 1];
        return in->span_paths[2 * i];
}

static bool ids_ok(const Otlp__Span *s)
{
        static const uint8_t zero[16];
        return s->trace_id.len == 16 && memcmp(s->trace_id.data, zero, 16) != 0 && s->span_id.len == 8 &&
               memcmp(s->span_id.data, zero, 8) != 0 && (s->parent_span_id.len == 0 || s->parent_span_id.len == 8);
}

/* The request's valid spans in order, indexed by id. */
static int flatten(struct otlp_in *in, const Otlp__ExportTraceServiceRequest *req, size_t *ret_n)
{
        size_t n = 0;
        u64map_clear(&in->by_id);
        for (size_t r = 0; r < req->n_resource_spans; r++)
                for (size_t k = 0; k < req->resource_spans[r]->n_scope_spans; k++) {
                        const Otlp__ScopeSpans *ss = req->resource_spans[r]->scope_spans[k];
                        for (size_t i = 0; i < ss->n_spans; i++) {
                                if (!ids_ok(ss->spans[i]))
                                        continue;
                                if (n == in->cap_spans) {
                                        size_t cap = in->cap_spans ? in->cap_spans * 2 : 1024;
                                        void *a = realloc(in->spans, cap * sizeof(*in->spans));
                                        if (!a)
                                                return -ENOMEM;
                                        in->spans = a;
                                        void *b = realloc(in->span_paths, 2 * cap * sizeof(*in->span_paths));
                                        if (!b)
                                                return -ENOMEM;
                                        in->span_paths = b;
                                        in->cap_spans = cap;
                                }
                                in->spans[n] = ss->spans[i];
                                in->span_paths[2 * n] = in->span_paths[2 * n + 1] = 0;
                                if (u64map_put(&in->by_id, be64(ss->spans[i]->span_id.data), n + 1) < 0)
                                        return -ENOMEM;
                                n++;
                        }
                }
        *ret_n = n;
        return 0;
}

/* --- the request --- */

static int store_locked(struct otlp_in *in, const Otlp__ExportTraceServiceRequest *req, struct otlp_in_result *ret,
                        struct pending_ack **acks, size_t *n_acks)
{
        size_t n, next = 0, cap_acks = 0;
        in->requests++;
        int r = flatten(in, req, &n);
        if (r < 0)
                return r;
        for (size_t rsi = 0; rsi < req->n_resource_spans; rsi++) {
                const Otlp__ResourceSpans *rs = req->resource_spans[rsi];
                struct resource res;
                char run[RUN_ID_MAX + 1];
                resource_of(rs, &res);
                /* A run's id is at most RUN_ID_MAX bytes (ingest.c). */
                snprintf(run, sizeof(run), "%.*s", (int)cut_len(res.run, RUN_ID_MAX), res.run);
                res.run = run;
                struct client *c = client_of(in, res.run, res.pid);
                if (!c)
                        return -ENOMEM;
                for (size_t k = 0; k < rs->n_scope_spans; k++) {
                        const Otlp__ScopeSpans *ss = rs->scope_spans[k];
                        for (size_t i = 0; i < ss->n_spans; i++) {
                                if (!ids_ok(ss->spans[i])) {
                                        ret->rejected++;
                                        snprintf(ret->message, sizeof(ret->message),
                                                 "a span needs a 16-byte trace id and an 8-byte span id, not zero");
                                        continue;
                                }
                                uint64_t parent_path, path = path_of(in, next++, n, &parent_path);
                                if ((r = add_span(&in->cols, ss->spans[i], path, parent_path)) < 0)
                                        return r;
                                ret->accepted++;
                                if (in->cols.bytes >= BATCH_BYTES) {
                                        if (wire_grow((void **)acks, &cap_acks, *n_acks + 1, sizeof(**acks)) < 0)
                                                return -ENOMEM;
                                        if ((r = send_batch(in, &res, c, &(*acks)[*n_acks])) < 0)
                                                return r;
                                        (*n_acks)++;
                                }
                        }
                }
                if (in->cols.n) {
                        if (wire_grow((void **)acks, &cap_acks, *n_acks + 1, sizeof(**acks)) < 0)
                                return -ENOMEM;
                        if ((r = send_batch(in, &res, c, &(*acks)[*n_acks])) < 0)
                                return r;
                        (*n_acks)++;
                }
        }
        return 0;
}

int otlp_in_store(struct otlp_in *in, const Otlp__ExportTraceServiceRequest *req, struct otlp_in_result *ret)
{
        struct otlp_in_result res = { 0 };
        const char *bad = otlp_in_check_text(req);
        if (bad) {
                snprintf(ret->message, sizeof(ret->message), "%s is not UTF-8", bad);
                return -EBADMSG;
        }
        struct pending_ack *acks = NULL;
        size_t n_acks = 0;
        pthread_mutex_lock(&in->lock);
        int r = store_locked(in, req, &res, &acks, &n_acks);
        columns_clear(&in->cols);
        pthread_mutex_unlock(&in->lock);
        if (r == 0 && n_acks) {
                /* Stored before we say so: committed now, not in 20 ms. */
                ingest_hurry(in->ingest);
                uint64_t until = now_mono_ns() + STORE_TIMEOUT_MS * 1000000ull;
                for (size_t i = 0; i < n_acks && r == 0; i++)
                        r = acks_wait(in->acks, acks[i].client, acks[i].seq, until);
        }
        free(acks);
        *ret = res;
        return r;
}

int otlp_in_new(void *zmq_ctx, const char *endpoint, struct acks *acks, struct ingest *ingest, struct otlp_in **ret)
{
        struct otlp_in *in = calloc(1, sizeof(*in));
        if (!in)
                return -ENOMEM;
        in->acks = acks;
        in->ingest = ingest;
        in->salt = now_wall_ns() ^ (uint64_t)getpid() << 32;
        pthread_mutex_init(&in->lock, NULL);
        if (wire_strtab_init(&in->cols.strings) < 0) {
                free(in);
                return -ENOMEM;
        }
        in->socket = zmq_socket(zmq_ctx, ZMQ_PUSH);
        int zero = 0;
        if (!in->socket || zmq_setsockopt(in->socket, ZMQ_LINGER, &zero, sizeof(zero)) < 0 ||
            zmq_connect(in->socket, endpoint) < 0) {
                int e = errno;
                otlp_in_free(in);
                return -e;
        }
        *ret = in;
        return 0;
}

void otlp_in_free(struct otlp_in *in)
{
        if (!in)
                return;
        if (in->socket)
                zmq_close(in->socket);
        columns_free(&in->cols);
        for (size_t i = 0; i < CLIENTS; i++)
                free(in->clients[i].run);
        free(in->packed);
        free(in->spans);
        free(in->span_paths);
        u64map_free(&in->by_id);
        pthread_mutex_destroy(&in->lock);
        free(in);
}
