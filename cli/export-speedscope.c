/* SPDX-License-Identifier: MIT */
/*
 * speedscope's file format (https://www.speedscope.app/file-format-schema.json):
 * one evented profile per thread, a list of open ("O") and close ("C")
 * events in time order, which must nest. A thread's spans nest by
 * construction, but a span ended by another thread, or an async span, may
 * outlive the span it began in: its close is moved to its enclosing span's,
 * so that the profile stays a stack (speedscope refuses one that is not),
 * and a thread's async spans get a profile of their own. Times are
 * nanoseconds from the run's first span.
 *
 * The events of a profile must be written together, so the spans are put
 * back in order by lane-sort.h in bounded memory, and the frames, which
 * the profiles refer to by index, are written last ("shared" after
 * "profiles": JSON members have no order).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "export.h"
#include "json-text.h"
#include "lane-sort.h"
#include "lane-walk.h"
#include "span-stream.h"

struct speedscope {
        FILE *f;
        struct lane_sort sort;
        char *run;                     /* the run's id, from its record */
        uint64_t first_ns, last_ns;
        bool any_profile, first_event;
};

static int on_run(void *ctx, const Ferret__RunInfo *run)
{
        struct speedscope *s = ctx;
        s->first_ns = run->first_ns;
        s->last_ns = run->last_ns > run->first_ns ? run->last_ns : run->first_ns;
        s->run = strdup(run->run);
        return s->run ? 0 : -ENOMEM;
}

static int on_batch(void *ctx, const Ferret__Batch *b, const struct wire_spans *spans)
{
        struct speedscope *s = ctx;
        int r = lane_sort_add(&s->sort, b->process, spans);
        if (r == -ENOMEM)
                return cli_error(r, "out of memory");
        if (r < 0)
                return cli_error(r, "cannot sort the spans in a temporary file: %s", strerror(-r));
        return 0;
}

static void put_event(struct speedscope *s, char type, uint32_t name, uint64_t at_ns)
{
        uint64_t at = at_ns > s->first_ns ? at_ns - s->first_ns : 0;
        fprintf(s->f, "%s{\"type\":\"%c\",\"frame\":%" PRIu32 ",\"at\":%" PRIu64 "}", s->first_event ? "" : ",", type,
                name, at);
        s->first_event = false;
}

static int on_lane(void *ctx, uint32_t index)
{
        struct speedscope *s = ctx;
        fputs(s->any_profile ? ",\n{" : "\n{", s->f);
        fputs("\"type\":\"evented\",\"name\":", s->f);
        json_put_text(s->f, s->sort.lanes[index].label);
        fprintf(s->f, ",\"unit\":\"nanoseconds\",\"startValue\":0,\"endValue\":%" PRIu64 ",\"events\":[",
                s->last_ns - s->first_ns);
        s->any_profile = true;
        s->first_event = true;
        return 0;
}

static int on_open(void *ctx, const struct lane_span *sp, uint64_t end_ns, size_t depth)
{
        struct speedscope *s = ctx;
        put_event(s, 'O', sp->name, sp->start_ns);
        return ferror(s->f) ? -EIO : 0;
}

static int on_close(void *ctx, uint32_t name, uint64_t at_ns, size_t depth)
{
        put_event(ctx, 'C', name, at_ns);
        return 0;
}

static int on_lane_end(void *ctx)
{
        struct speedscope *s = ctx;
        fputs("]}", s->f);
        return 0;
}

int export_speedscope(const char *runtime_dir, const char *run, FILE *f)
{
        struct speedscope s = { .f = f };
        static const struct span_stream_ops ops = { .run = on_run, .batch = on_batch };
        static const struct lane_walk_ops walk = { .lane = on_lane, .open = on_open, .close = on_close,
                                                   .lane_end = on_lane_end };
        int r = lane_sort_init(&s.sort, 0);
        if (r < 0)
                return cli_error(r, "out of memory");
        r = span_stream(runtime_dir, run, &ops, &s);
        if (r >= 0) {
                fputs("{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\",\"exporter\":\"ferret " FERRET_VERSION
                      "\",\"name\":",
                      f);
                json_put_text(f, s.run);
                fputs(",\"activeProfileIndex\":0,\n\"profiles\":[", f);
                r = lane_walk(&s.sort, &walk, &s);
                if (r == -ENOMEM)
                        r = cli_error(r, "out of memory");
                else if (r < 0 && r != -EIO)
                        r = cli_error(r, "cannot sort the spans in a temporary file: %s", strerror(-r));
        }
        if (r >= 0) {
                fputs("\n],\n\"shared\":{\"frames\":[", f);
                for (size_t i = 0; i < s.sort.names.n; i++) {
                        fputs(i ? ",\n{\"name\":" : "\n{\"name\":", f);
                        json_put_text(f, s.sort.names.names[i]);
                        fputc('}', f);
                }
                fputs("\n]}}\n", f);
        }
        lane_sort_free(&s.sort);
        free(s.run);
        return r;
}
