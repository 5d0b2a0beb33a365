/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "options.h"
#include "picture.h"
#include "text.h"

const char *pic_duration(uint64_t ns, char *buf, size_t size)
{
        if (ns < 1000)
                snprintf(buf, size, "%" PRIu64 " ns", ns);
        else if (ns < 1000000)
                snprintf(buf, size, "%.2f \u00b5s", ns / 1e3);
        else if (ns < 1000000000)
                snprintf(buf, size, "%.2f ms", ns / 1e6);
        else
                snprintf(buf, size, "%.2f s", ns / 1e9);
        return buf;
}

const char *pic_color(const char *name, char *buf, size_t size)
{
        uint32_t h = 2166136261u;
        for (const unsigned char *p = (const unsigned char *)name; *p; p++)
                h = (h ^ *p) * 16777619u;
        /* Reds to yellows, as flame graphs are drawn, with enough spread in
         * saturation and lightness that neighbours differ. */
        snprintf(buf, size, "hsl(%u,%u%%,%u%%)", h % 50, 70 + (h >> 8) % 25, 55 + (h >> 16) % 14);
        return buf;
}

/* "1,234,567" */
static void put_count(FILE *f, uint64_t v)
{
        char digits[24];
        int n = snprintf(digits, sizeof(digits), "%" PRIu64, v);
        for (int i = 0; i < n; i++) {
                if (i && (n - i) % 3 == 0)
                        fputc(',', f);
                fputc(digits[i], f);
        }
}

void pic_run_header(FILE *f, const Ferret__RunInfo *run, uint64_t since_ns, uint64_t until_ns)
{
        char a[40], b[40];
        put_count(f, run->spans);
        fprintf(f, " span%s \u00b7 ", run->spans == 1 ? "" : "s");
        put_count(f, run->processes);
        fprintf(f, " process%s \u00b7 ", run->processes == 1 ? "" : "es");
        put_count(f, run->dropped);
        fprintf(f, " dropped \u00b7 %s from %s",
                pic_duration(run->last_ns > run->first_ns ? run->last_ns - run->first_ns : 0, a, sizeof(a)),
                format_time(run->first_ns, b, sizeof(b)));
        if (since_ns || until_ns) {
                fprintf(f, " \u00b7 spans that start from %s", since_ns ? format_time(since_ns, a, sizeof(a)) : "its start");
                fprintf(f, " until %s", until_ns ? format_time(until_ns, b, sizeof(b)) : "its end");
        }
}

void pic_label(FILE *f, const char *s, long chars)
{
        if (chars < 3)
                return;
        const unsigned char *p = (const unsigned char *)s;
        long n = 0;
        size_t bytes = 0, cut = 0;
        while (p[bytes]) {
                size_t k = utf8_sequence(p + bytes);
                bytes += k ? k : 1;
                if (++n == chars - 2)
                        cut = bytes;
        }
        if (n <= chars) {
                markup_put(f, s);
                return;
        }
        char buf[1100];
        if (cut >= sizeof(buf))
                cut = sizeof(buf) - 1;
        memcpy(buf, s, cut);
        buf[cut] = '\0';
        markup_put(f, buf);
        fputs("..", f);
}

int pic_parse_options(struct cli *cli, int argc, char **argv, const char *usage, struct pic_options *ret)
{
        enum { OPT_DB = 0x300 };
        static const struct option opts[] = {
                { "run", required_argument, NULL, 'r' },
                { "db", required_argument, NULL, OPT_DB },
                { "since", required_argument, NULL, 's' },
                { "until", required_argument, NULL, 'u' },
                { "output", required_argument, NULL, 'o' },
                COMMON_OPTIONS,
                {},
        };
        struct pic_options o = { 0 };
        uint64_t now_ns = wall_now_ns();
        int c, r;
        cli_getopt_reset();
        while ((c = getopt_long(argc, argv, ":r:s:u:o:hj", opts, NULL)) >= 0) {
                switch (c) {
                case 'r':
                        o.run = optarg;
                        break;
                case OPT_DB:
                        o.db = optarg;
                        break;
                case 'o':
                        o.output = optarg;
                        break;
                case 's':
                case 'u':
                        if (parse_window_bound(c == 's' ? "since" : "until", optarg, now_ns,
                                               c == 's' ? &o.since_ns : &o.until_ns, &o.whole_buckets) < 0)
                                return -EINVAL;
                        break;
                default:
                        r = cli_common_option(cli, c, argv, usage);
                        if (r <= 0)
                                return r;
                }
        }
        if (optind < argc)
                return cli_error(EINVAL, "unexpected argument '%s' (see ferret %s --help)", argv[optind], argv[0]);
        if (o.since_ns && o.until_ns && o.until_ns <= o.since_ns)
                return cli_error(EINVAL, "--until must come after --since");
        if ((!o.output || strcmp(o.output, "-") == 0) && isatty(STDOUT_FILENO))
                return cli_error(EINVAL, "not writing markup to a terminal: give -o FILE (or redirect the output)");
        *ret = o;
        return 1;
}

int pic_request_tree(const char *dir, const struct pic_options *o, Ferret__Response **ret)
{
        Ferret__Request req = FERRET__REQUEST__INIT;
        Ferret__TreeRequest tree = FERRET__TREE_REQUEST__INIT;
        tree.run = (char *)(o->run ? o->run : "");
        tree.focus = "";
        tree.since_ns = o->since_ns;
        tree.until_ns = o->until_ns;
        tree.whole_buckets = o->whole_buckets;
        tree.quantiles = true;
        req.body_case = FERRET__REQUEST__BODY_TREE;
        req.tree = &tree;
        return cli_request(dir, &req, 60000, ret);
}
