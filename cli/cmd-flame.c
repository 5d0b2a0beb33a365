/* SPDX-License-Identifier: MIT */
/*
 * ferret flame: the run's merged call paths as an interactive SVG flame
 * graph (flame-svg.h), which any browser opens from disk.
 */
#include <stdio.h>

#include "cli.h"
#include "flame-svg.h"
#include "options.h"
#include "out-file.h"
#include "picture.h"
#include "source.h"

static const char usage[] =
        "Usage: ferret flame [--run ID] [--db DB] [--since WHEN] [--until WHEN] -o FILE.svg\n"
        "Write the run's call paths as an interactive flame graph: a frame's width is its\n"
        "total time; click to zoom, Search (or Ctrl+F) to highlight names. Read from the\n"
        "call-path statistics ferretd keeps, so it takes as long for any size of run.\n\n" PIC_OPTIONS_HELP
        "  -o, --output FILE       write FILE (default: standard output, if not a terminal)\n" COMMON_OPTIONS_HELP;

int cmd_flame(struct cli *cli, int argc, char **argv)
{
        struct pic_options o;
        struct out_file out;
        struct source src;
        Ferret__Response *resp = NULL;
        int r = pic_parse_options(cli, argc, argv, usage, &o);
        if (r <= 0)
                return r;
        if ((r = out_file_open(o.output, &out)) < 0)
                return r;
        if ((r = source_open(cli, o.db, &src)) < 0)
                return out_file_close(&out, r);
        r = pic_request_tree(src.runtime_dir, &o, &resp);
        if (r >= 0 && (r = flame_svg_write(out.f, resp->tree, true)) < 0)
                r = cli_error(r, "out of memory");
        r = source_close(&src, r);
        r = out_file_close(&out, r);
        if (r >= 0 && o.output)
                fprintf(stderr, "ferret: flame graph of run %s written to %s (%zu call paths)\n", resp->tree->run->run,
                        o.output, resp->tree->n_nodes);
        if (resp)
                ferret__response__free_unpacked(resp, NULL);
        return r;
}
