/* SPDX-License-Identifier: MIT */
/*
 * ferret-bench-otlp: OTLP both ways, spans a second and ferretd's CPU.
 *
 *  - forward: ferretd --forward stores a run of --spans spans (the store
 *    benchmark's workload) while the collector refuses (503), then the
 *    collector takes them: from then until the last span arrived, spans/s
 *    and ferretd's CPU. The collector is a sink in this process that
 *    decodes every request with protobuf-c and counts its spans, and does
 *    nothing else. Target (issue 16): at least 200,000 spans/s, on one
 *    core of the two.
 *  - accept, C: a load generator in this process posts OTLP protobuf
 *    requests of 4,096 spans (two attributes each, made with Ferret's own
 *    encoder) to ferretd --otlp-listen, one at a time, each answered once
 *    stored: spans/s and ferretd's CPU.
 *  - accept, OpenTelemetry JS SDK: tests/otlp/send.mjs exports --js-traces
 *    traces of 10 spans through the SDK's protobuf exporter: spans/s,
 *    ferretd's CPU and node's (the SDK is expected to be the bottleneck).
 *
 * For scale: the OpenTelemetry Collector's published performance is 12-15K
 * spans/s per core (its "Performance" page, OTLP in, OTLP out).
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common.h"
#include "daemon.h"
#include "otlp-out.h"
#include "otlp-post.h"
#include "otlp.pb-c.h"
#include "workload.h"

#define FORWARD_TARGET 200000.0
#define C_REQUEST_SPANS 4096
#define COLLECTOR_PER_CORE "12-15K"

/* --- the sink: a collector that decodes and counts --- */

struct sink {
        struct MHD_Daemon *mhd;
        uint16_t port;
        _Atomic bool refuse;
        _Atomic uint64_t refuse_until_ns; /* refuses until then too */
        _Atomic uint64_t spans, requests, refused, twice;
        _Atomic uint64_t first_ns;    /* when the first request was taken */
        /* Span ids seen (open addressing; 0 is empty): a span that comes
         * twice is counted. The sink's one thread alone touches it. */
        uint64_t *seen;
        size_t seen_cap;
};

static void see(struct sink *s, uint64_t id)
{
        if (!s->seen || !id)
                return;
        size_t k = (size_t)(id * 0x9E3779B97F4A7C15ull) & (s->seen_cap - 1);
        for (; s->seen[k]; k = (k + 1) & (s->seen_cap - 1))
                if (s->seen[k] == id) {
                        atomic_fetch_add(&s->twice, 1);
                        return;
                }
        s->seen[k] = id;
}

struct upload {
        uint8_t *body;
        size_t len, cap;
};

static void sink_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
        struct upload *u = *con_cls;
        if (u)
                free(u->body);
        free(u);
        *con_cls = NULL;
}

static enum MHD_Result sink_answer(struct MHD_Connection *c, unsigned status)
{
        struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        enum MHD_Result ret = MHD_queue_response(c, status, r);
        MHD_destroy_response(r);
        return ret;
}

static enum MHD_Result sink_handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                   const char *version, const char *data, size_t *size, void **con_cls)
{
        struct sink *s = cls;
        struct upload *u = *con_cls;
        if (!u) {
                *con_cls = calloc(1, sizeof(struct upload));
                return *con_cls ? MHD_YES : MHD_NO;
        }
        if (*size) {
                if (u->len + *size > u->cap) {
                        size_t cap = u->cap ? u->cap * 2 : 1 << 20;
                        while (cap < u->len + *size)
                                cap *= 2;
                        uint8_t *b = realloc(u->body, cap);
                        if (!b)
                                return MHD_NO;
                        u->body = b;
                        u->cap = cap;
                }
                memcpy(u->body + u->len, data, *size);
                u->len += *size;
                *size = 0;
                return MHD_YES;
        }
        if (atomic_load(&s->refuse) || bench_now_ns() < atomic_load(&s->refuse_until_ns)) {
                atomic_fetch_add(&s->refused, 1);
                return sink_answer(c, MHD_HTTP_SERVICE_UNAVAILABLE);
        }
        Otlp__ExportTraceServiceRequest *req = otlp__export_trace_service_request__unpack(NULL, u->len, u->body);
        if (!req)
                return sink_answer(c, MHD_HTTP_BAD_REQUEST);
        uint64_t n = 0;
        for (size_t r = 0; r < req->n_resource_spans; r++)
                for (size_t k = 0; k < req->resource_spans[r]->n_scope_spans; k++) {
                        const Otlp__ScopeSpans *ss = req->resource_spans[r]->scope_spans[k];
                        n += ss->n_spans;
                        for (size_t i = 0; i < ss->n_spans; i++) {
                                uint64_t id = 0;
                                for (size_t b = 0; b < ss->spans[i]->span_id.len && b < 8; b++)
                                        id = id << 8 | ss->spans[i]->span_id.data[b];
                                see(s, id);
                        }
                }
        otlp__export_trace_service_request__free_unpacked(req, NULL);
        uint64_t zero = 0;
        atomic_compare_exchange_strong(&s->first_ns, &zero, bench_now_ns());
        atomic_fetch_add(&s->spans, n);
        atomic_fetch_add(&s->requests, 1);
        return sink_answer(c, MHD_HTTP_OK);
}

static int sink_start(struct sink *s)
{
        s->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, sink_handle, s,
                                  MHD_OPTION_NOTIFY_COMPLETED, sink_completed, s, MHD_OPTION_END);
        if (!s->mhd)
                return -EIO;
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
        s->port = info ? info->port : 0;
        return s->port ? 0 : -EIO;
}

/* --- helpers --- */

static double cpu_s(const struct bench_daemon *d)
{
        uint64_t ns = 0;
        bench_daemon_cpu_ns(d, &ns);
        return (double)ns / 1e9;
}

static int wait_until_count(_Atomic uint64_t *counter, uint64_t want, double timeout_s)
{
        uint64_t until = bench_now_ns() + (uint64_t)(timeout_s * 1e9);
        while (atomic_load(counter) < want) {
                if (bench_now_ns() > until)
                        return -ETIMEDOUT;
                usleep(2000);   /* a benchmark's poll of a counter, not a test's synchronisation */
        }
        return 0;
}

/* --- forward --- */

/* The collector refuses while the run is stored, takes half of it (the
 * throughput measured), refuses again for a while, then takes the rest:
 * every span must arrive, once. */
static int bench_forward(uint64_t spans)
{
        struct sink sink = { 0 };
        atomic_store(&sink.refuse, true);
        for (sink.seen_cap = 1024; sink.seen_cap < 2 * spans; sink.seen_cap *= 2)
                ;
        sink.seen = calloc(sink.seen_cap, sizeof(*sink.seen));
        if (!sink.seen || sink_start(&sink) < 0) {
                fprintf(stderr, "otlp: the sink did not start\n");
                free(sink.seen);
                return -EIO;
        }
        char url[64];
        snprintf(url, sizeof(url), "http://127.0.0.1:%u", sink.port);
        char *extra[] = { "--forward", url, NULL };
        struct bench_daemon d;
        if (bench_daemon_start_args(&d, extra) < 0) {
                MHD_stop_daemon(sink.mhd);
                free(sink.seen);
                return -EIO;
        }
        setenv("FERRET_RUNTIME_DIR", d.runtime_dir, 1);
        setenv("FERRET_ON_FULL", "block:60000", 1);
        struct workload_result w;
        fprintf(stderr, "otlp: storing %" PRIu64 " spans while the collector refuses...\n", spans);
        int r = workload_emit("otlp-forward", spans, 2, NULL, &w);
        uint64_t stored = 0;
        if (r == 0)
                r = bench_stored_spans(d.runtime_dir, "otlp-forward", &stored);
        if (r == 0 && stored != spans) {
                fprintf(stderr, "otlp: %" PRIu64 " of %" PRIu64 " spans stored\n", stored, spans);
                r = -EIO;
        }
        if (r == 0) {
                double cpu0 = cpu_s(&d);
                atomic_store(&sink.refuse, false);
                r = wait_until_count(&sink.spans, spans / 2, 600);
                /* From the first request taken: the forwarder may be in its
                 * back-off when the collector comes back. */
                uint64_t half = atomic_load(&sink.spans);
                double s = (double)(bench_now_ns() - atomic_load(&sink.first_ns)) / 1e9, cpu = cpu_s(&d) - cpu0;
                printf("  forward   %9" PRIu64 " spans in %6.2f s  %10.0f spans/s   ferretd %5.1f%% of a core"
                       "   target >= %.0f spans/s: %s\n",
                       half, s, (double)half / s, 100 * cpu / s, FORWARD_TARGET,
                       r == 0 && half / s >= FORWARD_TARGET ? "ok" : "FAIL");
                printf("            %.0f spans/s per core of ferretd's\n", (double)half / cpu);
                atomic_store(&sink.refuse_until_ns, bench_now_ns() + 2000000000ull);
                if (r == 0)
                        r = wait_until_count(&sink.spans, spans, 600);
                printf("  complete  %9" PRIu64 " of %" PRIu64 " spans arrived, %" PRIu64 " twice, after the collector "
                       "refused while they were stored and for 2 s half-way (%" PRIu64 " requests refused)   %s\n",
                       (uint64_t)atomic_load(&sink.spans), spans, (uint64_t)atomic_load(&sink.twice),
                       (uint64_t)atomic_load(&sink.refused),
                       r == 0 && atomic_load(&sink.spans) == spans && !atomic_load(&sink.twice) ? "ok" : "FAIL");
        }
        bench_daemon_cleanup(&d);
        MHD_stop_daemon(sink.mhd);
        free(sink.seen);
        unsetenv("FERRET_RUNTIME_DIR");
        return r;
}

/* --- accept: the C load generator --- */

static int make_request(struct otlp_request *req, uint64_t first_id, uint64_t base_ns)
{
        static struct wire_span spans[C_REQUEST_SPANS];
        static struct wire_tag tags[2 * C_REQUEST_SPANS];
        static const char *const names[] = { "GET /items", "load", "query", "render" };
        struct wire_spans ws = { .spans = spans, .n = C_REQUEST_SPANS, .tags = tags, .n_tags = 2 * C_REQUEST_SPANS };
        for (size_t i = 0; i < C_REQUEST_SPANS; i++) {
                uint64_t id = first_id + i;
                /* Traces of 4 spans: a root and three children. */
                spans[i] = (struct wire_span){
                        .trace_hi = 0x5eed, .trace_lo = first_id + i / 4, .span_id = id,
                        .parent_id = i % 4 ? first_id + i - i % 4 : 0, .name = names[i % 4],
                        .start_ns = base_ns + i * 1000, .duration_ns = i % 4 ? 200 : 900, .pid = 1, .tid = 1,
                        .first_tag = (uint32_t)(2 * i), .n_tags = 2,
                };
                tags[2 * i] = (struct wire_tag){ .key = "shard", .type = FERRET__TAG_TYPE__TAG_INT, .i = (int64_t)(i % 16) };
                tags[2 * i + 1] = (struct wire_tag){ .key = "region", .type = FERRET__TAG_TYPE__TAG_STRING, .s = "eu-west" };
        }
        struct otlp_resource res = { .service_name = "load-generator", .pid = 4242, .host_name = "bench" };
        otlp_request_reset(req);
        for (size_t i = 0; i < C_REQUEST_SPANS; i++)
                if (otlp_request_add(req, &res, &ws, &spans[i]) < 0)
                        return -ENOMEM;
        return 0;
}

static int bench_accept_c(uint64_t spans)
{
        char *extra[] = { "--otlp-listen", "127.0.0.1:0", NULL };
        struct bench_daemon d;
        if (bench_daemon_start_args(&d, extra) < 0)
                return -EIO;
        char *argv[] = { (char *)bench_ferret_cli_path(), "status", "--json", "--runtime-dir", d.runtime_dir, NULL };
        char *out = NULL, url[128] = "";
        if (bench_run(argv, &out, NULL) == 0 && out) {
                const char *l = strstr(out, "\"listen\": \"");
                if (l)
                        snprintf(url, sizeof(url), "http://%.*s", (int)strcspn(l + 11, "\""), l + 11);
        }
        free(out);
        struct otlp_post *post = NULL;
        struct otlp_request req;
        otlp_request_init(&req);
        int r = *url && otlp_post_new(url, &post) == 0 ? 0 : -EIO;
        uint64_t requests = (spans + C_REQUEST_SPANS - 1) / C_REQUEST_SPANS, sent = 0;
        double build_s = 0, cpu0 = cpu_s(&d);
        uint64_t t0 = bench_now_ns();
        for (uint64_t k = 0; k < requests && r == 0; k++) {
                uint64_t b0 = bench_now_ns();
                const uint8_t *body;
                size_t len;
                r = make_request(&req, 1 + k * C_REQUEST_SPANS, 1700000000000000000ull + k * 10000000ull);
                if (r == 0)
                        r = otlp_request_finish(&req, &body, &len);
                build_s += (double)(bench_now_ns() - b0) / 1e9;
                struct otlp_post_result res;
                if (r == 0 && otlp_post_send(post, body, len, 30000, &res) < 0) {
                        fprintf(stderr, "otlp: a request failed: %s\n", res.message);
                        r = -EIO;
                }
                sent += C_REQUEST_SPANS;
        }
        double s = (double)(bench_now_ns() - t0) / 1e9, cpu = cpu_s(&d) - cpu0;
        if (r == 0)
                printf("  accept C  %9" PRIu64 " spans in %6.2f s  %10.0f spans/s   ferretd %5.1f%% of a core"
                       "   (each request answered once stored; %.0f spans/s per core of ferretd's; "
                       "the generator spent %.2f s building requests)\n",
                       sent, s, (double)sent / s, 100 * cpu / s, (double)sent / cpu, build_s);
        otlp_request_free(&req);
        otlp_post_free(post);
        bench_daemon_cleanup(&d);
        return r;
}

/* --- accept: OpenTelemetry's JS SDK --- */

static int bench_accept_js(unsigned traces)
{
        const char *src = getenv("FERRET_SOURCE_ROOT");
        char script[1024], modules[1024];
        snprintf(script, sizeof(script), "%s/tests/otlp/send.mjs", src ? src : ".");
        snprintf(modules, sizeof(modules), "%s/tests/otlp/node_modules/@opentelemetry", src ? src : ".");
        if (access(script, R_OK) < 0 || access(modules, R_OK) < 0) {
                printf("  accept JS not measured: needs node and tests/otlp's npm packages (bench/run installs them)\n");
                return 0;
        }
        char *extra[] = { "--otlp-listen", "127.0.0.1:0", NULL };
        struct bench_daemon d;
        if (bench_daemon_start_args(&d, extra) < 0)
                return -EIO;
        char *st[] = { (char *)bench_ferret_cli_path(), "status", "--json", "--runtime-dir", d.runtime_dir, NULL };
        char *out = NULL, url[160] = "", n[16];
        if (bench_run(st, &out, NULL) == 0 && out) {
                const char *l = strstr(out, "\"listen\": \"");
                if (l)
                        snprintf(url, sizeof(url), "http://%.*s/v1/traces", (int)strcspn(l + 11, "\""), l + 11);
        }
        free(out);
        snprintf(n, sizeof(n), "%u", traces);
        char *argv[] = { "node", script, "--url", url, "--encoding", "proto", "--traces", n, "--seed", "7", NULL };
        struct rusage ru;
        double cpu0 = cpu_s(&d);
        uint64_t t0 = bench_now_ns();
        char *js_out = NULL;
        int status = bench_run_usage(argv, &js_out, NULL, &ru);
        double s = (double)(bench_now_ns() - t0) / 1e9, cpu = cpu_s(&d) - cpu0;
        double node_cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                          ru.ru_stime.tv_usec / 1e6;
        uint64_t spans = (uint64_t)traces * 10;
        int r = status == 0 ? 0 : -EIO;
        if (r == 0)
                printf("  accept JS %9" PRIu64 " spans in %6.2f s  %10.0f spans/s   ferretd %5.1f%% of a core, "
                       "node (the SDK) %5.1f%%: %s\n",
                       spans, s, (double)spans / s, 100 * cpu / s, 100 * node_cpu / s,
                       node_cpu > cpu ? "the SDK is the bottleneck" : "ferretd is the bottleneck");
        else
                fprintf(stderr, "otlp: send.mjs failed: %.500s\n", js_out ? js_out : "");
        free(js_out);
        bench_daemon_cleanup(&d);
        return r;
}

int main(int argc, char **argv)
{
        uint64_t spans = 2000000, c_spans = 1000000;
        unsigned js_traces = 1000;
        static const struct option longopts[] = {
                { "spans", required_argument, NULL, 'n' },
                { "c-spans", required_argument, NULL, 'c' },
                { "js-traces", required_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int opt;
        while ((opt = getopt_long(argc, argv, "n:c:j:h", longopts, NULL)) != -1)
                switch (opt) {
                case 'n':
                        spans = strtoull(optarg, NULL, 10);
                        break;
                case 'c':
                        c_spans = strtoull(optarg, NULL, 10);
                        break;
                case 'j':
                        js_traces = (unsigned)strtoul(optarg, NULL, 10);
                        break;
                default:
                        printf("Usage: ferret-bench-otlp [--spans N] [--c-spans N] [--js-traces N]\n");
                        return opt == 'h' ? 0 : 2;
                }
        otlp_post_global_init();
        struct bench_machine m;
        bench_machine_get(&m);
        printf("Ferret OTLP benchmark\n");
        printf("machine:     %s, %ld CPUs, clocksource %s, %s\n", m.cpu, m.cpus, m.clocksource, m.kernel);
        printf("build:       %s\n", bench_build_description());
        if (bench_build_warning())
                printf("%s\n", bench_build_warning());
        printf("peer:        the OpenTelemetry Collector publishes %s spans/s per core (OTLP in and out)\n\n",
               COLLECTOR_PER_CORE);
        fflush(stdout);
        int r = bench_forward(spans);
        fflush(stdout);
        if (r == 0)
                r = bench_accept_c(c_spans);
        fflush(stdout);
        if (r == 0)
                r = bench_accept_js(js_traces);
        return r < 0 ? 1 : 0;
}
