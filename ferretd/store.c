/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "buckets.h"
#include "log.h"
#include "store-private.h"
#include "store.h"




static size_t store_key_run_prefix(uint8_t *buf, char table, uint32_t run)
{
        buf[0] = (uint8_t)table;
        put_be32(buf + 1, run);
        return 5;
}

static size_t store_key_client(uint8_t *buf, uint32_t run, uint64_t client_id)
{
        store_key_run_prefix(buf, KEY_CLIENT, run);
        for (int i = 0; i < 8; i++)
                buf[5 + i] = (uint8_t)(client_id >> (56 - 8 * i));
        return 13;
}

static size_t store_key_run(uint8_t *buf, uint32_t run)
{
        return store_key_run_prefix(buf, KEY_RUN, run);
}

static int load_meta(struct store *s)
{
        char *value;
        size_t len;
        uint8_t key = KEY_META;
        s->meta = (Ferretd__StoredMeta)FERRETD__STORED_META__INIT;
        s->meta.format = STORE_FORMAT;
        int r = store_get(s, &key, 1, &value, &len);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        Ferretd__StoredMeta *m = ferretd__stored_meta__unpack(NULL, len, (const uint8_t *)value);
        store_free_value(value);
        if (!m)
                return log_error_errno(EIO, "Database %s has a damaged meta record", s->path);
        if (m->format > STORE_FORMAT) {
                ferretd__stored_meta__free_unpacked(m, NULL);
                return log_error_errno(EIO, "Database %s has format %u; this ferretd reads up to %u",
                                       s->path, m->format, STORE_FORMAT);
        }
        s->meta.next_run = m->next_run;
        s->meta.next_chunk = m->next_chunk;
        ferretd__stored_meta__free_unpacked(m, NULL);
        return 0;
}

/* The merge operator of time buckets (the only keys written as merges):
 * operands are added up by buckets_merge(). */
static char *merge_buckets(void *state, const char *key, size_t key_len, const char *existing,
                           size_t existing_len, const char *const *operands, const size_t *lens, int n,
                           unsigned char *success, size_t *ret_len)
{
        (void)state, (void)key, (void)key_len;
        void *value = NULL;
        *success = buckets_merge(existing, existing_len, operands, lens, n, &value, ret_len) == 0;
        return value;
}

static char *merge_bucket_operands(void *state, const char *key, size_t key_len, const char *const *operands,
                                   const size_t *lens, int n, unsigned char *success, size_t *ret_len)
{
        return merge_buckets(state, key, key_len, NULL, 0, operands, lens, n, success, ret_len);
}

static void merge_free(void *state, const char *value, size_t len)
{
        (void)state, (void)len;
        free((char *)value);
}

static const char *merge_name(void *state)
{
        (void)state;
        return "ferret.bucket-stats";
}

static void merge_destroy(void *state)
{
        (void)state;
}

int store_open(const char *path, bool read_only, struct store **ret)
{
        struct stat st;
        char *err = NULL;
        int r;

        if (read_only && stat(path, &st) < 0)
                return -ENOENT;

        struct store *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->path = strdup(path);
        s->read_only = read_only;
        s->options = rocksdb_options_create();
        s->write_options = rocksdb_writeoptions_create();
        s->read_options = rocksdb_readoptions_create();
        if (!s->path || !s->options || !s->write_options || !s->read_options) {
                r = -ENOMEM;
                goto fail;
        }

        rocksdb_options_set_create_if_missing(s->options, !read_only);
        rocksdb_options_increase_parallelism(s->options, 2);
        /* Batches are large values that compress well; lz4 while they are
         * hot, zstd once compaction moves them to the last level. */
        rocksdb_options_set_compression(s->options, rocksdb_lz4_compression);
        rocksdb_options_set_bottommost_compression(s->options, rocksdb_zstd_compression);
        rocksdb_options_set_max_open_files(s->options, 512);
        rocksdb_options_set_keep_log_file_num(s->options, 2);
        rocksdb_options_set_info_log_level(s->options, 2 /* warn */);
        rocksdb_options_set_manifest_preallocation_size(s->options, 64 * 1024);
        /* The options own it from here. */
        rocksdb_options_set_merge_operator(s->options,
                                           rocksdb_mergeoperator_create(NULL, merge_destroy, merge_buckets,
                                                                        merge_bucket_operands, merge_free,
                                                                        merge_name));

        if (!read_only && mkdir(path, 0750) < 0 && errno != EEXIST) {
                r = log_error_errno(errno, "Failed to create database directory %s: %m", path);
                goto fail;
        }
        s->db = read_only ? rocksdb_open_for_read_only(s->options, path, 0, &err)
                          : rocksdb_open(s->options, path, &err);
        if (!s->db) {
                if (err && strstr(err, "lock"))
                        r = -EBUSY;
                else if (read_only)
                        r = -ENOENT;
                else
                        r = log_error_errno(err && strstr(err, "No space left") ? ENOSPC : EIO,
                                            "Failed to open database %s: %s", path, err ? err : "unknown error");
                rocksdb_free(err);
                goto fail;
        }
        r = load_meta(s);
        if (r < 0)
                goto fail;
        *ret = s;
        return 0;

fail:
        store_close(s);
        return r;
}

void store_close(struct store *s)
{
        if (!s)
                return;
        if (s->db)
                rocksdb_close(s->db);
        if (s->read_options)
                rocksdb_readoptions_destroy(s->read_options);
        if (s->write_options)
                rocksdb_writeoptions_destroy(s->write_options);
        if (s->options)
                rocksdb_options_destroy(s->options);
        free(s->path);
        free(s);
}

const char *store_path(const struct store *s)
{
        return s->path;
}

bool store_read_only(const struct store *s)
{
        return s->read_only;
}

uint64_t store_disk_bytes(const struct store *s)
{
        uint64_t total = 0;
        DIR *d = opendir(s->path);
        if (!d)
                return 0;
        struct dirent *e;
        while ((e = readdir(d))) {
                struct stat st;
                /* The bytes the files hold: RocksDB reserves space ahead for
                 * its write-ahead log, which no data fills yet. */
                if (fstatat(dirfd(d), e->d_name, &st, 0) == 0 && S_ISREG(st.st_mode))
                        total += (uint64_t)st.st_size;
        }
        closedir(d);
        return total;
}

int store_get(struct store *s, const void *key, size_t key_len, char **ret, size_t *ret_len)
{
        char *err = NULL;
        size_t len;
        char *v = rocksdb_get(s->db, s->read_options, key, key_len, &len, &err);
        if (err) {
                int r = log_error_errno(EIO, "Failed to read from %s: %s", s->path, err);
                rocksdb_free(err);
                return r;
        }
        if (!v)
                return -ENOENT;
        *ret = v;
        *ret_len = len;
        return 0;
}

void store_free_value(char *value)
{
        rocksdb_free(value);
}

int store_scan_from(struct store *s, const void *prefix, size_t seek_len, size_t prefix_len, bool reverse,
                           store_visit_fn visit, void *userdata)
{
        /* An iterator reads one consistent snapshot of the database. */
        rocksdb_iterator_t *it = rocksdb_create_iterator(s->db, s->read_options);
        int r = 0;
        if (reverse) {
                /* Position after every key with this prefix, then walk back. */
                uint8_t end[STORE_MAX_KEY + 1];
                if (prefix_len > STORE_MAX_KEY)
                        prefix_len = STORE_MAX_KEY;
                memcpy(end, prefix, prefix_len);
                end[prefix_len] = 0xff;
                rocksdb_iter_seek_for_prev(it, (const char *)end, prefix_len + 1);
        } else
                rocksdb_iter_seek(it, prefix, seek_len);

        for (; rocksdb_iter_valid(it); reverse ? rocksdb_iter_prev(it) : rocksdb_iter_next(it)) {
                size_t klen, vlen;
                const char *k = rocksdb_iter_key(it, &klen);
                if (klen < prefix_len || memcmp(k, prefix, prefix_len) != 0) {
                        if (reverse && klen >= prefix_len && memcmp(k, prefix, prefix_len) > 0)
                                continue;       /* 0xff-suffixed keys past our bound */
                        break;
                }
                const char *v = rocksdb_iter_value(it, &vlen);
                r = visit(k, klen, v, vlen, userdata);
                if (r != 0)
                        break;
        }
        char *err = NULL;
        rocksdb_iter_get_error(it, &err);
        if (err) {
                r = log_error_errno(EIO, "Failed to scan %s: %s", s->path, err);
                rocksdb_free(err);
        }
        rocksdb_iter_destroy(it);
        return r < 0 ? r : 0;
}

static int store_scan(struct store *s, const void *prefix, size_t prefix_len, bool reverse,
                      store_visit_fn visit, void *userdata)
{
        return store_scan_from(s, prefix, prefix_len, prefix_len, reverse, visit, userdata);
}


struct typed_scan {
        union {
                store_run_fn run;
                store_stats_fn stats;
                store_chunk_fn chunk;
                store_path_fn path;
                store_process_fn process;
        } visit;
        void *userdata;
};

static int visit_run_key(const void *key, size_t key_len, const void *value, size_t value_len, void *userdata)
{
        struct typed_scan *t = userdata;
        if (key_len != 5)       /* 'r' keys are exactly table and run */
                return 0;
        return t->visit.run(get_be32((const uint8_t *)key + 1), value, value_len, t->userdata);
}

int store_scan_runs(struct store *s, bool newest_first, store_run_fn visit, void *userdata)
{
        struct typed_scan t = { .visit.run = visit, .userdata = userdata };
        uint8_t prefix = KEY_RUN;
        return store_scan(s, &prefix, 1, newest_first, visit_run_key, &t);
}

static int visit_stats_key(const void *key, size_t key_len, const void *value, size_t value_len, void *userdata)
{
        struct typed_scan *t = userdata;
        char name[STORE_MAX_KEY];
        if (key_len < 5 || key_len - 5 >= sizeof(name))
                return 0;
        memcpy(name, (const char *)key + 5, key_len - 5);
        name[key_len - 5] = '\0';
        return t->visit.stats(get_be32((const uint8_t *)key + 1), name, value, value_len, t->userdata);
}

int store_scan_stats(struct store *s, uint32_t run, store_stats_fn visit, void *userdata)
{
        struct typed_scan t = { .visit.stats = visit, .userdata = userdata };
        uint8_t prefix[5] = { KEY_STATS };
        size_t len = run == STORE_ALL_RUNS ? 1 : store_key_run_prefix(prefix, KEY_STATS, run);
        return store_scan(s, prefix, len, false, visit_stats_key, &t);
}

static int visit_chunk_key(const void *key, size_t key_len, const void *value, size_t value_len, void *userdata)
{
        struct typed_scan *t = userdata;
        return t->visit.chunk(value, value_len, t->userdata);
}

int store_scan_chunks(struct store *s, uint32_t run, store_chunk_fn visit, void *userdata)
{
        struct typed_scan t = { .visit.chunk = visit, .userdata = userdata };
        uint8_t prefix[5];
        return store_scan(s, prefix, store_key_run_prefix(prefix, KEY_CHUNK, run), false, visit_chunk_key, &t);
}

static int visit_path_key(const void *key, size_t key_len, const void *value, size_t value_len, void *userdata)
{
        struct typed_scan *t = userdata;
        if (key_len != 13)      /* table, run, path */
                return 0;
        return t->visit.path(get_be64((const uint8_t *)key + 5), value, value_len, t->userdata);
}

int store_scan_paths(struct store *s, uint32_t run, bool histograms, store_path_fn visit, void *userdata)
{
        struct typed_scan t = { .visit.path = visit, .userdata = userdata };
        uint8_t prefix[5];
        return store_scan(s, prefix, store_key_run_prefix(prefix, histograms ? KEY_PATH_HISTOGRAM : KEY_PATH, run),
                          false, visit_path_key, &t);
}

struct bucket_scan {
        uint8_t end[21];
        store_bucket_fn visit;
        void *userdata;
};

static int visit_bucket_key(const void *key, size_t key_len, const void *value, size_t value_len, void *userdata)
{
        struct bucket_scan *b = userdata;
        if (key_len != 21)      /* table, run, bucket, path */
                return 0;
        if (memcmp(key, b->end, sizeof(b->end)) >= 0)
                return 1;
        return b->visit(get_be64((const uint8_t *)key + 5), get_be64((const uint8_t *)key + 13), value, value_len,
                        b->userdata);
}

int store_scan_buckets(struct store *s, uint32_t run, uint64_t first, uint64_t end, store_bucket_fn visit,
                       void *userdata)
{
        struct bucket_scan b = { .visit = visit, .userdata = userdata };
        uint8_t from[13];
        store_key_run_prefix(from, KEY_BUCKET, run);
        put_be64(from + 5, first);
        store_key_run_prefix(b.end, KEY_BUCKET, run);
        put_be64(b.end + 5, end);
        memset(b.end + 13, 0, 8);
        return store_scan_from(s, from, sizeof(from), 5, false, visit_bucket_key, &b);
}

int store_get_bucket_width(struct store *s, uint32_t run, uint64_t *ret_ns)
{
        uint8_t key[5];
        char *value;
        size_t len;
        int r = store_get(s, key, store_key_run_prefix(key, KEY_BUCKET_WIDTH, run), &value, &len);
        if (r < 0)
                return r;
        *ret_ns = len == 8 ? get_be64((const uint8_t *)value) : 0;
        store_free_value(value);
        return *ret_ns ? 0 : -ENOENT;
}

static int visit_process_key(const void *key, size_t key_len, const void *value, size_t value_len,
                             void *userdata)
{
        struct typed_scan *t = userdata;
        char executable[STORE_MAX_KEY];
        if (key_len != 9 || value_len >= sizeof(executable))
                return 0;
        memcpy(executable, value, value_len);
        executable[value_len] = '\0';
        return t->visit.process(get_be32((const uint8_t *)key + 5), executable, t->userdata);
}

int store_scan_processes(struct store *s, uint32_t run, store_process_fn visit, void *userdata)
{
        struct typed_scan t = { .visit.process = visit, .userdata = userdata };
        uint8_t prefix[5];
        return store_scan(s, prefix, store_key_run_prefix(prefix, KEY_PROCESS, run), false, visit_process_key, &t);
}

/* 'c' values: two big-endian u64s, stored and seq; records of one u64
 * predate the seq. */
int store_get_client(struct store *s, uint32_t run, uint64_t client_id, uint64_t *ret_stored, uint64_t *ret_seq)
{
        uint8_t key[13];
        char *value;
        size_t len;
        store_key_client(key, run, client_id);
        int r = store_get(s, key, sizeof(key), &value, &len);
        if (r < 0)
                return r;
        *ret_stored = len >= 8 ? get_be64((const uint8_t *)value) : 0;
        *ret_seq = len >= 16 ? get_be64((const uint8_t *)value + 8) : 0;
        store_free_value(value);
        return 0;
}

int store_run_number(struct store *s, const char *run_id, uint32_t *ret)
{
        size_t n = strlen(run_id);
        uint8_t key[STORE_MAX_KEY];
        if (1 + n > sizeof(key))
                return -ENOENT;
        char *v;
        size_t len;
        key[0] = KEY_RUN_NAME;
        memcpy(key + 1, run_id, n);
        int r = store_get(s, key, 1 + n, &v, &len);
        if (r < 0)
                return r;
        if (len != 4) {
                store_free_value(v);
                return -EIO;
        }
        *ret = get_be32((const uint8_t *)v);
        store_free_value(v);
        return 0;
}

static int visit_first_run(const void *key, size_t key_len, const void *value, size_t value_len, void *userdata)
{
        if (key_len != 5)
                return 0;
        *(uint32_t *)userdata = get_be32((const uint8_t *)key + 1);
        return 1;
}

int store_newest_run(struct store *s, uint32_t *ret)
{
        uint8_t prefix = KEY_RUN;
        uint32_t run = 0;
        int r = store_scan(s, &prefix, 1, true, visit_first_run, &run);
        if (r < 0)
                return r;
        if (!run)
                return -ENOENT;
        *ret = run;
        return 0;
}

int store_load_run(struct store *s, uint32_t run, Ferret__RunInfo **ret)
{
        uint8_t key[5];
        char *v;
        size_t len;
        int r = store_get(s, key, store_key_run(key, run), &v, &len);
        if (r < 0)
                return r;
        Ferret__RunInfo *info = ferret__run_info__unpack(NULL, len, (const uint8_t *)v);
        store_free_value(v);
        if (!info)
                return -EIO;
        *ret = info;
        return 0;
}

uint32_t store_allocate_run(struct store *s)
{
        return ++s->meta.next_run;
}

struct store_batch *store_batch_new(void)
{
        struct store_batch *b = calloc(1, sizeof(*b));
        if (!b)
                return NULL;
        b->wb = rocksdb_writebatch_create();
        return b;
}

void store_batch_free(struct store_batch *b)
{
        if (!b)
                return;
        rocksdb_writebatch_destroy(b->wb);
        free(b);
}

void store_batch_put(struct store_batch *b, const void *key, size_t key_len, const void *value, size_t value_len)
{
        rocksdb_writebatch_put(b->wb, key, key_len, value, value_len);
}

void store_batch_put_run_name(struct store_batch *b, const char *run_id, uint32_t run)
{
        size_t n = strlen(run_id);
        uint8_t key[STORE_MAX_KEY], value[4];
        if (1 + n > sizeof(key))
                return;
        key[0] = KEY_RUN_NAME;
        memcpy(key + 1, run_id, n);
        put_be32(value, run);
        store_batch_put(b, key, 1 + n, value, 4);
}

void store_batch_put_run(struct store_batch *b, uint32_t run, const Ferret__RunInfo *info)
{
        uint8_t key[5];
        size_t len = ferret__run_info__get_packed_size(info);
        uint8_t *value = malloc(len ? len : 1);
        if (!value)
                return;
        ferret__run_info__pack(info, value);
        store_batch_put(b, key, store_key_run(key, run), value, len);
        free(value);
}

void store_batch_put_chunk(struct store *s, struct store_batch *b, uint32_t run, uint64_t start_ns,
                           const void *data, size_t len, uint32_t spans)
{
        uint8_t key[21];
        store_key_run_prefix(key, KEY_CHUNK, run);
        put_be64(key + 5, start_ns);
        put_be64(key + 13, ++s->meta.next_chunk);
        store_batch_put(b, key, sizeof(key), data, len);
        if (s->forwarding)
                store_batch_put_forward(s, b, s->meta.next_chunk, run, start_ns, spans);
}

void store_batch_put_client(struct store_batch *b, uint32_t run, uint64_t client_id, uint64_t stored, uint64_t seq)
{
        uint8_t key[13], value[16];
        store_key_client(key, run, client_id);
        put_be64(value, stored);
        put_be64(value + 8, seq);
        store_batch_put(b, key, sizeof(key), value, sizeof(value));
}

void store_batch_put_stats(struct store_batch *b, uint32_t run, const char *name, const Ferretd__StoredStats *st)
{
        size_t n = strlen(name);
        uint8_t key[STORE_MAX_KEY];
        if (5 + n > sizeof(key))
                return;
        store_key_run_prefix(key, KEY_STATS, run);
        memcpy(key + 5, name, n);
        size_t len = ferretd__stored_stats__get_packed_size(st);
        uint8_t *value = malloc(len ? len : 1);
        if (!value)
                return;
        ferretd__stored_stats__pack(st, value);
        store_batch_put(b, key, 5 + n, value, len);
        free(value);
}

void store_batch_put_path(struct store_batch *b, uint32_t run, uint64_t path, bool histogram, const void *value,
                          size_t len)
{
        uint8_t key[13];
        store_key_run_prefix(key, histogram ? KEY_PATH_HISTOGRAM : KEY_PATH, run);
        put_be64(key + 5, path);
        store_batch_put(b, key, sizeof(key), value, len);
}

void store_batch_put_process(struct store_batch *b, uint32_t run, uint32_t pid, const char *executable)
{
        uint8_t key[9];
        store_key_run_prefix(key, KEY_PROCESS, run);
        put_be32(key + 5, pid);
        store_batch_put(b, key, sizeof(key), executable, strlen(executable));
}

static size_t store_key_bucket(uint8_t *key, uint32_t run, uint64_t bucket, uint64_t path)
{
        store_key_run_prefix(key, KEY_BUCKET, run);
        put_be64(key + 5, bucket);
        put_be64(key + 13, path);
        return 21;
}

void store_batch_merge_bucket(struct store_batch *b, uint32_t run, uint64_t bucket, uint64_t path, const void *value,
                              size_t len)
{
        uint8_t key[21];
        rocksdb_writebatch_merge(b->wb, (const char *)key, store_key_bucket(key, run, bucket, path), value, len);
}

void store_batch_put_bucket(struct store_batch *b, uint32_t run, uint64_t bucket, uint64_t path, const void *value,
                            size_t len)
{
        uint8_t key[21];
        store_batch_put(b, key, store_key_bucket(key, run, bucket, path), value, len);
}

int store_get_bucket(struct store *s, uint32_t run, uint64_t bucket, uint64_t path, char **ret, size_t *ret_len)
{
        uint8_t key[21];
        return store_get(s, key, store_key_bucket(key, run, bucket, path), ret, ret_len);
}

void store_batch_put_bucket_width(struct store_batch *b, uint32_t run, uint64_t width_ns)
{
        uint8_t key[5], value[8];
        put_be64(value, width_ns);
        store_batch_put(b, key, store_key_run_prefix(key, KEY_BUCKET_WIDTH, run), value, sizeof(value));
}

/* A whole range goes in two steps: DeleteFilesInRange drops the files that
 * lie entirely inside it at once (that is what frees the disk), DeleteRange
 * hides everything else until compaction removes it. */
static int delete_range(struct store *s, rocksdb_writebatch_t *wb, const uint8_t *from, size_t from_len,
                        const uint8_t *to, size_t to_len)
{
        char *err = NULL;
        rocksdb_writebatch_delete_range(wb, (const char *)from, from_len, (const char *)to, to_len);
        rocksdb_delete_file_in_range(s->db, (const char *)from, from_len, (const char *)to, to_len, &err);
        if (err) {
                log_warning("Failed to drop files of a deleted range in %s: %s, ignoring", s->path, err);
                rocksdb_free(err);
        }
        return 0;
}

static int write_and_compact(struct store *s, rocksdb_writebatch_t *wb, const uint8_t *from, size_t from_len,
                             const uint8_t *to, size_t to_len)
{
        char *err = NULL;
        rocksdb_write(s->db, s->write_options, wb, &err);
        if (err) {
                int r = log_error_errno(EIO, "Failed to delete from %s: %s", s->path, err);
                rocksdb_free(err);
                return r;
        }
        /* What DeleteFilesInRange could not drop goes at the next
         * compaction; ask for it now so the space comes back. */
        rocksdb_compact_range(s->db, (const char *)from, from_len, (const char *)to, to_len);
        return 0;
}

int store_delete_run(struct store *s, uint32_t run, const char *run_id)
{
        uint8_t from[5], to[5], key[STORE_MAX_KEY];
        rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
        for (const char *table = "stcpoqbw"; *table; table++) {
                store_key_run_prefix(from, *table, run);
                store_key_run_prefix(to, *table, run + 1);
                delete_range(s, wb, from, 5, to, 5);
        }
        rocksdb_writebatch_delete(wb, (const char *)key, store_key_run(key, run));
        size_t n = strlen(run_id);
        if (1 + n <= sizeof(key)) {
                key[0] = KEY_RUN_NAME;
                memcpy(key + 1, run_id, n);
                rocksdb_writebatch_delete(wb, (const char *)key, 1 + n);
        }
        store_key_run_prefix(from, KEY_CHUNK, run);
        store_key_run_prefix(to, KEY_CHUNK, run + 1);
        int r = write_and_compact(s, wb, from, 5, to, 5);
        rocksdb_writebatch_destroy(wb);
        return r;
}

struct nth_key {
        uint64_t want, seen;
        uint8_t key[21];
        size_t len;
};

static int visit_nth(const void *key, size_t key_len, const void *value, size_t value_len, void *userdata)
{
        struct nth_key *n = userdata;
        if (n->seen++ < n->want)
                return 0;
        n->len = key_len < sizeof(n->key) ? key_len : sizeof(n->key);
        memcpy(n->key, key, n->len);
        return 1;
}

static int count_keys(const void *key, size_t key_len, const void *value, size_t value_len, void *userdata)
{
        (*(uint64_t *)userdata)++;
        return 0;
}

int store_trim_run(struct store *s, uint32_t run, double fraction)
{
        uint8_t from[5];
        uint64_t total = 0;
        store_key_run_prefix(from, KEY_CHUNK, run);
        int r = store_scan(s, from, 5, false, count_keys, &total);
        if (r < 0)
                return r;
        if (total == 0)
                return -ENOENT;
        struct nth_key nth = { .want = (uint64_t)((double)total * fraction) };
        if (nth.want == 0)
                nth.want = 1;
        if (nth.want >= total) {
                uint8_t to[5];
                store_key_run_prefix(to, KEY_CHUNK, run + 1);
                memcpy(nth.key, to, 5);
                nth.len = 5;
        } else {
                r = store_scan(s, from, 5, false, visit_nth, &nth);
                if (r < 0)
                        return r;
        }
        rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
        delete_range(s, wb, from, 5, nth.key, nth.len);
        r = write_and_compact(s, wb, from, 5, nth.key, nth.len);
        rocksdb_writebatch_destroy(wb);
        return r;
}

void store_flush(struct store *s)
{
        char *err = NULL;
        rocksdb_flushoptions_t *o = rocksdb_flushoptions_create();
        rocksdb_flushoptions_set_wait(o, 1);
        rocksdb_flush(s->db, o, &err);
        rocksdb_flushoptions_destroy(o);
        if (err) {
                log_warning("Failed to flush %s: %s, ignoring", s->path, err);
                rocksdb_free(err);
        }
}

size_t store_batch_bytes(const struct store_batch *b)
{
        size_t len;
        rocksdb_writebatch_data(b->wb, &len);
        return len;
}

/* Room a commit must leave on the database's file system: RocksDB fails a
 * write that finds the disk full half-way through its log and cannot take
 * another write on that log afterwards (an assertion in 7.8), and a flush
 * of the memory tables writes them out before it frees their log. So a
 * commit is not tried unless this much stays free after it. */
#define STORE_FREE_RESERVE (8u << 20)

static uint64_t memtable_bytes(const struct store *s)
{
        char *v = rocksdb_property_value(s->db, "rocksdb.cur-size-all-mem-tables");
        uint64_t n = v ? strtoull(v, NULL, 10) : 0;
        free(v);
        return n;
}

static uint64_t path_free_bytes(const char *path)
{
        struct statvfs fs;
        if (statvfs(path, &fs) < 0)
                return UINT64_MAX;      /* cannot tell: let the write say */
        return (uint64_t)fs.f_bavail * fs.f_frsize;
}

static uint64_t free_bytes(const struct store *s)
{
        return path_free_bytes(s->path);
}

bool store_path_disk_full(const char *path)
{
        return path_free_bytes(path) < STORE_FREE_RESERVE;
}

bool store_has_room(struct store *s, size_t bytes)
{
        uint64_t mem = memtable_bytes(s), room = free_bytes(s);
        if (room >= STORE_FREE_RESERVE + 2 * (uint64_t)bytes + 2 * mem)
                return true;
        /* The memory tables' log holds as much as they do: written out (an
         * SST, compressed, and the log goes), they may leave room. */
        if (mem && room >= STORE_FREE_RESERVE + mem) {
                char *err = NULL;
                rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
                rocksdb_flushoptions_set_wait(fo, 1);
                rocksdb_flush(s->db, fo, &err);
                rocksdb_flushoptions_destroy(fo);
                if (err) {
                        log_warning("Failed to flush %s to make room: %s", s->path, err);
                        rocksdb_free(err);
                        return false;
                }
                mem = memtable_bytes(s);
                room = free_bytes(s);
        }
        return room >= STORE_FREE_RESERVE + 2 * (uint64_t)bytes + 2 * mem;
}

int store_commit(struct store *s, struct store_batch *b)
{
        uint8_t meta[64], key = KEY_META;
        size_t len = ferretd__stored_meta__pack(&s->meta, meta);
        /* Put again at each try (the last put of a key in a batch wins):
         * the counters in it must be the latest when the write goes in. */
        store_batch_put(b, &key, 1, meta, len);

        size_t size;
        rocksdb_writebatch_data(b->wb, &size);
        if (!store_has_room(s, size))
                return -ENOSPC;
        char *err = NULL;
        rocksdb_write(s->db, s->write_options, b->wb, &err);
        if (err) {
                int r = log_error_errno(EIO, "Failed to write to %s: %s", s->path, err);
                rocksdb_free(err);
                return r;
        }
        rocksdb_writebatch_clear(b->wb);
        return 0;
}

void store_compact(struct store *s, bool rewrite_last_level)
{
        if (!rewrite_last_level) {
                rocksdb_compact_range(s->db, NULL, 0, NULL, 0);
                return;
        }
        rocksdb_compactoptions_t *co = rocksdb_compactoptions_create();
        if (!co)
                return;
        rocksdb_compactoptions_set_bottommost_level_compaction(co, 2 /* kForce */);
        rocksdb_compact_range_opt(s->db, co, NULL, 0, NULL, 0);
        rocksdb_compactoptions_destroy(co);
}

uint64_t store_sst_bytes(struct store *s)
{
        char *v = rocksdb_property_value(s->db, "rocksdb.total-sst-files-size");
        uint64_t n = v ? strtoull(v, NULL, 10) : 0;
        rocksdb_free(v);
        return n;
}
