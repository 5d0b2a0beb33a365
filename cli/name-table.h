/* SPDX-License-Identifier: MIT */
/*
 * Names interned to small numbers, in the order first seen: the frames of
 * a speedscope file, the colours of a timeline. Bounded: past @max names,
 * every new one is given the index of "(other names)", as ferretd's
 * summary does past its bound (ferretd/runs.c).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct name_table {
        char **names;                  /* index -> name (copies) */
        size_t n, cap, max;
        uint32_t *slots;               /* open addressing: index + 1, 0 empty */
        size_t n_slots;
        uint32_t other;                /* index of "(other names)", UINT32_MAX until needed */
};

#define NAME_TABLE_OTHER "(other names)"

void name_table_init(struct name_table *t, size_t max);
/* The index of @name, adding it when new. Returns it, or -ENOMEM. */
int64_t name_table_add(struct name_table *t, const char *name);
void name_table_free(struct name_table *t);
