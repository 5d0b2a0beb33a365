/* SPDX-License-Identifier: MIT */
/* Options every verb takes; add COMMON_OPTIONS to a verb's getopt table. */
#pragma once

#include <getopt.h>

#include "cli.h"

enum {
        OPT_JSON = 'j',
        OPT_RUNTIME_DIR = 0x200,
        OPT_HELP = 'h',
};

#define COMMON_OPTIONS \
        { "json", no_argument, NULL, OPT_JSON }, \
        { "runtime-dir", required_argument, NULL, OPT_RUNTIME_DIR }, \
        { "help", no_argument, NULL, OPT_HELP }

#define COMMON_OPTIONS_HELP \
        "  -j, --json              machine-readable output\n" \
        "      --runtime-dir DIR   the daemon's socket directory\n" \
        "  -h, --help              show this help\n"

/* Handles a common option (or a getopt error) for verb argv[0]. Returns 1
 * to go on, 0 after --help, or -EINVAL after printing the error. */
int cli_common_option(struct cli *cli, int c, char **argv, const char *usage_text);

/* Parses the arguments of a verb that takes only the common options.
 * Returns 1 to go on (optind at the first other word), 0 after --help, or
 * -EINVAL after printing the error. */
int cli_parse_common_options(struct cli *cli, int argc, char **argv, const char *usage_text);

/* Starts getopt_long over a verb's arguments; errors are ours to print. */
static inline void cli_getopt_reset(void)
{
        optind = 1;
        opterr = 0;
}
