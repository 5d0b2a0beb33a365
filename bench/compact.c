/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <ftw.h>
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "compact.h"

/* nftw() passes no user data. */
static uint64_t du_total;

static int du_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        if (flag == FTW_F)
                du_total += (uint64_t)st->st_blocks * 512;
        return 0;
}

uint64_t compact_du(const char *path)
{
        du_total = 0;
        nftw(path, du_one, 16, FTW_PHYS);
        return du_total;
}

static uint64_t sst_size(rocksdb_t *db)
{
        char *v = rocksdb_property_value(db, "rocksdb.total-sst-files-size");
        uint64_t n = v ? strtoull(v, NULL, 10) : 0;
        rocksdb_free(v);
        return n;
}

int compact_database(const char *path, struct compact_result *ret)
{
        char *err = NULL;
        rocksdb_options_t *opts = rocksdb_options_create();
        if (!opts)
                return -ENOMEM;
        /* The options of ferretd/store.c store_open(), so that the files
         * are compressed as the daemon's own compactions would. */
        rocksdb_options_increase_parallelism(opts, 2);
        rocksdb_options_set_compression(opts, rocksdb_lz4_compression);
        rocksdb_options_set_bottommost_compression(opts, rocksdb_zstd_compression);
        rocksdb_options_set_max_open_files(opts, 512);
        rocksdb_options_set_keep_log_file_num(opts, 2);
        rocksdb_options_set_info_log_level(opts, 2 /* warn */);

        rocksdb_t *db = rocksdb_open(opts, path, &err);
        if (!db) {
                fprintf(stderr, "Failed to open database %s: %s\n", path, err ? err : "unknown error");
                rocksdb_free(err);
                rocksdb_options_destroy(opts);
                return -EIO;
        }
        ret->sst_before = sst_size(db);
        uint64_t t0 = bench_now_ns();
        /* The whole key range: flushes the memtable (what the write-ahead
         * log held), then rewrites every file into the last level. */
        rocksdb_compact_range(db, NULL, 0, NULL, 0);
        ret->seconds = (double)(bench_now_ns() - t0) / 1e9;
        ret->sst_after = sst_size(db);

        /* A file alone in its range is moved down rather than rewritten
         * ("trivial move"), so it keeps lz4; what zstd gives needs the last
         * level rewritten, which is what kForce (2) asks for. */
        rocksdb_compactoptions_t *co = rocksdb_compactoptions_create();
        if (co) {
                rocksdb_compactoptions_set_bottommost_level_compaction(co, 2 /* kForce */);
                t0 = bench_now_ns();
                rocksdb_compact_range_opt(db, co, NULL, 0, NULL, 0);
                ret->forced_seconds = (double)(bench_now_ns() - t0) / 1e9;
                ret->sst_forced = sst_size(db);
                rocksdb_compactoptions_destroy(co);
        }
        rocksdb_close(db);
        rocksdb_options_destroy(opts);
        return 0;
}
