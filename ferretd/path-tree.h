/* SPDX-License-Identifier: MIT */
/*
 * The merged call tree of a run from its call-path records (paths.h), not
 * from its spans: nodes are merged by name under their merged parent, as
 * tree.h's are, so that the two trees agree; a path whose parent has no
 * record (never stored, or still open) goes under a node for its process.
 * Its cost grows with the number of distinct paths only.
 */
#pragma once

#include <stdint.h>

#include "ferret.pb-c.h"
#include "store.h"
#include "tree.h"

struct path_tree;

/* Builds the tree of @run, which holds @run_spans spans. Returns 0, -ESTALE
 * when the path records do not hold every span (a client that sent no
 * paths: the caller builds the tree from the spans), -ENOMEM or -EIO. The
 * time window of @o is not for this tree. */
int path_tree_build(struct store *s, uint32_t run, uint64_t run_spans, const struct tree_options *o,
                    struct path_tree **ret);
Ferret__TreeNode **path_tree_nodes(const struct path_tree *t, size_t *ret_n, uint64_t *ret_hidden);
void path_tree_free(struct path_tree *t);
