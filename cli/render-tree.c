/* SPDX-License-Identifier: MIT */
/*
 * The call tree of a run, built from its stored batches: every span under its
 * parent, children in start order. Spans whose parent is not in the run
 * (started elsewhere, or lost) are shown as roots rather than hidden.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json-text.h"
#include "tree-print.h"
#include "wire.h"
#include "text.h"

struct tree {
        struct wire_spans spans;
        Ferret__Batch **batches;       /* the spans' strings point into these */
        size_t n_batches;
        size_t *order;                 /* span indices sorted by span id */
        size_t *child_start, *children; /* CSR: children of i are children[child_start[i]..child_start[i+1]) */
        size_t *roots, n_roots;
        struct wire_lost lost;         /* spans whose end was dropped, and their parents */
        size_t cycles_cut;             /* parent links cut (wire_cut_cycles) */
};

static struct wire_spans *sort_spans;

static int by_id(const void *a, const void *b)
{
        uint64_t x = sort_spans->spans[*(const size_t *)a].span_id, y = sort_spans->spans[*(const size_t *)b].span_id;
        return x < y ? -1 : x > y;
}

static int by_start(const void *a, const void *b)
{
        const struct wire_span *x = &sort_spans->spans[*(const size_t *)a], *y = &sort_spans->spans[*(const size_t *)b];
        if (x->start_ns != y->start_ns)
                return x->start_ns < y->start_ns ? -1 : 1;
        return x->span_id < y->span_id ? -1 : x->span_id > y->span_id;
}

/* Index of the span with @id, or SIZE_MAX. */
static size_t find(const struct tree *t, uint64_t id)
{
        size_t lo = 0, hi = t->spans.n;
        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                uint64_t v = t->spans.spans[t->order[mid]].span_id;
                if (v == id)
                        return t->order[mid];
                if (v < id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return SIZE_MAX;
}

static void tree_free(struct tree *t)
{
        for (size_t i = 0; i < t->n_batches; i++)
                ferret__batch__free_unpacked(t->batches[i], NULL);
        free(t->batches);
        wire_spans_free(&t->spans);
        free(t->order);
        free(t->child_start);
        free(t->children);
        free(t->roots);
        wire_lost_free(&t->lost);
}

static int tree_build(struct tree *t, ProtobufCBinaryData *const *batches, size_t n_batches)
{
        t->batches = calloc(n_batches + 1, sizeof(*t->batches));
        if (!t->batches)
                return -ENOMEM;
        for (size_t i = 0; i < n_batches; i++) {
                Ferret__Batch *b = wire_batch_unpack(batches[i]->data, batches[i]->len);
                if (!b)
                        return cli_error(EPROTO, "a stored batch does not decode, skipping the tree");
                t->batches[t->n_batches++] = b;
                if (b->spans && wire_spans_append(&t->spans, b->spans, b->process ? b->process->pid : 0, NULL) < 0)
                        return cli_error(EPROTO, "a stored batch is inconsistent, skipping the tree");
                if (wire_lost_add(&t->lost, b->spans) < 0)
                        return -ENOMEM;
        }

        size_t n = t->spans.n;
        uint32_t *parent = malloc((n + 1) * sizeof(*parent));
        t->order = malloc((n + 1) * sizeof(*t->order));
        t->child_start = calloc(n + 2, sizeof(*t->child_start));
        t->children = malloc((n + 1) * sizeof(*t->children));
        t->roots = malloc((n + 1) * sizeof(*t->roots));
        if (!parent || !t->order || !t->child_start || !t->children || !t->roots) {
                free(parent);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                t->order[i] = i;
        sort_spans = &t->spans;
        qsort(t->order, n, sizeof(*t->order), by_id);

        for (size_t i = 0; i < n; i++) {
                const struct wire_span *s = &t->spans.spans[i];
                size_t p = s->parent_id ? find(t, s->parent_id) : SIZE_MAX;
                if (p == SIZE_MAX && s->parent_id)     /* a child of a span that was dropped */
                        p = find(t, wire_lost_resolve(&t->lost, s->parent_id));
                parent[i] = p == SIZE_MAX || p == i ? WIRE_NO_PARENT : (uint32_t)p;
        }
        if (wire_cut_cycles(parent, n, &t->cycles_cut) < 0) {
                free(parent);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                if (parent[i] == WIRE_NO_PARENT)
                        t->roots[t->n_roots++] = i;
                else
                        t->child_start[parent[i] + 1]++;
        }
        for (size_t i = 0; i < n; i++)
                t->child_start[i + 1] += t->child_start[i];
        size_t *fill = calloc(n + 1, sizeof(*fill));
        if (!fill) {
                free(parent);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                if (parent[i] != WIRE_NO_PARENT)
                        t->children[t->child_start[parent[i]] + fill[parent[i]]++] = i;
        free(fill);
        free(parent);

        for (size_t i = 0; i < n; i++)
                qsort(t->children + t->child_start[i], t->child_start[i + 1] - t->child_start[i],
                      sizeof(*t->children), by_start);
        qsort(t->roots, t->n_roots, sizeof(*t->roots), by_start);
        return 0;
}

static void print_wire_tag(const struct wire_tag *tag)
{
        term_put(stdout, tag->key);
        switch (tag->type) {
        case FERRET__TAG_TYPE__TAG_STRING:
                putchar('=');
                term_put(stdout, tag->s);
                break;
        case FERRET__TAG_TYPE__TAG_INT:
                printf("=%lld", (long long)tag->i);
                break;
        case FERRET__TAG_TYPE__TAG_DOUBLE:
                printf("=%g", tag->d);
                break;
        default:
                printf("=%s", tag->i ? "true" : "false");
        }
}

static void print_span(const struct cli *cli, const struct tree *t, size_t i)
{
        const struct wire_span *s = &t->spans.spans[i];
        char dur[32];
        unsigned status = wire_span_status(s);
        fputs(color(cli, C_BOLD), stdout);
        term_put(stdout, s->name);
        printf("%s - %s%s%s", color(cli, C_RESET), color(cli, C_CYAN), format_duration(s->duration_ns, dur, sizeof(dur)),
               color(cli, C_RESET));
        if (s->flags & FERRET__SPAN_FLAG__SPAN_FLAG_ASYNC)
                printf(" (async)");
        if (s->flags & FERRET__SPAN_FLAG__SPAN_FLAG_UNWOUND)
                printf(" (unwound: left by a jump)");
        if (s->flags & FERRET__SPAN_FLAG__SPAN_FLAG_UNFINISHED)
                printf(" (unfinished)");
        print_status(cli, status, s->message);
        if (s->n_tags) {
                printf(" %s{", color(cli, C_DIM));
                for (uint32_t k = 0; k < s->n_tags; k++) {
                        if (k)
                                printf(", ");
                        print_wire_tag(&t->spans.tags[s->first_tag + k]);
                }
                printf("}%s", color(cli, C_RESET));
        }
        putchar('\n');
}

static void print_span_line(const struct cli *cli, const void *ctx, size_t i)
{
        print_span(cli, ctx, i);
}

static int print_text(const struct cli *cli, const struct tree *t, const Ferret__RunInfo *run)
{
        printf("%sRun ", color(cli, C_BOLD));
        term_put(stdout, run ? run->run : "?");
        printf("%s (%zu span%s)\n", color(cli, C_RESET), t->spans.n, t->spans.n == 1 ? "" : "s");
        if (t->cycles_cut)
                printf("%snote:%s %zu span%s were their own ancestors (a forged batch): shown as roots\n",
                       color(cli, C_YELLOW), color(cli, C_RESET), t->cycles_cut, t->cycles_cut == 1 ? "" : "s");
        struct tree_view v = {
                .roots = t->roots, .n_roots = t->n_roots, .child_start = t->child_start, .children = t->children,
                .print = print_span_line, .ctx = t,
        };
        return tree_print(cli, &v);
}

static json_t *tag_value(const struct wire_tag *tag)
{
        switch (tag->type) {
        case FERRET__TAG_TYPE__TAG_STRING: return json_text(tag->s);
        case FERRET__TAG_TYPE__TAG_INT: return json_integer(tag->i);
        case FERRET__TAG_TYPE__TAG_DOUBLE: return json_double(tag->d);
        default: return json_boolean(tag->i);
        }
}

/* One span, without its children (tree_print_json() adds them). */
static json_t *span_json(const void *ctx, size_t i)
{
        const struct tree *t = ctx;
        const struct wire_span *s = &t->spans.spans[i];
        char id[17];
        json_t *tags = json_object();
        for (uint32_t k = 0; k < s->n_tags; k++)
                json_set_text_key(tags, t->spans.tags[s->first_tag + k].key, tag_value(&t->spans.tags[s->first_tag + k]));
        snprintf(id, sizeof(id), "%016llx", (unsigned long long)s->span_id);
        json_t *o = json_pack("{s:o, s:s, s:o, s:o, s:s, s:s, s:i, s:i, s:o}", "name", json_text(s->name), "span_id", id,
                              "start_ns", json_uint(s->start_ns), "duration_ns", json_uint(s->duration_ns),
                              "status", wire_status_name(wire_span_status(s)),
                              "kind", s->flags & FERRET__SPAN_FLAG__SPAN_FLAG_ASYNC ? "async" : "sync",
                              "pid", (int)s->pid, "tid", (int)s->tid, "tags", tags);
        if (s->message)
                json_object_set_new(o, "message", json_text(s->message));
        /* The W3C trace id: what an OpenTelemetry backend finds the span by. */
        char trace[33];
        snprintf(trace, sizeof(trace), "%016llx%016llx", (unsigned long long)s->trace_hi, (unsigned long long)s->trace_lo);
        json_object_set_new(o, "trace_id", json_string(trace));
        if (s->flags & FERRET__SPAN_FLAG__SPAN_FLAG_UNWOUND)
                json_object_set_new(o, "unwound", json_true());
        if (s->flags & FERRET__SPAN_FLAG__SPAN_FLAG_UNFINISHED)
                json_object_set_new(o, "unfinished", json_true());
        return o;
}

int render_spans(const struct cli *cli, const Ferret__RunInfo *run, ProtobufCBinaryData *const *batches, size_t n)
{
        struct tree t = { 0 };
        int r = tree_build(&t, batches, n);
        if (r == -ENOMEM)
                r = cli_error(ENOMEM, "out of memory building the tree");
        if (r < 0)
                goto out;
        if (cli->json) {
                struct tree_view v = {
                        .roots = t.roots, .n_roots = t.n_roots, .child_start = t.child_start, .children = t.children,
                        .ctx = &t,
                };
                r = tree_print_json(&v, json_pack("{s:o, s:o}", "run", json_text(run ? run->run : ""), "cycles_cut",
                                                  json_uint(t.cycles_cut)), span_json);
        } else
                r = print_text(cli, &t, run);
out:
        tree_free(&t);
        return r;
}
