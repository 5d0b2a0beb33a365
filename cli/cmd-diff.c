/* SPDX-License-Identifier: MIT */
/*
 * ferret diff RUN_A RUN_B: what changed between two runs, name by name:
 * count, p50, p95 and total time, largest change in total first. A change
 * is flagged when the two runs' 95% confidence intervals of that
 * percentile do not overlap, i.e. when it is larger than the runs' own
 * noise. With --fail-over PCT, a flagged p95 regression above PCT percent
 * fails the command: a regression gate for CI.
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json-text.h"
#include "options.h"
#include "table.h"
#include "text.h"

static const char usage[] =
        "Usage: ferret diff RUN_A RUN_B [--fail-over PCT] [--json]\n"
        "Compare two runs name by name: count, p50, p95 and total time, and their change\n"
        "from RUN_A to RUN_B, largest change in total first. \"!\" marks a change beyond\n"
        "the runs' own noise (their 95% confidence intervals do not overlap).\n\n"
        "      --fail-over PCT     exit with status 1 when a p95 grows more than PCT percent\n"
        "                          beyond noise (a regression gate for CI)\n" COMMON_OPTIONS_HELP;

struct diff_row {
        const char *name;
        const Ferret__SummaryRow *a, *b;  /* NULL when the name is missing from that run */
        bool p50_flag, p95_flag;
        double impact;
};

static int compare_rows(const void *x, const void *y)
{
        const struct diff_row *a = x, *b = y;
        if (a->impact != b->impact)
                return a->impact > b->impact ? -1 : 1;
        return strcmp(a->name, b->name);
}

/* Beyond noise: the intervals do not overlap, and the values differ by more
 * than the 0.4% resolution of the daemon's histograms (with margin). */
static bool beyond_noise(uint64_t a, uint64_t a_low, uint64_t a_high, uint64_t b, uint64_t b_low, uint64_t b_high)
{
        double rel = a ? fabs((double)b - (double)a) / (double)a : 1;
        return (b_low > a_high || b_high < a_low) && rel >= 0.01;
}

static double change(uint64_t a, uint64_t b)
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

static int fetch(const char *dir, const char *run, Ferret__Response **ret)
{
        Ferret__Request req = FERRET__REQUEST__INIT;
        Ferret__SummaryRequest s = FERRET__SUMMARY_REQUEST__INIT;
        s.run = (char *)run;
        req.body_case = FERRET__REQUEST__BODY_SUMMARY;
        req.summary = &s;
        return cli_request(dir, &req, 60000, ret);
}

static const Ferret__SummaryRow *find_row(const Ferret__SummaryResponse *s, const char *name)
{
        for (size_t i = 0; i < s->n_rows; i++)
                if (strcmp(s->rows[i]->name, name) == 0)
                        return s->rows[i];
        return NULL;
}

static size_t build_rows(const Ferret__SummaryResponse *a, const Ferret__SummaryResponse *b, struct diff_row *rows)
{
        size_t n = 0;
        for (size_t i = 0; i < a->n_rows; i++)
                rows[n++] = (struct diff_row){ .name = a->rows[i]->name, .a = a->rows[i], .b = find_row(b, a->rows[i]->name) };
        for (size_t i = 0; i < b->n_rows; i++)
                if (!find_row(a, b->rows[i]->name))
                        rows[n++] = (struct diff_row){ .name = b->rows[i]->name, .b = b->rows[i] };
        for (size_t i = 0; i < n; i++) {
                struct diff_row *r = &rows[i];
                uint64_t ta = r->a ? r->a->total_ns : 0, tb = r->b ? r->b->total_ns : 0;
                r->impact = fabs((double)tb - (double)ta);
                if (r->a && r->b) {
                        r->p50_flag = beyond_noise(r->a->p50_ns, r->a->p50_low_ns, r->a->p50_high_ns, r->b->p50_ns,
                                                   r->b->p50_low_ns, r->b->p50_high_ns);
                        r->p95_flag = beyond_noise(r->a->p95_ns, r->a->p95_low_ns, r->a->p95_high_ns, r->b->p95_ns,
                                                   r->b->p95_low_ns, r->b->p95_high_ns);
                }
        }
        qsort(rows, n, sizeof(*rows), compare_rows);
        return n;
}

static bool regressed(const struct diff_row *r, double fail_over)
{
        return r->a && r->b && r->p95_flag && change(r->a->p95_ns, r->b->p95_ns) > fail_over;
}

static void print_json(const char *run_a, const char *run_b, const struct diff_row *rows, size_t n, double fail_over)
{
        json_t *a = json_array();
        for (size_t i = 0; i < n; i++) {
                const struct diff_row *r = &rows[i];
                json_t *o = json_pack("{s:s, s:b, s:b}", "name", r->name, "p50_beyond_noise", r->p50_flag,
                                      "p95_beyond_noise", r->p95_flag);
                const Ferret__SummaryRow *side[2] = { r->a, r->b };
                const char *suffix[2] = { "a", "b" };
                for (int k = 0; k < 2; k++) {
                        char key[32];
                        snprintf(key, sizeof(key), "count_%s", suffix[k]);
                        json_object_set_new(o, key, json_uint(side[k] ? side[k]->count : 0));
                        snprintf(key, sizeof(key), "p50_%s_ns", suffix[k]);
                        json_object_set_new(o, key, side[k] ? json_uint(side[k]->p50_ns) : json_null());
                        snprintf(key, sizeof(key), "p95_%s_ns", suffix[k]);
                        json_object_set_new(o, key, side[k] ? json_uint(side[k]->p95_ns) : json_null());
                        snprintf(key, sizeof(key), "total_%s_ns", suffix[k]);
                        json_object_set_new(o, key, json_uint(side[k] ? side[k]->total_ns : 0));
                }
                if (r->a && r->b) {
                        json_object_set_new(o, "p50_change_pct", json_real(change(r->a->p50_ns, r->b->p50_ns)));
                        json_object_set_new(o, "p95_change_pct", json_real(change(r->a->p95_ns, r->b->p95_ns)));
                        json_object_set_new(o, "total_change_pct", json_real(change(r->a->total_ns, r->b->total_ns)));
                }
                if (fail_over >= 0)
                        json_object_set_new(o, "fails", json_boolean(regressed(r, fail_over)));
                json_array_append_new(a, o);
        }
        json_t *root = json_pack("{s:s, s:s, s:o}", "a", run_a, "b", run_b, "rows", a);
        json_dumpf(root, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(root);
}

static void print_table(const struct cli *cli, const char *run_a, const char *run_b, const struct diff_row *rows,
                        size_t n)
{
        char change_header[3][32];
        const char *what[3] = { "P50", "P95", "TOTAL" };
        for (int i = 0; i < 3; i++)
                snprintf(change_header[i], sizeof(change_header[i]), "%s %s", what[i], cli->glyphs->delta);
        const char *const headers[] = { "NAME", "COUNT A", "COUNT B", "P50 A", "P50 B", change_header[0], "P95 A",
                                        "P95 B", change_header[1], "TOTAL A", "TOTAL B", change_header[2] };
        printf("%sA%s = ", color(cli, C_BOLD), color(cli, C_RESET));
        term_put(stdout, run_a);
        printf(", %sB%s = ", color(cli, C_BOLD), color(cli, C_RESET));
        term_put(stdout, run_b);
        putchar('\n');
        struct libscols_table *tb = table_new(cli, headers, sizeof(headers) / sizeof(headers[0]));
        for (size_t i = 0; tb && i < n; i++) {
                const struct diff_row *r = &rows[i];
                struct libscols_line *ln = scols_table_new_line(tb, NULL);
                char buf[64];
                char *copy;
                scols_line_set_data(ln, 0, term_text(r->name, &copy));
                free(copy);
                const Ferret__SummaryRow *side[2] = { r->a, r->b };
                for (int k = 0; k < 2; k++) {
                        snprintf(buf, sizeof(buf), "%llu", side[k] ? (unsigned long long)side[k]->count : 0ULL);
                        scols_line_set_data(ln, 1 + k, side[k] ? buf : "-");
                        scols_line_set_data(ln, 3 + k, side[k] ? format_duration(side[k]->p50_ns, buf, sizeof(buf)) : "-");
                        scols_line_set_data(ln, 6 + k, side[k] ? format_duration(side[k]->p95_ns, buf, sizeof(buf)) : "-");
                        scols_line_set_data(ln, 9 + k, side[k] ? format_duration(side[k]->total_ns, buf, sizeof(buf)) : "-");
                }
                if (!r->a || !r->b) {
                        scols_line_set_data(ln, 5, r->a ? "gone" : "new");
                        scols_line_set_data(ln, 8, r->a ? "gone" : "new");
                        scols_line_set_data(ln, 11, r->a ? "gone" : "new");
                        continue;
                }
                const struct {
                        int col;
                        double pct;
                        bool flag;
                } deltas[] = {
                        { 5, change(r->a->p50_ns, r->b->p50_ns), r->p50_flag },
                        { 8, change(r->a->p95_ns, r->b->p95_ns), r->p95_flag },
                        { 11, change(r->a->total_ns, r->b->total_ns), false },
                };
                for (size_t k = 0; k < 3; k++) {
                        char pct[32];
                        snprintf(buf, sizeof(buf), "%s%s", deltas[k].flag ? "! " : "",
                                 format_change(deltas[k].pct, pct, sizeof(pct)));
                        scols_line_set_data(ln, (size_t)deltas[k].col, buf);
                        if (cli->color && deltas[k].flag)
                                scols_cell_set_color(scols_line_get_cell(ln, (size_t)deltas[k].col),
                                                     deltas[k].pct > 0 ? "red" : "green");
                }
        }
        if (tb) {
                scols_print_table(tb);
                scols_unref_table(tb);
        }
        printf("! = beyond noise: the runs' 95%% confidence intervals of that percentile do not overlap\n");
}

int cmd_diff(struct cli *cli, int argc, char **argv)
{
        enum { OPT_FAIL_OVER = 0x300 };
        static const struct option opts[] = {
                { "fail-over", required_argument, NULL, OPT_FAIL_OVER },
                COMMON_OPTIONS,
                {},
        };
        double fail_over = -1;
        char dir[PATH_MAX], *end;
        int c, r;
        cli_getopt_reset();
        while ((c = getopt_long(argc, argv, ":hj", opts, NULL)) >= 0) {
                if (c == OPT_FAIL_OVER) {
                        fail_over = strtod(optarg, &end);
                        if (end == optarg || (*end && strcmp(end, "%") != 0) || !isfinite(fail_over) || fail_over < 0)
                                return cli_error(EINVAL, "--fail-over takes a percentage, such as 10, not '%s'", optarg);
                        continue;
                }
                r = cli_common_option(cli, c, argv, usage);
                if (r <= 0)
                        return r;
        }
        if (argc - optind != 2)
                return cli_error(EINVAL, "which two runs? (usage: ferret diff RUN_A RUN_B)");
        const char *run_a = argv[optind], *run_b = argv[optind + 1];

        Ferret__Response *ra = NULL, *rb = NULL;
        cli_find_runtime_dir(cli, dir, sizeof(dir));
        r = fetch(dir, run_a, &ra);
        if (r == 0)
                r = fetch(dir, run_b, &rb);
        if (r < 0)
                goto out;
        const Ferret__SummaryResponse *a = ra->summary, *b = rb->summary;
        struct diff_row *rows = calloc(a->n_rows + b->n_rows + 1, sizeof(*rows));
        if (!rows) {
                r = cli_error(ENOMEM, "out of memory");
                goto out;
        }
        size_t n = build_rows(a, b, rows);
        if (cli->json)
                print_json(run_a, run_b, rows, n, fail_over);
        else
                print_table(cli, run_a, run_b, rows, n);
        if (fail_over >= 0)
                for (size_t i = 0; i < n; i++)
                        if (regressed(&rows[i], fail_over)) {
                                r = cli_error(EDOM, "p95 of %s regressed %+.1f%% from %s to %s (over %g%%)", rows[i].name,
                                              change(rows[i].a->p95_ns, rows[i].b->p95_ns), run_a, run_b, fail_over);
                                break;
                        }
        free(rows);
out:
        if (ra)
                ferret__response__free_unpacked(ra, NULL);
        if (rb)
                ferret__response__free_unpacked(rb, NULL);
        return r;
}
