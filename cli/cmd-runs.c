/* SPDX-License-Identifier: MIT */
/* ferret runs: the runs the daemon holds, newest first. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "json-text.h"
#include "options.h"
#include "table.h"
#include "text.h"

static const char usage[] =
        "Usage: ferret runs [--json]\n"
        "List the runs the daemon holds, newest first.\n\n" COMMON_OPTIONS_HELP;

static int runs_json(const Ferret__RunsResponse *runs)
{
        json_t *a = json_array();
        for (size_t i = 0; i < runs->n_runs; i++) {
                const Ferret__RunInfo *r = runs->runs[i];
                json_array_append_new(a, json_pack("{s:s, s:o, s:o, s:o, s:o, s:i}", "run", r->run,
                                                   "spans", json_uint(r->spans), "first_ns", json_uint(r->first_ns),
                                                   "last_ns", json_uint(r->last_ns), "dropped", json_uint(r->dropped),
                                                   "processes", (int)r->processes));
        }
        int r = json_dumpf(a, stdout, JSON_INDENT(2)) < 0 ? -EIO : 0;
        putchar('\n');
        json_decref(a);
        return r;
}

int cmd_runs(struct cli *cli, int argc, char **argv)
{
        char dir[PATH_MAX];
        int r = cli_parse_common_options(cli, argc, argv, usage);
        if (r <= 0)
                return r;
        if (optind < argc)
                return cli_error(EINVAL, "unexpected argument '%s' (see ferret runs --help)", argv[optind]);

        Ferret__Request req = FERRET__REQUEST__INIT;
        Ferret__RunsRequest runs_req = FERRET__RUNS_REQUEST__INIT;
        Ferret__Response *resp;
        req.body_case = FERRET__REQUEST__BODY_RUNS;
        req.runs = &runs_req;
        cli_find_runtime_dir(cli, dir, sizeof(dir));
        r = cli_request(dir, &req, 30000, &resp);
        if (r < 0)
                return r;

        const Ferret__RunsResponse *runs = resp->runs;
        if (cli->json)
                r = runs_json(runs);
        else if (!runs->n_runs)
                printf("No runs yet.\n");
        else {
                static const char *const headers[] = { "RUN", "SPANS", "PROCESSES", "DROPPED", "STARTED", "DURATION" };
                struct libscols_table *tb = table_new(cli, headers, 6);
                for (size_t i = 0; tb && i < runs->n_runs; i++) {
                        const Ferret__RunInfo *ri = runs->runs[i];
                        struct libscols_line *ln = scols_table_new_line(tb, NULL);
                        char buf[64];
                        char *copy;
                        scols_line_set_data(ln, 0, term_text(ri->run, &copy));
                        free(copy);
                        snprintf(buf, sizeof(buf), "%llu", (unsigned long long)ri->spans);
                        scols_line_set_data(ln, 1, buf);
                        snprintf(buf, sizeof(buf), "%u", ri->processes);
                        scols_line_set_data(ln, 2, buf);
                        snprintf(buf, sizeof(buf), "%llu", (unsigned long long)ri->dropped);
                        scols_line_set_data(ln, 3, buf);
                        scols_line_set_data(ln, 4, format_time(ri->first_ns, buf, sizeof(buf)));
                        scols_line_set_data(ln, 5, format_duration(ri->last_ns > ri->first_ns ? ri->last_ns - ri->first_ns : 0,
                                                                   buf, sizeof(buf)));
                }
                if (tb) {
                        scols_print_table(tb);
                        scols_unref_table(tb);
                } else
                        r = cli_error(ENOMEM, "out of memory");
        }
        ferret__response__free_unpacked(resp, NULL);
        return r;
}
