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
#include "runs.h"
#include "store.h"
#include "tree.h"

struct path_tree;

/* Builds the tree of @run, which holds @run_spans spans; with a time window
 * in @o, of the spans that started in it, from the run's time buckets
 * (buckets.h). Returns 0, -ESTALE when the records cannot answer (a client
 * that sent no paths, a run without buckets, a window that cuts a bucket:
 * the caller builds the tree from the spans), -ENOMEM or -EIO. */
int path_tree_build(struct store *s, uint32_t run, uint64_t run_spans, const struct tree_options *o,
                    struct path_tree **ret);
/* The tree's spans by node, process nodes aside: @visit gets each node's
 * name and statistics (borrowed). -ESTALE when paths were folded into
 * "(other paths)", whose spans have lost their names. */
typedef int (*path_tree_visit_fn)(const char *name, const struct name_stats *st, void *userdata);
int path_tree_visit(const struct path_tree *t, path_tree_visit_fn visit, void *userdata);
Ferret__TreeNode **path_tree_nodes(const struct path_tree *t, size_t *ret_n, uint64_t *ret_hidden);
void path_tree_free(struct path_tree *t);
