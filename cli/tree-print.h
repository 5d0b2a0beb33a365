/* SPDX-License-Identifier: MIT */
/* Drawing a tree on the terminal ("├── ", "│   ", or ASCII), whatever its
 * nodes are: the caller gives the shape (roots, children as CSR arrays)
 * and a function that prints one node's line. */
#pragma once

#include <jansson.h>
#include <stddef.h>

#include "cli.h"

struct tree_view {
        const size_t *roots;
        size_t n_roots;
        const size_t *child_start;    /* children of i: children[child_start[i] .. child_start[i + 1]) */
        const size_t *children;
        void (*print)(const struct cli *cli, const void *ctx, size_t node);
        const void *ctx;
};

/* Depth-first, with an explicit stack: call trees can be deeper than the
 * C stack would like. Lines deeper than TREE_INDENT_MAX levels are drawn at
 * that indentation, after "[depth N] " (a 100,000-deep chain would
 * otherwise print gigabytes of branches). Returns 0 or -ENOMEM. */
#define TREE_INDENT_MAX 48
int tree_print(const struct cli *cli, const struct tree_view *v);

/* The same tree as JSON on stdout, depth-first with an explicit stack:
 * @header's members, then "roots": the nodes, each @node's object with a
 * "children" array, one node a line. Takes @header. Returns 0, -EIO or
 * -ENOMEM. */
int tree_print_json(const struct tree_view *v, json_t *header, json_t *(*node)(const void *ctx, size_t i));

/* Children lists from parent indices (-1 for roots), keeping the order of
 * the nodes. The arrays are malloc'd; free them with tree_shape_free(). */
struct tree_shape {
        size_t *roots, n_roots;
        size_t *child_start, *children;
};
int tree_shape_from_parents(const int64_t *parent, size_t n, struct tree_shape *ret);
void tree_shape_free(struct tree_shape *s);
