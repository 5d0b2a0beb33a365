/* SPDX-License-Identifier: MIT */
/*
 * The merged call tree: one line per call path. A path taken once reads like
 * the span it is ("name - 1.23 ms [error: ...] {tags}"); a path taken many
 * times shows its count and the total, average and maximum of its spans.
 * Self time (the time not spent in children) follows where there are
 * children.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "json-text.h"
#include "tree-print.h"
#include "text.h"

static void print_tag(const Ferret__Tag *tag)
{
        term_put(stdout, tag->key);
        switch (tag->value_case) {
        case FERRET__TAG__VALUE_S: putchar('='); term_put(stdout, tag->s); break;
        case FERRET__TAG__VALUE_I: printf("=%lld", (long long)tag->i); break;
        case FERRET__TAG__VALUE_D: printf("=%g", tag->d); break;
        default: printf("=%s", tag->b ? "true" : "false");
        }
}

struct merged_view {
        const Ferret__TreeResponse *t;
        const struct tree_shape *shape;
};

static void print_node(const struct cli *cli, const void *ctx, size_t i)
{
        const struct merged_view *v = ctx;
        const Ferret__TreeNode *n = v->t->nodes[i];
        bool has_children = v->shape->child_start[i + 1] > v->shape->child_start[i];
        char a[32], b[32], c[32];

        if (n->process) {
                fputs(color(cli, C_DIM), stdout);
                term_put(stdout, n->name);
                printf("%s - %s%s%s\n", color(cli, C_RESET), color(cli, C_CYAN), format_duration(n->total_ns, a, sizeof(a)),
                       color(cli, C_RESET));
                return;
        }
        fputs(color(cli, C_BOLD), stdout);
        term_put(stdout, n->name);
        fputs(color(cli, C_RESET), stdout);
        if (n->count == 1) {
                printf(" - %s%s%s", color(cli, C_CYAN), format_duration(n->total_ns, a, sizeof(a)), color(cli, C_RESET));
                if (n->async)
                        printf(" (async)");
                print_status(cli, n->status, n->message);
                if (n->n_tags) {
                        printf(" %s{", color(cli, C_DIM));
                        for (size_t k = 0; k < n->n_tags; k++) {
                                if (k)
                                        printf(", ");
                                print_tag(n->tags[k]);
                        }
                        printf("}%s", color(cli, C_RESET));
                }
        } else if (n->count == 0) {
                /* On the path to spans of a time window, itself outside it. */
                printf(" %s(began before the window)%s", color(cli, C_DIM), color(cli, C_RESET));
        } else {
                printf(" %s%s%llu%s - %s%s%s total, avg %s, max %s", color(cli, C_BOLD), cli->glyphs->times,
                       (unsigned long long)n->count,
                       color(cli, C_RESET), color(cli, C_CYAN), format_duration(n->total_ns, a, sizeof(a)),
                       color(cli, C_RESET), format_duration(n->total_ns / n->count, b, sizeof(b)),
                       format_duration(n->max_ns, c, sizeof(c)));
                if (n->errors)
                        printf(" %s[%llu error%s]%s", color(cli, C_RED), (unsigned long long)n->errors,
                               n->errors == 1 ? "" : "s", color(cli, C_RESET));
                if (n->warnings)
                        printf(" %s[%llu warning%s]%s", color(cli, C_YELLOW), (unsigned long long)n->warnings,
                               n->warnings == 1 ? "" : "s", color(cli, C_RESET));
        }
        if (has_children)
                printf(" %s(self %s)%s", color(cli, C_DIM), format_duration(n->self_ns, a, sizeof(a)), color(cli, C_RESET));
        putchar('\n');
}

static json_t *tag_json(const Ferret__Tag *tag)
{
        switch (tag->value_case) {
        case FERRET__TAG__VALUE_S: return json_text(tag->s);
        case FERRET__TAG__VALUE_I: return json_integer(tag->i);
        case FERRET__TAG__VALUE_D: return json_double(tag->d);
        default: return json_boolean(tag->b);
        }
}

/* One call path, without its children (tree_print_json() adds them). */
static json_t *node_json(const void *ctx, size_t i)
{
        static const char *const status[] = { "ok", "warning", "error" };
        const Ferret__TreeResponse *t = ctx;
        const Ferret__TreeNode *n = t->nodes[i];
        json_t *o = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:i}", "name", json_text(n->name),
                              "count", json_uint(n->count), "total_ns", json_uint(n->total_ns),
                              "avg_ns", json_uint((n->count ? n->total_ns / n->count : 0)),
                              "min_ns", json_uint(n->min_ns), "max_ns", json_uint(n->max_ns),
                              "self_ns", json_uint(n->self_ns), "errors", json_uint(n->errors),
                              "warnings", json_uint(n->warnings), "start_ns", json_uint(n->start_ns),
                              "pid", (int)n->pid);
        if (n->process)
                json_object_set_new(o, "process", json_true());
        else if (n->count == 1) {
                /* The one span's own fields, as --expand gives them. */
                json_t *tags = json_object();
                for (size_t k = 0; k < n->n_tags; k++)
                        json_set_text_key(tags, n->tags[k]->key, tag_json(n->tags[k]));
                json_object_set_new(o, "duration_ns", json_uint(n->total_ns));
                json_object_set_new(o, "status", json_string(status[n->status <= 2 ? n->status : 0]));
                json_object_set_new(o, "kind", json_string(n->async ? "async" : "sync"));
                json_object_set_new(o, "tid", json_integer(n->tid));
                json_object_set_new(o, "tags", tags);
                if (n->message && *n->message)
                        json_object_set_new(o, "message", json_text(n->message));
        }
        return o;
}

int render_merged(const struct cli *cli, const Ferret__TreeResponse *t)
{
        int64_t *parent = malloc((t->n_nodes + 1) * sizeof(*parent));
        struct tree_shape shape;
        if (!parent)
                return cli_error(ENOMEM, "out of memory");
        for (size_t i = 0; i < t->n_nodes; i++)
                parent[i] = t->nodes[i]->parent;
        int r = tree_shape_from_parents(parent, t->n_nodes, &shape);
        free(parent);
        if (r < 0)
                return cli_error(ENOMEM, "out of memory");

        if (cli->json) {
                struct tree_view view = {
                        .roots = shape.roots, .n_roots = shape.n_roots, .child_start = shape.child_start,
                        .children = shape.children, .ctx = t,
                };
                json_t *head = json_pack("{s:o, s:o, s:o, s:s}", "run", json_text(t->run ? t->run->run : ""),
                                         "hidden", json_uint(t->hidden), "cycles_cut", json_uint(t->cycles_cut),
                                         "built_from", !t->from_paths                      ? "spans"
                                                       : t->since_ns || t->until_ns ? "time buckets"
                                                                                    : "call paths");
                if (t->since_ns || t->until_ns) {
                        json_object_set_new(head, "since_ns", json_uint(t->since_ns));
                        json_object_set_new(head, "until_ns", json_uint(t->until_ns));
                }
                r = tree_print_json(&view, head, node_json);
        } else {
                uint64_t spans = t->run ? t->run->spans : 0;
                printf("%sRun ", color(cli, C_BOLD));
                term_put(stdout, t->run ? t->run->run : "?");
                printf("%s (%llu span%s, %zu call path%s", color(cli, C_RESET), (unsigned long long)spans,
                       spans == 1 ? "" : "s", t->n_nodes, t->n_nodes == 1 ? "" : "s");
                if (t->hidden)
                        printf(", %llu more hidden by --depth or --min-duration", (unsigned long long)t->hidden);
                printf(")\n");
                if (t->cycles_cut)
                        printf("%snote:%s %llu span%s were their own ancestors (a forged batch): shown as roots\n",
                               color(cli, C_YELLOW), color(cli, C_RESET), (unsigned long long)t->cycles_cut,
                               t->cycles_cut == 1 ? "" : "s");
                struct merged_view v = { t, &shape };
                struct tree_view view = {
                        .roots = shape.roots, .n_roots = shape.n_roots, .child_start = shape.child_start,
                        .children = shape.children, .print = print_node, .ctx = &v,
                };
                r = tree_print(cli, &view);
        }
        tree_shape_free(&shape);
        return r;
}
