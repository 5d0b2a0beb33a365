/* SPDX-License-Identifier: MIT */
/*
 * The forwarder's backlog in the database: an index entry per batch stored
 * since forwarding was turned on, written in the same commit as the batch,
 * keyed by the batch's chunk number (the order ferretd stored them in), and
 * removed once the collector has taken its spans. What is left after a
 * restart, or a collector away for an hour, is exactly what was not sent;
 * the totals sit beside it, written with each removal.
 */
#include <errno.h>
#include <string.h>

#include "log.h"
#include "store-private.h"

#define ENTRY_LEN 16                  /* run u32, start u64, spans u32 */

void store_set_forwarding(struct store *s, bool on)
{
        s->forwarding = on;
}

void store_batch_put_forward(struct store *s, struct store_batch *b, uint64_t seq, uint32_t run, uint64_t start_ns,
                             uint32_t spans)
{
        uint8_t key[9], value[ENTRY_LEN];
        key[0] = KEY_FORWARD;
        put_be64(key + 1, seq);
        put_be32(value, run);
        put_be64(value + 4, start_ns);
        put_be32(value + 12, spans);
        store_batch_put(b, key, sizeof(key), value, sizeof(value));
}

struct forward_scan {
        store_forward_fn visit;
        void *userdata;
};

static int visit_forward_key(const void *key, size_t key_len, const void *value, size_t value_len, void *userdata)
{
        struct forward_scan *f = userdata;
        const uint8_t *v = value;
        if (key_len != 9 || value_len != ENTRY_LEN)
                return 0;       /* not ours: skipped */
        return f->visit(get_be64((const uint8_t *)key + 1), get_be32(v), get_be64(v + 4), get_be32(v + 12),
                        f->userdata);
}

int store_scan_forward(struct store *s, uint64_t from_seq, store_forward_fn visit, void *userdata)
{
        struct forward_scan f = { .visit = visit, .userdata = userdata };
        uint8_t from[9];
        from[0] = KEY_FORWARD;
        put_be64(from + 1, from_seq);
        return store_scan_from(s, from, sizeof(from), 1, false, visit_forward_key, &f);
}

int store_get_forward_chunk(struct store *s, uint64_t seq, uint32_t run, uint64_t start_ns, char **ret,
                            size_t *ret_len)
{
        uint8_t key[21];
        key[0] = KEY_CHUNK;
        put_be32(key + 1, run);
        put_be64(key + 5, start_ns);
        put_be64(key + 13, seq);
        return store_get(s, key, sizeof(key), ret, ret_len);
}

int store_get_forward_totals(struct store *s, struct forward_totals *ret)
{
        uint8_t key = KEY_FORWARD_STATE;
        char *v;
        size_t len;
        *ret = (struct forward_totals){ 0 };
        int r = store_get(s, &key, 1, &v, &len);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (len == 24) {
                const uint8_t *p = (const uint8_t *)v;
                *ret = (struct forward_totals){ get_be64(p), get_be64(p + 8), get_be64(p + 16) };
        }
        store_free_value(v);
        return 0;
}

int store_forward_done(struct store *s, uint64_t end_seq, const struct forward_totals *totals)
{
        uint8_t from[9] = { KEY_FORWARD }, to[9] = { KEY_FORWARD }, key = KEY_FORWARD_STATE, value[24];
        put_be64(to + 1, end_seq);
        put_be64(value, totals->sent);
        put_be64(value + 8, totals->dropped);
        put_be64(value + 16, totals->rejected);
        /* Its own write, never the ingest thread's batch (nor the meta
         * record, which that thread owns): RocksDB orders the two. */
        rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
        rocksdb_writebatch_delete_range(wb, (const char *)from, sizeof(from), (const char *)to, sizeof(to));
        rocksdb_writebatch_put(wb, (const char *)&key, 1, (const char *)value, sizeof(value));
        char *err = NULL;
        rocksdb_write(s->db, s->write_options, wb, &err);
        rocksdb_writebatch_destroy(wb);
        if (err) {
                int r = log_error_errno(EIO, "Failed to write the forwarder's position to %s: %s", s->path, err);
                rocksdb_free(err);
                return r;
        }
        return 0;
}
