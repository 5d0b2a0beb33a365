/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "map.h"

static uint64_t hash_str(const char *s)
{
        uint64_t h = 1469598103934665603ull;
        for (; *s; s++)
                h = (h ^ (uint8_t)*s) * 1099511628211ull;
        return h;
}

static uint64_t hash_u64(uint64_t x)
{
        x ^= x >> 33;
        x *= 0xff51afd7ed558ccdull;
        x ^= x >> 33;
        return x;
}

void *strmap_get(const struct strmap *m, const char *key)
{
        if (!m->cap)
                return NULL;
        for (size_t i = hash_str(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
                if (!m->entries[i].key)
                        return NULL;
                if (strcmp(m->entries[i].key, key) == 0)
                        return m->entries[i].value;
        }
}

static void strmap_place(struct strmap_entry *entries, size_t cap, char *key, void *value)
{
        size_t i = hash_str(key) & (cap - 1);
        while (entries[i].key)
                i = (i + 1) & (cap - 1);
        entries[i] = (struct strmap_entry){ key, value };
}

int strmap_put(struct strmap *m, const char *key, void *value)
{
        if (m->cap) {
                for (size_t i = hash_str(key) & (m->cap - 1); m->entries[i].key; i = (i + 1) & (m->cap - 1))
                        if (strcmp(m->entries[i].key, key) == 0) {
                                m->entries[i].value = value;
                                return 0;
                        }
        }
        if ((m->n + 1) * 2 > m->cap) {
                size_t cap = m->cap ? m->cap * 2 : 16;
                struct strmap_entry *entries = calloc(cap, sizeof(*entries));
                if (!entries)
                        return -ENOMEM;
                for (size_t i = 0; i < m->cap; i++)
                        if (m->entries[i].key)
                                strmap_place(entries, cap, m->entries[i].key, m->entries[i].value);
                free(m->entries);
                m->entries = entries;
                m->cap = cap;
        }
        char *copy = strdup(key);
        if (!copy)
                return -ENOMEM;
        strmap_place(m->entries, m->cap, copy, value);
        m->n++;
        return 0;
}

void strmap_free(struct strmap *m, void (*free_value)(void *))
{
        for (size_t i = 0; i < m->cap; i++)
                if (m->entries[i].key) {
                        free(m->entries[i].key);
                        if (free_value)
                                free_value(m->entries[i].value);
                }
        free(m->entries);
        *m = (struct strmap){ 0 };
}

bool u64map_get(const struct u64map *m, uint64_t key, uint64_t *ret)
{
        if (!m->cap || !key)
                return false;
        for (size_t i = hash_u64(key) & (m->cap - 1); m->keys[i]; i = (i + 1) & (m->cap - 1))
                if (m->keys[i] == key) {
                        *ret = m->values[i];
                        return true;
                }
        return false;
}

int u64map_put(struct u64map *m, uint64_t key, uint64_t value)
{
        if (!key)
                return -EINVAL;
        if ((m->n + 1) * 2 > m->cap) {
                size_t cap = m->cap ? m->cap * 2 : 16;
                uint64_t *keys = calloc(cap, sizeof(*keys)), *values = calloc(cap, sizeof(*values));
                if (!keys || !values) {
                        free(keys);
                        free(values);
                        return -ENOMEM;
                }
                for (size_t i = 0; i < m->cap; i++) {
                        if (!m->keys[i])
                                continue;
                        size_t j = hash_u64(m->keys[i]) & (cap - 1);
                        while (keys[j])
                                j = (j + 1) & (cap - 1);
                        keys[j] = m->keys[i];
                        values[j] = m->values[i];
                }
                free(m->keys);
                free(m->values);
                m->keys = keys;
                m->values = values;
                m->cap = cap;
        }
        size_t i = hash_u64(key) & (m->cap - 1);
        for (; m->keys[i]; i = (i + 1) & (m->cap - 1))
                if (m->keys[i] == key) {
                        m->values[i] = value;
                        return 0;
                }
        m->keys[i] = key;
        m->values[i] = value;
        m->n++;
        return 0;
}

int u64map_add(struct u64map *m, uint64_t key, uint64_t delta)
{
        uint64_t v = 0;
        u64map_get(m, key, &v);
        return u64map_put(m, key, v + delta);
}

/* Linear probing removes by shifting back the entries that follow, so no
 * tombstones accumulate. */
bool u64map_take(struct u64map *m, uint64_t key, uint64_t *ret)
{
        if (!m->cap || !key)
                return false;
        size_t mask = m->cap - 1, i = hash_u64(key) & mask;
        for (; m->keys[i] != key; i = (i + 1) & mask)
                if (!m->keys[i])
                        return false;
        *ret = m->values[i];
        for (size_t j = (i + 1) & mask; m->keys[j]; j = (j + 1) & mask) {
                size_t home = hash_u64(m->keys[j]) & mask;
                /* Move j into the hole at i unless its home lies in (i, j]. */
                if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
                        m->keys[i] = m->keys[j];
                        m->values[i] = m->values[j];
                        i = j;
                }
        }
        m->keys[i] = 0;
        m->n--;
        return true;
}

void u64map_clear(struct u64map *m)
{
        if (m->cap)
                memset(m->keys, 0, m->cap * sizeof(*m->keys));
        m->n = 0;
}

void u64map_free(struct u64map *m)
{
        free(m->keys);
        free(m->values);
        *m = (struct u64map){ 0 };
}
