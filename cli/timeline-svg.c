/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "export.h"
#include "picture.h"
#include "text.h"
#include "lane-walk.h"
#include "timeline-svg.h"

#define WIDTH 1200
#define LABEL_W 270                    /* the lanes' names, left of the plot */
#define PLOT_W (WIDTH - LABEL_W - 10)
#define AXIS_H 28
#define BAR_H 11                       /* a row of bars; a row per nesting level */
#define LANE_GAP 7
#define MAX_ROWS 24                    /* nesting levels drawn in a lane */
#define CANDIDATES 4                   /* names a slice remembers, to tell which holds most */

struct slice {
        uint64_t busy_ns;
        uint32_t name[CANDIDATES];
        uint64_t name_ns[CANDIDATES];
};

struct timeline {
        FILE *f;                       /* the page */
        struct lane_sort *sort;
        uint64_t first_ns, span_ns;    /* the run's start and length */
        bool detailed;                 /* a bar a span, else slices */
        uint32_t lane;                 /* being drawn; UINT32_MAX before the first */
        bool drawing;                  /* the lane is drawn (not past TIMELINE_MAX_LANES) */
        uint64_t lanes_drawn, lanes_left_out, rows_left_out;
        int y;                         /* top of the lane being drawn */
        /* The lane being drawn. */
        uint32_t rows;                 /* nesting levels it used */
        char *bars;                    /* its bars, drawn once its height is known */
        size_t bars_len;
        FILE *bars_f;
        struct slice *slices;
};

const char *timeline_how(uint64_t spans)
{
        return spans <= TIMELINE_MAX_SPANS
                       ? "Each span is a bar, on the lane of its thread; a span's children are drawn below it."
                       : "This run has too many spans to draw one by one: each lane is cut into 600 slices of time, "
                         "coloured by the name that holds most of the slice among the thread's outermost spans, "
                         "and as dark as the share of the slice they cover.";
}

static double x_of(const struct timeline *t, uint64_t ns)
{
        double off = ns > t->first_ns ? (double)(ns - t->first_ns) : 0;
        return LABEL_W + (t->span_ns ? off / (double)t->span_ns * PLOT_W : 0);
}

static void put_axis(struct timeline *t)
{
        /* Ticks at 1, 2 or 5 times a power of ten, about ten of them. */
        double step = 1;
        while (step * 10 < (double)t->span_ns)
                step *= 10;
        if ((double)t->span_ns / step < 2.5)
                step /= 5;
        else if ((double)t->span_ns / step < 5)
                step /= 2;
        char a[40];
        for (double v = 0; v <= (double)t->span_ns && step >= 1; v += step) {
                double x = x_of(t, t->first_ns + (uint64_t)v);
                fprintf(t->f, "<line class=\"tl-tick\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>", x, AXIS_H - 6, x,
                        AXIS_H);
                /* The last labels end at their tick, not past the picture. */
                bool near_end = x > WIDTH - 70;
                fprintf(t->f, "<text class=\"tl-axis\" x=\"%.1f\" y=\"%d\"%s>%s</text>\n", near_end ? x - 2 : x + 2,
                        AXIS_H - 10, near_end ? " text-anchor=\"end\"" : "", pic_duration((uint64_t)v, a, sizeof(a)));
        }
}

static void lane_label(struct timeline *t, const struct lane *l, int height)
{
        fprintf(t->f, "<text class=\"tl-lane\" x=\"4\" y=\"%d\">", t->y + (height < 14 ? height : 14) - 3);
        fputs("<title>", t->f);
        markup_put(t->f, l->label);
        fputs("</title>", t->f);
        pic_label(t->f, l->label, (LABEL_W - 8) / 6);
        fputs("</text>\n", t->f);
}

static int begin_lane(struct timeline *t, uint32_t lane)
{
        t->lane = lane;
        t->rows = 1;
        t->drawing = t->lanes_drawn < TIMELINE_MAX_LANES;
        if (!t->drawing) {
                t->lanes_left_out++;
                return 0;
        }
        t->lanes_drawn++;
        if (t->detailed) {
                t->bars_f = open_memstream(&t->bars, &t->bars_len);
                return t->bars_f ? 0 : -ENOMEM;
        }
        memset(t->slices, 0, TIMELINE_COLUMNS * sizeof(*t->slices));
        return 0;
}

static void end_slices(struct timeline *t)
{
        const struct lane *l = &t->sort->lanes[t->lane];
        double w = (double)PLOT_W / TIMELINE_COLUMNS;
        char color[40], a[40], b[40];
        lane_label(t, l, BAR_H);
        for (size_t c = 0; c < TIMELINE_COLUMNS; c++) {
                const struct slice *s = &t->slices[c];
                if (!s->busy_ns)
                        continue;
                size_t best = 0;
                for (size_t k = 1; k < CANDIDATES; k++)
                        if (s->name_ns[k] > s->name_ns[best])
                                best = k;
                double width_ns = (double)t->span_ns / TIMELINE_COLUMNS;
                double share = width_ns > 0 ? (double)s->busy_ns / width_ns : 1;
                const char *name = t->sort->names.names[s->name[best]];
                fprintf(t->f, "<rect class=\"tl-slice\" x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"%d\" fill=\"%s\" "
                              "fill-opacity=\"%.2f\"><title>",
                        LABEL_W + c * w, t->y, w, BAR_H, pic_color(name, color, sizeof(color)),
                        share > 1 ? 1 : share < 0.15 ? 0.15 : share);
                fprintf(t->f, "%s to %s: %.0f%% busy, mostly ",
                        pic_duration((uint64_t)(c * width_ns), a, sizeof(a)),
                        pic_duration((uint64_t)((c + 1) * width_ns), b, sizeof(b)), share > 1 ? 100 : share * 100);
                markup_put(t->f, name);
                fputs("</title></rect>\n", t->f);
        }
        t->y += BAR_H + LANE_GAP;
}

static int end_lane(struct timeline *t)
{
        if (!t->drawing)
                return 0;
        t->drawing = false;
        if (!t->detailed) {
                end_slices(t);
                return 0;
        }
        if (fclose(t->bars_f) != 0) {
                t->bars_f = NULL;
                return -ENOMEM;
        }
        t->bars_f = NULL;
        int height = (int)t->rows * (BAR_H + 1);
        lane_label(t, &t->sort->lanes[t->lane], height);
        fprintf(t->f, "<g class=\"tl-lane-bars\" transform=\"translate(0,%d)\">\n", t->y);
        fwrite(t->bars, 1, t->bars_len, t->f);
        fputs("</g>\n", t->f);
        free(t->bars);
        t->bars = NULL;
        t->y += height + LANE_GAP;
        return 0;
}

static void add_bar(struct timeline *t, const struct lane_span *sp, uint64_t end_ns, size_t row)
{
        FILE *f = t->bars_f;
        const char *name = t->sort->names.names[sp->name];
        unsigned status = sp->flags & FERRET__SPAN_FLAG__SPAN_FLAG_STATUS_MASK;
        double x = x_of(t, sp->start_ns), x2 = x_of(t, end_ns);
        char color[40], a[40], b[40];
        fprintf(f, "<rect class=\"tl-span%s\" x=\"%.2f\" y=\"%zu\" width=\"%.2f\" height=\"%d\" fill=\"%s\" data-n=\"",
                status == 2 ? " err" : status == 1 ? " warn" : "", x, row * (BAR_H + 1), x2 - x > 0.5 ? x2 - x : 0.5,
                BAR_H, pic_color(name, color, sizeof(color)));
        markup_put(f, name);
        fputs("\"><title>", f);
        markup_put(f, name);
        fprintf(f, "\n%s, from %s%s</title></rect>\n", pic_duration(sp->end_ns - sp->start_ns, a, sizeof(a)),
                pic_duration(sp->start_ns > t->first_ns ? sp->start_ns - t->first_ns : 0, b, sizeof(b)),
                status == 2 ? " (error)" : status == 1 ? " (warning)" : "");
}

/* Adds an outermost span's time to the slices it covers. */
static void add_to_slices(struct timeline *t, uint64_t start_ns, uint64_t end_ns, uint32_t name)
{
        double width_ns = (double)t->span_ns / TIMELINE_COLUMNS;
        if (width_ns <= 0)
                width_ns = 1;
        uint64_t a = start_ns > t->first_ns ? start_ns - t->first_ns : 0;
        uint64_t b = end_ns > t->first_ns ? end_ns - t->first_ns : 0;
        size_t c0 = (size_t)(a / width_ns), c1 = (size_t)(b / width_ns);
        for (size_t c = c0; c <= c1 && c < TIMELINE_COLUMNS; c++) {
                double lo = c * width_ns, hi = lo + width_ns;
                double from = (double)a > lo ? (double)a : lo, to = (double)b < hi ? (double)b : hi;
                uint64_t ns = to > from ? (uint64_t)(to - from) : 0;
                struct slice *s = &t->slices[c];
                s->busy_ns += ns;
                size_t k = 0, least = 0;
                while (k < CANDIDATES && s->name_ns[k] && s->name[k] != name)
                        k++;
                if (k == CANDIDATES) {
                        /* Space-saving: the least-held candidate gives way. */
                        for (size_t i = 1; i < CANDIDATES; i++)
                                if (s->name_ns[i] < s->name_ns[least])
                                        least = i;
                        k = least;
                        s->name[k] = name;
                } else if (!s->name_ns[k]) {
                        s->name[k] = name;
                }
                s->name_ns[k] += ns ? ns : 1;
        }
}

static int on_lane(void *ctx, uint32_t index)
{
        return begin_lane(ctx, index);
}

static int on_open(void *ctx, const struct lane_span *sp, uint64_t end_ns, size_t depth)
{
        struct timeline *t = ctx;
        if (!t->drawing)
                return 0;
        if (!t->detailed) {
                if (depth == 0)
                        add_to_slices(t, sp->start_ns, end_ns, sp->name);
        } else if (depth < MAX_ROWS) {
                add_bar(t, sp, end_ns, depth);
                if (depth + 1 > t->rows)
                        t->rows = (uint32_t)depth + 1;
        } else {
                t->rows_left_out++;
        }
        return 0;
}

static int on_lane_end(void *ctx)
{
        return end_lane(ctx);
}

int timeline_svg_write(FILE *f, struct lane_sort *sort, const Ferret__RunInfo *run)
{
        struct timeline t = {
                .sort = sort,
                .first_ns = run->first_ns,
                .span_ns = run->last_ns > run->first_ns ? run->last_ns - run->first_ns : 0,
                .detailed = run->spans <= TIMELINE_MAX_SPANS,
                .lane = UINT32_MAX,
                .y = AXIS_H + 6,
        };
        /* The lanes are drawn to a buffer first: the picture's height is
         * known once they are. */
        char *body = NULL;
        size_t body_len = 0;
        t.f = open_memstream(&body, &body_len);
        if (!t.f || (!t.detailed && !(t.slices = malloc(TIMELINE_COLUMNS * sizeof(*t.slices))))) {
                if (t.f)
                        fclose(t.f);
                free(body);
                return cli_error(ENOMEM, "out of memory");
        }
        put_axis(&t);
        static const struct lane_walk_ops walk = { .lane = on_lane, .open = on_open, .lane_end = on_lane_end };
        int r = lane_walk(sort, &walk, &t);
        if (t.bars_f)
                fclose(t.bars_f);
        free(t.bars);
        free(t.slices);
        if (fclose(t.f) != 0 && r >= 0)
                r = -ENOMEM;
        if (r < 0) {
                free(body);
                return r == -ENOMEM ? cli_error(r, "out of memory")
                                    : cli_error(r, "cannot sort the spans in a temporary file: %s", strerror(-r));
        }
        int height = t.y + 24;
        fprintf(f,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"ferret-timeline\" width=\"100%%\" "
                "viewBox=\"0 0 %d %d\" preserveAspectRatio=\"xMinYMin meet\" data-mode=\"%s\" data-lanes=\"%" PRIu64
                "\" data-lanes-left-out=\"%" PRIu64 "\">\n",
                WIDTH, height, t.detailed ? "spans" : "slices", t.lanes_drawn, t.lanes_left_out);
        fwrite(body, 1, body_len, f);
        free(body);
        if (t.lanes_left_out || t.rows_left_out) {
                fprintf(f, "<text class=\"tl-axis\" x=\"4\" y=\"%d\">", height - 8);
                if (t.lanes_left_out)
                        fprintf(f, "%" PRIu64 " more lane%s not drawn. ", t.lanes_left_out, t.lanes_left_out == 1 ? "" : "s");
                if (t.rows_left_out)
                        fprintf(f, "%" PRIu64 " span%s nested deeper than %d levels not drawn.", t.rows_left_out,
                                t.rows_left_out == 1 ? "" : "s", MAX_ROWS);
                fputs("</text>\n", f);
        }
        fputs("</svg>\n", f);
        return 0;
}
