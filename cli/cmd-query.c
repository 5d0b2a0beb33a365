/* SPDX-License-Identifier: MIT */
/*
 * ferret query: a run's summary table or call tree, from the daemon.
 * ferret analyze DB: the same on a database directory, through a private
 * read-only daemon, so the command never links the storage code itself.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "options.h"
#include "source.h"

#define QUERY_TIMEOUT_MS 60000

#define QUERY_OPTIONS_HELP \
        "  -r, --run ID            the run to show (default: the newest)\n" \
        "  -a, --all               every run, statistics merged by name\n" \
        "  -t, --tree              the call tree instead of the summary table: spans with\n" \
        "                          the same call path merged into one line (name x3)\n" \
        "  -e, --expand            with --tree: every span on its own line\n" \
        "  -d, --depth N           with --tree: show N levels\n" \
        "  -m, --min-duration D    with --tree: hide call paths whose total is below D\n" \
        "                          (e.g. 1ms, 250us, 2s)\n" \
        "  -f, --focus NAME        with --tree: only the subtrees rooted at spans named NAME\n" \
        "      --from-spans        with --tree: build the tree from the spans themselves, not\n" \
        "                          from the call-path statistics kept as they were stored\n" \
        "                          (slower; a check of those, and what older runs get)\n" \
        "  -s, --since WHEN        only spans that start at WHEN or later: a time back from\n" \
        "                          now (5m, 2h, 1d), a local time (2026-12-04 10:30, 10:30)\n" \
        "                          or @SECONDS since the epoch\n" \
        "  -u, --until WHEN        only spans that start before WHEN\n"

static const char query_usage[] =
        "Usage: ferret query [--run ID | --all] [--since WHEN] [--until WHEN]\n"
        "                    [--tree [--expand | --depth N | --min-duration D | --focus NAME]] [--json]\n"
        "Show where a run's time went: per span name, count, total, min, avg, p50, p95,\n"
        "p99, max and errors, sorted by total time; or the call tree with --tree.\n\n"
        QUERY_OPTIONS_HELP COMMON_OPTIONS_HELP;

static const char analyze_usage[] =
        "Usage: ferret analyze DB [--run ID | --all] [--since WHEN] [--until WHEN]\n"
        "                         [--tree [--expand | --depth N | --min-duration D | --focus NAME]] [--json]\n"
        "Like ferret query, reading the database directory DB directly (read-only,\n"
        "also while a daemon writes to it).\n\n"
        QUERY_OPTIONS_HELP COMMON_OPTIONS_HELP;

static int parse(struct cli *cli, int argc, char **argv, const char *usage, struct query_options *o,
                 const char **ret_db)
{
        static const struct option opts[] = {
                { "run", required_argument, NULL, 'r' },
                { "all", no_argument, NULL, 'a' },
                { "tree", no_argument, NULL, 't' },
                { "expand", no_argument, NULL, 'e' },
                { "depth", required_argument, NULL, 'd' },
                { "min-duration", required_argument, NULL, 'm' },
                { "focus", required_argument, NULL, 'f' },
                { "since", required_argument, NULL, 's' },
                { "until", required_argument, NULL, 'u' },
                { "from-spans", no_argument, NULL, 'S' },
                COMMON_OPTIONS,
                {},
        };
        int c, r;
        bool tree_option = false;
        cli_getopt_reset();
        uint64_t now_ns = wall_now_ns();
        while ((c = getopt_long(argc, argv, ":r:ated:m:f:s:u:hj", opts, NULL)) >= 0) {
                switch (c) {
                case 's':
                case 'u':
                        if (parse_window_bound(c == 's' ? "since" : "until", optarg, now_ns,
                                               c == 's' ? &o->since_ns : &o->until_ns, &o->whole_buckets) < 0)
                                return -EINVAL;
                        break;
                case 'e':
                        o->expand = tree_option = true;
                        break;
                case 'd': {
                        unsigned long depth;
                        if (parse_count(optarg, UINT32_MAX, &depth) < 0)
                                return cli_error(EINVAL, "--depth takes a number of levels, 1 or more, not '%s'", optarg);
                        o->depth = (uint32_t)depth;
                        tree_option = true;
                        break;
                }
                case 'm':
                        if (parse_duration(optarg, &o->min_duration_ns) < 0)
                                return cli_error(EINVAL, "--min-duration takes a duration such as 1ms, 250us or 2s, not '%s'",
                                                 optarg);
                        tree_option = true;
                        break;
                case 'f':
                        o->focus = optarg;
                        tree_option = true;
                        break;
                case 'S':
                        o->from_spans = tree_option = true;
                        break;
                case 'r':
                        o->run = optarg;
                        break;
                case 'a':
                        o->all = true;
                        break;
                case 't':
                        o->tree = true;
                        break;
                default:
                        r = cli_common_option(cli, c, argv, usage);
                        if (r <= 0)
                                return r;
                }
        }
        if (o->all && o->run)
                return cli_error(EINVAL, "--run and --all exclude each other");
        if (o->all && o->tree)
                return cli_error(EINVAL, "--tree shows one run; drop --all or name the run with --run");
        if (tree_option && !o->tree)
                return cli_error(EINVAL, "--expand, --depth, --min-duration, --focus and --from-spans go with --tree");
        if (o->since_ns && o->until_ns && o->until_ns <= o->since_ns)
                return cli_error(EINVAL, "--until must come after --since");
        if ((o->since_ns || o->until_ns) && (o->all || o->expand))
                return cli_error(EINVAL, "--since and --until go with one run's summary or merged tree, not --all or --expand");
        if (o->expand && (o->depth || o->min_duration_ns || o->focus || o->from_spans))
                return cli_error(EINVAL, "--expand shows every span; --depth, --min-duration and --focus apply to the merged tree");
        if (ret_db) {
                if (optind >= argc)
                        return cli_error(EINVAL, "which database? (usage: ferret analyze DB)");
                *ret_db = argv[optind++];
        }
        if (optind < argc)
                return cli_error(EINVAL, "unexpected argument '%s' (see ferret %s --help)", argv[optind], argv[0]);
        return 1;
}

/* --expand comes in chunks: ask again from the cursor until it is 0. */
static int tree_expanded(struct cli *cli, const char *dir, const struct query_options *o)
{
        Ferret__Response **parts = NULL;
        ProtobufCBinaryData **batches = NULL;
        size_t n_parts = 0, n_batches = 0;
        uint64_t cursor = 0;
        char run[256] = "";
        int r;
        if (o->run)
                snprintf(run, sizeof(run), "%s", o->run);
        do {
                Ferret__Request req = FERRET__REQUEST__INIT;
                Ferret__TreeRequest tree = FERRET__TREE_REQUEST__INIT;
                Ferret__Response *resp;
                tree.run = run;
                tree.expand = true;
                tree.cursor = cursor;
                req.body_case = FERRET__REQUEST__BODY_TREE;
                req.tree = &tree;
                r = cli_request(dir, &req, QUERY_TIMEOUT_MS, &resp);
                if (r < 0)
                        goto out;
                Ferret__Response **p = realloc(parts, (n_parts + 1) * sizeof(*p));
                ProtobufCBinaryData **b = realloc(batches, (n_batches + resp->tree->n_batches + 1) * sizeof(*b));
                if (p)
                        parts = p;
                if (b)
                        batches = b;
                if (!p || !b) {
                        r = cli_error(ENOMEM, "out of memory");
                        ferret__response__free_unpacked(resp, NULL);
                        goto out;
                }
                parts[n_parts++] = resp;
                for (size_t i = 0; i < resp->tree->n_batches; i++)
                        batches[n_batches++] = &resp->tree->batches[i];
                cursor = resp->tree->next_cursor;
                /* The next chunks come from the same run, even if a newer
                 * one starts meanwhile. */
                if (resp->tree->run)
                        snprintf(run, sizeof(run), "%s", resp->tree->run->run);
        } while (cursor);
        r = render_spans(cli, parts[0]->tree->run, batches, n_batches);
out:
        for (size_t i = 0; i < n_parts; i++)
                ferret__response__free_unpacked(parts[i], NULL);
        free(parts);
        free(batches);
        return r;
}

int query_execute(struct cli *cli, const char *dir, const struct query_options *o)
{
        Ferret__Request req = FERRET__REQUEST__INIT;
        Ferret__SummaryRequest summary = FERRET__SUMMARY_REQUEST__INIT;
        Ferret__TreeRequest tree = FERRET__TREE_REQUEST__INIT;
        Ferret__Response *resp;

        if (o->tree && o->expand)
                return tree_expanded(cli, dir, o);
        if (o->tree) {
                tree.run = (char *)(o->run ? o->run : "");
                tree.depth = o->depth;
                tree.min_duration_ns = o->min_duration_ns;
                tree.focus = (char *)(o->focus ? o->focus : "");
                tree.since_ns = o->since_ns;
                tree.until_ns = o->until_ns;
                tree.from_spans = o->from_spans;
                tree.whole_buckets = o->whole_buckets;
                req.body_case = FERRET__REQUEST__BODY_TREE;
                req.tree = &tree;
        } else {
                summary.run = (char *)(o->run ? o->run : "");
                summary.all = o->all;
                summary.since_ns = o->since_ns;
                summary.until_ns = o->until_ns;
                summary.whole_buckets = o->whole_buckets;
                req.body_case = FERRET__REQUEST__BODY_SUMMARY;
                req.summary = &summary;
        }
        int r = cli_request(dir, &req, QUERY_TIMEOUT_MS, &resp);
        if (r < 0)
                return r;
        if (!cli->json && (o->since_ns || o->until_ns) && !resp->error) {
                /* The window answered: widened to whole time buckets when
                 * a bound was relative and the run has them. */
                uint64_t since = o->since_ns, until = o->until_ns;
                if (o->tree && resp->tree)
                        since = resp->tree->since_ns, until = resp->tree->until_ns;
                else if (!o->tree && resp->summary)
                        since = resp->summary->since_ns, until = resp->summary->until_ns;
                char from[32], to[32];
                printf("spans that start from %s until %s (the run's header counts all of them)\n",
                       since ? format_time(since, from, sizeof(from)) : "its start",
                       until ? format_time(until, to, sizeof(to)) : "its end");
        }
        r = o->tree ? render_merged(cli, resp->tree) : render_summary(cli, resp->summary);
        ferret__response__free_unpacked(resp, NULL);
        return r;
}

int cmd_query(struct cli *cli, int argc, char **argv)
{
        struct query_options o = { 0 };
        char dir[PATH_MAX];
        int r = parse(cli, argc, argv, query_usage, &o, NULL);
        if (r <= 0)
                return r;
        cli_find_runtime_dir(cli, dir, sizeof(dir));
        return query_execute(cli, dir, &o);
}

int cmd_analyze(struct cli *cli, int argc, char **argv)
{
        struct query_options o = { 0 };
        struct source src;
        const char *db;
        int r = parse(cli, argc, argv, analyze_usage, &o, &db);
        if (r <= 0)
                return r;
        r = source_open(cli, db, &src);
        if (r < 0)
                return r;
        r = query_execute(cli, src.runtime_dir, &o);
        return source_close(&src, r);
}
