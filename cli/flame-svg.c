/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "assets.h"
#include "cli.h"
#include "flame-svg.h"
#include "picture.h"
#include "text.h"
#include "wire.h"

#define WIDTH 1200
#define PAD 10
#define ROW 17                         /* a frame's height and the gap above it */
#define TOP 84                         /* the title, header and legend */
#define BOTTOM 34                      /* the details and search lines */
#define CHAR_W 7.0                     /* 12px Verdana, on average: labels are cut to fit */
#define MIN_FRACTION 1e-4              /* frames narrower are left out */

#define ROOT SIZE_MAX                  /* the frame of the whole run, no node of its own */

struct frame {
        size_t node;                   /* index in the tree, or ROOT */
        double x, w;                   /* in ns of the layout */
        uint32_t depth;
        int32_t parent;                /* frame index, -1 for the root */
};

struct layout {
        const Ferret__TreeResponse *t;
        size_t *child_start, *children; /* CSR of the nodes' children; the roots at the end */
        struct frame *frames;
        size_t n_frames, cap_frames;
        uint32_t max_depth;
        uint64_t left_out;             /* frames too narrow to draw */
};

static int by_total_desc(const void *a, const void *b, void *ctx)
{
        const Ferret__TreeResponse *t = ctx;
        uint64_t x = t->nodes[*(const size_t *)a]->total_ns, y = t->nodes[*(const size_t *)b]->total_ns;
        if (x != y)
                return x > y ? -1 : 1;
        return strcmp(t->nodes[*(const size_t *)a]->name, t->nodes[*(const size_t *)b]->name);
}

/* Children of node i are children[child_start[i]..child_start[i+1]); the
 * roots' list is the extra slot n. Nodes come parents first. */
static int link_children(struct layout *l)
{
        const Ferret__TreeResponse *t = l->t;
        size_t n = t->n_nodes;
        l->child_start = calloc(n + 3, sizeof(*l->child_start));
        l->children = malloc((n + 1) * sizeof(*l->children));
        size_t *fill = calloc(n + 2, sizeof(*fill));
        if (!l->child_start || !l->children || !fill) {
                free(fill);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                int32_t p = t->nodes[i]->parent;
                l->child_start[(p >= 0 && (size_t)p < i ? (size_t)p : n) + 1]++;
        }
        for (size_t i = 0; i <= n; i++)
                l->child_start[i + 1] += l->child_start[i];
        for (size_t i = 0; i < n; i++) {
                int32_t p = t->nodes[i]->parent;
                size_t up = p >= 0 && (size_t)p < i ? (size_t)p : n;
                l->children[l->child_start[up] + fill[up]++] = i;
        }
        for (size_t i = 0; i <= n; i++)
                qsort_r(l->children + l->child_start[i], l->child_start[i + 1] - l->child_start[i],
                        sizeof(*l->children), by_total_desc, (void *)t);
        free(fill);
        return 0;
}

static int add_frame(struct layout *l, struct frame fr)
{
        if (wire_grow((void **)&l->frames, &l->cap_frames, l->n_frames + 1, sizeof(*l->frames)) < 0)
                return -ENOMEM;
        l->frames[l->n_frames++] = fr;
        if (fr.depth > l->max_depth)
                l->max_depth = fr.depth;
        return 0;
}

/* Places the frames depth first (parents before children, as flame.js
 * expects): each child after its elder siblings within its parent, and
 * children that add up to more than their parent (async spans outliving
 * it) shrunk together to fit. */
static int place(struct layout *l)
{
        const Ferret__TreeResponse *t = l->t;
        size_t n = t->n_nodes;
        double whole = 0;
        for (size_t k = l->child_start[n]; k < l->child_start[n + 1]; k++)
                whole += (double)t->nodes[l->children[k]]->total_ns;
        int r = add_frame(l, (struct frame){ .node = ROOT, .x = 0, .w = whole, .depth = 0, .parent = -1 });
        /* An explicit stack of frames whose children are still to place. */
        size_t *todo = malloc((n + 1) * sizeof(*todo)), n_todo = 0;
        if (r < 0 || !todo) {
                free(todo);
                return -ENOMEM;
        }
        todo[n_todo++] = 0;
        double min_w = whole * MIN_FRACTION;
        while (n_todo) {
                size_t fi = todo[--n_todo];
                struct frame parent = l->frames[fi];
                size_t list = parent.node == ROOT ? n : parent.node;
                double sum = 0;
                for (size_t k = l->child_start[list]; k < l->child_start[list + 1]; k++)
                        sum += (double)t->nodes[l->children[k]]->total_ns;
                double scale = sum > parent.w && sum > 0 ? parent.w / sum : 1, x = parent.x;
                size_t first = l->n_frames;
                for (size_t k = l->child_start[list]; k < l->child_start[list + 1]; k++) {
                        size_t c = l->children[k];
                        double w = (double)t->nodes[c]->total_ns * scale;
                        if (w < min_w || w <= 0) {
                                l->left_out++;
                                continue;
                        }
                        if (add_frame(l, (struct frame){ .node = c, .x = x, .w = w, .depth = parent.depth + 1,
                                                         .parent = (int32_t)fi }) < 0) {
                                free(todo);
                                return -ENOMEM;
                        }
                        x += w;
                }
                /* Pushed in reverse so that they come out in order. */
                for (size_t i = l->n_frames; i-- > first;)
                        todo[n_todo++] = i;
        }
        free(todo);
        return 0;
}

static void put_title(FILE *f, const struct layout *l, const struct frame *fr, const char *run)
{
        const Ferret__TreeNode *n = fr->node == ROOT ? NULL : l->t->nodes[fr->node];
        double whole = l->frames[0].w;
        char a[40], b[40], c[40];
        fputs("<title>", f);
        if (!n) {
                fputs("all spans of ", f);
                markup_put(f, run);
                fprintf(f, "\ntotal %s", pic_duration((uint64_t)whole, a, sizeof(a)));
                fputs("</title>", f);
                return;
        }
        markup_put(f, n->name);
        fprintf(f, "\ntotal %s (%.2f%%)", pic_duration(n->total_ns, a, sizeof(a)), whole > 0 ? 100 * fr->w / whole : 0);
        if (!n->process)
                fprintf(f, " \u00b7 self %s", pic_duration(n->self_ns, a, sizeof(a)));
        if (!n->process && n->count)
                fprintf(f, "\n%" PRIu64 " call%s \u00b7 avg %s \u00b7 p50 %s \u00b7 p99 %s", n->count, n->count == 1 ? "" : "s",
                        pic_duration(n->total_ns / n->count, a, sizeof(a)), pic_duration(n->p50_ns, b, sizeof(b)),
                        pic_duration(n->p99_ns, c, sizeof(c)));
        if (n->errors || n->warnings)
                fprintf(f, "\n%" PRIu64 " error%s \u00b7 %" PRIu64 " warning%s", n->errors, n->errors == 1 ? "" : "s",
                        n->warnings, n->warnings == 1 ? "" : "s");
        if (n->count == 1 && n->message && *n->message) {
                fputs("\n", f);
                markup_put(f, n->message);
        }
        fputs("</title>", f);
}

static void put_frame(FILE *f, const struct layout *l, size_t i, const char *run, int height)
{
        const struct frame *fr = &l->frames[i];
        const Ferret__TreeNode *n = fr->node == ROOT ? NULL : l->t->nodes[fr->node];
        const char *name = n ? n->name : "all";
        double whole = l->frames[0].w;
        double px = whole > 0 ? PAD + fr->x / whole * (WIDTH - 2 * PAD) : PAD;
        double pw = whole > 0 ? fr->w / whole * (WIDTH - 2 * PAD) : 0;
        int y = height - BOTTOM - (int)(fr->depth + 1) * ROW;
        char color[40];
        if (!n)
                snprintf(color, sizeof(color), "hsl(35,10%%,78%%)");
        else if (n->process)
                snprintf(color, sizeof(color), "hsl(210,22%%,74%%)");
        else
                pic_color(name, color, sizeof(color));
        /* A path whose every call failed (or warned) has its border in
         * the legend's colour; one where some did shows them as a strip
         * along its bottom edge, as wide as their share of its calls. */
        bool all_failed = n && n->count && n->errors >= n->count;
        bool all_warned = n && n->count && !all_failed && n->warnings >= n->count;
        fprintf(f, "<g class=\"f%s%s%s%s\" data-n=\"", n && n->errors ? " err" : "", n && n->warnings ? " warn" : "",
                all_failed ? " all-err" : "", all_warned ? " all-warn" : "");
        markup_put(f, name);
        fprintf(f, "\" data-x=\"%.0f\" data-w=\"%.0f\" data-d=\"%" PRIu32 "\" data-p=\"%" PRId32 "\"", fr->x, fr->w,
                fr->depth, fr->parent);
        if (n)
                fprintf(f,
                        " data-total=\"%" PRIu64 "\" data-self=\"%" PRIu64 "\" data-count=\"%" PRIu64
                        "\" data-errors=\"%" PRIu64 "\" data-warnings=\"%" PRIu64 "\"",
                        n->total_ns, n->process ? 0 : n->self_ns, n->count, n->errors, n->warnings);
        fputs(">", f);
        put_title(f, l, fr, run);
        fprintf(f, "<rect class=\"fr\" x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"%d\" rx=\"2\" fill=\"%s\"/>", px, y, pw,
                ROW - 1, color);
        if (n && n->count && (n->errors || n->warnings) && !all_failed && !all_warned) {
                double e = (double)n->errors / (double)n->count, w = (double)n->warnings / (double)n->count;
                if (e > 0)
                        fprintf(f, "<rect class=\"strip err-strip\" x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"3\" data-share=\"%.6f\"/>",
                                px, y + ROW - 4, pw * e, e);
                if (w > 0)
                        fprintf(f,
                                "<rect class=\"strip warn-strip\" x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"3\" data-share=\"%.6f\" data-after=\"%.6f\"/>",
                                px + pw * e, y + ROW - 4, pw * w, w, e);
        }
        fprintf(f, "<text x=\"%.2f\" y=\"%d\">", px + 3, y + ROW - 5);
        pic_label(f, name, (long)((pw - 6) / CHAR_W));
        fputs("</text></g>\n", f);
}

static void put_chrome(FILE *f, const struct layout *l, const char *run, int height)
{
        const Ferret__TreeResponse *t = l->t;
        fprintf(f, "<rect class=\"fg-bg\" x=\"0\" y=\"0\" width=\"%d\" height=\"%d\"/>\n", WIDTH, height);
        fprintf(f, "<text class=\"fg-title\" x=\"%d\" y=\"26\" text-anchor=\"middle\">Flame graph \u00b7 ", WIDTH / 2);
        markup_put(f, run);
        fprintf(f, "</text>\n<text class=\"fg-text fg-dim\" x=\"%d\" y=\"46\" text-anchor=\"middle\" data-role=\"header\">",
                WIDTH / 2);
        pic_run_header(f, t->run, t->since_ns, t->until_ns);
        fputs("</text>\n", f);
        fprintf(f,
                "<text class=\"fg-text fg-button fg-hidden\" x=\"%d\" y=\"26\" data-role=\"reset\">Reset zoom</text>\n"
                "<text class=\"fg-text fg-button\" x=\"%d\" y=\"26\" text-anchor=\"end\" data-role=\"search\">Search</text>\n",
                PAD, WIDTH - PAD);
        /* The legend: what width, a border and a strip mean. */
        fprintf(f,
                "<g class=\"fg-text fg-dim\"><text x=\"%d\" y=\"68\">width: total time \u00b7 the part of a frame "
                "no frame above covers: self time \u00b7 click to zoom</text>\n"
                "<rect class=\"fg-legend-err\" x=\"%d\" y=\"58\" width=\"14\" height=\"12\" fill=\"none\"/>"
                "<text x=\"%d\" y=\"68\">all failed</text>\n"
                "<rect class=\"fg-legend-warn\" x=\"%d\" y=\"58\" width=\"14\" height=\"12\" fill=\"none\"/>"
                "<text x=\"%d\" y=\"68\">all warned</text>\n"
                "<rect class=\"err-strip\" x=\"%d\" y=\"65\" width=\"9\" height=\"3\"/>"
                "<rect class=\"warn-strip\" x=\"%d\" y=\"65\" width=\"5\" height=\"3\"/>"
                "<text x=\"%d\" y=\"68\">share failed, warned</text></g>\n",
                PAD, WIDTH - 430, WIDTH - 410, WIDTH - 330, WIDTH - 310, WIDTH - 220, WIDTH - 211, WIDTH - 200);
        fprintf(f, "<text class=\"fg-text\" x=\"%d\" y=\"%d\" data-role=\"details\"> </text>\n", PAD, height - 20);
        fprintf(f, "<text class=\"fg-text\" x=\"%d\" y=\"%d\" text-anchor=\"end\" data-role=\"matched\"></text>\n",
                WIDTH - PAD, height - 6);
        fprintf(f, "<text class=\"fg-text fg-dim\" x=\"%d\" y=\"%d\" data-role=\"left-out\">", PAD, height - 6);
        if (l->left_out)
                fprintf(f, "%" PRIu64 " call path%s narrower than %g%% of the whole not drawn", l->left_out,
                        l->left_out == 1 ? "" : "s", MIN_FRACTION * 100);
        fputs("</text>\n", f);
}

int flame_svg_write(FILE *f, const Ferret__TreeResponse *t, bool standalone)
{
        struct layout l = { .t = t };
        const char *run = t->run ? t->run->run : "";
        int r = link_children(&l);
        if (r >= 0)
                r = place(&l);
        if (r < 0)
                goto out;
        int height = TOP + (int)(l.max_depth + 1) * ROW + BOTTOM;
        if (standalone)
                fputs("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n", f);
        fprintf(f,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" class=\"ferret-flame\" "
                "width=\"%s\" %sviewBox=\"0 0 %d %d\" data-plot-x=\"%d\" data-plot-w=\"%d\" data-char-w=\"%g\" "
                "data-run=\"",
                standalone ? "1200" : "100%", standalone ? "" : "preserveAspectRatio=\"xMinYMin meet\" ", WIDTH, height,
                PAD, WIDTH - 2 * PAD, CHAR_W);
        markup_put(f, run);
        fprintf(f, "\" data-frames=\"%zu\" data-left-out=\"%" PRIu64 "\"", l.n_frames, l.left_out);
        if (standalone)
                fprintf(f, " height=\"%d\"", height);
        fputs(">\n<style>\n", f);
        fputs(asset_flame_css, f);
        fputs("</style>\n", f);
        put_chrome(f, &l, run, height);
        fputs("<g data-role=\"frames\">\n", f);
        for (size_t i = 0; i < l.n_frames; i++)
                put_frame(f, &l, i, run, height);
        fputs("</g>\n<script><![CDATA[\n", f);
        fputs(asset_flame_js, f);
        fputs("]]></script>\n</svg>\n", f);
out:
        free(l.child_start);
        free(l.children);
        free(l.frames);
        return r;
}
