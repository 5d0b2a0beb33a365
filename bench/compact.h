/* SPDX-License-Identifier: MIT */
/*
 * The store benchmark's look at the database itself, with ferretd stopped:
 * its size on disk, and a full compaction with ferretd's own compression
 * options, after which the SST files are what the spans cost for good.
 */
#pragma once

#include <stdint.h>

struct compact_result {
        uint64_t sst_before;    /* "rocksdb.total-sst-files-size" once opened */
        uint64_t sst_after;     /* the same after compacting the whole key range */
        double seconds;         /* how long that compaction took */
        uint64_t sst_forced;    /* after a second one that rewrites the last level */
        double forced_seconds;
};

/* Bytes the files under @path take on disk (allocated blocks, as du). */
uint64_t compact_du(const char *path);

/*
 * Opens the database at @path (no daemon may hold it) with ferretd's store
 * (lz4, zstd at the last level, its merge operator) and compacts the whole key
 * range: rocksdb_compact_range(), which may move a file down to the last
 * level as it is, lz4 and all; then once more forcing the last level to be
 * rewritten, so that every block is zstd. Closes it. 0, or -errno with a
 * message on stderr.
 */
int compact_database(const char *path, struct compact_result *ret);
