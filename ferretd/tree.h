/* SPDX-License-Identifier: MIT */
/*
 * The merged call tree of a run: all spans with the same name under the
 * same merged parent become one node (count, total, self, min, max, errors),
 * as profilers show call trees. Spans whose parent was never recorded are
 * kept, under a node for their process.
 */
#pragma once

#include <stdint.h>

#include "ferret.pb-c.h"
#include "store.h"

struct tree_options {
        uint32_t depth;               /* levels to keep, 0 for all */
        uint64_t min_duration_ns;     /* hide nodes whose total is below this */
        const char *focus;            /* only subtrees rooted at this name, or NULL */
        /* Only spans that start in [since_ns, until_ns) (0: unbounded) are
         * folded in; the nodes on the paths to them stay, with count 0. */
        uint64_t since_ns, until_ns;
        bool quantiles;               /* p50 and p95 of each node, with their intervals */
};

struct merged_tree;

/* Builds the merged tree of @run. On success *ret holds the nodes, in
 * depth-first order, ready to go into a TreeResponse; free it with
 * merged_tree_free(). Returns 0, -ENOMEM or -EIO. */
int merged_tree_build(struct store *s, uint32_t run, const struct tree_options *o, struct merged_tree **ret);
Ferret__TreeNode **merged_tree_nodes(const struct merged_tree *t, size_t *ret_n, uint64_t *ret_hidden,
                                     uint64_t *ret_cycles_cut);
/* The tree's spans by name, process nodes aside: @visit gets each node
 * that holds spans, with their @count durations, sorted (the tree keeps
 * them). */
struct merged_stats {
        const char *name;
        uint64_t count, total_ns, self_ns, min_ns, max_ns, errors, warnings;
        const uint64_t *durations;
};
int merged_tree_visit(const struct merged_tree *t, int (*visit)(const struct merged_stats *s, void *userdata),
                      void *userdata);
void merged_tree_free(struct merged_tree *t);
