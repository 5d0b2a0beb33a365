/* SPDX-License-Identifier: MIT */
/*
 * What the files of the store (store.c, and store-forward.c for the
 * forwarder's index) share, and nobody else: the database handle, the
 * tables' tags, and the byte order of numbers in keys. The key layout is
 * written out in store.h.
 */
#pragma once

#include <rocksdb/c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* The tables: the first byte of every key (the layout is in store.h). */
enum {
        KEY_META = 'm',
        KEY_RUN_NAME = 'n',
        KEY_RUN = 'r',
        KEY_CHUNK = 's',
        KEY_STATS = 't',
        KEY_CLIENT = 'c',
        KEY_PATH = 'p',
        KEY_PROCESS = 'o',
        KEY_PATH_HISTOGRAM = 'q',
        KEY_BUCKET = 'b',
        KEY_BUCKET_WIDTH = 'w',
        KEY_FORWARD = 'f',
        KEY_FORWARD_STATE = 'F',
};

struct store {
        rocksdb_t *db;
        rocksdb_options_t *options;
        rocksdb_writeoptions_t *write_options;
        rocksdb_readoptions_t *read_options;
        char *path;
        bool read_only;
        bool forwarding;              /* batches stored are indexed for the forwarder */
        Ferretd__StoredMeta meta;
};

struct store_batch {
        rocksdb_writebatch_t *wb;
};

static inline void put_be32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static inline void put_be64(uint8_t *p, uint64_t v)
{
        put_be32(p, (uint32_t)(v >> 32));
        put_be32(p + 4, (uint32_t)v);
}

static inline uint32_t get_be32(const uint8_t *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t get_be64(const uint8_t *p)
{
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
                v = v << 8 | p[i];
        return v;
}

typedef int (*store_visit_fn)(const void *key, size_t key_len, const void *value, size_t value_len,
                              void *userdata);

/* Visits the keys that start with @prefix (its first @prefix_len bytes),
 * from the first at or after its first @seek_len bytes on, or backwards
 * from the last. Every visit reads one consistent snapshot. */
int store_scan_from(struct store *s, const void *prefix, size_t seek_len, size_t prefix_len, bool reverse,
                    store_visit_fn visit, void *userdata);

/* Indexes the batch stored as chunk @seq for the forwarder (store-forward.c). */
void store_batch_put_forward(struct store *s, struct store_batch *b, uint64_t seq, uint32_t run, uint64_t start_ns,
                             uint32_t spans);
