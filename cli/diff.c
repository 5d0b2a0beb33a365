/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diff.h"
#include "json-text.h"
#include "table.h"
#include "text.h"
#include "tree-print.h"

bool diff_beyond_noise(uint64_t a, uint64_t a_low, uint64_t a_high, uint64_t b, uint64_t b_low, uint64_t b_high)
{
        double rel = a ? fabs((double)b - (double)a) / (double)a : 1;
        return (b_low > a_high || b_high < a_low) && rel >= 0.01;
}

double diff_change(uint64_t a, uint64_t b)
{
        return a ? ((double)b - (double)a) / (double)a * 100.0 : (b ? INFINITY : 0);
}

static const char *format_change(double pct, char *buf, size_t size)
{
        if (isinf(pct))
                snprintf(buf, size, "new");
        else
                snprintf(buf, size, "%+.1f%%", pct);
        return buf;
}

void diff_line_judge(struct diff_line *l)
{
        const struct diff_side *a = &l->a, *b = &l->b;
        l->impact = fabs((double)(b->present ? b->total_ns : 0) - (double)(a->present ? a->total_ns : 0));
        l->p50_flag = l->p95_flag = false;
        if (a->present && b->present) {
                l->p50_flag = diff_beyond_noise(a->p50_ns, a->p50_low_ns, a->p50_high_ns, b->p50_ns, b->p50_low_ns,
                                                b->p50_high_ns);
                l->p95_flag = diff_beyond_noise(a->p95_ns, a->p95_low_ns, a->p95_high_ns, b->p95_ns, b->p95_low_ns,
                                                b->p95_high_ns);
        }
}

bool diff_line_regressed(const struct diff_line *l, double fail_over)
{
        return l->a.present && l->b.present && l->p95_flag && diff_change(l->a.p95_ns, l->b.p95_ns) > fail_over;
}

static int print_json(const char *run_a, const char *run_b, const struct diff_line *lines, size_t n, double fail_over,
                      bool by_path)
{
        json_t *rows = json_array();
        for (size_t i = 0; i < n; i++) {
                const struct diff_line *l = &lines[i];
                json_t *o = json_pack("{s:s, s:b, s:b}", "name", l->name, "p50_beyond_noise", l->p50_flag,
                                      "p95_beyond_noise", l->p95_flag);
                if (by_path) {
                        json_object_set_new(o, "depth", json_integer((json_int_t)l->depth));
                        json_object_set_new(o, "parent", json_integer(l->parent));
                }
                const struct diff_side *side[2] = { &l->a, &l->b };
                const char *suffix[2] = { "a", "b" };
                for (int k = 0; k < 2; k++) {
                        char key[32];
                        bool here = side[k]->present;
                        snprintf(key, sizeof(key), "count_%s", suffix[k]);
                        json_object_set_new(o, key, json_uint(here ? side[k]->count : 0));
                        snprintf(key, sizeof(key), "p50_%s_ns", suffix[k]);
                        json_object_set_new(o, key, here ? json_uint(side[k]->p50_ns) : json_null());
                        snprintf(key, sizeof(key), "p95_%s_ns", suffix[k]);
                        json_object_set_new(o, key, here ? json_uint(side[k]->p95_ns) : json_null());
                        snprintf(key, sizeof(key), "total_%s_ns", suffix[k]);
                        json_object_set_new(o, key, json_uint(here ? side[k]->total_ns : 0));
                }
                if (l->a.present && l->b.present) {
                        json_object_set_new(o, "p50_change_pct", json_real(diff_change(l->a.p50_ns, l->b.p50_ns)));
                        json_object_set_new(o, "p95_change_pct", json_real(diff_change(l->a.p95_ns, l->b.p95_ns)));
                        json_object_set_new(o, "total_change_pct",
                                            json_real(diff_change(l->a.total_ns, l->b.total_ns)));
                }
                if (fail_over >= 0)
                        json_object_set_new(o, "fails", json_boolean(diff_line_regressed(l, fail_over)));
                json_array_append_new(rows, o);
        }
        json_t *root = json_pack("{s:s, s:s, s:o}", "a", run_a, "b", run_b, "rows", rows);
        int r = json_dumpf(root, stdout, JSON_INDENT(2)) < 0 ? -EIO : 0;
        putchar('\n');
        json_decref(root);
        return r;
}

/* The NAME cell: by path, indented two spaces a level, as deep as a tree
 * is drawn (tree-print.h), the depth said beyond. */
static char *name_cell(const struct diff_line *l, bool by_path)
{
        char *escaped, *cell;
        const char *name = term_text(l->name, &escaped);
        size_t indent = by_path ? (l->depth < TREE_INDENT_MAX ? l->depth : TREE_INDENT_MAX) : 0;
        char deep[32] = "";
        if (by_path && l->depth > TREE_INDENT_MAX)
                snprintf(deep, sizeof(deep), "[depth %zu] ", l->depth);
        if (asprintf(&cell, "%*s%s%s", (int)(2 * indent), "", deep, name) < 0)
                cell = NULL;
        free(escaped);
        return cell;
}

static int print_table(const struct cli *cli, const char *run_a, const char *run_b, const struct diff_line *lines,
                       size_t n, bool by_path)
{
        char change_header[3][32];
        const char *what[3] = { "P50", "P95", "TOTAL" };
        for (int i = 0; i < 3; i++)
                snprintf(change_header[i], sizeof(change_header[i]), "%s %s", what[i], cli->glyphs->delta);
        const char *const headers[] = { by_path ? "CALL PATH" : "NAME", "COUNT A", "COUNT B", "P50 A", "P50 B",
                                        change_header[0], "P95 A", "P95 B", change_header[1], "TOTAL A", "TOTAL B",
                                        change_header[2] };
        printf("%sA%s = ", color(cli, C_BOLD), color(cli, C_RESET));
        term_put(stdout, run_a);
        printf(", %sB%s = ", color(cli, C_BOLD), color(cli, C_RESET));
        term_put(stdout, run_b);
        putchar('\n');
        struct libscols_table *tb = table_new(cli, headers, sizeof(headers) / sizeof(headers[0]));
        if (!tb)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const struct diff_line *l = &lines[i];
                struct libscols_line *ln = scols_table_new_line(tb, NULL);
                char buf[64], *cell = name_cell(l, by_path);
                scols_line_set_data(ln, 0, cell ? cell : "");
                free(cell);
                const struct diff_side *side[2] = { &l->a, &l->b };
                for (int k = 0; k < 2; k++) {
                        bool here = side[k]->present;
                        snprintf(buf, sizeof(buf), "%llu", here ? (unsigned long long)side[k]->count : 0ULL);
                        scols_line_set_data(ln, 1 + k, here ? buf : "-");
                        scols_line_set_data(ln, 3 + k, here ? format_duration(side[k]->p50_ns, buf, sizeof(buf)) : "-");
                        scols_line_set_data(ln, 6 + k, here ? format_duration(side[k]->p95_ns, buf, sizeof(buf)) : "-");
                        scols_line_set_data(ln, 9 + k, here ? format_duration(side[k]->total_ns, buf, sizeof(buf)) : "-");
                }
                if (!l->a.present || !l->b.present) {
                        for (size_t col = 5; col <= 11; col += 3)
                                scols_line_set_data(ln, col, l->a.present ? "gone" : "new");
                        continue;
                }
                const struct {
                        size_t col;
                        double pct;
                        bool flag;
                } deltas[] = {
                        { 5, diff_change(l->a.p50_ns, l->b.p50_ns), l->p50_flag },
                        { 8, diff_change(l->a.p95_ns, l->b.p95_ns), l->p95_flag },
                        { 11, diff_change(l->a.total_ns, l->b.total_ns), false },
                };
                for (size_t k = 0; k < 3; k++) {
                        char pct[32];
                        snprintf(buf, sizeof(buf), "%s%s", deltas[k].flag ? "! " : "",
                                 format_change(deltas[k].pct, pct, sizeof(pct)));
                        scols_line_set_data(ln, deltas[k].col, buf);
                        if (cli->color && deltas[k].flag)
                                scols_cell_set_color(scols_line_get_cell(ln, deltas[k].col),
                                                     deltas[k].pct > 0 ? "red" : "green");
                }
        }
        scols_print_table(tb);
        scols_unref_table(tb);
        printf("! = beyond noise: the runs' 95%% confidence intervals of that percentile do not overlap\n");
        return 0;
}

/* "a > b > c": the names from the root to line @i. */
static char *path_text(const struct diff_line *lines, size_t i)
{
        size_t size = 1;
        for (long k = (long)i; k >= 0; k = lines[k].parent)
                size += strlen(lines[k].name) + 3;
        char *text = malloc(size);
        if (!text)
                return NULL;
        char *end = text + size - 1;
        *end = '\0';
        for (long k = (long)i; k >= 0; k = lines[k].parent) {
                size_t len = strlen(lines[k].name);
                end -= len;
                memcpy(end, lines[k].name, len);
                if (lines[k].parent >= 0) {
                        end -= 3;
                        memcpy(end, " > ", 3);
                }
        }
        memmove(text, end, strlen(end) + 1);
        return text;
}

int diff_print(const struct cli *cli, const char *run_a, const char *run_b, const struct diff_line *lines, size_t n,
               double fail_over, bool by_path)
{
        int r = cli->json ? print_json(run_a, run_b, lines, n, fail_over, by_path)
                          : print_table(cli, run_a, run_b, lines, n, by_path);
        if (r < 0 || fail_over < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                const struct diff_line *l = &lines[i];
                if (!diff_line_regressed(l, fail_over))
                        continue;
                char *what = by_path ? path_text(lines, i) : NULL, *escaped;
                const char *shown = term_text(what ? what : l->name, &escaped);
                r = cli_error(EDOM, "p95 of %s regressed %+.1f%% from %s to %s (over %g%%)", shown,
                              diff_change(l->a.p95_ns, l->b.p95_ns), run_a, run_b, fail_over);
                free(escaped);
                free(what);
                return r;
        }
        return 0;
}
