/* SPDX-License-Identifier: MIT */
/*
 * Chrome trace-event JSON (the "JSON Object Format" of Google's Trace Event
 * Format document), which the Perfetto UI, chrome://tracing and speedscope
 * open. Times are microseconds from the run's first span, with three
 * decimals so that nanoseconds survive (an absolute time in microseconds
 * has more digits than a double holds); the run's start is in "otherData".
 * A span's status shows in its args, and errors and warnings take the
 * colours chrome://tracing reserves for bad news ("cname"). Events are
 * written as batches arrive, and only the processes and threads already
 * named are remembered.
 *
 * The same spans also come as "samples" over "stackFrames" (the format's
 * sampled form): a sample each time a thread's stack of spans changes,
 * weighted by the time to the next one. speedscope reads those instead of
 * the events when a file has them, and reads them in linear time, where
 * its reader of complete events takes time quadratic in a thread's events
 * (it shifts them off an array one by one): a million spans would take it
 * hours. The samples need each thread's spans in order, which lane-sort.h
 * gives in bounded memory; their stacks are call paths, numbered as they
 * are first seen.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "export.h"
#include "json-text.h"
#include "lane-sort.h"
#include "lane-walk.h"
#include "name-table.h"
#include "span-stream.h"

/* Processes and threads named so far: bounded by the run's threads. */
#define MAX_NAMED (1u << 24)

struct chrome {
        FILE *f;
        uint64_t base_ns;              /* the run's first start: ts 0 */
        bool first_event;
        struct name_table named;       /* "p<pid>" and "t<pid>/<tid>" already given metadata */
        struct lane_sort sort;         /* the spans again, for the samples */
        /* The samples' stack frames: (parent frame, name) -> frame, from 1. */
        uint64_t *frame_keys;          /* the key of frame i + 1 */
        size_t n_frames, cap_frames;
        uint32_t *frame_slots;         /* open addressing: frame + 0, 0 empty */
        size_t n_frame_slots;
        uint32_t *stack;               /* the frame open at each depth of the lane */
        size_t cap_stack;
        const struct lane *lane;       /* the lane being sampled; NULL: an async one, not sampled */
        bool first_sample;
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
        int r = lane_sort_add(&c->sort, b->process, spans);
        if (r == -ENOMEM)
                return cli_error(r, "out of memory");
        if (r < 0)
                return cli_error(r, "cannot sort the spans in a temporary file: %s", strerror(-r));
        /* Stop early on a full disk rather than stream the rest into it. */
        return ferror(c->f) ? -EIO : 0;
}

static uint64_t frame_hash(uint64_t key)
{
        key *= 0x9E3779B97F4A7C15ull;
        return key ^ (key >> 31);
}

static int frames_rehash(struct chrome *c, size_t n_slots)
{
        uint32_t *slots = calloc(n_slots, sizeof(*slots));
        if (!slots)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_frames; i++) {
                size_t k = frame_hash(c->frame_keys[i]) & (n_slots - 1);
                while (slots[k])
                        k = (k + 1) & (n_slots - 1);
                slots[k] = (uint32_t)i + 1;
        }
        free(c->frame_slots);
        c->frame_slots = slots;
        c->n_frame_slots = n_slots;
        return 0;
}

/* The frame of @name under frame @parent (0: at the bottom), made when new. */
static int64_t frame_of(struct chrome *c, uint32_t parent, uint32_t name)
{
        uint64_t key = (uint64_t)parent << 32 | name;
        if ((c->n_frames + 1) * 2 > c->n_frame_slots && frames_rehash(c, c->n_frame_slots ? c->n_frame_slots * 2 : 1024) < 0)
                return -ENOMEM;
        size_t k = frame_hash(key) & (c->n_frame_slots - 1);
        for (; c->frame_slots[k]; k = (k + 1) & (c->n_frame_slots - 1))
                if (c->frame_keys[c->frame_slots[k] - 1] == key)
                        return c->frame_slots[k];
        if (wire_grow((void **)&c->frame_keys, &c->cap_frames, c->n_frames + 1, sizeof(*c->frame_keys)) < 0)
                return -ENOMEM;
        c->frame_keys[c->n_frames++] = key;
        c->frame_slots[k] = (uint32_t)c->n_frames;
        return (int64_t)c->n_frames;
}

/* A sample: from @ns on, the lane's stack is @frame (0: nothing open). */
static void put_sample(struct chrome *c, uint64_t ns, uint32_t frame)
{
        fprintf(c->f, "%s{\"pid\":%" PRIu32 ",\"tid\":%" PRIu32 ",\"ts\":", c->first_sample ? "\n" : ",\n", c->lane->pid,
                c->lane->tid);
        put_us(c->f, ns, c->base_ns);
        if (frame)
                fprintf(c->f, ",\"sf\":%" PRIu32, frame);
        fputc('}', c->f);
        c->first_sample = false;
}

static int on_lane(void *ctx, uint32_t index)
{
        struct chrome *c = ctx;
        /* A thread's async spans overlap as they like: the events have them. */
        c->lane = c->sort.lanes[index].async ? NULL : &c->sort.lanes[index];
        return 0;
}

static int on_open(void *ctx, const struct lane_span *sp, uint64_t end_ns, size_t depth)
{
        struct chrome *c = ctx;
        if (!c->lane)
                return 0;
        int64_t frame = frame_of(c, depth ? c->stack[depth - 1] : 0, sp->name);
        if (frame < 0 || wire_grow((void **)&c->stack, &c->cap_stack, depth + 1, sizeof(*c->stack)) < 0)
                return -ENOMEM;
        c->stack[depth] = (uint32_t)frame;
        put_sample(c, sp->start_ns, (uint32_t)frame);
        return ferror(c->f) ? -EIO : 0;
}

static int on_close(void *ctx, uint32_t name, uint64_t at_ns, size_t depth)
{
        struct chrome *c = ctx;
        if (c->lane)
                put_sample(c, at_ns, depth ? c->stack[depth - 1] : 0);
        return 0;
}

static void put_stack_frames(struct chrome *c)
{
        fputs("\n],\n\"stackFrames\":{", c->f);
        for (size_t i = 0; i < c->n_frames; i++) {
                uint32_t parent = (uint32_t)(c->frame_keys[i] >> 32), name = (uint32_t)c->frame_keys[i];
                fprintf(c->f, "%s\"%zu\":{\"category\":\"span\",\"name\":", i ? ",\n" : "\n", i + 1);
                json_put_text(c->f, c->sort.names.names[name]);
                if (parent)
                        fprintf(c->f, ",\"parent\":%" PRIu32, parent);
                fputc('}', c->f);
        }
        fputs("\n}}\n", c->f);
}

int export_chrome(const char *runtime_dir, const char *run, FILE *f)
{
        struct chrome c = { .f = f, .first_event = true, .first_sample = true };
        static const struct span_stream_ops ops = { .run = on_run, .batch = on_batch };
        static const struct lane_walk_ops walk = { .lane = on_lane, .open = on_open, .close = on_close };
        name_table_init(&c.named, MAX_NAMED);
        int r = lane_sort_init(&c.sort, 0);
        if (r < 0) {
                name_table_free(&c.named);
                return cli_error(r, "out of memory");
        }
        r = span_stream(runtime_dir, run, &ops, &c);
        if (r >= 0) {
                fputs("\n],\n\"samples\":[", f);
                r = lane_walk(&c.sort, &walk, &c);
                if (r == -ENOMEM)
                        r = cli_error(r, "out of memory");
                else if (r < 0 && r != -EIO)
                        r = cli_error(r, "cannot sort the spans in a temporary file: %s", strerror(-r));
        }
        if (r >= 0)
                put_stack_frames(&c);
        name_table_free(&c.named);
        lane_sort_free(&c.sort);
        free(c.frame_keys);
        free(c.frame_slots);
        free(c.stack);
        return r;
}
