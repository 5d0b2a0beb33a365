/* SPDX-License-Identifier: MIT */
/*
 * ferret diff RUN_A RUN_B: what changed between two runs, name by name:
 * count, p50, p95 and total time, largest change in total first; with
 * --tree, call path by call path (diff-tree.c). A change is flagged when
 * the two runs' 95% confidence intervals of that percentile do not
 * overlap, i.e. when it is larger than the runs' own noise (diff.c). With
 * --fail-over PCT, a flagged p95 regression above PCT percent fails the
 * command: a regression gate for CI.
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "diff.h"
#include "options.h"

static const char usage[] =
        "Usage: ferret diff RUN_A RUN_B [--tree] [--fail-over PCT] [--json]\n"
        "Compare two runs name by name: count, p50, p95 and total time, and their change\n"
        "from RUN_A to RUN_B, largest change in total first. \"!\" marks a change beyond\n"
        "the runs' own noise (their 95% confidence intervals do not overlap).\n\n"
        "      --tree              compare call path by call path: the two merged trees\n"
        "                          side by side, largest change first among siblings\n"
        "      --fail-over PCT     exit with status 1 when a p95 grows more than PCT percent\n"
        "                          beyond noise (a regression gate for CI)\n" COMMON_OPTIONS_HELP;

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

static struct diff_side side_of(const Ferret__SummaryRow *r)
{
        if (!r)
                return (struct diff_side){ 0 };
        return (struct diff_side){
                .present = true, .count = r->count, .total_ns = r->total_ns,
                .p50_ns = r->p50_ns, .p50_low_ns = r->p50_low_ns, .p50_high_ns = r->p50_high_ns,
                .p95_ns = r->p95_ns, .p95_low_ns = r->p95_low_ns, .p95_high_ns = r->p95_high_ns,
        };
}

static int compare_lines(const void *x, const void *y)
{
        const struct diff_line *a = x, *b = y;
        if (a->impact != b->impact)
                return a->impact > b->impact ? -1 : 1;
        return strcmp(a->name, b->name);
}

/* Every name of either run, largest change in total first. */
static size_t build_lines(const Ferret__SummaryResponse *a, const Ferret__SummaryResponse *b, struct diff_line *lines)
{
        size_t n = 0;
        for (size_t i = 0; i < a->n_rows; i++)
                lines[n++] = (struct diff_line){ .name = a->rows[i]->name, .a = side_of(a->rows[i]),
                                                 .b = side_of(find_row(b, a->rows[i]->name)) };
        for (size_t i = 0; i < b->n_rows; i++)
                if (!find_row(a, b->rows[i]->name))
                        lines[n++] = (struct diff_line){ .name = b->rows[i]->name, .b = side_of(b->rows[i]) };
        for (size_t i = 0; i < n; i++) {
                lines[i].parent = -1;
                diff_line_judge(&lines[i]);
        }
        qsort(lines, n, sizeof(*lines), compare_lines);
        return n;
}

int cmd_diff(struct cli *cli, int argc, char **argv)
{
        enum { OPT_FAIL_OVER = 0x300, OPT_TREE };
        static const struct option opts[] = {
                { "fail-over", required_argument, NULL, OPT_FAIL_OVER },
                { "tree", no_argument, NULL, OPT_TREE },
                COMMON_OPTIONS,
                {},
        };
        double fail_over = -1;
        bool by_path = false;
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
                if (c == OPT_TREE) {
                        by_path = true;
                        continue;
                }
                r = cli_common_option(cli, c, argv, usage);
                if (r <= 0)
                        return r;
        }
        if (argc - optind != 2)
                return cli_error(EINVAL, "which two runs? (usage: ferret diff RUN_A RUN_B)");
        const char *run_a = argv[optind], *run_b = argv[optind + 1];

        cli_find_runtime_dir(cli, dir, sizeof(dir));
        if (by_path)
                return diff_trees(cli, dir, run_a, run_b, fail_over);
        Ferret__Response *ra = NULL, *rb = NULL;
        r = fetch(dir, run_a, &ra);
        if (r == 0)
                r = fetch(dir, run_b, &rb);
        if (r < 0)
                goto out;
        const Ferret__SummaryResponse *a = ra->summary, *b = rb->summary;
        struct diff_line *lines = calloc(a->n_rows + b->n_rows + 1, sizeof(*lines));
        if (!lines) {
                r = cli_error(ENOMEM, "out of memory");
                goto out;
        }
        size_t n = build_lines(a, b, lines);
        r = diff_print(cli, run_a, run_b, lines, n, fail_over, false);
        free(lines);
out:
        if (ra)
                ferret__response__free_unpacked(ra, NULL);
        if (rb)
                ferret__response__free_unpacked(rb, NULL);
        return r;
}
