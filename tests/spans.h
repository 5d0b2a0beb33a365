/* SPDX-License-Identifier: MIT */
/* Helpers over `ferret query --json`: a run's summary, and from --tree,
 * every span with its parent. */
#pragma once

#include <jansson.h>
#include <stddef.h>

#include "fixture.h"

struct flat_span {
        json_t *span;                 /* borrowed from the tree */
        json_t *parent;               /* NULL for a root */
};

struct flat_tree {
        json_t *tree;
        struct flat_span *spans;
        size_t n;
};

void flat_tree_load(struct daemon_fixture *f, const char *run, struct flat_tree *ret);
void flat_tree_free(struct flat_tree *t);
size_t flat_tree_count(const struct flat_tree *t, const char *name);
const char *span_name(json_t *span);
const char *span_status(json_t *span);
json_t *span_tag(json_t *span, const char *key);
/* `ferret query --run RUN --json`: the run's summary (json_decref() it). */
json_t *run_summary(struct daemon_fixture *f, const char *run);
/* The summary row of @name in `ferret query --run RUN --json`, or NULL. */
json_t *summary_row(json_t *summary, const char *name);
/* The number @key ("count", "errors", "warnings") of @name's summary row,
 * or 0 when no span of that name was stored. */
long long summary_number(json_t *summary, const char *name, const char *key);
