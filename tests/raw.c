/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "harness.h"
#include "raw.h"
#include "runtime-dir.h"

void raw_open(struct raw_client *c, const char *dir)
{
        char ep[256];
        *c = (struct raw_client){ .client_id = 0x1234567890abcdefULL ^ (uint64_t)(uintptr_t)c, .next_id = 1 };
        c->ctx = zmq_ctx_new();
        c->push = zmq_socket(c->ctx, ZMQ_PUSH);
        c->dealer = zmq_socket(c->ctx, ZMQ_DEALER);
        int zero = 0;
        zmq_setsockopt(c->push, ZMQ_LINGER, &zero, sizeof(zero));
        zmq_setsockopt(c->dealer, ZMQ_LINGER, &zero, sizeof(zero));
        CHECK(runtime_endpoint(dir, RUNTIME_INGEST_SOCKET, ep, sizeof(ep)) == 0);
        CHECK(zmq_connect(c->push, ep) == 0);
        CHECK(runtime_endpoint(dir, RUNTIME_QUERY_SOCKET, ep, sizeof(ep)) == 0);
        CHECK(zmq_connect(c->dealer, ep) == 0);
}

void raw_close(struct raw_client *c)
{
        zmq_close(c->push);
        zmq_close(c->dealer);
        zmq_ctx_term(c->ctx);
}

void raw_send_bytes(struct raw_client *c, const void *data, size_t len)
{
        CHECK(zmq_send(c->push, data, len, 0) == (int)len);
}

void raw_send_batch(struct raw_client *c, const char *run, const struct raw_spans *s)
{
        Ferret__Batch b = FERRET__BATCH__INIT;
        Ferret__Process p = FERRET__PROCESS__INIT;
        Ferret__SpanColumns cols = FERRET__SPAN_COLUMNS__INIT;
        size_t n = s->n;
        char **strings = calloc(n + 1, sizeof(char *));
        uint64_t traces[2] = { 1, 2 };
        uint32_t *zeros32 = calloc(n, sizeof(uint32_t)), *names = malloc(n * sizeof(uint32_t)),
                 *flags = malloc(n * sizeof(uint32_t));
        int64_t *ids = malloc(n * sizeof(int64_t)), *parents = malloc(n * sizeof(int64_t)),
                *starts = malloc(n * sizeof(int64_t));
        uint32_t *path_index = s->paths ? malloc(n * sizeof(uint32_t)) : NULL;
        uint64_t *path_table = s->paths ? malloc(2 * n * sizeof(uint64_t)) : NULL;
        size_t n_strings = 1;
        strings[0] = "";
        uint64_t prev = 0;
        for (size_t i = 0; i < n; i++) {
                size_t k = 1;
                while (k < n_strings && strcmp(strings[k], s->names[i]) != 0)
                        k++;
                if (k == n_strings)
                        strings[n_strings++] = (char *)s->names[i];
                names[i] = (uint32_t)k;
                flags[i] = s->statuses ? s->statuses[i] : s->status;
                ids[i] = (int64_t)(s->ids[i] - prev);
                prev = s->ids[i];
                parents[i] = s->parents[i] ? (int64_t)(s->ids[i] - s->parents[i]) : 0;
                /* Starts are deltas from the previous span's. */
                starts[i] = !s->starts ? (i ? 1000 : 0) : i ? (int64_t)(s->starts[i] - s->starts[i - 1]) : 0;
                if (path_index) {
                        path_index[i] = (uint32_t)i;
                        path_table[2 * i] = s->paths[i];
                        path_table[2 * i + 1] = s->parent_paths[i];
                }
        }
        if (path_index) {
                cols.n_path = n;
                cols.path = path_index;
                cols.n_paths = 2 * n;
                cols.paths = path_table;
        }
        cols.n_strings = n_strings;
        cols.strings = strings;
        cols.n_traces = 2;
        cols.traces = traces;
        cols.n_trace = cols.n_span_id = cols.n_parent = cols.n_name = cols.n_start = cols.n_duration = n;
        cols.n_tid = cols.n_flags = cols.n_message = cols.n_tag_count = n;
        cols.trace = zeros32;
        cols.span_id = ids;
        cols.parent = parents;
        cols.name = names;
        cols.start = starts;
        cols.base_start_ns = s->starts && n ? s->starts[0] : s->start_ns;
        cols.duration = (uint64_t *)s->durations;
        cols.tid = zeros32;
        cols.flags = flags;
        cols.message = zeros32;
        cols.tag_count = zeros32;
        p.pid = 4343;
        p.executable = "raw";
        p.hostname = "test";
        b.version = WIRE_PROTOCOL_VERSION;
        b.process = &p;
        b.run_id = (char *)run;
        b.client_id = c->client_id;
        b.seq = ++c->seq;
        b.sent_before = c->sent;
        b.dropped = c->dropped;
        b.first_unacked = c->first_unacked ? c->first_unacked : b.seq;
        c->sent += n + c->dropped;
        c->dropped = 0;
        b.spans = &cols;
        size_t len = ferret__batch__get_packed_size(&b);
        uint8_t *buf = malloc(len);
        ferret__batch__pack(&b, buf);
        raw_send_bytes(c, buf, len);
        free(buf);
        free(strings);
        free(zeros32);
        free(names);
        free(flags);
        free(ids);
        free(parents);
        free(starts);
        free(path_index);
        free(path_table);
}

void raw_send_spans(struct raw_client *c, const char *run, const char *name, const uint64_t *durations, size_t n,
                    unsigned status)
{
        const char **names = malloc(n * sizeof(*names));
        uint64_t *ids = malloc(n * sizeof(*ids)), *parents = calloc(n, sizeof(*parents));
        for (size_t i = 0; i < n; i++) {
                names[i] = name;
                ids[i] = c->next_id++;
        }
        struct raw_spans s = { .n = n, .names = names, .durations = durations, .ids = ids, .parents = parents, .start_ns = 1700000000000000000ull, .status = status };
        raw_send_batch(c, run, &s);
        free(names);
        free(ids);
        free(parents);
}

int raw_request_bytes(struct raw_client *c, const void *data, size_t len, int timeout_ms)
{
        CHECK(zmq_send(c->dealer, "", 0, ZMQ_SNDMORE) == 0);
        CHECK(zmq_send(c->dealer, data, len, 0) == (int)len);
        zmq_pollitem_t item = { .socket = c->dealer, .events = ZMQ_POLLIN };
        if (zmq_poll(&item, 1, timeout_ms) <= 0)
                return -ETIMEDOUT;
        zmq_msg_t m;
        zmq_msg_init(&m);
        CHECK(zmq_msg_recv(&m, c->dealer, 0) == 0);          /* delimiter */
        CHECK(zmq_msg_recv(&m, c->dealer, 0) >= 0);
        Ferret__Response *r = ferret__response__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
        zmq_msg_close(&m);
        CHECK(r != NULL);
        int error = r->error;
        ferret__response__free_unpacked(r, NULL);
        return error;
}

int raw_flush(struct raw_client *c, int timeout_ms)
{
        Ferret__FlushRequest f = FERRET__FLUSH_REQUEST__INIT;
        Ferret__Request req = FERRET__REQUEST__INIT;
        uint8_t buf[64];
        f.client_id = c->client_id;
        f.seq = c->seq;
        f.timeout_ms = (uint32_t)timeout_ms;
        req.version = WIRE_PROTOCOL_VERSION;
        req.body_case = FERRET__REQUEST__BODY_FLUSH;
        req.flush = &f;
        size_t len = ferret__request__pack(&req, buf);
        return raw_request_bytes(c, buf, len, timeout_ms + 1000);
}
