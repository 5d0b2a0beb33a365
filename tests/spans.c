/* SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "spans.h"

static void flatten(struct flat_tree *t, json_t *span, json_t *parent, size_t *cap)
{
        if (t->n == *cap)
                t->spans = realloc(t->spans, (*cap = *cap ? *cap * 2 : 1024) * sizeof(*t->spans));
        t->spans[t->n++] = (struct flat_span){ span, parent };
        size_t i;
        json_t *child;
        json_array_foreach(json_object_get(span, "children"), i, child)
                flatten(t, child, span, cap);
}

void flat_tree_load(struct daemon_fixture *f, const char *run, struct flat_tree *ret)
{
        const char *args[] = { "query", "--tree", "--expand", "--run", run, NULL };
        struct flat_tree t = { .tree = fixture_ferret_json(f, args) };
        size_t cap = 0, i;
        json_t *root;
        CHECK_STR(json_string_value(json_object_get(t.tree, "run")), run);
        json_array_foreach(json_object_get(t.tree, "roots"), i, root)
                flatten(&t, root, NULL, &cap);
        *ret = t;
}

void flat_tree_free(struct flat_tree *t)
{
        json_decref(t->tree);
        free(t->spans);
}

size_t flat_tree_count(const struct flat_tree *t, const char *name)
{
        size_t n = 0;
        for (size_t i = 0; i < t->n; i++)
                n += strcmp(span_name(t->spans[i].span), name) == 0;
        return n;
}

const char *span_name(json_t *span)
{
        return json_string_value(json_object_get(span, "name"));
}

const char *span_status(json_t *span)
{
        return json_string_value(json_object_get(span, "status"));
}

json_t *span_tag(json_t *span, const char *key)
{
        return json_object_get(json_object_get(span, "tags"), key);
}

json_t *run_summary(struct daemon_fixture *f, const char *run)
{
        const char *args[] = { "query", "--run", run, NULL };
        return fixture_ferret_json(f, args);
}

json_t *summary_row(json_t *summary, const char *name)
{
        size_t i;
        json_t *row;
        json_array_foreach(json_object_get(summary, "rows"), i, row)
                if (strcmp(json_string_value(json_object_get(row, "name")), name) == 0)
                        return row;
        return NULL;
}

long long summary_number(json_t *summary, const char *name, const char *key)
{
        /* jansson gives 0 for the number of a missing object. */
        return json_integer_value(json_object_get(summary_row(summary, name), key));
}
