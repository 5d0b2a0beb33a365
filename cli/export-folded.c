/* SPDX-License-Identifier: MIT */
/*
 * Folded stacks: one line per call path with its self time in ns,
 * "root;child;leaf 12640", which flamegraph.pl, inferno and speedscope
 * read. Made from the run's merged tree, which ferretd builds from its
 * call-path records, so its size and the memory it takes grow with the
 * run's distinct paths, never with its spans.
 */
#include <errno.h>
#include <stdio.h>

#include "export.h"

/* A frame's name in a folded line: ';' separates frames and the last space
 * the count, so ';' and line breaks become '_' (spaces may stay). */
static void put_frame(FILE *f, const char *name)
{
        for (const char *p = name; *p; p++)
                fputc(*p == ';' || *p == '\n' || *p == '\r' ? '_' : *p, f);
}

static void put_stack(FILE *f, const Ferret__TreeResponse *t, size_t i)
{
        int32_t up = t->nodes[i]->parent;
        if (up >= 0 && (size_t)up < i) {
                put_stack(f, t, (size_t)up);
                fputc(';', f);
        }
        put_frame(f, t->nodes[i]->name);
}

/* Nodes come parents first; a process node's own time is none of its spans'. */
int export_folded(const Ferret__TreeResponse *t, FILE *f)
{
        for (size_t i = 0; i < t->n_nodes; i++) {
                const Ferret__TreeNode *n = t->nodes[i];
                if (n->process || !n->self_ns)
                        continue;
                put_stack(f, t, i);
                fprintf(f, " %llu\n", (unsigned long long)n->self_ns);
        }
        return ferror(f) ? -EIO : 0;
}
