/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tree-print.h"

int tree_print(const struct cli *cli, const struct tree_view *v)
{
        struct frame {
                const size_t *items;
                size_t n, next;
                size_t prefix_len;     /* of this level's prefix */
        };
        size_t cap = 64, depth = 0;
        struct frame *stack = malloc(cap * sizeof(*stack));
        char *prefix = malloc(cap * 8);
        if (!stack || !prefix) {
                free(stack);
                free(prefix);
                return -ENOMEM;
        }
        prefix[0] = '\0';
        stack[0] = (struct frame){ v->roots, v->n_roots, 0, 0 };
        for (;;) {
                struct frame *f = &stack[depth];
                if (f->next == f->n) {
                        if (depth == 0)
                                break;
                        depth--;
                        prefix[stack[depth].prefix_len] = '\0';
                        continue;
                }
                prefix[f->prefix_len] = '\0';
                size_t i = f->items[f->next++];
                bool last = f->next == f->n;
                if (depth > TREE_INDENT_MAX)
                        printf("%.*s[depth %zu] %s", (int)stack[TREE_INDENT_MAX].prefix_len, prefix, depth,
                               last ? cli->glyphs->last_branch : cli->glyphs->branch);
                else
                        printf("%s%s", prefix, last ? cli->glyphs->last_branch : cli->glyphs->branch);
                v->print(cli, v->ctx, i);
                size_t nc = v->child_start[i + 1] - v->child_start[i];
                if (!nc)
                        continue;
                if (depth + 2 >= cap) {
                        cap *= 2;
                        struct frame *s = realloc(stack, cap * sizeof(*s));
                        if (s)
                                stack = s;
                        char *p = realloc(prefix, cap * 8);
                        if (p)
                                prefix = p;
                        if (!s || !p) {
                                free(stack);
                                free(prefix);
                                return -ENOMEM;
                        }
                }
                /* Each level adds at most 6 bytes ("│" is 3), within cap * 8. */
                const char *add = last ? "    " : cli->glyphs->pipe;
                size_t len = stack[depth].prefix_len;
                strcpy(prefix + len, add);
                stack[depth + 1] = (struct frame){ v->children + v->child_start[i], nc, 0, len + strlen(add) };
                depth++;
        }
        free(stack);
        free(prefix);
        return 0;
}

/* Prints @o without its closing brace (it must have members). */
static int print_open(json_t *o)
{
        char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (!text)
                return -ENOMEM;
        size_t len = strlen(text);
        int r = len >= 2 && text[len - 1] == '}' ? (fwrite(text, 1, len - 1, stdout) == len - 1 ? 0 : -EIO) : -EIO;
        free(text);
        return r;
}

int tree_print_json(const struct tree_view *v, json_t *header, json_t *(*node)(const void *ctx, size_t i))
{
        struct frame {
                const size_t *items;
                size_t n, next;
        };
        size_t cap = 64, depth = 0;
        struct frame *stack = malloc(cap * sizeof(*stack));
        int r = stack ? print_open(header) : -ENOMEM;
        json_decref(header);
        if (r == 0)
                printf(",\"roots\":[\n");
        if (stack)
                stack[0] = (struct frame){ v->roots, v->n_roots, 0 };
        while (r == 0) {
                struct frame *f = &stack[depth];
                if (f->next == f->n) {
                        printf(depth ? "]}" : "]}\n");
                        if (depth-- == 0)
                                break;
                        continue;
                }
                if (f->next)
                        printf(",\n");
                size_t i = f->items[f->next++];
                json_t *o = node(v->ctx, i);
                r = print_open(o);
                json_decref(o);
                if (r < 0)
                        break;
                printf(",\"children\":[");
                size_t nc = v->child_start[i + 1] - v->child_start[i];
                if (depth + 2 >= cap) {
                        struct frame *s = realloc(stack, cap * 2 * sizeof(*s));
                        if (!s) {
                                r = -ENOMEM;
                                break;
                        }
                        stack = s;
                        cap *= 2;
                }
                if (nc)
                        putchar('\n');
                stack[++depth] = (struct frame){ v->children + v->child_start[i], nc, 0 };
        }
        free(stack);
        if (r == 0 && (fflush(stdout) != 0 || ferror(stdout)))
                r = -EIO;
        return r;
}

int tree_shape_from_parents(const int64_t *parent, size_t n, struct tree_shape *ret)
{
        struct tree_shape s = {
                .roots = malloc((n + 1) * sizeof(size_t)),
                .child_start = calloc(n + 2, sizeof(size_t)),
                .children = malloc((n + 1) * sizeof(size_t)),
        };
        size_t *fill = calloc(n + 1, sizeof(size_t));
        if (!s.roots || !s.child_start || !s.children || !fill) {
                free(fill);
                tree_shape_free(&s);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                if (parent[i] < 0 || (size_t)parent[i] >= n)
                        s.roots[s.n_roots++] = i;
                else
                        s.child_start[parent[i] + 1]++;
        }
        for (size_t i = 0; i < n; i++)
                s.child_start[i + 1] += s.child_start[i];
        for (size_t i = 0; i < n; i++)
                if (parent[i] >= 0 && (size_t)parent[i] < n)
                        s.children[s.child_start[parent[i]] + fill[parent[i]]++] = i;
        free(fill);
        *ret = s;
        return 0;
}

void tree_shape_free(struct tree_shape *s)
{
        free(s->roots);
        free(s->child_start);
        free(s->children);
        *s = (struct tree_shape){ 0 };
}
