/* SPDX-License-Identifier: MIT */
/* Drawing a tree on the terminal ("├── ", "│   ", or ASCII), whatever its
 * nodes are: the caller gives the shape (roots, children as CSR arrays)
 * and a function that prints one node's line. */
#pragma once

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
 * C stack would like. Returns 0 or -ENOMEM. */
int tree_print(const struct cli *cli, const struct tree_view *v);

/* Children lists from parent indices (-1 for roots), keeping the order of
 * the nodes. The arrays are malloc'd; free them with tree_shape_free(). */
struct tree_shape {
        size_t *roots, n_roots;
        size_t *child_start, *children;
};
int tree_shape_from_parents(const int64_t *parent, size_t n, struct tree_shape *ret);
void tree_shape_free(struct tree_shape *s);
