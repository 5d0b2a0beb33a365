/* SPDX-License-Identifier: MIT */
/*
 * The RocksDB database and its key layout. Every key starts with a one-byte
 * table tag; numbers are big-endian so that keys sort as the numbers do.
 *
 *   'm'                            -> StoredMeta
 *   'n' <run id>                   -> run number (u32)
 *   'r' <run u32>                  -> ferret.RunInfo
 *   's' <run u32> <start u64> <seq u64> -> a ferret.Batch, as received
 *   't' <run u32> <span name>      -> StoredStats
 *   'c' <run u32> <client u64>     -> spans stored from that client (u64)
 *   'p' <run u32> <path u64>       -> StoredPath: statistics of one call path
 *   'o' <run u32> <pid u32>        -> the executable of a process of the run
 *   'q' <run u32> <path u64>       -> the histogram of a call path (StoredStats), apart:
 *                                     only percentiles need it, and it is most of the bytes
 *   'b' <run u32> <bucket u64> <path u64> -> StoredStats of the path's spans that started in
 *                                     that time bucket (start / width), summed by a merge
 *                                     operator from what each commit adds (buckets.h)
 *   'w' <run u32>                  -> the run's bucket width in ns (u64): absent, no buckets
 *   'f' <seq u64>                  -> the forwarder's backlog: a batch stored as chunk seq that it
 *                                     has not sent yet: <run u32> <start u64> <spans u32>, written
 *                                     with the chunk when forwarding is on (store-forward.c)
 *   'F'                            -> the forwarder's totals: spans sent, dropped, rejected (3 u64)
 *
 * Runs are numbered in creation order, so the newest run is the last 'r' key.
 * A run's batches sort by their first span's start time. One writer thread
 * (ingest) and any number of readers (queries) share a store.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferret.pb-c.h"
#include "store.pb-c.h"

/* 2: time buckets, written as merge operands, which a ferretd of format 1
 * could not read (it has no merge operator). */
#define STORE_FORMAT 2
/* Names and run ids are bounded by the wire limits, so keys are too. */
#define STORE_MAX_KEY 1100


struct store;
struct store_batch;

/* Opens (creating if needed, unless @read_only) the database at @path.
 * Returns 0, -EBUSY when another process holds it, -ENOENT when a read-only
 * open finds no database, or -EIO with the reason logged. */
int store_open(const char *path, bool read_only, struct store **ret);
void store_close(struct store *s);
const char *store_path(const struct store *s);
bool store_read_only(const struct store *s);
/* Bytes the database's files hold (not counting space reserved ahead). */
uint64_t store_disk_bytes(const struct store *s);

/* Reading, a table at a time; what a key holds is given decoded. Each
 * visitor returns 0 to go on, 1 to stop, or a negative errno, which the
 * scan returns. Every scan reads one consistent snapshot. */
#define STORE_ALL_RUNS UINT32_MAX
/* Run records (a packed ferret.RunInfo), oldest run first or newest first. */
typedef int (*store_run_fn)(uint32_t run, const void *info, size_t len, void *userdata);
int store_scan_runs(struct store *s, bool newest_first, store_run_fn visit, void *userdata);
/* The statistics records (a packed StoredStats) of @run, or of every run
 * (STORE_ALL_RUNS), by name. */
typedef int (*store_stats_fn)(uint32_t run, const char *name, const void *stats, size_t len, void *userdata);
int store_scan_stats(struct store *s, uint32_t run, store_stats_fn visit, void *userdata);
/* The batches of @run (a ferret.Batch, as received), by their first span's start. */
typedef int (*store_chunk_fn)(const void *batch, size_t len, void *userdata);
int store_scan_chunks(struct store *s, uint32_t run, store_chunk_fn visit, void *userdata);

/* The call-path records (a packed StoredPath) of @run, by path id; with
 * @histograms, their histograms (a StoredStats with only those). */
typedef int (*store_path_fn)(uint64_t path, const void *record, size_t len, void *userdata);
int store_scan_paths(struct store *s, uint32_t run, bool histograms, store_path_fn visit, void *userdata);

/* The time buckets of @run from @first to before @end (bucket numbers), by
 * bucket then path: each a packed StoredStats (bucket_from_stored()). */
typedef int (*store_bucket_fn)(uint64_t bucket, uint64_t path, const void *record, size_t len, void *userdata);
int store_scan_buckets(struct store *s, uint32_t run, uint64_t first, uint64_t end, store_bucket_fn visit,
                       void *userdata);
/* One time bucket's record, as store_get() gives it (-ENOENT: none yet). */
int store_get_bucket(struct store *s, uint32_t run, uint64_t bucket, uint64_t path, char **ret, size_t *ret_len);
/* The bucket width @run was made with. Returns 0, -ENOENT (it has none) or -EIO. */
int store_get_bucket_width(struct store *s, uint32_t run, uint64_t *ret_ns);

/* The executables of @run's processes, by pid. */
typedef int (*store_process_fn)(uint32_t pid, const char *executable, void *userdata);
int store_scan_processes(struct store *s, uint32_t run, store_process_fn visit, void *userdata);

/* What run @run knows of one client: spans stored from it and the seq of
 * its last batch stored. Returns 0 or -ENOENT. */
int store_get_client(struct store *s, uint32_t run, uint64_t client_id, uint64_t *ret_stored, uint64_t *ret_seq);

/* Returns 0 (the value in *ret, free with store_free_value()), -ENOENT or -EIO. */
int store_get(struct store *s, const void *key, size_t key_len, char **ret, size_t *ret_len);
void store_free_value(char *value);

int store_run_number(struct store *s, const char *run_id, uint32_t *ret);
int store_newest_run(struct store *s, uint32_t *ret);
/* Returns 0 with *ret to free with ferret__run_info__free_unpacked(), or -ENOENT. */
int store_load_run(struct store *s, uint32_t run, Ferret__RunInfo **ret);

/* Writing (the ingest thread only). */
uint32_t store_allocate_run(struct store *s);
struct store_batch *store_batch_new(void);
void store_batch_free(struct store_batch *b);
void store_batch_put(struct store_batch *b, const void *key, size_t key_len, const void *value, size_t value_len);
void store_batch_put_run_name(struct store_batch *b, const char *run_id, uint32_t run);
void store_batch_put_run(struct store_batch *b, uint32_t run, const Ferret__RunInfo *info);
void store_batch_put_chunk(struct store *s, struct store_batch *b, uint32_t run, uint64_t start_ns,
                           const void *data, size_t len, uint32_t spans);
void store_batch_put_stats(struct store_batch *b, uint32_t run, const char *name, const Ferretd__StoredStats *st);
void store_batch_put_path(struct store_batch *b, uint32_t run, uint64_t path, bool histogram, const void *value,
                          size_t len);
void store_batch_put_process(struct store_batch *b, uint32_t run, uint32_t pid, const char *executable);
/* Adds @value (a packed StoredStats) to a time bucket, as a merge operand;
 * or, put, replaces what the bucket holds. */
void store_batch_merge_bucket(struct store_batch *b, uint32_t run, uint64_t bucket, uint64_t path, const void *value,
                              size_t len);
void store_batch_put_bucket(struct store_batch *b, uint32_t run, uint64_t bucket, uint64_t path, const void *value,
                            size_t len);
void store_batch_put_bucket_width(struct store_batch *b, uint32_t run, uint64_t width_ns);
void store_batch_put_client(struct store_batch *b, uint32_t run, uint64_t client_id, uint64_t stored, uint64_t seq);
size_t store_batch_bytes(const struct store_batch *b);
/* Writes the batch (with the meta record) atomically and clears it; on
 * failure the batch is kept, so the caller can retry. */
int store_commit(struct store *s, struct store_batch *b);
/* Whether the disk has room for a commit of @bytes and what RocksDB then
 * writes (see STORE_FREE_RESERVE); store_commit() returns -ENOSPC else. */
bool store_has_room(struct store *s, size_t bytes);
/* Whether the file system of @path has less than a commit's reserve free. */
bool store_path_disk_full(const char *path);

/* The forwarder's backlog (store-forward.c). From now on, the batches
 * stored are indexed for it. */
void store_set_forwarding(struct store *s, bool on);
/* One entry: the batch stored as chunk @seq, of @spans spans. */
typedef int (*store_forward_fn)(uint64_t seq, uint32_t run, uint64_t start_ns, uint32_t spans, void *userdata);
/* The entries from chunk @from_seq on, oldest first. */
int store_scan_forward(struct store *s, uint64_t from_seq, store_forward_fn visit, void *userdata);
/* The batch the entry names (a ferret.Batch, as received); -ENOENT when it
 * was removed since (retention, ferret rm). */
int store_get_forward_chunk(struct store *s, uint64_t seq, uint32_t run, uint64_t start_ns, char **ret,
                            size_t *ret_len);
struct forward_totals {
        uint64_t sent, dropped, rejected;
};
int store_get_forward_totals(struct store *s, struct forward_totals *ret);
/* Removes the entries before chunk @end_seq and writes the totals, in one
 * write: called from the forwarder's thread. Returns 0 or -EIO. */
int store_forward_done(struct store *s, uint64_t end_seq, const struct forward_totals *totals);

/* Deletes run @run (named @run_id) and reclaims its files where it can.
 * Returns 0 or -EIO. */
int store_delete_run(struct store *s, uint32_t run, const char *run_id);
/* Deletes the oldest @fraction of run @run's batches. Returns 0, -ENOENT
 * when it has none, or -EIO. */
int store_trim_run(struct store *s, uint32_t run, double fraction);
/* Writes the memtable out, so the write-ahead log can be dropped. */
void store_flush(struct store *s);
/* Compacts the whole key range (the store benchmark's look at what spans
 * cost for good); with @rewrite_last_level, the last level too, which a
 * compaction otherwise may move down as it is. */
void store_compact(struct store *s, bool rewrite_last_level);
/* "rocksdb.total-sst-files-size". */
uint64_t store_sst_bytes(struct store *s);
