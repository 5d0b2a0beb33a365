/* SPDX-License-Identifier: MIT */
/*
 * Chrome trace-event JSON (the "JSON Object Format" of Google's Trace Event
 * Format document), which the Perfetto UI, chrome://tracing and speedscope
 * open. Times are microseconds from the run's first span, with three
 * decimals so that nanoseconds survive (an absolute time in microseconds
 * has more digits than a double holds); the run's start is in "otherData".
 * A span's status shows in its args, and errors and warnings take the
 * colours chrome://tracing reserves for bad news ("cname"). Memory does not
 * grow with the run: events are written as batches arrive, and only the
 * processes and threads already named are remembered.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "export.h"
#include "json-text.h"
#include "name-table.h"
#include "span-stream.h"

/* Processes and threads named so far: bounded by the run's threads. */
#define MAX_NAMED (1u << 24)

struct chrome {
        FILE *f;
        uint64_t base_ns;              /* the run's first start: ts 0 */
        bool first_event;
        struct name_table named;       /* "p<pid>" and "t<pid>/<tid>" already given metadata */
};

const char *export_basename(const char *path)
{
        const char *slash = strrchr(path, '/');
        return slash ? slash + 1 : path;
}

const char *export_process_label(const Ferret__Process *p, uint32_t pid, char *buf, size_t size)
{
        if (p && p->observer)
                snprintf(buf, size, "ferret run (process spans)");
        else if (p && p->pid == pid && p->executable[0])
                snprintf(buf, size, "%s pid %" PRIu32, export_basename(p->executable), pid);
        else
                snprintf(buf, size, "pid %" PRIu32, pid);
        return buf;
}

const char *export_thread_label(uint32_t pid, uint32_t tid, char *buf, size_t size)
{
        if (tid == pid)
                snprintf(buf, size, "main thread");
        else
                snprintf(buf, size, "thread %" PRIu32, tid);
        return buf;
}

static void separator(struct chrome *c)
{
        fputs(c->first_event ? "\n" : ",\n", c->f);
        c->first_event = false;
}

/* "12.345" microseconds for @ns after the run's start. */
static void put_us(FILE *f, uint64_t ns, uint64_t base)
{
        if (ns < base)
                fprintf(f, "-%" PRIu64 ".%03" PRIu64, (base - ns) / 1000, (base - ns) % 1000);
        else
                fprintf(f, "%" PRIu64 ".%03" PRIu64, (ns - base) / 1000, (ns - base) % 1000);
}

/* Whether @key was seen before; remembers it. */
static int seen(struct chrome *c, const char *key)
{
        size_t before = c->named.n;
        int64_t i = name_table_add(&c->named, key);
        if (i < 0)
                return (int)i;
        return c->named.n == before;
}

static int name_process_and_thread(struct chrome *c, const Ferret__Batch *b, uint32_t pid, uint32_t tid)
{
        char key[32];
        snprintf(key, sizeof(key), "p%" PRIu32, pid);
        int r = seen(c, key);
        if (r < 0)
                return r;
        if (!r) {
                char label[300];
                separator(c);
                fprintf(c->f, "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%" PRIu32 ",\"tid\":0,\"args\":{\"name\":",
                        pid);
                json_put_text(c->f, export_process_label(b->process, pid, label, sizeof(label)));
                fputs("}}", c->f);
        }
        snprintf(key, sizeof(key), "t%" PRIu32 "/%" PRIu32, pid, tid);
        if ((r = seen(c, key)) < 0)
                return r;
        if (!r) {
                char label[64];
                separator(c);
                fprintf(c->f,
                        "{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":%" PRIu32 ",\"tid\":%" PRIu32
                        ",\"args\":{\"name\":\"%s\"}}",
                        pid, tid, export_thread_label(pid, tid, label, sizeof(label)));
        }
        return 0;
}

static void put_tag(FILE *f, const struct wire_tag *t)
{
        json_put_text(f, t->key);
        fputc(':', f);
        switch (t->type) {
        case FERRET__TAG_TYPE__TAG_STRING:
                json_put_text(f, t->s);
                break;
        case FERRET__TAG_TYPE__TAG_INT:
                fprintf(f, "%" PRId64, t->i);
                break;
        case FERRET__TAG_TYPE__TAG_BOOL:
                fputs(t->i ? "true" : "false", f);
                break;
        default:
                if (isfinite(t->d))
                        fprintf(f, "%.17g", t->d);
                else
                        fprintf(f, "\"%s\"", isnan(t->d) ? "NaN" : t->d > 0 ? "Infinity" : "-Infinity");
        }
}

/* The span's tags and what else a viewer should show: its status, its
 * message, and whether it was cut short. Nothing for a plain ok span. */
static void put_args(FILE *f, const struct wire_spans *spans, const struct wire_span *s)
{
        unsigned status = wire_span_status(s);
        bool unfinished = s->flags & FERRET__SPAN_FLAG__SPAN_FLAG_UNFINISHED;
        bool unwound = s->flags & FERRET__SPAN_FLAG__SPAN_FLAG_UNWOUND;
        if (!s->n_tags && !status && !unfinished && !unwound)
                return;
        fputs(",\"args\":{", f);
        bool comma = false;
        if (status) {
                fprintf(f, "\"status\":\"%s\"", wire_status_name(status));
                comma = true;
                if (s->message) {
                        fputs(",\"message\":", f);
                        json_put_text(f, s->message);
                }
        }
        if (unfinished || unwound) {
                fprintf(f, "%s\"%s\":true", comma ? "," : "", unfinished ? "unfinished" : "unwound");
                comma = true;
        }
        for (uint32_t k = 0; k < s->n_tags; k++) {
                if (comma)
                        fputc(',', f);
                put_tag(f, &spans->tags[s->first_tag + k]);
                comma = true;
        }
        fputc('}', f);
}

static void put_event(struct chrome *c, const struct wire_spans *spans, const struct wire_span *s)
{
        FILE *f = c->f;
        unsigned status = wire_span_status(s);
        const char *cname = status == WIRE_STATUS_ERROR ? ",\"cname\":\"terrible\""
                            : status == WIRE_STATUS_WARNING ? ",\"cname\":\"bad\""
                                                             : "";
        separator(c);
        if (s->flags & FERRET__SPAN_FLAG__SPAN_FLAG_ASYNC) {
                /* An async span: a begin and an end event of one id, which
                 * viewers draw on a track of their own. */
                fputs("{\"ph\":\"b\",\"cat\":\"async\",\"name\":", f);
                json_put_text(f, s->name);
                fprintf(f, ",\"id\":\"0x%" PRIx64 "\",\"pid\":%" PRIu32 ",\"tid\":%" PRIu32 ",\"ts\":", s->span_id,
                        s->pid, s->tid);
                put_us(f, s->start_ns, c->base_ns);
                fputs(cname, f);
                put_args(f, spans, s);
                fputs("},\n{\"ph\":\"e\",\"cat\":\"async\",\"name\":", f);
                json_put_text(f, s->name);
                fprintf(f, ",\"id\":\"0x%" PRIx64 "\",\"pid\":%" PRIu32 ",\"tid\":%" PRIu32 ",\"ts\":", s->span_id,
                        s->pid, s->tid);
                put_us(f, s->start_ns + s->duration_ns, c->base_ns);
                fputc('}', f);
                return;
        }
        fputs("{\"ph\":\"X\",\"name\":", f);
        json_put_text(f, s->name);
        fprintf(f, ",\"pid\":%" PRIu32 ",\"tid\":%" PRIu32 ",\"ts\":", s->pid, s->tid);
        put_us(f, s->start_ns, c->base_ns);
        fprintf(f, ",\"dur\":%" PRIu64 ".%03" PRIu64, s->duration_ns / 1000, s->duration_ns % 1000);
        fputs(cname, f);
        put_args(f, spans, s);
        fputc('}', f);
}

static int on_run(void *ctx, const Ferret__RunInfo *run)
{
        struct chrome *c = ctx;
        c->base_ns = run->first_ns;
        fputs("{\"otherData\":{\"run\":", c->f);
        json_put_text(c->f, run->run);
        fprintf(c->f,
                ",\"exporter\":\"ferret %s\",\"spans\":%" PRIu64 ",\"dropped\":%" PRIu64
                ",\"start_unix_ns\":\"%" PRIu64 "\",\"time_origin\":\"ts 0 is start_unix_ns\"},\n"
                "\"displayTimeUnit\":\"ns\",\n\"traceEvents\":[",
                FERRET_VERSION, run->spans, run->dropped, run->first_ns);
        return 0;
}

static int on_batch(void *ctx, const Ferret__Batch *b, const struct wire_spans *spans)
{
        struct chrome *c = ctx;
        for (size_t i = 0; i < spans->n; i++) {
                const struct wire_span *s = &spans->spans[i];
                int r = name_process_and_thread(c, b, s->pid, s->tid);
                if (r < 0)
                        return cli_error(r, "out of memory");
                put_event(c, spans, s);
        }
        /* Stop early on a full disk rather than stream the rest into it. */
        return ferror(c->f) ? -EIO : 0;
}

int export_chrome(const char *runtime_dir, const char *run, FILE *f)
{
        struct chrome c = { .f = f, .first_event = true };
        static const struct span_stream_ops ops = { .run = on_run, .batch = on_batch };
        name_table_init(&c.named, MAX_NAMED);
        int r = span_stream(runtime_dir, run, &ops, &c);
        if (r >= 0)
                fputs("\n]}\n", f);
        name_table_free(&c.named);
        return r;
}
