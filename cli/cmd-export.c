/* SPDX-License-Identifier: MIT */
/*
 * ferret export: a run in a format other tools open. folded: one line per
 * call path with self time, "root;child;leaf <self ns>", which flamegraph.pl,
 * inferno and speedscope read. It is made from the run's merged tree, which
 * ferretd builds from its call-path records, so its size and the memory it
 * takes grow with the run's distinct paths, never with its spans. A file
 * given with -o is written beside itself and renamed into place: a failed
 * export leaves nothing behind.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "options.h"

#define EXPORT_TIMEOUT_MS 60000

static const char usage[] =
        "Usage: ferret export [--run ID] --format FORMAT [-o FILE]\n"
        "Write a run in a format other tools open.\n\n"
        "  -r, --run ID            the run (default: the newest)\n"
        "  -F, --format FORMAT     folded: \"a;b;c SELF_NS\" lines, one a call path, for\n"
        "                          flamegraph.pl, inferno and speedscope\n"
        "  -o, --output FILE       write FILE (default: standard output)\n" COMMON_OPTIONS_HELP;

/* A frame's name in a folded line: ';' separates frames and the last space
 * the count, so ';' and line breaks become '_' (spaces may stay). */
static void put_frame(FILE *f, const char *name)
{
        for (const char *p = name; *p; p++)
                fputc(*p == ';' || *p == '\n' || *p == '\r' ? '_' : *p, f);
}

static void put_stack(FILE *f, const Ferret__TreeResponse *t, size_t i)
{
        int32_t up = t->nodes[i]->parent;
        if (up >= 0 && (size_t)up < i) {
                put_stack(f, t, (size_t)up);
                fputc(';', f);
        }
        put_frame(f, t->nodes[i]->name);
}

/* Nodes come parents first; a process node's own time is none of its spans'. */
static int write_folded(FILE *f, const Ferret__TreeResponse *t)
{
        for (size_t i = 0; i < t->n_nodes; i++) {
                const Ferret__TreeNode *n = t->nodes[i];
                if (n->process || !n->self_ns)
                        continue;
                put_stack(f, t, i);
                fprintf(f, " %llu\n", (unsigned long long)n->self_ns);
        }
        return ferror(f) ? -EIO : 0;
}

/* Writes @t to @path through a file beside it, renamed into place. */
static int write_file(const char *path, const Ferret__TreeResponse *t)
{
        char tmp[PATH_MAX];
        if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
                return cli_error(ENAMETOOLONG, "cannot write %s: the name is too long", path);
        int fd = mkstemp(tmp);
        if (fd < 0)
                return cli_error(errno, "cannot write %s: %m", path);
        FILE *f = fdopen(fd, "w");
        if (!f) {
                int e = errno;
                close(fd);
                unlink(tmp);
                return cli_error(e, "cannot write %s: %s", path, strerror(e));
        }
        int r = write_folded(f, t);
        if (fclose(f) != 0 && r == 0)
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                unlink(tmp);
                return cli_error(r, "cannot write %s: %s", path, strerror(-r));
        }
        return 0;
}

int cmd_export(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = {
                { "run", required_argument, NULL, 'r' },
                { "format", required_argument, NULL, 'F' },
                { "output", required_argument, NULL, 'o' },
                COMMON_OPTIONS,
                {},
        };
        const char *run = NULL, *format = NULL, *output = NULL;
        int c, r;
        cli_getopt_reset();
        while ((c = getopt_long(argc, argv, ":r:F:o:hj", opts, NULL)) >= 0) {
                switch (c) {
                case 'r':
                        run = optarg;
                        break;
                case 'F':
                        format = optarg;
                        break;
                case 'o':
                        output = optarg;
                        break;
                default:
                        r = cli_common_option(cli, c, argv, usage);
                        if (r <= 0)
                                return r;
                }
        }
        if (optind < argc)
                return cli_error(EINVAL, "unexpected argument '%s' (see ferret export --help)", argv[optind]);
        if (!format)
                return cli_error(EINVAL, "which format? --format folded");
        if (strcmp(format, "folded") != 0)
                return cli_error(EINVAL, "unknown format '%s' (there is folded)", format);

        Ferret__Request req = FERRET__REQUEST__INIT;
        Ferret__TreeRequest tree = FERRET__TREE_REQUEST__INIT;
        Ferret__Response *resp;
        char dir[PATH_MAX];
        tree.run = (char *)(run ? run : "");
        tree.focus = "";
        req.body_case = FERRET__REQUEST__BODY_TREE;
        req.tree = &tree;
        cli_find_runtime_dir(cli, dir, sizeof(dir));
        r = cli_request(dir, &req, EXPORT_TIMEOUT_MS, &resp);
        if (r < 0)
                return r;
        if (output)
                r = write_file(output, resp->tree);
        else if ((r = write_folded(stdout, resp->tree)) < 0)
                r = cli_error(r, "cannot write the output: %m");
        ferret__response__free_unpacked(resp, NULL);
        return r;
}
