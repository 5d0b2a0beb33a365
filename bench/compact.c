/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "compact.h"
#include "store.h"

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

int compact_database(const char *path, struct compact_result *ret)
{
        /* ferretd's own store: its compression and its merge operator (a
         * compaction without it would fail on the time buckets). */
        struct store *store;
        if (store_open(path, false, &store) < 0) {
                fprintf(stderr, "Failed to open database %s\n", path);
                return -EIO;
        }
        ret->sst_before = store_sst_bytes(store);
        uint64_t t0 = bench_now_ns();
        /* The whole key range: flushes the memtable (what the write-ahead
         * log held), then rewrites every file into the last level. */
        store_compact(store, false);
        ret->seconds = (double)(bench_now_ns() - t0) / 1e9;
        ret->sst_after = store_sst_bytes(store);

        /* A file alone in its range is moved down rather than rewritten
         * ("trivial move"), so it keeps lz4; what zstd gives needs the last
         * level rewritten. */
        t0 = bench_now_ns();
        store_compact(store, true);
        ret->forced_seconds = (double)(bench_now_ns() - t0) / 1e9;
        ret->sst_forced = store_sst_bytes(store);
        store_close(store);
        return 0;
}
