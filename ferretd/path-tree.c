/* SPDX-License-Identifier: MIT */
/*
 * Three steps. Every path record of the run is read (an alias stands for its
 * parent). Each path then gets its node, parents first: the node of (its
 * parent path's node, its name), or with --focus the node its nearest
 * focused ancestor maps it to; a path whose parent has no record goes under
 * its process's node. Last the nodes are emitted depth first, siblings by
 * their earliest start, as tree.c orders them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buckets.h"
#include "map.h"
#include "path-tree.h"
#include "paths.h"
#include "wire.h"

#define NONE UINT32_MAX

struct pnode {
        uint32_t parent;              /* node index, NONE for a root */
        const char *name;             /* a path's, or a label we made (process nodes) */
        bool process;
        uint32_t pid, depth;
        uint32_t first_child, last_child, next_sibling;
        uint32_t single;              /* the path whose spans it holds, while only one does */
        uint64_t count, total, self, min, max, errors, warnings, start;
        struct histogram hist;
};

struct path_tree {
        struct path_stats *paths;
        size_t n_paths, cap_paths;
        struct u64map by_path;        /* path -> index + 1 */
        uint32_t *node_of;            /* per path: its node, NONE outside the tree */
        bool *in_focus;
        uint8_t *state;               /* per path: 0 to do, 1 on the walk, 2 done */
        uint32_t *chain;              /* place_chain()'s walk */
        size_t cap_chain;

        struct pnode *nodes;
        size_t n_nodes, cap_nodes;
        struct strmap names;          /* name -> number + 1, for the node keys */
        struct u64map keys;           /* (parent node, name number) -> node + 1 */
        struct u64map process_names;  /* pid -> index of its label + 1 */
        char **labels;
        size_t n_labels;

        /* A time window: statistics are its buckets' sums, and a path's
         * exemplar stands for its spans only where the run has one. */
        bool window;
        uint64_t *run_count;          /* per path: its spans in the whole run */
        bool capped;                  /* a path folded into "(other paths)" */

        Ferret__TreeNode *out, **out_ptrs;
        Ferret__TreeNode **exemplars; /* unpacked, per output node with one path */
        size_t n_out;
        uint64_t hidden;
};

static int read_path(uint64_t path, const void *value, size_t len, void *userdata)
{
        struct path_tree *t = userdata;
        if (wire_grow((void **)&t->paths, &t->cap_paths, t->n_paths + 1, sizeof(*t->paths)) < 0)
                return -ENOMEM;
        int r = path_from_stored(&t->paths[t->n_paths], path, value, len);
        if (r == -EIO)
                return 0;       /* damaged: left out */
        if (r < 0)
                return r;
        if (u64map_put(&t->by_path, path, t->n_paths + 1) < 0) {
                path_stats_clear(&t->paths[t->n_paths]);
                return -ENOMEM;
        }
        t->n_paths++;
        return 0;
}

static int64_t find(const struct path_tree *t, uint64_t path)
{
        uint64_t at;
        return path && u64map_get(&t->by_path, path, &at) ? (int64_t)at - 1 : -1;
}

static int read_histogram(uint64_t path, const void *value, size_t len, void *userdata)
{
        struct path_tree *t = userdata;
        int64_t k = find(t, path);
        return k < 0 ? 0 : path_histogram_from_stored(&t->paths[k], value, len);
}

static int64_t name_number(struct path_tree *t, const char *name)
{
        void *v = strmap_get(&t->names, name);
        if (v)
                return (int64_t)(uintptr_t)v - 1;
        int64_t n = (int64_t)t->names.n;
        return strmap_put(&t->names, name, (void *)(uintptr_t)(n + 1)) < 0 ? -ENOMEM : n;
}

static int64_t new_node(struct path_tree *t, uint32_t parent, const char *name, uint32_t pid, bool process)
{
        if (wire_grow((void **)&t->nodes, &t->cap_nodes, t->n_nodes + 1, sizeof(*t->nodes)) < 0)
                return -ENOMEM;
        uint32_t i = (uint32_t)t->n_nodes++;
        t->nodes[i] = (struct pnode){
                .parent = parent, .name = name, .process = process, .pid = pid,
                .depth = parent == NONE ? 0 : t->nodes[parent].depth + 1,
                .first_child = NONE, .last_child = NONE, .next_sibling = NONE, .single = NONE,
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

/* The node (@parent, @name), made if new. */
static int64_t node_for(struct path_tree *t, uint32_t parent, const char *name, uint32_t pid)
{
        int64_t n = name_number(t, name);
        if (n < 0)
                return n;
        uint64_t key = (((uint64_t)(parent == NONE ? 0 : parent + 1) << 32) | (uint64_t)n) + 1, found;
        if (u64map_get(&t->keys, key, &found))
                return (int64_t)found - 1;
        int64_t i = new_node(t, parent, name, pid, false);
        if (i >= 0 && u64map_put(&t->keys, key, (uint64_t)i + 1) < 0)
                return -ENOMEM;
        return i;
}

static int64_t process_node(struct path_tree *t, uint32_t pid, const struct strmap *executables)
{
        uint64_t key = ((uint64_t)1 << 63) | pid, found;
        if (u64map_get(&t->keys, key, &found))
                return (int64_t)found - 1;
        char label[600], pidkey[16];
        snprintf(pidkey, sizeof(pidkey), "%u", pid);
        const char *exe = executables ? strmap_get(executables, pidkey) : NULL;
        if (exe && *exe)
                snprintf(label, sizeof(label), "pid %u: %s (spans whose parent was not recorded)", pid, exe);
        else
                snprintf(label, sizeof(label), "pid %u (spans whose parent was not recorded)", pid);
        char **labels = realloc(t->labels, (t->n_labels + 1) * sizeof(*labels));
        if (!labels)
                return -ENOMEM;
        t->labels = labels;
        if (!(t->labels[t->n_labels] = strdup(label)))
                return -ENOMEM;
        int64_t i = new_node(t, NONE, t->labels[t->n_labels++], pid, true);
        if (i >= 0 && u64map_put(&t->keys, key, (uint64_t)i + 1) < 0)
                return -ENOMEM;
        return i;
}

/* node_of of an alias whose parent was never recorded: what hangs under it
 * goes under its own process. */
#define ORPHAN (UINT32_MAX - 1)

/* Gives path @k its node, once its parent path has one (or has no record). */
static int place(struct path_tree *t, size_t k, const struct tree_options *o, const struct strmap *executables)
{
        const struct path_stats *ps = &t->paths[k];
        bool no_focus = o->focus == NULL || !*o->focus;
        int64_t up = find(t, ps->parent);
        uint32_t under = NONE;
        bool parent_focus = no_focus;
        t->state[k] = 2;
        if (up >= 0 && t->state[up] == 2 && t->node_of[up] != ORPHAN) {
                under = t->node_of[up];
                parent_focus = t->in_focus[up];
        } else if (ps->parent || !ps->name) {
                /* Its parent was never stored, is still open, or is in a
                 * loop of forged records; a lost root span's children too:
                 * under the process, as tree.c keeps such spans. */
                if (!ps->name) {
                        t->node_of[k] = ORPHAN;
                        t->in_focus[k] = no_focus;
                        return 0;
                }
                if (no_focus) {
                        int64_t p = process_node(t, ps->pid, executables);
                        if (p < 0)
                                return (int)p;
                        under = (uint32_t)p;
                }
        }
        if (!ps->name) {                /* an alias: where its parent's children go */
                t->node_of[k] = under;
                t->in_focus[k] = parent_focus;
                return 0;
        }
        bool focus_here = !parent_focus && strcmp(ps->name, o->focus) == 0;
        t->in_focus[k] = parent_focus || focus_here;
        if (!t->in_focus[k]) {
                t->node_of[k] = NONE;
                return 0;
        }
        /* Paths folded past the cap (paths.c) whose parent had folded too:
         * one "(other paths)" holds them all. */
        if (under != NONE && !t->nodes[under].process && strcmp(ps->name, PATHS_OTHER_NAME) == 0 &&
            strcmp(t->nodes[under].name, PATHS_OTHER_NAME) == 0) {
                t->node_of[k] = under;
                return 0;
        }
        int64_t node = node_for(t, focus_here ? NONE : under, ps->name, ps->pid);
        if (node < 0)
                return (int)node;
        t->node_of[k] = (uint32_t)node;
        return 0;
}

/* Places @k after its ancestors, without recursion (paths nest as deep as
 * spans do): the chain up to a placed ancestor, a root or a loop first. */
static int place_chain(struct path_tree *t, size_t k, const struct tree_options *o, const struct strmap *executables)
{
        size_t n = 0;
        for (size_t at = k; t->state[at] == 0;) {
                if (wire_grow((void **)&t->chain, &t->cap_chain, n + 1, sizeof(*t->chain)) < 0)
                        return -ENOMEM;
                t->state[at] = 1;
                t->chain[n++] = (uint32_t)at;
                int64_t up = find(t, t->paths[at].parent);
                if (up < 0)
                        break;
                at = (size_t)up;
        }
        while (n) {
                int r = place(t, t->chain[--n], o, executables);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void add_stats(struct pnode *m, const struct path_stats *ps)
{
        m->count += ps->st.count;
        m->total += ps->st.total_ns;
        m->self += ps->st.self_ns;      /* a process node shows none */
        m->min = ps->st.min_ns < m->min ? ps->st.min_ns : m->min;
        m->max = ps->st.max_ns > m->max ? ps->st.max_ns : m->max;
        m->errors += ps->st.errors;
        m->warnings += ps->st.warnings;
        m->start = ps->start_ns < m->start ? ps->start_ns : m->start;
}

static int fold(struct path_tree *t, size_t k)
{
        const struct path_stats *ps = &t->paths[k];
        uint32_t i = t->node_of[k];
        if (i == NONE || !ps->name || !ps->st.count)
                return 0;
        struct pnode *m = &t->nodes[i];
        m->single = m->count == 0 ? (uint32_t)k : NONE;
        add_stats(m, ps);
        int r = 0;
        if (!m->hist.n) {       /* most nodes hold one path: its histogram moves */
                m->hist = ps->st.hist;
                t->paths[k].st.hist = (struct histogram){ 0 };
        } else {
                r = hist_merge(&m->hist, &ps->st.hist);
        }
        /* A process node holds what it holds below: its count is its
         * orphans', as tree.c counts them. */
        if (m->parent != NONE && t->nodes[m->parent].process)
                add_stats(&t->nodes[m->parent], ps);
        return r;
}

/* Siblings by earliest start: one pass of insertion per parent's list. */
static uint32_t sort_siblings(struct path_tree *t, uint32_t first)
{
        uint32_t sorted = NONE;
        while (first != NONE) {
                uint32_t c = first;
                first = t->nodes[c].next_sibling;
                uint32_t *at = &sorted;
                while (*at != NONE && t->nodes[*at].start <= t->nodes[c].start)
                        at = &t->nodes[*at].next_sibling;
                t->nodes[c].next_sibling = *at;
                *at = c;
        }
        return sorted;
}

/* Nodes in each node's subtree, itself included: nodes are made after
 * their parents, so one pass from the last adds each to its parent. */
static uint64_t *subtree_sizes(const struct pnode *nodes, size_t n)
{
        uint64_t *size = malloc((n + 1) * sizeof(*size));
        if (!size)
                return NULL;
        for (size_t i = 0; i < n; i++)
                size[i] = 1;
        for (size_t i = n; i-- > 0;)
                if (nodes[i].parent != NONE)
                        size[nodes[i].parent] += size[i];
        return size;
}

/* Spans in each node's subtree, itself included, the same way. */
static uint64_t *subtree_counts(const struct pnode *nodes, size_t n)
{
        uint64_t *held = malloc((n + 1) * sizeof(*held));
        if (!held)
                return NULL;
        for (size_t i = 0; i < n; i++)
                held[i] = nodes[i].process ? 0 : nodes[i].count;   /* a process's count is its orphans' */
        for (size_t i = n; i-- > 0;)
                if (nodes[i].parent != NONE)
                        held[nodes[i].parent] += held[i];
        return held;
}

static int emit(struct path_tree *t, const struct tree_options *o)
{
        t->out = calloc(t->n_nodes + 1, sizeof(*t->out));
        t->out_ptrs = calloc(t->n_nodes + 1, sizeof(*t->out_ptrs));
        t->exemplars = calloc(t->n_nodes + 1, sizeof(*t->exemplars));
        uint32_t *stack = malloc((t->n_nodes + 1) * sizeof(*stack));
        uint32_t *out_index = malloc((t->n_nodes + 1) * sizeof(*out_index));
        uint32_t *roots = malloc((t->n_nodes + 1) * sizeof(*roots));
        uint64_t *size = subtree_sizes(t->nodes, t->n_nodes);
        uint64_t *held = t->window ? subtree_counts(t->nodes, t->n_nodes) : NULL;
        int r = -ENOMEM;
        if (!t->out || !t->out_ptrs || !t->exemplars || !stack || !out_index || !roots || !size ||
            (t->window && !held))
                goto out;

        for (size_t i = 0; i < t->n_nodes; i++)
                t->nodes[i].first_child = sort_siblings(t, t->nodes[i].first_child);
        /* Roots by earliest start too, pushed in reverse. */
        uint32_t root_list = NONE, *tail = &root_list;
        for (size_t i = 0; i < t->n_nodes; i++)
                if (t->nodes[i].parent == NONE) {
                        t->nodes[i].next_sibling = NONE;
                        *tail = (uint32_t)i;
                        tail = &t->nodes[i].next_sibling;
                }
        root_list = sort_siblings(t, root_list);
        size_t n_roots = 0, depth = 0;
        for (uint32_t i = root_list; i != NONE; i = t->nodes[i].next_sibling)
                roots[n_roots++] = i;
        while (n_roots)
                stack[depth++] = roots[--n_roots];

        r = 0;
        while (depth && r == 0) {
                uint32_t i = stack[--depth];
                const struct pnode *m = &t->nodes[i];
                if (held && !held[i])
                        continue;       /* nothing of it in the window: not hidden, absent */
                if ((o->depth && m->depth >= o->depth) || m->total < o->min_duration_ns) {
                        t->hidden += size[i];
                        continue;
                }
                Ferret__TreeNode *out = &t->out[t->n_out];
                *out = (Ferret__TreeNode)FERRET__TREE_NODE__INIT;
                out_index[i] = (uint32_t)t->n_out;
                out->parent = m->parent == NONE ? -1 : (int32_t)out_index[m->parent];
                out->name = (char *)m->name;
                out->count = m->count;
                out->total_ns = m->total;
                out->self_ns = m->process ? 0 : m->self;
                out->min_ns = m->count ? m->min : 0;
                out->max_ns = m->max;
                out->errors = m->errors;
                out->warnings = m->warnings;
                out->start_ns = m->start == UINT64_MAX ? 0 : m->start;
                out->pid = m->pid;
                out->process = m->process;
                if (!m->process && m->count && o->quantiles) {
                        struct hist_percentiles p;
                        hist_percentiles(&m->hist, m->count, m->min, m->max, &p);
                        out->p50_ns = p.p50;
                        out->p95_ns = p.p95;
                        out->p99_ns = p.p99;
                        out->p50_low_ns = p.p50_low;
                        out->p50_high_ns = p.p50_high;
                        out->p95_low_ns = p.p95_low;
                        out->p95_high_ns = p.p95_high;
                }
                if (!m->process && m->count == 1 && m->single != NONE && t->paths[m->single].exemplar_len &&
                    (!t->window || t->run_count[m->single] == 1)) {
                        const struct path_stats *ps = &t->paths[m->single];
                        Ferret__TreeNode *e = ferret__tree_node__unpack(NULL, ps->exemplar_len, ps->exemplar);
                        if (e) {
                                t->exemplars[t->n_out] = e;
                                out->tid = e->tid;
                                out->status = e->status;
                                out->message = e->message;
                                out->async = e->async;
                                out->n_tags = e->n_tags;
                                out->tags = e->tags;
                        }
                }
                t->out_ptrs[t->n_out++] = out;

                size_t mark = depth;
                for (uint32_t c = m->first_child; c != NONE; c = t->nodes[c].next_sibling)
                        stack[depth++] = c;
                for (size_t a = mark, z = depth ? depth - 1 : 0; a < z; a++, z--) {
                        uint32_t tmp = stack[a];
                        stack[a] = stack[z];
                        stack[z] = tmp;
                }
        }
out:
        free(stack);
        free(out_index);
        free(roots);
        free(size);
        free(held);
        return r;
}

static int read_process(uint32_t pid, const char *executable, void *userdata)
{
        struct strmap *m = userdata;
        char key[16];
        snprintf(key, sizeof(key), "%u", pid);
        char *copy = strdup(executable);
        if (!copy || strmap_put(m, key, copy) < 0) {
                free(copy);
                return -ENOMEM;
        }
        return 0;
}

static int read_bucket(uint64_t bucket, uint64_t path, const void *value, size_t len, void *userdata)
{
        (void)bucket;
        struct path_tree *t = userdata;
        int64_t k = find(t, path);
        if (k < 0)
                return 0;       /* its path record was damaged */
        struct name_stats add;
        if (bucket_from_stored(&add, value, len) < 0)
                return 0;
        struct name_stats *st = &t->paths[k].st;
        st->count += add.count;
        st->total_ns += add.total_ns;
        st->self_ns += add.self_ns;
        st->min_ns = add.min_ns < st->min_ns ? add.min_ns : st->min_ns;
        st->max_ns = add.max_ns > st->max_ns ? add.max_ns : st->max_ns;
        st->errors += add.errors;
        st->warnings += add.warnings;
        int r = hist_merge(&st->hist, &add.hist);
        hist_free(&add.hist);
        return r;
}

/* Every path's statistics become those of its spans that started in the
 * window's buckets. */
static int read_window(struct path_tree *t, struct store *s, uint32_t run, uint64_t first, uint64_t end)
{
        t->window = true;
        if (!(t->run_count = malloc((t->n_paths + 1) * sizeof(*t->run_count))))
                return -ENOMEM;
        for (size_t k = 0; k < t->n_paths; k++) {
                struct name_stats *st = &t->paths[k].st;
                t->run_count[k] = st->count;
                hist_free(&st->hist);
                *st = (struct name_stats){ .min_ns = UINT64_MAX };
        }
        return store_scan_buckets(s, run, first, end, read_bucket, t);
}

int path_tree_build(struct store *s, uint32_t run, uint64_t run_spans, const struct tree_options *o,
                    struct path_tree **ret)
{
        struct path_tree *t = calloc(1, sizeof(*t));
        struct strmap executables = { 0 };
        if (!t)
                return -ENOMEM;
        int r = store_scan_paths(s, run, false, read_path, t);
        uint64_t held = 0;
        for (size_t k = 0; r == 0 && k < t->n_paths; k++)
                held += t->paths[k].st.count;
        if (r == 0 && (held != run_spans || !t->n_paths))
                r = -ESTALE;
        for (size_t k = 0; r == 0 && k < t->n_paths; k++)
                t->capped = t->capped || (t->paths[k].name && strcmp(t->paths[k].name, PATHS_OTHER_NAME) == 0);
        if (r == 0 && (o->since_ns || o->until_ns)) {
                uint64_t since = o->since_ns, until = o->until_ns, first, end;
                r = buckets_window(s, run, false, &since, &until, &first, &end);
                if (r == 0)
                        r = read_window(t, s, run, first, end);
        } else if (r == 0 && o->quantiles)
                r = store_scan_paths(s, run, true, read_histogram, t);
        if (r == 0) {
                t->node_of = malloc(t->n_paths * sizeof(*t->node_of));
                t->in_focus = malloc(t->n_paths * sizeof(*t->in_focus));
                t->state = calloc(t->n_paths, sizeof(*t->state));
                r = t->node_of && t->in_focus && t->state ? store_scan_processes(s, run, read_process, &executables)
                                                          : -ENOMEM;
        }
        for (size_t k = 0; r == 0 && k < t->n_paths; k++)
                r = place_chain(t, k, o, &executables);
        for (size_t k = 0; r == 0 && k < t->n_paths; k++)
                r = fold(t, k);
        if (r == 0)
                r = emit(t, o);
        strmap_free(&executables, free);
        if (r < 0) {
                path_tree_free(t);
                return r;
        }
        *ret = t;
        return 0;
}

int path_tree_visit(const struct path_tree *t, path_tree_visit_fn visit, void *userdata)
{
        if (t->capped)
                return -ESTALE;
        for (size_t i = 0; i < t->n_nodes; i++) {
                const struct pnode *m = &t->nodes[i];
                if (m->process || !m->count)
                        continue;
                struct name_stats st = {
                        .count = m->count, .total_ns = m->total, .self_ns = m->self, .min_ns = m->min,
                        .max_ns = m->max, .errors = m->errors, .warnings = m->warnings, .hist = m->hist,
                };
                int r = visit(m->name, &st, userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}

Ferret__TreeNode **path_tree_nodes(const struct path_tree *t, size_t *ret_n, uint64_t *ret_hidden)
{
        *ret_n = t->n_out;
        *ret_hidden = t->hidden;
        return t->out_ptrs;
}

void path_tree_free(struct path_tree *t)
{
        if (!t)
                return;
        for (size_t k = 0; k < t->n_paths; k++)
                path_stats_clear(&t->paths[k]);
        free(t->paths);
        u64map_free(&t->by_path);
        free(t->node_of);
        free(t->run_count);
        free(t->in_focus);
        free(t->state);
        free(t->chain);
        for (size_t i = 0; i < t->n_nodes; i++)
                hist_free(&t->nodes[i].hist);
        free(t->nodes);
        strmap_free(&t->names, NULL);
        u64map_free(&t->keys);
        u64map_free(&t->process_names);
        for (size_t i = 0; i < t->n_labels; i++)
                free(t->labels[i]);
        free(t->labels);
        for (size_t i = 0; i < t->n_out; i++)
                if (t->exemplars && t->exemplars[i])
                        ferret__tree_node__free_unpacked(t->exemplars[i], NULL);
        free(t->exemplars);
        free(t->out);
        free(t->out_ptrs);
        free(t);
}
