/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.h>

#include "buckets.h"
#include "config.h"
#include "histogram.h"
#include "log.h"
#include "peers.h"
#include "path-tree.h"
#include "forward.h"
#include "query.h"
#include "runs.h"
#include "tree.h"
#include "wire.h"

#define MAX_PARKED_FLUSHES 4096
#define IDENTITY_MAX 256

struct parked_flush {
        uint8_t identity[IDENTITY_MAX];
        size_t identity_len;
        uint64_t client_id, seq, deadline_ns;
};

struct query {
        struct store *store;
        struct acks *acks;
        struct ingest *ingest;
        void *socket;
        const char *runtime_dir;
        struct retention_config retention;
        struct peers *peers;
        struct forwarder *forwarder;     /* shown by status, or NULL */
        const char *otlp_listen;         /* shown by status, or NULL */
        int stop_fd;
        pthread_t thread;
        struct parked_flush *parked;
        size_t n_parked;
};

/* Replies: [identity][empty][response]. */
static void send_response(struct query *q, const void *identity, size_t identity_len, Ferret__Response *resp)
{
        resp->version = WIRE_PROTOCOL_VERSION;
        size_t len = ferret__response__get_packed_size(resp);
        uint8_t *buf = malloc(len ? len : 1);
        if (!buf) {
                log_error("Out of memory for a %zu-byte response, dropping it", len);
                return;
        }
        ferret__response__pack(resp, buf);
        if (zmq_send(q->socket, identity, identity_len, ZMQ_SNDMORE) < 0 ||
            zmq_send(q->socket, "", 0, ZMQ_SNDMORE) < 0 || zmq_send(q->socket, buf, len, 0) < 0)
                log_debug("Failed to send a response: %s, ignoring", zmq_strerror(errno));
        free(buf);
}

static void send_error(struct query *q, const void *identity, size_t identity_len, int error, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

static void send_error(struct query *q, const void *identity, size_t identity_len, int error, const char *fmt, ...)
{
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        Ferret__Response resp = FERRET__RESPONSE__INIT;
        resp.error = error;
        resp.error_message = msg;
        send_response(q, identity, identity_len, &resp);
}

/* Resolves a run name ("" is the newest) to its number and loads its
 * record. A run that does not exist is answered here, with -ENOENT
 * returned so the caller just stops. */
static int resolve_run(struct query *q, const void *id, size_t id_len, const char *name, uint32_t *ret,
                       Ferret__RunInfo **ret_info)
{
        int r = !name || !*name ? store_newest_run(q->store, ret) : store_run_number(q->store, name, ret);
        if (r == -ENOENT) {
                if (name && *name)
                        send_error(q, id, id_len, -ENOENT, "no run named '%s'", name);
                else
                        send_error(q, id, id_len, -ENOENT, "the database holds no runs yet");
                return r;
        }
        return r < 0 ? r : store_load_run(q->store, *ret, ret_info);
}

/* --- runs --- */

struct runs_acc {
        Ferret__RunInfo **runs;
        size_t n, cap;
};

static int visit_run(uint32_t run, const void *value, size_t value_len, void *userdata)
{
        struct runs_acc *acc = userdata;
        Ferret__RunInfo *info = ferret__run_info__unpack(NULL, value_len, value);
        if (!info)
                return 0;
        if (acc->n == acc->cap) {
                size_t cap = acc->cap ? acc->cap * 2 : 64;
                Ferret__RunInfo **p = realloc(acc->runs, cap * sizeof(*p));
                if (!p) {
                        ferret__run_info__free_unpacked(info, NULL);
                        return -ENOMEM;
                }
                acc->runs = p;
                acc->cap = cap;
        }
        acc->runs[acc->n++] = info;
        return 0;
}

static void handle_runs(struct query *q, const void *id, size_t id_len)
{
        struct runs_acc acc = { 0 };
        int r = store_scan_runs(q->store, true, visit_run, &acc);
        if (r < 0)
                send_error(q, id, id_len, r, "failed to list runs: %s", strerror(-r));
        else {
                Ferret__RunsResponse runs = FERRET__RUNS_RESPONSE__INIT;
                Ferret__Response resp = FERRET__RESPONSE__INIT;
                runs.n_runs = acc.n;
                runs.runs = acc.runs;
                resp.body_case = FERRET__RESPONSE__BODY_RUNS;
                resp.runs = &runs;
                send_response(q, id, id_len, &resp);
        }
        for (size_t i = 0; i < acc.n; i++)
                ferret__run_info__free_unpacked(acc.runs[i], NULL);
        free(acc.runs);
}

/* --- summary --- */

struct summary_acc {
        struct strmap by_name;          /* name -> struct name_stats */
};

/* Adds @add's numbers to @name's row; takes @add's histogram if @owned,
 * else copies from it. */
static int acc_add(struct summary_acc *acc, const char *name, struct name_stats *add, bool owned)
{
        struct name_stats *st = strmap_get(&acc->by_name, name);
        if (!st) {
                st = calloc(1, sizeof(*st));
                if (!st || strmap_put(&acc->by_name, name, st) < 0) {
                        free(st);
                        if (owned)
                                hist_free(&add->hist);
                        return -ENOMEM;
                }
                st->min_ns = UINT64_MAX;
        }
        st->min_ns = add->min_ns < st->min_ns ? add->min_ns : st->min_ns;
        st->max_ns = add->max_ns > st->max_ns ? add->max_ns : st->max_ns;
        st->count += add->count;
        st->total_ns += add->total_ns;
        st->self_ns += add->self_ns;
        st->untimed += add->untimed;
        st->errors += add->errors;
        st->warnings += add->warnings;
        int r = hist_merge(&st->hist, &add->hist);
        if (owned)
                hist_free(&add->hist);
        return r;
}

static int visit_stats(uint32_t run, const char *name, const void *value, size_t value_len, void *userdata)
{
        Ferretd__StoredStats *s = ferretd__stored_stats__unpack(NULL, value_len, value);
        if (!s)
                return 0;
        struct name_stats add;
        int r = stats_from_stored(&add, s);
        ferretd__stored_stats__free_unpacked(s, NULL);
        return r < 0 ? r : acc_add(userdata, name, &add, true);
}

/* The window to answer: with @whole_buckets, widened to the edges of the
 * run's time buckets (when it has them). */
static int answered_window(struct query *q, uint32_t run, bool whole_buckets, uint64_t *since, uint64_t *until)
{
        uint64_t first, end;
        if (!whole_buckets)
                return 0;
        int r = buckets_window(q->store, run, true, since, until, &first, &end);
        return r == -ESTALE ? 0 : r;
}

static int visit_path_node(const char *name, const struct name_stats *st, void *userdata)
{
        return acc_add(userdata, name, (struct name_stats *)st, false);
}

/* A window of a run: its spans' names, from the merged tree of the window. */
static int visit_merged(const struct merged_stats *m, void *userdata)
{
        struct name_stats add = {
                .count = m->count, .total_ns = m->total_ns, .self_ns = m->self_ns, .min_ns = m->min_ns,
                .max_ns = m->max_ns, .errors = m->errors, .warnings = m->warnings,
        };
        for (uint64_t i = 0; i < m->count; i++)
                if (hist_add(&add.hist, m->durations[i], 1) < 0) {
                        hist_free(&add.hist);
                        return -ENOMEM;
                }
        return acc_add(userdata, m->name, &add, true);
}

static int compare_rows(const void *a, const void *b)
{
        const Ferret__SummaryRow *x = *(Ferret__SummaryRow *const *)a, *y = *(Ferret__SummaryRow *const *)b;
        if (x->total_ns != y->total_ns)
                return x->total_ns > y->total_ns ? -1 : 1;
        return strcmp(x->name, y->name);
}

static void free_stats(void *p)
{
        struct name_stats *st = p;
        hist_free(&st->hist);
        free(st);
}

static void fill_row(Ferret__SummaryRow *row, const char *name, const struct name_stats *st)
{
        *row = (Ferret__SummaryRow)FERRET__SUMMARY_ROW__INIT;
        row->name = (char *)name;
        row->count = st->count;
        row->untimed = st->untimed;
        row->total_ns = st->total_ns;
        row->self_ns = st->self_ns;
        row->min_ns = st->count ? st->min_ns : 0;
        row->max_ns = st->max_ns;
        struct hist_percentiles p;
        hist_percentiles(&st->hist, st->count, st->min_ns, st->max_ns, &p);
        row->p50_ns = p.p50;
        row->p90_ns = p.p90;
        row->p95_ns = p.p95;
        row->p99_ns = p.p99;
        row->p999_ns = p.p999;
        row->errors = st->errors;
        row->warnings = st->warnings;
        row->p50_low_ns = p.p50_low;
        row->p50_high_ns = p.p50_high;
        row->p95_low_ns = p.p95_low;
        row->p95_high_ns = p.p95_high;
}

static void handle_summary(struct query *q, const void *id, size_t id_len, const Ferret__SummaryRequest *req)
{
        struct summary_acc acc = { 0 };
        Ferret__RunInfo *info = NULL, all = FERRET__RUN_INFO__INIT;
        Ferret__SummaryRow *rows = NULL, **row_ptrs = NULL;
        uint32_t stats_run;
        int r;

        if (req->all) {
                struct runs_acc runs = { 0 };
                r = store_scan_runs(q->store, false, visit_run, &runs);
                all.run = "*";
                all.first_ns = UINT64_MAX;
                for (size_t i = 0; i < runs.n; i++) {
                        all.spans += runs.runs[i]->spans;
                        all.dropped += runs.runs[i]->dropped;
                        all.processes += runs.runs[i]->processes;
                        if (runs.runs[i]->first_ns && runs.runs[i]->first_ns < all.first_ns)
                                all.first_ns = runs.runs[i]->first_ns;
                        if (runs.runs[i]->last_ns > all.last_ns)
                                all.last_ns = runs.runs[i]->last_ns;
                        ferret__run_info__free_unpacked(runs.runs[i], NULL);
                }
                free(runs.runs);
                if (all.first_ns == UINT64_MAX)
                        all.first_ns = 0;
                stats_run = STORE_ALL_RUNS;
        } else {
                uint32_t run;
                r = resolve_run(q, id, id_len, req->run, &run, &info);
                if (r == -ENOENT)
                        return;
                stats_run = run;
        }
        bool window = req->since_ns || req->until_ns;
        if (r == 0 && window && req->all) {
                send_error(q, id, id_len, -EINVAL, "a time window is of one run, not of --all");
                goto out;
        }
        uint64_t since = req->since_ns, until = req->until_ns;
        bool from_buckets = false;
        if (r == 0 && window) {
                /* Per-name statistics cover the whole run: a window is
                 * summed from the run's time buckets, by call path, or else
                 * from its spans. */
                r = answered_window(q, stats_run, req->whole_buckets, &since, &until);
                struct tree_options o = { .since_ns = since, .until_ns = until };
                struct path_tree *by_path = NULL;
                if (r == 0)
                        r = path_tree_build(q->store, stats_run, info->spans, &o, &by_path);
                if (r == 0)
                        r = path_tree_visit(by_path, visit_path_node, &acc);
                path_tree_free(by_path);
                from_buckets = r == 0;
                if (r == -ESTALE) {
                        struct merged_tree *merged = NULL;
                        r = merged_tree_build(q->store, stats_run, &o, &merged);
                        if (r == 0)
                                r = merged_tree_visit(merged, visit_merged, &acc);
                        merged_tree_free(merged);
                }
        } else if (r == 0)
                r = store_scan_stats(q->store, stats_run, visit_stats, &acc);
        if (r < 0) {
                send_error(q, id, id_len, r, "failed to read statistics: %s", strerror(-r));
                goto out;
        }

        rows = calloc(acc.by_name.n + 1, sizeof(*rows));
        row_ptrs = calloc(acc.by_name.n + 1, sizeof(*row_ptrs));
        if (!rows || !row_ptrs) {
                send_error(q, id, id_len, -ENOMEM, "out of memory");
                goto out;
        }
        size_t n = 0;
        STRMAP_FOREACH(&acc.by_name, e) {
                fill_row(&rows[n], e->key, e->value);
                row_ptrs[n] = &rows[n];
                n++;
        }
        qsort(row_ptrs, n, sizeof(*row_ptrs), compare_rows);

        Ferret__SummaryResponse summary = FERRET__SUMMARY_RESPONSE__INIT;
        Ferret__Response resp = FERRET__RESPONSE__INIT;
        summary.run = req->all ? &all : info;
        summary.n_rows = n;
        summary.rows = row_ptrs;
        summary.since_ns = since;
        summary.until_ns = until;
        summary.from_buckets = from_buckets;
        resp.body_case = FERRET__RESPONSE__BODY_SUMMARY;
        resp.summary = &summary;
        send_response(q, id, id_len, &resp);
out:
        free(rows);
        free(row_ptrs);
        strmap_free(&acc.by_name, free_stats);
        if (info)
                ferret__run_info__free_unpacked(info, NULL);
}

/* --- tree --- */

struct tree_acc {
        ProtobufCBinaryData *batches;
        size_t n, cap, bytes;
};

static int visit_chunk(const void *value, size_t value_len, void *userdata)
{
        struct tree_acc *acc = userdata;
        if (acc->n == acc->cap) {
                size_t cap = acc->cap ? acc->cap * 2 : 64;
                ProtobufCBinaryData *p = realloc(acc->batches, cap * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                acc->batches = p;
                acc->cap = cap;
        }
        uint8_t *copy = malloc(value_len ? value_len : 1);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, value, value_len);
        acc->batches[acc->n++] = (ProtobufCBinaryData){ .len = value_len, .data = copy };
        acc->bytes += value_len;
        return 0;
}

/* --expand: the run's batches, in chunks of about TREE_CHUNK_BYTES, each
 * chunk answered on its own so no answer grows without bound. The cursor
 * is the number of batches already sent. */
#define TREE_CHUNK_BYTES (8u << 20)

struct chunk_acc {
        struct tree_acc acc;
        uint64_t skip, seen;
        bool more;
};

static int visit_chunk_window(const void *value, size_t value_len, void *userdata)
{
        struct chunk_acc *c = userdata;
        if (c->seen++ < c->skip)
                return 0;
        if (c->acc.n && c->acc.bytes + value_len > TREE_CHUNK_BYTES) {
                c->more = true;
                return 1;
        }
        return visit_chunk(value, value_len, &c->acc);
}

static void handle_tree(struct query *q, const void *id, size_t id_len, const Ferret__TreeRequest *req)
{
        Ferret__RunInfo *info = NULL;
        struct chunk_acc chunks = { .skip = req->cursor };
        struct merged_tree *merged = NULL;
        struct path_tree *by_path = NULL;
        Ferret__TreeResponse tree = FERRET__TREE_RESPONSE__INIT;
        Ferret__Response resp = FERRET__RESPONSE__INIT;
        uint32_t run;
        int r = resolve_run(q, id, id_len, req->run, &run, &info);
        if (r == -ENOENT)
                return;
        if (r == 0 && req->expand) {
                r = store_scan_chunks(q->store, run, visit_chunk_window, &chunks);
                tree.n_batches = chunks.acc.n;
                tree.batches = chunks.acc.batches;
                tree.next_cursor = chunks.more ? chunks.seen - 1 : 0;
        } else if (r == 0) {
                uint64_t since = req->since_ns, until = req->until_ns;
                if (since || until)
                        r = answered_window(q, run, req->whole_buckets, &since, &until);
                tree.since_ns = since;
                tree.until_ns = until;
                struct tree_options o = { .depth = req->depth, .min_duration_ns = req->min_duration_ns, .focus = req->focus,
                                          .since_ns = since, .until_ns = until, .quantiles = req->quantiles };
                if (r == 0)
                        r = req->from_spans ? -ESTALE : path_tree_build(q->store, run, info->spans, &o, &by_path);
                if (r == 0) {
                        tree.nodes = path_tree_nodes(by_path, &tree.n_nodes, &tree.hidden);
                        tree.from_paths = true;
                } else if (r == -ESTALE) {
                        r = merged_tree_build(q->store, run, &o, &merged);
                        if (r == 0)
                                tree.nodes = merged_tree_nodes(merged, &tree.n_nodes, &tree.hidden, &tree.cycles_cut);
                }
        }
        if (r < 0)
                send_error(q, id, id_len, r, "failed to read spans: %s", strerror(-r));
        else {
                tree.run = info;
                resp.body_case = FERRET__RESPONSE__BODY_TREE;
                resp.tree = &tree;
                send_response(q, id, id_len, &resp);
        }
        for (size_t i = 0; i < chunks.acc.n; i++)
                free(chunks.acc.batches[i].data);
        free(chunks.acc.batches);
        merged_tree_free(merged);
        path_tree_free(by_path);
        if (info)
                ferret__run_info__free_unpacked(info, NULL);
}

/* --- status --- */

static int count_run(uint32_t run, const void *value, size_t value_len, void *userdata)
{
        (*(uint64_t *)userdata)++;
        return 0;
}

static void handle_status(struct query *q, const void *id, size_t id_len)
{
        Ferret__StatusResponse st = FERRET__STATUS_RESPONSE__INIT;
        Ferret__Response resp = FERRET__RESPONSE__INIT;

        st.version = FERRET_VERSION;
        st.pid = (uint32_t)getpid();
        st.db_path = (char *)store_path(q->store);
        st.runtime_dir = (char *)q->runtime_dir;
        st.uptime_ns = now_mono_ns() - counters_g.start_mono_ns;
        st.received_batches = atomic_load(&counters_g.received_batches);
        st.received_spans = atomic_load(&counters_g.received_spans);
        st.stored_spans = atomic_load(&counters_g.stored_spans);
        st.rejected_messages = atomic_load(&counters_g.rejected_messages);
        st.dropped_by_clients = atomic_load(&counters_g.dropped_by_clients);
        st.lost_in_transit = atomic_load(&counters_g.lost_in_transit);
        st.duplicate_batches = atomic_load(&counters_g.duplicate_batches);
        st.early_batches = atomic_load(&counters_g.early_batches);
        st.disk_full = atomic_load(&counters_g.disk_full);
        st.refused_connections = atomic_load(&counters_g.refused_connections);
        st.held_bytes = atomic_load(&counters_g.held_bytes);
        st.db_size_bytes = store_disk_bytes(q->store);
        st.read_only = store_read_only(q->store);
        st.retain_days = q->retention.retain_days;
        st.max_size_bytes = q->retention.max_size_bytes;
        st.runs_removed = atomic_load(&counters_g.runs_removed);
        store_scan_runs(q->store, false, count_run, &st.runs);
        struct forward_status fs;
        if (q->forwarder) {
                forward_get_status(q->forwarder, &fs);
                st.forward_url = (char *)forward_url(q->forwarder);
                st.forward_sent = fs.sent;
                st.forward_backlog = fs.backlog;
                st.forward_dropped = fs.dropped;
                st.forward_rejected = fs.rejected;
                st.forward_failures = fs.failures;
                st.forward_error = fs.last_error;
        }
        if (q->otlp_listen) {
                st.otlp_listen = (char *)q->otlp_listen;
                st.otlp_requests = atomic_load(&counters_g.otlp_requests);
                st.otlp_refused_requests = atomic_load(&counters_g.otlp_refused_requests);
                st.otlp_rejected_spans = atomic_load(&counters_g.otlp_rejected_spans);
        }
        resp.body_case = FERRET__RESPONSE__BODY_STATUS;
        resp.status = &st;
        send_response(q, id, id_len, &resp);
}

/* --- flush --- */

static void answer_flush(struct query *q, const struct parked_flush *p, uint64_t stored, int error)
{
        Ferret__FlushResponse flush = FERRET__FLUSH_RESPONSE__INIT;
        Ferret__Response resp = FERRET__RESPONSE__INIT;
        flush.stored_seq = stored;
        resp.error = error;
        resp.body_case = FERRET__RESPONSE__BODY_FLUSH;
        resp.flush = &flush;
        send_response(q, p->identity, p->identity_len, &resp);
}

static void handle_flush(struct query *q, const void *id, size_t id_len, const Ferret__FlushRequest *req)
{
        if (!q->ingest) {
                send_error(q, id, id_len, -EROFS, "this ferretd is read-only");
                return;
        }
        struct parked_flush p = { .identity_len = id_len, .client_id = req->client_id, .seq = req->seq };
        memcpy(p.identity, id, id_len);
        uint64_t stored = acks_stored(q->acks, req->client_id);
        if (stored >= req->seq) {
                answer_flush(q, &p, stored, 0);
                return;
        }
        if (q->n_parked >= MAX_PARKED_FLUSHES) {
                answer_flush(q, &p, stored, -EBUSY);
                return;
        }
        uint32_t timeout = req->timeout_ms ? req->timeout_ms : 10000;
        p.deadline_ns = now_mono_ns() + (uint64_t)timeout * 1000000u;
        q->parked[q->n_parked++] = p;
        if (!req->passive)
                ingest_hurry(q->ingest);
}

/* Answers parked flushes whose batches are now stored or whose time is up.
 * Returns the milliseconds until the next deadline, or -1. */
static long check_parked(struct query *q)
{
        uint64_t now = now_mono_ns(), next = UINT64_MAX;
        size_t keep = 0;
        for (size_t i = 0; i < q->n_parked; i++) {
                struct parked_flush *p = &q->parked[i];
                uint64_t stored = acks_stored(q->acks, p->client_id);
                if (stored >= p->seq)
                        answer_flush(q, p, stored, 0);
                else if (now >= p->deadline_ns)
                        answer_flush(q, p, stored, -ETIMEDOUT);
                else {
                        if (p->deadline_ns < next)
                                next = p->deadline_ns;
                        q->parked[keep++] = *p;
                }
        }
        q->n_parked = keep;
        return next == UINT64_MAX ? -1 : (long)((next - now) / 1000000) + 1;
}

/* --- remove --- */

static void handle_remove(struct query *q, const void *id, size_t id_len, const Ferret__RemoveRequest *req)
{
        if (!q->ingest) {
                send_error(q, id, id_len, -EROFS, "this ferretd is read-only");
                return;
        }
        if (!req->run || !*req->run) {
                send_error(q, id, id_len, -EINVAL, "which run?");
                return;
        }
        /* Queries wait meanwhile; removals are rare and quick. */
        int r = ingest_remove_run(q->ingest, req->run);
        if (r == -ENOENT)
                send_error(q, id, id_len, r, "no run named '%s'", req->run);
        else if (r < 0)
                send_error(q, id, id_len, r, "failed to remove run '%s': %s", req->run, strerror(-r));
        else {
                Ferret__RemoveResponse rm = FERRET__REMOVE_RESPONSE__INIT;
                Ferret__Response resp = FERRET__RESPONSE__INIT;
                rm.run = req->run;
                resp.body_case = FERRET__RESPONSE__BODY_REMOVE;
                resp.remove = &rm;
                send_response(q, id, id_len, &resp);
        }
}

/* --- dispatch --- */

static void handle_request(struct query *q, const void *id, size_t id_len, const void *data, size_t len)
{
        Ferret__Request *req = ferret__request__unpack(NULL, len, data);
        if (!req) {
                atomic_fetch_add(&counters_g.rejected_messages, 1);
                send_error(q, id, id_len, -EPROTO, "malformed request");
                return;
        }
        switch (req->body_case) {
        case FERRET__REQUEST__BODY_RUNS:
                handle_runs(q, id, id_len);
                break;
        case FERRET__REQUEST__BODY_SUMMARY:
                handle_summary(q, id, id_len, req->summary);
                break;
        case FERRET__REQUEST__BODY_TREE:
                handle_tree(q, id, id_len, req->tree);
                break;
        case FERRET__REQUEST__BODY_STATUS:
                handle_status(q, id, id_len);
                break;
        case FERRET__REQUEST__BODY_FLUSH:
                handle_flush(q, id, id_len, req->flush);
                break;
        case FERRET__REQUEST__BODY_REMOVE:
                handle_remove(q, id, id_len, req->remove);
                break;
        default:
                /* An empty request, or one of a later protocol: answered, and
                 * counted with the messages refused. */
                atomic_fetch_add(&counters_g.rejected_messages, 1);
                send_error(q, id, id_len, -EOPNOTSUPP, "unknown request (protocol version %u)", req->version);
        }
        ferret__request__free_unpacked(req, NULL);
}

/* Reads one multipart message: [identity][empty][request]. Anything else is
 * counted and dropped. */
static void receive_request(struct query *q)
{
        zmq_msg_t parts[4];
        int n = 0;
        for (;;) {
                zmq_msg_t m;
                zmq_msg_init(&m);
                if (zmq_msg_recv(&m, q->socket, ZMQ_DONTWAIT) < 0) {
                        zmq_msg_close(&m);
                        break;
                }
                bool more = zmq_msg_more(&m);
                if (n < 4)
                        parts[n++] = m;
                else
                        zmq_msg_close(&m);
                if (!more)
                        break;
        }
        if (n == 3 && zmq_msg_size(&parts[0]) <= IDENTITY_MAX && zmq_msg_size(&parts[1]) == 0)
                handle_request(q, zmq_msg_data(&parts[0]), zmq_msg_size(&parts[0]), zmq_msg_data(&parts[2]),
                               zmq_msg_size(&parts[2]));
        else if (n > 0)
                atomic_fetch_add(&counters_g.rejected_messages, 1);
        for (int i = 0; i < n; i++)
                zmq_msg_close(&parts[i]);
}

static void *query_main(void *arg)
{
        struct query *q = arg;
        zmq_pollitem_t items[4] = {
                { .socket = q->socket, .events = ZMQ_POLLIN },
                { .fd = q->acks->event_fd, .events = ZMQ_POLLIN },
                { .fd = q->stop_fd, .events = ZMQ_POLLIN },
                { .socket = q->peers ? q->peers->monitor : NULL, .events = ZMQ_POLLIN },
        };
        int n_items = q->peers ? 4 : 3;
        long timeout = -1;
        for (;;) {
                if (zmq_poll(items, n_items, timeout) < 0 && errno != EINTR)
                        break;
                if (items[2].revents & ZMQ_POLLIN)
                        break;
                if (q->peers && (items[3].revents & ZMQ_POLLIN))
                        peers_handle(q->peers);
                if (items[1].revents & ZMQ_POLLIN) {
                        uint64_t v;
                        ssize_t r = read(q->acks->event_fd, &v, sizeof(v));
                        (void)r;
                }
                if (items[0].revents & ZMQ_POLLIN)
                        for (int i = 0; i < 64; i++) {
                                int events = 0;
                                size_t len = sizeof(events);
                                zmq_getsockopt(q->socket, ZMQ_EVENTS, &events, &len);
                                if (!(events & ZMQ_POLLIN))
                                        break;
                                receive_request(q);
                        }
                timeout = check_parked(q);
        }
        /* Stopping: whoever still waits gets an answer, not a timeout. */
        for (size_t i = 0; i < q->n_parked; i++)
                answer_flush(q, &q->parked[i], acks_stored(q->acks, q->parked[i].client_id), 0);
        return NULL;
}

int query_start(struct store *store, struct acks *acks, struct ingest *ingest, void *socket,
                const struct query_config *config, struct query **ret)
{
        struct query *q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        q->store = store;
        q->acks = acks;
        q->ingest = ingest;
        q->socket = socket;
        q->runtime_dir = config->runtime_dir;
        q->retention = config->retention;
        q->peers = config->peers;
        q->forwarder = config->forwarder;
        q->otlp_listen = config->otlp_listen;
        q->parked = calloc(MAX_PARKED_FLUSHES, sizeof(*q->parked));
        q->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        int r = !q->parked || q->stop_fd < 0 ? -ENOMEM : -pthread_create(&q->thread, NULL, query_main, q);
        if (r < 0) {
                if (q->stop_fd >= 0)
                        close(q->stop_fd);
                free(q->parked);
                free(q);
                return r;
        }
        *ret = q;
        return 0;
}

void query_stop(struct query *q)
{
        if (!q)
                return;
        uint64_t one = 1;
        ssize_t w = write(q->stop_fd, &one, sizeof(one));
        (void)w;
        pthread_join(q->thread, NULL);
        zmq_close(q->socket);
        close(q->stop_fd);
        free(q->parked);
        free(q);
}
