/* SPDX-License-Identifier: MIT */
/* The summary table: one row per span name, largest total time first. */
#include <errno.h>
#include <jansson.h>
#include <libsmartcols.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json-text.h"
#include "table.h"
#include "text.h"

/* The average of the calls that have a duration. */
static uint64_t timed_avg(const Ferret__SummaryRow *r)
{
        uint64_t timed = r->count > r->untimed ? r->count - r->untimed : 0;
        return timed ? r->total_ns / timed : 0;
}

static void print_run_header(const struct cli *cli, const Ferret__RunInfo *run)
{
        char start[32], span[32];
        if (!run)
                return;
        const char *dot = cli->glyphs->dot;
        printf("%sRun ", color(cli, C_BOLD));
        term_put(stdout, run->run);
        printf("%s%s%llu span%s%s%u process%s%s%llu dropped%s%s%s%s\n", color(cli, C_RESET), dot, (unsigned long long)run->spans, run->spans == 1 ? "" : "s", dot,
               run->processes, run->processes == 1 ? "" : "es", dot, (unsigned long long)run->dropped, dot,
               format_time(run->first_ns, start, sizeof(start)), dot,
               format_duration(run->last_ns > run->first_ns ? run->last_ns - run->first_ns : 0, span, sizeof(span)));
        if (run->trimmed)
                printf("%snote:%s its oldest spans were removed to keep the database's size bound\n",
                       color(cli, C_YELLOW), color(cli, C_RESET));
        for (size_t i = 0; i < run->n_notes; i++) {
                printf("%snote:%s ", color(cli, C_YELLOW), color(cli, C_RESET));
                term_put(stdout, run->notes[i]);
                putchar('\n');
        }
}

static int summary_json(const Ferret__SummaryResponse *s)
{
        json_t *rows = json_array();
        for (size_t i = 0; i < s->n_rows; i++) {
                const Ferret__SummaryRow *r = s->rows[i];
                json_array_append_new(rows, json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                        "name", r->name, "count", json_uint(r->count), "total_ns", json_uint(r->total_ns),
                        "self_ns", json_uint(r->self_ns),
                        "min_ns", json_uint(r->min_ns), "avg_ns", json_uint(timed_avg(r)),
                        "p50_ns", json_uint(r->p50_ns), "p90_ns", json_uint(r->p90_ns),
                        "p95_ns", json_uint(r->p95_ns), "p99_ns", json_uint(r->p99_ns),
                        "p999_ns", json_uint(r->p999_ns), "max_ns", json_uint(r->max_ns),
                        "errors", json_uint(r->errors), "warnings", json_uint(r->warnings)));
                json_object_set_new(json_array_get(rows, json_array_size(rows) - 1), "untimed",
                                    json_uint(r->untimed));
        }
        json_t *notes = json_array();
        for (size_t i = 0; s->run && i < s->run->n_notes; i++)
                json_array_append_new(notes, json_string(s->run->notes[i]));
        json_t *root = json_pack("{s:s, s:o, s:o, s:b, s:o, s:o}", "run", s->run ? s->run->run : "",
                                 "spans", json_uint((s->run ? s->run->spans : 0)),
                                 "dropped", json_uint((s->run ? s->run->dropped : 0)),
                                 "trimmed", s->run && s->run->trimmed, "notes", notes, "rows", rows);
        if (s->since_ns || s->until_ns) {
                json_object_set_new(root, "since_ns", json_uint(s->since_ns));
                json_object_set_new(root, "until_ns", json_uint(s->until_ns));
                json_object_set_new(root, "built_from", json_string(s->from_buckets ? "time buckets" : "spans"));
        }
        int r = json_dumpf(root, stdout, JSON_INDENT(2)) < 0 ? -EIO : 0;
        putchar('\n');
        json_decref(root);
        return r;
}

int render_summary(const struct cli *cli, const Ferret__SummaryResponse *s)
{
        if (cli->json)
                return summary_json(s);

        print_run_header(cli, s->run);
        if (!s->n_rows) {
                printf("(no spans)\n");
                return 0;
        }
        static const char *const headers[] = { "NAME", "COUNT", "TOTAL", "SELF", "MIN", "AVG", "P50", "P95", "P99", "MAX", "ERRORS" };
        struct libscols_table *tb = table_new(cli, headers, sizeof(headers) / sizeof(headers[0]));
        if (!tb)
                return cli_error(ENOMEM, "out of memory");
        for (size_t i = 0; i < s->n_rows; i++) {
                const Ferret__SummaryRow *r = s->rows[i];
                struct libscols_line *ln = scols_table_new_line(tb, NULL);
                char buf[64];
                if (!ln)
                        break;
                char *copy;
                scols_line_set_data(ln, 0, term_text(r->name, &copy));
                free(copy);
                snprintf(buf, sizeof(buf), "%llu", (unsigned long long)r->count);
                scols_line_set_data(ln, 1, buf);
                scols_line_set_data(ln, 2, format_duration(r->total_ns, buf, sizeof(buf)));
                scols_line_set_data(ln, 3, format_duration(r->self_ns, buf, sizeof(buf)));
                scols_line_set_data(ln, 4, format_duration(r->min_ns, buf, sizeof(buf)));
                scols_line_set_data(ln, 5, format_duration(timed_avg(r), buf, sizeof(buf)));
                scols_line_set_data(ln, 6, format_duration(r->p50_ns, buf, sizeof(buf)));
                scols_line_set_data(ln, 7, format_duration(r->p95_ns, buf, sizeof(buf)));
                scols_line_set_data(ln, 8, format_duration(r->p99_ns, buf, sizeof(buf)));
                scols_line_set_data(ln, 9, format_duration(r->max_ns, buf, sizeof(buf)));
                if (r->errors)
                        snprintf(buf, sizeof(buf), "%llu (%.1f%%)", (unsigned long long)r->errors,
                                 100.0 * (double)r->errors / (double)r->count);
                else
                        snprintf(buf, sizeof(buf), "0");
                scols_line_set_data(ln, 10, buf);
                if (r->errors && cli->color)
                        scols_cell_set_color(scols_line_get_cell(ln, 10), "red");
        }
        scols_print_table(tb);
        scols_unref_table(tb);
        return 0;
}
