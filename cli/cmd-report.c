/* SPDX-License-Identifier: MIT */
/*
 * ferret report: one self-contained HTML file about a run, which opens from
 * disk with no server and no network: the run's header (spans, processes,
 * dropped, duration), the summary table (sortable), the flame graph of its
 * call paths, and a timeline of its processes and threads. Everything it
 * needs, scripts and styles included, is inside the file.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "assets.h"
#include "cli.h"
#include "config.h"
#include "flame-svg.h"
#include "lane-sort.h"
#include "options.h"
#include "out-file.h"
#include "picture.h"
#include "source.h"
#include "span-stream.h"
#include "text.h"
#include "timeline-svg.h"

static const char usage[] =
        "Usage: ferret report [--run ID] [--db DB] [--since WHEN] [--until WHEN] -o FILE.html\n"
        "Write one self-contained HTML page about a run: its header, the summary table\n"
        "(sortable), the flame graph and a timeline of its threads. It opens from disk, with\n"
        "no server and no network.\n\n" PIC_OPTIONS_HELP
        "  -o, --output FILE       write FILE (default: standard output, if not a terminal)\n" COMMON_OPTIONS_HELP;

struct report {
        const struct pic_options *o;
        struct lane_sort sort;
        uint64_t spans;                /* in the window */
        uint64_t first_ns, last_ns;    /* of the spans in the window */
};

static int on_batch(void *ctx, const Ferret__Batch *b, const struct wire_spans *spans)
{
        struct report *rep = ctx;
        const struct pic_options *o = rep->o;
        struct wire_spans in = *spans;
        size_t n = 0;
        /* The timeline shows what the rest of the page shows: the spans
         * that start in the window. They are moved to the front in place. */
        struct wire_span *kept = spans->spans;
        for (size_t i = 0; i < spans->n; i++) {
                const struct wire_span *s = &spans->spans[i];
                if ((o->since_ns && s->start_ns < o->since_ns) || (o->until_ns && s->start_ns >= o->until_ns))
                        continue;
                kept[n++] = *s;
                uint64_t end = s->start_ns + s->duration_ns;
                if (!rep->spans || s->start_ns < rep->first_ns)
                        rep->first_ns = s->start_ns;
                if (!rep->spans || end > rep->last_ns)
                        rep->last_ns = end;
                rep->spans++;
        }
        in.n = n;
        int r = lane_sort_add(&rep->sort, b->process, &in);
        if (r == -ENOMEM)
                return cli_error(r, "out of memory");
        if (r < 0)
                return cli_error(r, "cannot sort the spans in a temporary file: %s", strerror(-r));
        return 0;
}

static void put_fact(FILE *f, const char *what, const char *value, bool bad)
{
        fprintf(f, "<div><dt>%s</dt><dd%s>", what, bad ? " class=\"bad\"" : "");
        markup_put(f, value);
        fputs("</dd></div>\n", f);
}

static void put_header(FILE *f, const Ferret__RunInfo *run, const Ferret__TreeResponse *tree)
{
        char v[64], w[64];
        fputs("<header><h1>Ferret report <span class=\"run\">", f);
        markup_put(f, run->run);
        fputs("</span></h1>\n<dl class=\"facts\" id=\"run-header\">\n", f);
        snprintf(v, sizeof(v), "%" PRIu64, run->spans);
        put_fact(f, "spans", v, false);
        snprintf(v, sizeof(v), "%" PRIu32, run->processes);
        put_fact(f, "processes", v, false);
        snprintf(v, sizeof(v), "%" PRIu64, run->dropped);
        put_fact(f, "dropped", v, run->dropped > 0);
        put_fact(f, "duration", pic_duration(run->last_ns > run->first_ns ? run->last_ns - run->first_ns : 0, v, sizeof(v)),
                 false);
        put_fact(f, "started", format_time(run->first_ns, v, sizeof(v)), false);
        if (tree->since_ns || tree->until_ns) {
                char window[160];
                snprintf(window, sizeof(window), "spans that start from %s until %s",
                         tree->since_ns ? format_time(tree->since_ns, v, sizeof(v)) : "its start",
                         tree->until_ns ? format_time(tree->until_ns, w, sizeof(w)) : "its end");
                put_fact(f, "window", window, false);
        }
        fputs("</dl>\n", f);
        for (size_t i = 0; i < run->n_notes; i++) {
                fputs("<p class=\"note\">", f);
                markup_put(f, run->notes[i]);
                fputs("</p>\n", f);
        }
        fputs("<nav><a href=\"#summary\">Summary</a><a href=\"#flame\">Flame graph</a><a href=\"#timeline\">Timeline</a></nav>"
              "</header>\n",
              f);
}

static void put_cell(FILE *f, uint64_t v, bool duration)
{
        char buf[40];
        fprintf(f, "<td data-v=\"%" PRIu64 "\">%s</td>", v,
                duration ? pic_duration(v, buf, sizeof(buf)) : (snprintf(buf, sizeof(buf), "%" PRIu64, v), buf));
}

static void put_summary(FILE *f, const Ferret__SummaryResponse *s)
{
        static const char *const heads[] = { "Count", "Total", "Self", "Min", "Avg", "P50", "P95", "P99", "Max", "Errors",
                                             "Warnings" };
        fputs("<section id=\"summary\"><h2>Summary</h2>\n<p class=\"note\">Per span name, largest total first; click a "
              "heading to sort by it. Self time is the total less the time of the spans' children.</p>\n"
              "<table id=\"summary-table\"><thead><tr><th data-type=\"text\">Name</th>",
              f);
        for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++)
                fprintf(f, "<th data-type=\"num\">%s</th>", heads[i]);
        fputs("</tr></thead>\n<tbody>\n", f);
        for (size_t i = 0; i < s->n_rows; i++) {
                const Ferret__SummaryRow *row = s->rows[i];
                fprintf(f, "<tr%s><td>", row->errors ? " class=\"err\"" : "");
                markup_put(f, row->name);
                fputs("</td>", f);
                put_cell(f, row->count, false);
                put_cell(f, row->total_ns, true);
                put_cell(f, row->self_ns, true);
                put_cell(f, row->min_ns, true);
                put_cell(f, row->count ? row->total_ns / row->count : 0, true);
                put_cell(f, row->p50_ns, true);
                put_cell(f, row->p95_ns, true);
                put_cell(f, row->p99_ns, true);
                put_cell(f, row->max_ns, true);
                put_cell(f, row->errors, false);
                put_cell(f, row->warnings, false);
                fputs("</tr>\n", f);
        }
        fputs("</tbody></table></section>\n", f);
}

static int request_summary(const char *dir, const struct pic_options *o, const char *run, Ferret__Response **ret)
{
        Ferret__Request req = FERRET__REQUEST__INIT;
        Ferret__SummaryRequest summary = FERRET__SUMMARY_REQUEST__INIT;
        summary.run = (char *)run;
        summary.since_ns = o->since_ns;
        summary.until_ns = o->until_ns;
        summary.whole_buckets = o->whole_buckets;
        req.body_case = FERRET__REQUEST__BODY_SUMMARY;
        req.summary = &summary;
        return cli_request(dir, &req, 60000, ret);
}

static int write_report(FILE *f, const char *dir, const struct pic_options *o, struct report *rep)
{
        Ferret__Response *tree = NULL, *summary = NULL;
        int r = pic_request_tree(dir, o, &tree);
        if (r < 0)
                return r;
        /* The same run for every part, even if a newer one starts meanwhile. */
        const Ferret__RunInfo *run = tree->tree->run;
        struct pic_options window = *o;
        window.since_ns = tree->tree->since_ns;
        window.until_ns = tree->tree->until_ns;
        rep->o = &window;
        static const struct span_stream_ops ops = { .batch = on_batch };
        if ((r = request_summary(dir, &window, run->run, &summary)) < 0 ||
            (r = span_stream(dir, run->run, &ops, rep)) < 0)
                goto out;

        fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
              "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>Ferret report \u00b7 ",
              f);
        markup_put(f, run->run);
        fputs("</title>\n<style>\n", f);
        fputs(asset_report_css, f);
        fputs("</style>\n</head>\n<body>\n", f);
        put_header(f, run, tree->tree);
        put_summary(f, summary->summary);
        fputs("<section id=\"flame\"><h2>Flame graph</h2>\n<p class=\"note\">Each frame is a call path, as wide as its "
              "total time; the frames above it are its children, and the part of it they leave is its self time. "
              "Click a frame to zoom; hover for its numbers.</p>\n"
              "<div class=\"controls\"><input id=\"flame-search\" type=\"search\" placeholder=\"Highlight names holding...\" "
              "aria-label=\"Highlight names\"><button id=\"flame-reset\" type=\"button\">Reset zoom</button>"
              "<span id=\"flame-matched\"></span></div>\n",
              f);
        if ((r = flame_svg_write(f, tree->tree, false)) < 0) {
                r = cli_error(r, "out of memory");
                goto out;
        }
        Ferret__RunInfo shown = *run;
        shown.spans = rep->spans;
        shown.first_ns = rep->spans ? rep->first_ns : run->first_ns;
        shown.last_ns = rep->spans ? rep->last_ns : run->last_ns;
        fprintf(f, "</section>\n<section id=\"timeline\"><h2>Timeline</h2>\n<p class=\"note\">%s</p>\n",
                timeline_how(rep->spans));
        if ((r = timeline_svg_write(f, &rep->sort, &shown)) < 0)
                goto out;
        char when[40];
        fprintf(f, "</section>\n<footer>Written by ferret %s from run ", FERRET_VERSION);
        markup_put(f, run->run);
        fprintf(f, " on %s.</footer>\n<script>\n%s</script>\n</body></html>\n",
                format_time(wall_now_ns(), when, sizeof(when)), asset_report_js);
out:
        if (tree)
                ferret__response__free_unpacked(tree, NULL);
        if (summary)
                ferret__response__free_unpacked(summary, NULL);
        return r;
}

int cmd_report(struct cli *cli, int argc, char **argv)
{
        struct pic_options o;
        struct out_file out;
        struct source src;
        struct report rep = { 0 };
        int r = pic_parse_options(cli, argc, argv, usage, &o);
        if (r <= 0)
                return r;
        if ((r = lane_sort_init(&rep.sort, 0)) < 0)
                return cli_error(r, "out of memory");
        if ((r = out_file_open(o.output, &out)) < 0)
                goto out;
        if ((r = source_open(cli, o.db, &src)) < 0) {
                r = out_file_close(&out, r);
                goto out;
        }
        r = write_report(out.f, src.runtime_dir, &o, &rep);
        r = source_close(&src, r);
        r = out_file_close(&out, r);
        if (r >= 0 && o.output)
                fprintf(stderr, "ferret: report written to %s\n", o.output);
out:
        lane_sort_free(&rep.sort);
        return r;
}
