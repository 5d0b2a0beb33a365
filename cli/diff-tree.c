/* SPDX-License-Identifier: MIT */
/*
 * ferret diff --tree: two runs' merged trees side by side. A call path is
 * the names from its root; the nodes of both trees on one path make one
 * line. A process node (spans whose parent was not recorded) is known by
 * its program, not its pid, and the k-th of a program under one parent in
 * one run meets the k-th in the other. Lines come depth first, siblings by
 * the size of their change in total, largest first: the path that moved
 * most is read first at every level.
 */
#include <errno.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diff.h"

#define NO_NODE SIZE_MAX

struct unode {
        char *key;                    /* "<parent unode> <name>": what the two runs share */
        const char *name;             /* shown: B's node's name, else A's */
        const Ferret__TreeNode *side[2];
        size_t parent, depth;
        size_t *children, n_children, cap_children;
        double impact;
};

struct union_tree {
        struct unode *nodes;
        size_t n, cap;
        struct hsearch_data index;    /* key -> node number + 1 */
};

static int fetch_tree(const char *dir, const char *run, Ferret__Response **ret)
{
        Ferret__Request req = FERRET__REQUEST__INIT;
        Ferret__TreeRequest t = FERRET__TREE_REQUEST__INIT;
        t.run = (char *)run;
        t.focus = "";
        t.quantiles = true;
        req.body_case = FERRET__REQUEST__BODY_TREE;
        req.tree = &t;
        return cli_request(dir, &req, 60000, ret);
}

/* A process node's label is "pid N: program (...)" or "pid N (...)": its
 * name without the pid. */
static const char *compared_name(const Ferret__TreeNode *n)
{
        if (!n->process || strncmp(n->name, "pid ", 4) != 0)
                return n->name;
        const char *p = n->name + 4;
        while (*p >= '0' && *p <= '9')
                p++;
        return p;
}

static int add_child(struct unode *parent, size_t child)
{
        if (parent->n_children == parent->cap_children) {
                size_t cap = parent->cap_children ? 2 * parent->cap_children : 4;
                size_t *c = realloc(parent->children, cap * sizeof(*c));
                if (!c)
                        return -ENOMEM;
                parent->children = c;
                parent->cap_children = cap;
        }
        parent->children[parent->n_children++] = child;
        return 0;
}

/* The node of (@parent, @name, @ordinal), made if new. */
static int64_t node_for(struct union_tree *u, size_t parent, const char *name, unsigned ordinal)
{
        char *key;
        if (asprintf(&key, "%zu\x1f%u\x1f%s", parent == NO_NODE ? 0 : parent + 1, ordinal, name) < 0)
                return -ENOMEM;
        ENTRY e = { .key = key }, *found;
        if (hsearch_r(e, FIND, &found, &u->index)) {
                free(key);
                return (int64_t)(uintptr_t)found->data - 1;
        }
        if (u->n == u->cap) {
                size_t cap = u->cap ? 2 * u->cap : 64;
                struct unode *nodes = realloc(u->nodes, cap * sizeof(*nodes));
                if (!nodes) {
                        free(key);
                        return -ENOMEM;
                }
                u->nodes = nodes;
                u->cap = cap;
        }
        size_t i = u->n;
        e.data = (void *)(uintptr_t)(i + 1);
        if (!hsearch_r(e, ENTER, &found, &u->index)) {
                free(key);
                return -ENOMEM;
        }
        u->nodes[u->n++] = (struct unode){ .key = key, .parent = parent,
                                           .depth = parent == NO_NODE ? 0 : u->nodes[parent].depth + 1 };
        if (parent != NO_NODE && add_child(&u->nodes[parent], i) < 0)
                return -ENOMEM;
        return (int64_t)i;
}

/* Places run @k's nodes (parents before children, as the daemon sends
 * them). Siblings of one name are one node in a merged tree, but process
 * nodes may repeat a program: their ordinal tells them apart. */
static int add_run(struct union_tree *u, const Ferret__TreeResponse *t, int k)
{
        size_t *placed = malloc((t->n_nodes + 1) * sizeof(*placed));
        if (!placed)
                return -ENOMEM;
        int r = 0;
        for (size_t i = 0; i < t->n_nodes && r == 0; i++) {
                const Ferret__TreeNode *n = t->nodes[i];
                size_t parent = n->parent >= 0 && (size_t)n->parent < i ? placed[n->parent] : NO_NODE;
                const char *name = compared_name(n);
                int64_t m;
                for (unsigned ordinal = 0;; ordinal++) {
                        m = node_for(u, parent, name, ordinal);
                        if (m < 0 || !u->nodes[m].side[k])
                                break;
                }
                if (m < 0) {
                        r = (int)m;
                        break;
                }
                u->nodes[m].side[k] = n;
                u->nodes[m].name = n->name;
                placed[i] = (size_t)m;
        }
        free(placed);
        return r;
}

static struct diff_side side_of(const Ferret__TreeNode *n)
{
        if (!n)
                return (struct diff_side){ 0 };
        return (struct diff_side){
                .present = true, .count = n->count, .total_ns = n->total_ns,
                .p50_ns = n->p50_ns, .p50_low_ns = n->p50_low_ns, .p50_high_ns = n->p50_high_ns,
                .p95_ns = n->p95_ns, .p95_low_ns = n->p95_low_ns, .p95_high_ns = n->p95_high_ns,
        };
}

static const struct union_tree *sorting;

static int by_impact(const void *x, const void *y)
{
        const struct unode *a = &sorting->nodes[*(const size_t *)x], *b = &sorting->nodes[*(const size_t *)y];
        if (a->impact != b->impact)
                return a->impact > b->impact ? -1 : 1;
        return strcmp(a->name, b->name);
}

/* Lines depth first, with an explicit stack (trees can be deep). */
static int emit(struct union_tree *u, struct diff_line *lines, size_t *ret_n)
{
        size_t *stack = malloc((u->n + 1) * sizeof(*stack)), depth = 0, n = 0;
        long *line_of = malloc((u->n + 1) * sizeof(*line_of));
        size_t *roots = malloc((u->n + 1) * sizeof(*roots)), n_roots = 0;
        if (!stack || !line_of || !roots) {
                free(stack);
                free(line_of);
                free(roots);
                return -ENOMEM;
        }
        sorting = u;
        for (size_t i = 0; i < u->n; i++) {
                struct unode *m = &u->nodes[i];
                struct diff_line l = { .a = side_of(m->side[0]), .b = side_of(m->side[1]) };
                diff_line_judge(&l);
                m->impact = l.impact;
                if (m->parent == NO_NODE)
                        roots[n_roots++] = i;
        }
        for (size_t i = 0; i < u->n; i++)
                if (u->nodes[i].n_children)     /* a leaf has no array: qsort takes none */
                        qsort(u->nodes[i].children, u->nodes[i].n_children, sizeof(size_t), by_impact);
        qsort(roots, n_roots, sizeof(size_t), by_impact);
        for (size_t i = n_roots; i-- > 0;)
                stack[depth++] = roots[i];
        while (depth) {
                size_t i = stack[--depth];
                const struct unode *m = &u->nodes[i];
                line_of[i] = (long)n;
                lines[n] = (struct diff_line){ .name = m->name, .depth = m->depth,
                                               .parent = m->parent == NO_NODE ? -1 : line_of[m->parent],
                                               .a = side_of(m->side[0]), .b = side_of(m->side[1]) };
                diff_line_judge(&lines[n]);
                n++;
                for (size_t c = m->n_children; c-- > 0;)
                        stack[depth++] = m->children[c];
        }
        free(stack);
        free(line_of);
        free(roots);
        *ret_n = n;
        return 0;
}

int diff_trees(const struct cli *cli, const char *dir, const char *run_a, const char *run_b, double fail_over)
{
        Ferret__Response *ra = NULL, *rb = NULL;
        struct union_tree u = { 0 };
        struct diff_line *lines = NULL;
        int r = fetch_tree(dir, run_a, &ra);
        if (r == 0)
                r = fetch_tree(dir, run_b, &rb);
        if (r < 0)
                goto out;
        size_t total = ra->tree->n_nodes + rb->tree->n_nodes;
        if (!hcreate_r(2 * total + 16, &u.index)) {
                r = cli_error(ENOMEM, "out of memory");
                goto out;
        }
        lines = calloc(total + 1, sizeof(*lines));
        size_t n = 0;
        r = lines ? 0 : -ENOMEM;
        if (r == 0)
                r = add_run(&u, ra->tree, 0);
        if (r == 0)
                r = add_run(&u, rb->tree, 1);
        if (r == 0)
                r = emit(&u, lines, &n);
        if (r < 0) {
                r = cli_error(-r, "out of memory comparing the trees");
                goto out;
        }
        r = diff_print(cli, run_a, run_b, lines, n, fail_over, true);
out:
        for (size_t i = 0; i < u.n; i++) {
                free(u.nodes[i].key);
                free(u.nodes[i].children);
        }
        free(u.nodes);
        if (u.index.table)
                hdestroy_r(&u.index);
        free(lines);
        if (ra)
                ferret__response__free_unpacked(ra, NULL);
        if (rb)
                ferret__response__free_unpacked(rb, NULL);
        return r;
}
