/* SPDX-License-Identifier: MIT */
/*
 * Building a merged tree takes three passes over a run. The first reads its
 * batches and keeps a compact record of every span (ids, name number,
 * times). The second links spans to parents through a hash of span ids and
 * computes each span's self time. The third walks the spans depth first,
 * parents before children and siblings in start order, folding each span
 * into the node of (its parent's node, its name). Details of single spans
 * (tags, status) are decoded again only for nodes that hold one span.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "map.h"
#include "path.h"
#include "tree.h"
#include "wire.h"

#define NONE UINT32_MAX
#define PROCESS_NAME UINT32_MAX

struct cspan {
        uint64_t id, parent_id, start, dur, self;
        uint64_t path, parent_path;   /* call paths, 0 if the client sent none */
        uint32_t node;                /* the node it was folded into, NONE if none */
        uint64_t dur_for_parent;      /* dur less its suspensions' (see tree_build) */
        uint32_t name, pid, tid, batch, index;
        uint32_t flags;
};

struct mnode {
        uint32_t parent;              /* node index, NONE for a root */
        uint32_t name;                /* name number, PROCESS_NAME for a process node */
        uint32_t depth;
        uint32_t first_child, last_child, next_sibling;
        uint32_t pid;
        uint32_t exemplar;            /* the first span folded in */
        uint64_t count, total, self, min, max, errors, warnings, start;
        uint64_t in_subtree;          /* spans folded here and below: 0 hides a node outside the window */
        size_t first_duration;        /* its spans' durations, sorted: merged_tree.durations[first .. first + count) */
};

struct merged_tree {
        struct cspan *spans;
        size_t n, cap;
        char **names;
        size_t n_names, cap_names;
        struct strmap name_index;     /* name -> number + 1 */
        ProtobufCBinaryData *batches; /* raw copies, decoded again for details */
        Ferret__Batch **decoded;      /* lazily, for details */
        size_t n_batches, cap_batches;

        struct mnode *nodes;
        size_t n_nodes, cap_nodes;

        Ferret__TreeNode *out;
        Ferret__TreeNode **out_ptrs;
        size_t n_out;
        uint64_t hidden;
        size_t cycles_cut;            /* parent links cut (wire_cut_cycles) */
        uint64_t *durations;          /* the spans' durations, by node, each node's sorted */
        char **labels;                /* process node names we allocated */
        size_t n_labels;
        Ferret__Tag *tags;            /* all details' tags */
        Ferret__Tag **tag_ptrs;
        size_t n_tags, cap_tags;
        struct wire_spans scratch;
        struct wire_lost lost;        /* spans whose end was dropped, and their parents */
        struct wire_decoder decoder;
};

static int64_t name_number(struct merged_tree *t, const char *name)
{
        void *v = strmap_get(&t->name_index, name);
        if (v)
                return (int64_t)(uintptr_t)v - 1;
        if (wire_grow((void **)&t->names, &t->cap_names, t->n_names + 1, sizeof(*t->names)) < 0)
                return -ENOMEM;
        char *copy = strdup(name);
        if (!copy || strmap_put(&t->name_index, name, (void *)(uintptr_t)(t->n_names + 1)) < 0) {
                free(copy);
                return -ENOMEM;
        }
        t->names[t->n_names] = copy;
        return (int64_t)t->n_names++;
}

/* First pass: one compact record per span. */
static int visit_batch(const void *value, size_t value_len, void *userdata)
{
        struct merged_tree *t = userdata;
        if (wire_grow((void **)&t->batches, &t->cap_batches, t->n_batches + 1, sizeof(*t->batches)) < 0)
                return -ENOMEM;
        uint8_t *copy = malloc(value_len ? value_len : 1);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, value, value_len);
        uint32_t b = (uint32_t)t->n_batches;
        t->batches[t->n_batches++] = (ProtobufCBinaryData){ .len = value_len, .data = copy };

        Ferret__Batch *batch;
        if (wire_batch_decode(&t->decoder, value, value_len, &batch) < 0)
                return 0;       /* validated at ingest; a damaged one is skipped */
        wire_spans_clear(&t->scratch);
        int r = wire_lost_add(&t->lost, batch->spans);
        if (r < 0)
                return r;
        if (batch->spans && wire_spans_append(&t->scratch, batch->spans, batch->process ? batch->process->pid : 0,
                                              NULL) == 0 &&
            wire_grow((void **)&t->spans, &t->cap, t->n + t->scratch.n, sizeof(*t->spans)) == 0) {
                for (size_t i = 0; i < t->scratch.n; i++) {
                        const struct wire_span *w = &t->scratch.spans[i];
                        int64_t name = name_number(t, w->name);
                        if (name < 0) {
                                r = -ENOMEM;
                                break;
                        }
                        t->spans[t->n++] = (struct cspan){
                                .id = w->span_id, .parent_id = w->parent_id, .start = w->start_ns,
                                .dur = w->duration_ns, .path = w->path, .parent_path = w->parent_path, .name = (uint32_t)name, .pid = w->pid,
                                .tid = w->tid,
                                .batch = b, .index = (uint32_t)i, .flags = w->flags, .node = NONE,
                        };
                }
        }
        return r;
}

static struct cspan *sort_base;

static int by_start(const void *a, const void *b)
{
        const struct cspan *x = &sort_base[*(const uint32_t *)a], *y = &sort_base[*(const uint32_t *)b];
        if (x->start != y->start)
                return x->start < y->start ? -1 : 1;
        return x->id < y->id ? -1 : x->id > y->id;
}

/* Finds or creates the node (parent, name). */
static int64_t node_for(struct merged_tree *t, struct u64map *keys, uint32_t parent, uint32_t name, uint32_t pid)
{
        /* 0 is the map's empty key: keys start at 1. */
        uint64_t key = (((uint64_t)(parent == NONE ? 0 : parent + 1) << 32) | name) + 1, found;
        if (name == PROCESS_NAME)
                key = ((uint64_t)1 << 63) | pid;
        if (u64map_get(keys, key, &found))
                return (int64_t)found - 1;
        if (wire_grow((void **)&t->nodes, &t->cap_nodes, t->n_nodes + 1, sizeof(*t->nodes)) < 0 ||
            u64map_put(keys, key, t->n_nodes + 1) < 0)
                return -ENOMEM;
        uint32_t i = (uint32_t)t->n_nodes++;
        t->nodes[i] = (struct mnode){
                .parent = parent, .name = name, .pid = pid, .depth = parent == NONE ? 0 : t->nodes[parent].depth + 1,
                .first_child = NONE, .last_child = NONE, .next_sibling = NONE, .exemplar = NONE,
                .min = UINT64_MAX, .start = UINT64_MAX,
        };
        if (parent != NONE) {
                if (t->nodes[parent].last_child == NONE)
                        t->nodes[parent].first_child = i;
                else
                        t->nodes[t->nodes[parent].last_child].next_sibling = i;
                t->nodes[parent].last_child = i;
        }
        return i;
}

static void fold(struct mnode *m, const struct cspan *s, uint32_t index)
{
        if (m->exemplar == NONE)
                m->exemplar = index;
        m->count++;
        m->total += s->dur;
        m->self += s->self;
        m->min = s->dur < m->min ? s->dur : m->min;
        m->max = s->dur > m->max ? s->dur : m->max;
        m->start = s->start < m->start ? s->start : m->start;
        unsigned status = s->flags & FERRET__SPAN_FLAG__SPAN_FLAG_STATUS_MASK;
        m->errors += status == WIRE_STATUS_ERROR;
        m->warnings += status == WIRE_STATUS_WARNING;
}

static bool in_window(const struct tree_options *o, const struct cspan *s)
{
        return s->start >= o->since_ns && (!o->until_ns || s->start < o->until_ns);
}

static int compare_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

/* Each node's durations, sorted, side by side: exact percentiles, at 8
 * bytes a span for the query's time (a histogram a node would cost up to
 * 59 KiB a node, which a forged batch can make by the thousand). Process
 * nodes have none (their spans are their children's). */
static int gather_durations(struct merged_tree *t)
{
        size_t total = 0;
        for (size_t i = 0; i < t->n_nodes; i++) {
                t->nodes[i].first_duration = total;
                if (t->nodes[i].name != PROCESS_NAME)
                        total += t->nodes[i].count;
        }
        t->durations = malloc((total + 1) * sizeof(*t->durations));
        size_t *fill = calloc(t->n_nodes + 1, sizeof(*fill));
        if (!t->durations || !fill) {
                free(fill);
                return -ENOMEM;
        }
        for (size_t i = 0; i < t->n; i++) {
                uint32_t node = t->spans[i].node;
                if (node != NONE)
                        t->durations[t->nodes[node].first_duration + fill[node]++] = t->spans[i].dur;
        }
        free(fill);
        for (size_t i = 0; i < t->n_nodes; i++)
                if (t->nodes[i].name != PROCESS_NAME)
                        qsort(t->durations + t->nodes[i].first_duration, t->nodes[i].count, sizeof(uint64_t),
                              compare_u64);
        return 0;
}

/* The value at quantile @q of @n sorted values, by nearest rank. */
static uint64_t sorted_quantile(const uint64_t *v, size_t n, double q)
{
        if (!n)
                return 0;
        double rank = ceil(q * (double)n);
        size_t k = rank < 1 ? 0 : (size_t)rank - 1;
        return v[k < n ? k : n - 1];
}

/* A distribution-free 95% interval of quantile @q, as the summary's
 * (hist_quantile_interval), from the sorted values themselves. */
static void sorted_interval(const uint64_t *v, size_t n, double q, uint64_t *ret_low, uint64_t *ret_high)
{
        double dn = (double)n, d = n ? 1.96 * sqrt(q * (1 - q) / dn) : 1;
        *ret_low = (q - d) * dn >= 1 ? sorted_quantile(v, n, q - d) : 0;
        *ret_high = (q + d) * dn <= dn - 1 ? sorted_quantile(v, n, q + d) : UINT64_MAX;
}

struct frame {
        uint32_t span;
        uint32_t node;                /* the node of the span's parent, NONE at top */
        bool in_focus;
};

/* Whether child @c began before its parent @p ended: else it is work
 * handed on (to another thread) after the parent was done, none of the
 * parent's time, and it reaches ferretd after the parent, whose self time
 * ingest.c has counted without it. */
static bool began_within(const struct cspan *c, const struct cspan *p)
{
        return c->start < p->start + p->dur;
}

/* Second and third passes. */
static int merge(struct merged_tree *t, const struct tree_options *o)
{
        int r = -ENOMEM;
        size_t n = t->n;
        struct u64map ids = { 0 }, keys = { 0 }, first_of_path = { 0 };
        uint32_t *parent = malloc((n + 1) * sizeof(*parent));
        uint32_t *place = malloc((n + 1) * sizeof(*place));   /* where it is shown: parent, or see below */
        uint32_t *child_start = calloc(n + 2, sizeof(*child_start));
        uint32_t *children = malloc((n + 1) * sizeof(*children));
        uint32_t *roots = malloc((n + 1) * sizeof(*roots));
        uint32_t *fill = calloc(n + 1, sizeof(*fill));
        struct frame *stack = malloc((n + 1) * sizeof(*stack));
        size_t n_roots = 0;
        if (!parent || !place || !child_start || !children || !roots || !fill || !stack)
                goto out;

        for (size_t i = 0; i < n; i++)
                if (t->spans[i].id && u64map_put(&ids, t->spans[i].id, i + 1) < 0)   /* 0: stored before ingest refused it */
                        goto out;
        for (size_t i = n; i-- > 0;)   /* the first span of each path */
                if (t->spans[i].path && u64map_put(&first_of_path, t->spans[i].path, i + 1) < 0)
                        goto out;
        for (size_t i = 0; i < n; i++) {
                uint64_t p, pid = t->spans[i].parent_id;
                place[i] = NONE;
                if (pid && !u64map_get(&ids, pid, &p)) {
                        /* Its parent was not stored (its end was dropped, or
                         * it is still open): its time is its nearest stored
                         * ancestor's children's, and it is shown under the
                         * first stored span of its parent's call path, or of
                         * the nearest dropped ancestor's path that has one,
                         * as paths.c keeps it; else under that ancestor. */
                        uint64_t want = t->spans[i].parent_path, up, lost_path;
                        if (want == path_foreign(pid) && wire_lost_find(&t->lost, pid, &up, &lost_path) && lost_path)
                                want = lost_path;       /* known by id only, and lost */
                        for (int step = 0; step < 64 && want; step++) {
                                if (u64map_get(&first_of_path, want, &p) && p - 1 != i) {
                                        place[i] = (uint32_t)(p - 1);
                                        break;
                                }
                                if (!wire_lost_path_parent(&t->lost, want, &want))
                                        break;
                        }
                        pid = wire_lost_resolve(&t->lost, pid);
                }
                parent[i] = pid && u64map_get(&ids, pid, &p) && p - 1 != i ? (uint32_t)(p - 1) : NONE;
                if (place[i] == NONE)
                        place[i] = parent[i];
        }
        size_t cut_placed;
        if (wire_cut_cycles(parent, n, &t->cycles_cut) < 0 || wire_cut_cycles(place, n, &cut_placed) < 0)
                goto out;
        for (size_t i = 0; i < n; i++) {
                if (place[i] == NONE)
                        roots[n_roots++] = (uint32_t)i;
                else
                        child_start[place[i] + 1]++;
        }
        for (size_t i = 0; i < n; i++)
                child_start[i + 1] += child_start[i];
        /* Self time: duration less the children's time, where a child that
         * was suspended (a generator) counts only while it was not: first
         * each span's suspended time, then what it counts for its parent. */
        for (size_t i = 0; i < n; i++)
                if (parent[i] != NONE && (t->spans[i].flags & FERRET__SPAN_FLAG__SPAN_FLAG_SUSPENSION))
                        t->spans[parent[i]].self += t->spans[i].dur;
        for (size_t i = 0; i < n; i++) {
                t->spans[i].dur_for_parent = t->spans[i].self < t->spans[i].dur ? t->spans[i].dur - t->spans[i].self : 0;
                t->spans[i].self = 0;
        }
        for (size_t i = 0; i < n; i++) {
                if (place[i] != NONE)
                        children[child_start[place[i]] + fill[place[i]]++] = (uint32_t)i;
                if (parent[i] != NONE && began_within(&t->spans[i], &t->spans[parent[i]]))
                        t->spans[parent[i]].self += t->spans[i].dur_for_parent;   /* children's time, for now */
        }
        for (size_t i = 0; i < n; i++)
                t->spans[i].self = t->spans[i].self < t->spans[i].dur ? t->spans[i].dur - t->spans[i].self : 0;

        sort_base = t->spans;
        qsort(roots, n_roots, sizeof(*roots), by_start);
        for (size_t i = 0; i < n; i++)
                qsort(children + child_start[i], child_start[i + 1] - child_start[i], sizeof(*children), by_start);

        int64_t focus = -1;
        if (o->focus && *o->focus) {
                void *v = strmap_get(&t->name_index, o->focus);
                if (!v) {
                        r = 0;          /* no span of that name: an empty tree */
                        goto out;
                }
                focus = (int64_t)(uintptr_t)v - 1;
        }

        /* Depth first; children are pushed in reverse so they pop in order.
         * A span is visited once (parents are unique), so the stack never
         * holds more than n frames. */
        for (size_t k = 0; k < n_roots; k++) {
                uint32_t s = roots[k];
                stack[0] = (struct frame){ s, NONE, focus < 0 };
                size_t depth = 1;
                while (depth) {
                        struct frame f = stack[--depth];
                        const struct cspan *sp = &t->spans[f.span];
                        bool in_focus = f.in_focus || (int64_t)sp->name == focus;
                        uint32_t node = NONE;
                        if (in_focus) {
                                uint32_t under = f.node;
                                if (!f.in_focus)
                                        under = NONE;   /* the root of a focus subtree */
                                else if (under == NONE && sp->parent_id && place[f.span] == NONE) {
                                        /* Its parent was never recorded: keep it under its process. */
                                        int64_t p = node_for(t, &keys, NONE, PROCESS_NAME, sp->pid);
                                        if (p < 0)
                                                goto out;
                                        under = (uint32_t)p;
                                        if (in_window(o, sp))
                                                fold(&t->nodes[under], sp, f.span);
                                }
                                int64_t m = node_for(t, &keys, under, sp->name, sp->pid);
                                if (m < 0)
                                        goto out;
                                node = (uint32_t)m;
                                if (in_window(o, sp)) {
                                        fold(&t->nodes[node], sp, f.span);
                                        t->spans[f.span].node = node;
                                }
                        }
                        for (uint32_t c = child_start[f.span + 1]; c-- > child_start[f.span];)
                                stack[depth++] = (struct frame){ children[c], node, in_focus };
                }
        }
        /* Nodes are made parents first: children's counts go up from the end. */
        for (size_t i = t->n_nodes; i-- > 0;) {
                t->nodes[i].in_subtree += t->nodes[i].count;
                if (t->nodes[i].parent != NONE)
                        t->nodes[t->nodes[i].parent].in_subtree += t->nodes[i].in_subtree;
        }
        r = gather_durations(t);
out:
        u64map_free(&ids);
        u64map_free(&keys);
        u64map_free(&first_of_path);
        free(parent);
        free(place);
        free(child_start);
        free(children);
        free(roots);
        free(fill);
        free(stack);
        return r;
}

static const Ferret__Batch *decoded_batch(struct merged_tree *t, uint32_t b)
{
        if (!t->decoded[b])
                t->decoded[b] = wire_batch_unpack(t->batches[b].data, t->batches[b].len);
        return t->decoded[b];
}

/* Tags and status of the one span of a node. */
static int add_details(struct merged_tree *t, Ferret__TreeNode *out, const struct cspan *s)
{
        const Ferret__Batch *b = decoded_batch(t, s->batch);
        out->tid = s->tid;
        out->status = s->flags & FERRET__SPAN_FLAG__SPAN_FLAG_STATUS_MASK;
        out->async = (s->flags & FERRET__SPAN_FLAG__SPAN_FLAG_ASYNC) != 0;
        if (!b || !b->spans)
                return 0;
        wire_spans_clear(&t->scratch);
        if (wire_spans_append(&t->scratch, b->spans, 0, NULL) < 0 || s->index >= t->scratch.n)
                return 0;
        const struct wire_span *w = &t->scratch.spans[s->index];
        out->message = (char *)(w->message ? w->message : "");
        out->n_tags = w->n_tags;
        if (!w->n_tags)
                return 0;
        size_t first = t->n_tags;
        if (t->n_tags + w->n_tags > t->cap_tags)
                return -ENOMEM;       /* sized in advance: cannot happen */
        for (uint32_t k = 0; k < w->n_tags; k++) {
                const struct wire_tag *wt = &t->scratch.tags[w->first_tag + k];
                Ferret__Tag *tag = &t->tags[t->n_tags++];
                wire_tag_to_proto(wt, tag);
                t->tag_ptrs[first + k] = tag;
        }
        out->tags = &t->tag_ptrs[first];
        return 0;
}

/* Nodes in each node's subtree, itself included, without recursion (a
 * tree is as deep as its spans nest): nodes are made after their parents,
 * so one pass from the last adds each to its parent. */
static uint64_t *subtree_sizes(const struct merged_tree *t)
{
        uint64_t *size = malloc((t->n_nodes + 1) * sizeof(*size));
        if (!size)
                return NULL;
        for (size_t i = 0; i < t->n_nodes; i++)
                size[i] = 1;
        for (size_t i = t->n_nodes; i-- > 0;)
                if (t->nodes[i].parent != NONE)
                        size[t->nodes[i].parent] += size[i];
        return size;
}

static bool shown(const struct merged_tree *t, const struct tree_options *o, uint32_t i)
{
        const struct mnode *m = &t->nodes[i];
        return (!o->depth || m->depth < o->depth) && m->total >= o->min_duration_ns;
}

/* Emits the nodes depth first, each with its output parent index. */
static int emit(struct merged_tree *t, const struct tree_options *o)
{
        size_t tags = 0;
        for (size_t i = 0; i < t->n_nodes; i++)
                if (t->nodes[i].count == 1 && t->nodes[i].name != PROCESS_NAME) {
                        const Ferret__Batch *b = decoded_batch(t, t->spans[t->nodes[i].exemplar].batch);
                        if (b && b->spans)
                                tags += b->spans->n_tag_key;
                }
        t->out = calloc(t->n_nodes + 1, sizeof(*t->out));
        t->out_ptrs = calloc(t->n_nodes + 1, sizeof(*t->out_ptrs));
        t->labels = calloc(t->n_nodes + 1, sizeof(*t->labels));
        t->tags = calloc(tags + 1, sizeof(*t->tags));
        t->tag_ptrs = calloc(tags + 1, sizeof(*t->tag_ptrs));
        uint32_t *stack = malloc((t->n_nodes + 1) * sizeof(*stack)), *out_index = malloc((t->n_nodes + 1) * sizeof(*out_index));
        uint64_t *size = subtree_sizes(t);
        if (!t->out || !t->out_ptrs || !t->labels || !t->tags || !t->tag_ptrs || !stack || !out_index || !size) {
                free(stack);
                free(out_index);
                free(size);
                return -ENOMEM;
        }
        t->cap_tags = tags;

        /* Roots in creation order (chronological), pushed in reverse. */
        size_t depth = 0;
        for (size_t i = t->n_nodes; i-- > 0;)
                if (t->nodes[i].parent == NONE)
                        stack[depth++] = (uint32_t)i;
        int r = 0;
        while (depth && r == 0) {
                uint32_t i = stack[--depth];
                const struct mnode *m = &t->nodes[i];
                if (!m->in_subtree)
                        continue;       /* nothing of it in the window: not hidden, absent */
                if (!shown(t, o, i)) {
                        t->hidden += size[i];
                        continue;
                }
                Ferret__TreeNode *out = &t->out[t->n_out];
                *out = (Ferret__TreeNode)FERRET__TREE_NODE__INIT;
                out_index[i] = (uint32_t)t->n_out;
                out->parent = m->parent == NONE ? -1 : (int32_t)out_index[m->parent];
                out->count = m->count;
                out->total_ns = m->total;
                out->self_ns = m->name == PROCESS_NAME ? 0 : m->self;
                out->min_ns = m->count ? m->min : 0;
                out->max_ns = m->max;
                out->errors = m->errors;
                out->warnings = m->warnings;
                out->start_ns = m->start == UINT64_MAX ? 0 : m->start;
                out->pid = m->pid;
                if (m->name != PROCESS_NAME) {
                        const uint64_t *d = t->durations + m->first_duration;
                        out->p50_ns = sorted_quantile(d, m->count, 0.50);
                        out->p95_ns = sorted_quantile(d, m->count, 0.95);
                        out->p99_ns = sorted_quantile(d, m->count, 0.99);
                        sorted_interval(d, m->count, 0.50, &out->p50_low_ns, &out->p50_high_ns);
                        sorted_interval(d, m->count, 0.95, &out->p95_low_ns, &out->p95_high_ns);
                }
                if (m->name == PROCESS_NAME) {
                        const Ferret__Batch *b = m->exemplar != NONE ? decoded_batch(t, t->spans[m->exemplar].batch) : NULL;
                        char label[600];
                        if (b && b->process && b->process->executable[0])
                                snprintf(label, sizeof(label), "pid %u: %s (spans whose parent was not recorded)",
                                         m->pid, b->process->executable);
                        else
                                snprintf(label, sizeof(label), "pid %u (spans whose parent was not recorded)", m->pid);
                        t->labels[t->n_labels] = strdup(label);
                        out->name = t->labels[t->n_labels++];
                        out->process = true;
                        if (!out->name)
                                r = -ENOMEM;
                } else {
                        out->name = t->names[m->name];
                        if (m->count == 1)
                                r = add_details(t, out, &t->spans[m->exemplar]);
                }
                t->out_ptrs[t->n_out++] = out;

                size_t mark = depth;
                for (uint32_t c = m->first_child; c != NONE; c = t->nodes[c].next_sibling)
                        stack[depth++] = c;
                /* Reverse what was just pushed so children pop in order. */
                for (size_t a = mark, z = depth - 1; a < z && depth > mark; a++, z--) {
                        uint32_t tmp = stack[a];
                        stack[a] = stack[z];
                        stack[z] = tmp;
                }
        }
        free(stack);
        free(out_index);
        free(size);
        return r;
}

int merged_tree_build(struct store *s, uint32_t run, const struct tree_options *o, struct merged_tree **ret)
{
        struct merged_tree *t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        int r = store_scan_chunks(s, run, visit_batch, t);
        if (r == 0) {
                t->decoded = calloc(t->n_batches + 1, sizeof(*t->decoded));
                r = t->decoded ? merge(t, o) : -ENOMEM;
        }
        if (r == 0)
                r = emit(t, o);
        if (r < 0) {
                merged_tree_free(t);
                return r;
        }
        *ret = t;
        return 0;
}

Ferret__TreeNode **merged_tree_nodes(const struct merged_tree *t, size_t *ret_n, uint64_t *ret_hidden,
                                     uint64_t *ret_cycles_cut)
{
        *ret_n = t->n_out;
        *ret_hidden = t->hidden;
        *ret_cycles_cut = t->cycles_cut;
        return t->out_ptrs;
}

int merged_tree_visit(const struct merged_tree *t, int (*visit)(const struct merged_stats *s, void *userdata),
                      void *userdata)
{
        for (size_t i = 0; i < t->n_nodes; i++) {
                const struct mnode *m = &t->nodes[i];
                if (m->name == PROCESS_NAME || !m->count)
                        continue;
                struct merged_stats s = {
                        .name = t->names[m->name], .count = m->count, .total_ns = m->total, .self_ns = m->self,
                        .min_ns = m->min, .max_ns = m->max, .errors = m->errors, .warnings = m->warnings,
                        .durations = t->durations + m->first_duration,
                };
                int r = visit(&s, userdata);
                if (r != 0)
                        return r < 0 ? r : 0;
        }
        return 0;
}

void merged_tree_free(struct merged_tree *t)
{
        if (!t)
                return;
        for (size_t i = 0; i < t->n_names; i++)
                free(t->names[i]);
        free(t->names);
        strmap_free(&t->name_index, NULL);
        for (size_t i = 0; i < t->n_batches; i++) {
                free(t->batches[i].data);
                if (t->decoded && t->decoded[i])
                        ferret__batch__free_unpacked(t->decoded[i], NULL);
        }
        free(t->batches);
        free(t->decoded);
        free(t->spans);
        free(t->durations);
        free(t->nodes);
        free(t->out);
        free(t->out_ptrs);
        for (size_t i = 0; i < t->n_labels; i++)
                free(t->labels[i]);
        free(t->labels);
        free(t->tags);
        free(t->tag_ptrs);
        wire_spans_free(&t->scratch);
        wire_lost_free(&t->lost);
        wire_decoder_free(&t->decoder);
        free(t);
}
