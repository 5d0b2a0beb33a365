/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "name-table.h"
#include "wire.h"

void name_table_init(struct name_table *t, size_t max)
{
        *t = (struct name_table){ .max = max, .other = UINT32_MAX };
}

/* FNV-1a: names are short, and a table of them is small. */
static uint64_t hash(const char *s)
{
        uint64_t h = 14695981039346656037ull;
        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * 1099511628211ull;
        return h;
}

static int rehash(struct name_table *t, size_t n_slots)
{
        uint32_t *slots = calloc(n_slots, sizeof(*slots));
        if (!slots)
                return -ENOMEM;
        for (size_t i = 0; i < t->n; i++) {
                size_t k = hash(t->names[i]) & (n_slots - 1);
                while (slots[k])
                        k = (k + 1) & (n_slots - 1);
                slots[k] = (uint32_t)i + 1;
        }
        free(t->slots);
        t->slots = slots;
        t->n_slots = n_slots;
        return 0;
}

static int64_t append(struct name_table *t, const char *name)
{
        char *copy = strdup(name);
        if (!copy || wire_grow((void **)&t->names, &t->cap, t->n + 1, sizeof(*t->names)) < 0) {
                free(copy);
                return -ENOMEM;
        }
        t->names[t->n] = copy;
        return (int64_t)t->n++;
}

int64_t name_table_add(struct name_table *t, const char *name)
{
        if ((t->n + 1) * 2 > t->n_slots && rehash(t, t->n_slots ? t->n_slots * 2 : 256) < 0)
                return -ENOMEM;
        size_t k = hash(name) & (t->n_slots - 1);
        for (; t->slots[k]; k = (k + 1) & (t->n_slots - 1))
                if (strcmp(t->names[t->slots[k] - 1], name) == 0)
                        return t->slots[k] - 1;
        if (t->n >= t->max) {
                if (t->other == UINT32_MAX) {
                        int64_t i = append(t, NAME_TABLE_OTHER);
                        if (i < 0)
                                return i;
                        t->other = (uint32_t)i;
                }
                return t->other;
        }
        int64_t i = append(t, name);
        if (i >= 0)
                t->slots[k] = (uint32_t)i + 1;
        return i;
}

void name_table_free(struct name_table *t)
{
        for (size_t i = 0; i < t->n; i++)
                free(t->names[i]);
        free(t->names);
        free(t->slots);
        *t = (struct name_table){ 0 };
}
