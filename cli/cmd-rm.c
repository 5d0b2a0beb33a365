/* SPDX-License-Identifier: MIT */
/* ferret rm: removes runs (spans, statistics and record) from the daemon. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>

#include "cli.h"
#include "options.h"

static const char usage[] =
        "Usage: ferret rm RUN [RUN...]\n"
        "Remove runs from the daemon's database: their spans, statistics and record.\n\n" COMMON_OPTIONS_HELP;

int cmd_rm(struct cli *cli, int argc, char **argv)
{
        char dir[PATH_MAX];
        int failed = 0;
        int r = cli_parse_common_options(cli, argc, argv, usage);
        if (r <= 0)
                return r;
        if (optind >= argc)
                return cli_error(EINVAL, "which run? (usage: ferret rm RUN [RUN...])");

        cli_find_runtime_dir(cli, dir, sizeof(dir));
        json_t *removed = json_array();
        for (int i = optind; i < argc; i++) {
                Ferret__Request req = FERRET__REQUEST__INIT;
                Ferret__RemoveRequest rm = FERRET__REMOVE_REQUEST__INIT;
                Ferret__Response *resp;
                rm.run = argv[i];
                req.body_case = FERRET__REQUEST__BODY_REMOVE;
                req.remove = &rm;
                r = cli_request(dir, &req, 150000, &resp);
                if (r < 0) {
                        failed = r;
                        if (r == -ECONNREFUSED)
                                break;
                        continue;
                }
                if (cli->json)
                        json_array_append_new(removed, json_string(argv[i]));
                else
                        printf("Removed run %s\n", argv[i]);
                ferret__response__free_unpacked(resp, NULL);
        }
        if (cli->json) {
                json_t *o = json_pack("{s:o}", "removed", removed);
                json_dumpf(o, stdout, JSON_INDENT(2));
                putchar('\n');
                json_decref(o);
        } else
                json_decref(removed);
        return failed;
}
