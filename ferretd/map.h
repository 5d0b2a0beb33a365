/* SPDX-License-Identifier: MIT */
/*
 * Two small open-addressing hash maps: string keys to pointers, and 64-bit
 * keys to 64-bit values. Neither shrinks; both keep a load factor under 1/2.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strmap_entry {
        char *key;                    /* owned by the map */
        void *value;
};

struct strmap {
        struct strmap_entry *entries;
        size_t n, cap;
};

void *strmap_get(const struct strmap *m, const char *key);
/* Inserts or replaces; returns 0 or -ENOMEM. */
int strmap_put(struct strmap *m, const char *key, void *value);
/* Calls @free_value on every value, then frees the map's memory. */
void strmap_free(struct strmap *m, void (*free_value)(void *));

#define STRMAP_FOREACH(m, e) \
        for (struct strmap_entry *e = (m)->entries; (m)->entries && e < (m)->entries + (m)->cap; e++) \
                if (e->key)

struct u64map {
        uint64_t *keys;               /* 0 is the empty key: callers never use it */
        uint64_t *values;
        size_t n, cap;
};

bool u64map_get(const struct u64map *m, uint64_t key, uint64_t *ret);
int u64map_put(struct u64map *m, uint64_t key, uint64_t value);
/* Adds @delta to the value of @key (0 if absent). Returns 0 or -ENOMEM. */
int u64map_add(struct u64map *m, uint64_t key, uint64_t delta);
/* Removes @key, returning its value in *ret; false if it was absent. */
bool u64map_take(struct u64map *m, uint64_t key, uint64_t *ret);
void u64map_clear(struct u64map *m);
void u64map_free(struct u64map *m);
