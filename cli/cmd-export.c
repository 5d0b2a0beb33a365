/* SPDX-License-Identifier: MIT */
/*
 * ferret export: a run in a format other tools open (export.h has the
 * writers). The output is written through out-file.h, so a failed export
 * leaves no file behind.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "export.h"
#include "options.h"
#include "out-file.h"
#include "source.h"

#define TREE_TIMEOUT_MS 60000

static const char usage[] =
        "Usage: ferret export [--run ID] [--db DB] --format FORMAT [-o FILE]\n"
        "       ferret export [--run ID] [--db DB] --format otlp --to URL [--service NAME]\n"
        "Write a run in a format other tools open, or send it to an OpenTelemetry collector.\n\n"
        "  -r, --run ID            the run (default: the newest)\n"
        "      --db DB             read the database directory DB (read-only), not the daemon\n"
        "  -F, --format FORMAT     chrome: Chrome trace-event JSON (Perfetto UI, chrome://tracing,\n"
        "                          speedscope); speedscope: speedscope's own format, a profile a\n"
        "                          thread; folded: \"a;b;c SELF_NS\" lines, one a call path\n"
        "                          (flamegraph.pl, inferno, speedscope); otlp: OTLP/HTTP\n"
        "                          protobuf, posted to --to\n"
        "  -o, --output FILE       write FILE (default: standard output)\n"
        "      --to URL            with otlp: the collector (http://HOST:4318; /v1/traces is added)\n"
        "      --service NAME      with otlp: service.name of every span (default: its program)\n" COMMON_OPTIONS_HELP;

static const char *const formats[] = { "chrome", "speedscope", "folded", "otlp" };

static int write_folded(const char *dir, const char *run, FILE *f)
{
        Ferret__Request req = FERRET__REQUEST__INIT;
        Ferret__TreeRequest tree = FERRET__TREE_REQUEST__INIT;
        Ferret__Response *resp;
        tree.run = (char *)(run ? run : "");
        tree.focus = "";
        req.body_case = FERRET__REQUEST__BODY_TREE;
        req.tree = &tree;
        int r = cli_request(dir, &req, TREE_TIMEOUT_MS, &resp);
        if (r < 0)
                return r;
        r = export_folded(resp->tree, f);
        ferret__response__free_unpacked(resp, NULL);
        return r;
}

int cmd_export(struct cli *cli, int argc, char **argv)
{
        enum { OPT_DB = 0x300, OPT_TO, OPT_SERVICE };
        static const struct option opts[] = {
                { "run", required_argument, NULL, 'r' },
                { "db", required_argument, NULL, OPT_DB },
                { "to", required_argument, NULL, OPT_TO },
                { "service", required_argument, NULL, OPT_SERVICE },
                { "format", required_argument, NULL, 'F' },
                { "output", required_argument, NULL, 'o' },
                COMMON_OPTIONS,
                {},
        };
        const char *run = NULL, *format = NULL, *output = NULL, *db = NULL, *to = NULL, *service = NULL;
        int c, r;
        cli_getopt_reset();
        while ((c = getopt_long(argc, argv, ":r:F:o:hj", opts, NULL)) >= 0) {
                switch (c) {
                case 'r':
                        run = optarg;
                        break;
                case OPT_DB:
                        db = optarg;
                        break;
                case OPT_TO:
                        to = optarg;
                        break;
                case OPT_SERVICE:
                        service = optarg;
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
                return cli_error(EINVAL, "which format? --format chrome, speedscope, folded or otlp");
        size_t which = 0;
        while (which < sizeof(formats) / sizeof(formats[0]) && strcmp(format, formats[which]) != 0)
                which++;
        if (which == sizeof(formats) / sizeof(formats[0]))
                return cli_error(EINVAL, "unknown format '%s' (there are chrome, speedscope, folded and otlp)", format);
        bool otlp = which == 3;
        if (otlp && (!to || output))
                return cli_error(EINVAL, "--format otlp sends the run to a collector: give --to URL (and no -o)");
        if (!otlp && (to || service))
                return cli_error(EINVAL, "--to and --service go with --format otlp");
        if (otlp) {
                struct source src;
                if ((r = source_open(cli, db, &src)) < 0)
                        return r;
                return source_close(&src, export_otlp(src.runtime_dir, run, to, service));
        }

        struct out_file out;
        struct source src;
        if ((r = out_file_open(output, &out)) < 0)
                return r;
        if ((r = source_open(cli, db, &src)) < 0)
                return out_file_close(&out, r);
        switch (which) {
        case 0:
                r = export_chrome(src.runtime_dir, run, out.f);
                break;
        case 1:
                r = export_speedscope(src.runtime_dir, run, out.f);
                break;
        default:
                r = write_folded(src.runtime_dir, run, out.f);
        }
        r = source_close(&src, r);
        return out_file_close(&out, r);
}
