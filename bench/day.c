/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "day.h"
#include "ferret.pb-c.h"
#include "path.h"
#include "runtime-dir.h"
#include "wire.h"

#define DAY_NS (86400ull * 1000000000ull)
#define REQUESTS_PER_BATCH 300
#define SPANS_PER_REQUEST 6

static const char *const NAMES[] = { "", "request", "db", "cache", "render", "template" };
/* Each request's spans in the order they end (children first): name,
 * parent (index in the request, -1 for none), offset and duration in µs. */
static const struct {
        int name, parent;
        uint64_t at_us, duration_us;
} SHAPE[SPANS_PER_REQUEST] = {
        { 2, 5, 10, 500 },      /* db */
        { 2, 2, 520, 100 },     /* cache > db */
        { 3, 5, 515, 200 },     /* cache */
        { 5, 4, 800, 300 },     /* render > template */
        { 4, 5, 720, 800 },     /* render */
        { 1, -1, 0, 2000 },     /* request */
};

static uint64_t splitmix(uint64_t *s)
{
        uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

static int compare_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

static uint64_t now_ns(clockid_t clock)
{
        struct timespec ts;
        clock_gettime(clock, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Sends @n requests starting at @request_starts. */
static int send_batch(void *push, const char *run, uint64_t seq, uint64_t sent_before, uint64_t first_id,
                      const uint64_t *request_starts, size_t n)
{
        size_t spans = n * SPANS_PER_REQUEST;
        uint32_t *zeros = calloc(spans, sizeof(uint32_t)), *names = malloc(spans * sizeof(uint32_t)),
                 *path_index = malloc(spans * sizeof(uint32_t));
        int64_t *ids = malloc(spans * sizeof(int64_t)), *parents = malloc(spans * sizeof(int64_t)),
                *starts = malloc(spans * sizeof(int64_t));
        uint64_t *durations = malloc(spans * sizeof(uint64_t)), table[2 * SPANS_PER_REQUEST];
        if (!zeros || !names || !path_index || !ids || !parents || !starts || !durations)
                return -ENOMEM;
        /* The shape's paths, the same for every request. */
        uint64_t path[SPANS_PER_REQUEST];
        for (int k = SPANS_PER_REQUEST - 1; k >= 0; k--) {
                uint64_t up = SHAPE[k].parent < 0 ? PATH_NONE : path[SHAPE[k].parent];
                path[k] = path_step(up, path_key_bytes(NAMES[SHAPE[k].name], strlen(NAMES[SHAPE[k].name])));
                table[2 * k] = path[k];
                table[2 * k + 1] = up;
        }
        uint64_t prev_id = 0, prev_start = 0;
        for (size_t r = 0, i = 0; r < n; r++)
                for (int k = 0; k < SPANS_PER_REQUEST; k++, i++) {
                        uint64_t id = first_id + r * SPANS_PER_REQUEST + (uint64_t)k;
                        uint64_t start = request_starts[r] + SHAPE[k].at_us * 1000;
                        names[i] = (uint32_t)SHAPE[k].name;
                        ids[i] = (int64_t)(id - prev_id);
                        prev_id = id;
                        parents[i] = SHAPE[k].parent < 0 ? 0 : (int64_t)(k - SHAPE[k].parent);   /* id less the parent's */
                        starts[i] = i ? (int64_t)(start - prev_start) : 0;
                        prev_start = start;
                        durations[i] = SHAPE[k].duration_us * 1000;
                        path_index[i] = (uint32_t)k;
                }
        Ferret__SpanColumns cols = FERRET__SPAN_COLUMNS__INIT;
        uint64_t traces[2] = { 1, 2 };
        cols.n_strings = sizeof(NAMES) / sizeof(NAMES[0]);
        cols.strings = (char **)NAMES;
        cols.n_traces = 2;
        cols.traces = traces;
        cols.n_trace = cols.n_span_id = cols.n_parent = cols.n_name = cols.n_start = cols.n_duration = spans;
        cols.n_tid = cols.n_flags = cols.n_message = cols.n_tag_count = spans;
        cols.trace = zeros;
        cols.span_id = ids;
        cols.parent = parents;
        cols.name = names;
        cols.start = starts;
        cols.base_start_ns = request_starts[0] + SHAPE[0].at_us * 1000;
        cols.duration = durations;
        cols.tid = zeros;
        cols.flags = zeros;
        cols.message = zeros;
        cols.tag_count = zeros;
        cols.n_path = spans;
        cols.path = path_index;
        cols.n_paths = 2 * SPANS_PER_REQUEST;
        cols.paths = table;
        Ferret__Process p = FERRET__PROCESS__INIT;
        p.pid = 4242;
        p.executable = "day-long-service";
        p.hostname = "bench";
        Ferret__Batch b = FERRET__BATCH__INIT;
        b.version = WIRE_PROTOCOL_VERSION;
        b.process = &p;
        b.run_id = (char *)run;
        b.client_id = 0xda7da7da7ull;
        b.seq = seq;
        b.sent_before = sent_before;
        b.first_unacked = seq;
        b.spans = &cols;
        size_t len = ferret__batch__get_packed_size(&b);
        uint8_t *buf = malloc(len);
        int r = buf ? 0 : -ENOMEM;
        if (buf) {
                ferret__batch__pack(&b, buf);
                r = zmq_send(push, buf, len, 0) == (int)len ? 0 : -errno;
        }
        free(buf);
        free(zeros);
        free(names);
        free(path_index);
        free(ids);
        free(parents);
        free(starts);
        free(durations);
        return r;
}

/* Waits until ferretd has stored every batch up to @seq. */
static int flush(void *dealer, uint64_t seq)
{
        Ferret__FlushRequest f = FERRET__FLUSH_REQUEST__INIT;
        Ferret__Request req = FERRET__REQUEST__INIT;
        uint8_t buf[64];
        f.client_id = 0xda7da7da7ull;
        f.seq = seq;
        f.timeout_ms = 60000;
        req.version = WIRE_PROTOCOL_VERSION;
        req.body_case = FERRET__REQUEST__BODY_FLUSH;
        req.flush = &f;
        size_t len = ferret__request__pack(&req, buf);
        if (zmq_send(dealer, "", 0, ZMQ_SNDMORE) < 0 || zmq_send(dealer, buf, len, 0) != (int)len)
                return -errno;
        zmq_pollitem_t item = { .socket = dealer, .events = ZMQ_POLLIN };
        if (zmq_poll(&item, 1, 70000) <= 0)
                return -ETIMEDOUT;
        zmq_msg_t m;
        zmq_msg_init(&m);
        int r = zmq_msg_recv(&m, dealer, 0) < 0 || zmq_msg_recv(&m, dealer, 0) < 0 ? -EIO : 0;
        Ferret__Response *resp = r ? NULL : ferret__response__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
        zmq_msg_close(&m);
        if (!resp)
                return -EIO;
        r = resp->error;
        ferret__response__free_unpacked(resp, NULL);
        return r;
}

int day_emit(const char *runtime_dir, const char *run, uint64_t spans, struct day_run *ret)
{
        uint64_t requests = spans / SPANS_PER_REQUEST ? spans / SPANS_PER_REQUEST : 1, seed = 20261204;
        uint64_t end = now_ns(CLOCK_REALTIME), first = end - DAY_NS;
        uint64_t *request_starts = malloc(requests * sizeof(uint64_t));
        *ret = (struct day_run){ .spans = requests * SPANS_PER_REQUEST, .first_ns = first, .end_ns = end };
        ret->starts = malloc(ret->spans * sizeof(uint64_t));
        if (!request_starts || !ret->starts) {
                free(request_starts);
                return -ENOMEM;
        }
        /* Uniform over the day, the last request ending before now. */
        for (uint64_t r = 0; r < requests; r++)
                request_starts[r] = first + splitmix(&seed) % (DAY_NS - 3000000);
        qsort(request_starts, requests, sizeof(uint64_t), compare_u64);
        for (uint64_t r = 0; r < requests; r++)
                for (int k = 0; k < SPANS_PER_REQUEST; k++)
                        ret->starts[r * SPANS_PER_REQUEST + (uint64_t)k] = request_starts[r] + SHAPE[k].at_us * 1000;
        qsort(ret->starts, ret->spans, sizeof(uint64_t), compare_u64);

        void *ctx = zmq_ctx_new(), *push = zmq_socket(ctx, ZMQ_PUSH), *dealer = zmq_socket(ctx, ZMQ_DEALER);
        char ep[600];
        int zero = 0, r = 0;
        zmq_setsockopt(push, ZMQ_LINGER, &zero, sizeof(zero));
        zmq_setsockopt(dealer, ZMQ_LINGER, &zero, sizeof(zero));
        if (runtime_endpoint(runtime_dir, RUNTIME_INGEST_SOCKET, ep, sizeof(ep)) < 0)
                r = -ENAMETOOLONG;
        else if (zmq_connect(push, ep) < 0)
                r = -errno;
        if (r == 0 && runtime_endpoint(runtime_dir, RUNTIME_QUERY_SOCKET, ep, sizeof(ep)) < 0)
                r = -ENAMETOOLONG;
        else if (r == 0 && zmq_connect(dealer, ep) < 0)
                r = -errno;
        uint64_t t0 = now_ns(CLOCK_MONOTONIC), seq = 0;
        for (uint64_t at = 0; r == 0 && at < requests; at += REQUESTS_PER_BATCH) {
                size_t n = requests - at < REQUESTS_PER_BATCH ? (size_t)(requests - at) : REQUESTS_PER_BATCH;
                r = send_batch(push, run, ++seq, at * SPANS_PER_REQUEST, 1 + at * SPANS_PER_REQUEST,
                               request_starts + at, n);
                /* Now and then, wait: ferretd holds a bounded amount per connection. */
                if (r == 0 && seq % 256 == 0)
                        r = flush(dealer, seq);
        }
        if (r == 0)
                r = flush(dealer, seq);
        ret->seconds = (double)(now_ns(CLOCK_MONOTONIC) - t0) / 1e9;
        if (r < 0)
                fprintf(stderr, "store: the day-long run could not be sent: %s\n", strerror(-r));
        zmq_close(push);
        zmq_close(dealer);
        zmq_ctx_term(ctx);
        free(request_starts);
        return r;
}

uint64_t day_spans_since(const struct day_run *d, uint64_t since_ns)
{
        size_t lo = 0, hi = d->spans;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (d->starts[mid] < since_ns)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return d->spans - lo;
}

void day_run_free(struct day_run *d)
{
        free(d->starts);
        d->starts = NULL;
}
