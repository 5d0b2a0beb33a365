/* SPDX-License-Identifier: MIT */
/*
 * ferret: the command line. One verb per file (cmd-*.c); this file holds the
 * verbs table and the options every verb shares.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "options.h"

struct verb {
        const char *name;
        int (*run)(struct cli *cli, int argc, char **argv);
        const char *summary;
};

static const struct verb verbs[] = {
        { "run", cmd_run, "run a program traced: ferret run [--db DB] PROG [ARGS...]" },
        { "query", cmd_query, "summary table or call tree of a run, from the daemon" },
        { "analyze", cmd_analyze, "the same, reading a database directory: ferret analyze DB [--tree]" },
        { "runs", cmd_runs, "list the runs the daemon holds" },
        { "diff", cmd_diff, "compare two runs: ferret diff RUN_A RUN_B [--fail-over PCT]" },
        { "flame", cmd_flame, "an interactive SVG flame graph of a run: ferret flame -o FILE.svg" },
        { "report", cmd_report, "one HTML page about a run (summary, flame graph, timeline): ferret report -o FILE.html" },
        { "export", cmd_export, "write a run for other tools: ferret export --format chrome|speedscope|folded" },
        { "rm", cmd_rm, "remove runs from the daemon's database" },
        { "status", cmd_status, "the daemon's health and counters" },
};

static void usage(FILE *f)
{
        fprintf(f, "Usage: ferret COMMAND [OPTION]...\n"
                   "Ferret: where did the time go? Spans recorded by programs, stored by ferretd.\n\n"
                   "Commands:\n");
        for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
                fprintf(f, "  %-9s %s\n", verbs[i].name, verbs[i].summary);
        fprintf(f, "\nEvery command takes --help, --json and --runtime-dir DIR.\n"
                   "Colour follows the terminal; NO_COLOR=1 turns it off.\n");
}

int cli_common_option(struct cli *cli, int c, char **argv, const char *usage_text)
{
        switch (c) {
        case OPT_JSON:
                cli->json = true;
                return 1;
        case OPT_RUNTIME_DIR:
                cli->runtime_dir = optarg;
                return 1;
        case OPT_HELP:
                fputs(usage_text, stdout);
                return 0;
        case ':':
                return cli_error(EINVAL, "option '%s' needs a value (see ferret %s --help)", argv[optind - 1], argv[0]);
        default:
                return cli_error(EINVAL, "unknown option '%s' (see ferret %s --help)", argv[optind - 1], argv[0]);
        }
}

int cli_parse_common_options(struct cli *cli, int argc, char **argv, const char *usage_text)
{
        static const struct option opts[] = { COMMON_OPTIONS, {} };
        int c, r;
        cli_getopt_reset();
        while ((c = getopt_long(argc, argv, ":hj", opts, NULL)) >= 0)
                if ((r = cli_common_option(cli, c, argv, usage_text)) <= 0)
                        return r;
        return 1;
}

int main(int argc, char **argv)
{
        struct cli cli = { 0 };
        cli_setup_output(&cli);

        if (argc < 2) {
                usage(stderr);
                return 2;
        }
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
                usage(stdout);
                return 0;
        }
        if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
                printf("ferret %s\n", FERRET_VERSION);
                return 0;
        }
        for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
                if (strcmp(argv[1], verbs[i].name) == 0) {
                        int r = verbs[i].run(&cli, argc - 1, argv + 1);
                        if (r == -EINVAL)
                                return 2;
                        return r < 0 ? 1 : r;
                }
        cli_error(EINVAL, "unknown command '%s' (see ferret --help)", argv[1]);
        return 2;
}
