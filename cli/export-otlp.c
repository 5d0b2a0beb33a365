/* SPDX-License-Identifier: MIT */
/*
 * ferret export --format otlp --to URL: a run's spans, posted once to an
 * OpenTelemetry collector as OTLP/HTTP protobuf (proto/otlp-out.h says how
 * a span maps), in requests of at most OTLP_SPANS spans. A request the
 * collector cannot take now (no answer, 429, 502, 503, 504) is tried again
 * after the wait it asks for, or after a growing one, up to a minute in
 * all; any other refusal stops the export. What was sent is said at the
 * end, and what was not.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "export.h"
#include "otlp-out.h"
#include "otlp-post.h"
#include "span-stream.h"

#define OTLP_SPANS 8192
#define OTLP_BYTES (4u << 20)          /* well under what collectors take by default */
#define POST_TIMEOUT_MS 30000
#define RETRY_FOR_MS 60000

struct otlp_export {
        struct otlp_post *post;
        struct otlp_request req;
        const char *service;
        char *run;
        uint64_t sent, requests, rejected;
};

static void sleep_ms(int64_t ms)
{
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* Posts what is gathered, trying again while the collector asks to. */
static int post(struct otlp_export *e)
{
        if (!e->req.n_spans)
                return 0;
        const uint8_t *body;
        size_t len;
        if (otlp_request_finish(&e->req, &body, &len) < 0)
                return cli_error(ENOMEM, "out of memory");
        int64_t waited = 0, backoff = 500;
        for (;;) {
                struct otlp_post_result r;
                if (otlp_post_send(e->post, body, len, POST_TIMEOUT_MS, &r) == 0) {
                        e->sent += e->req.n_spans - (uint64_t)(r.rejected_spans > 0 ? r.rejected_spans : 0);
                        e->rejected += (uint64_t)(r.rejected_spans > 0 ? r.rejected_spans : 0);
                        e->requests++;
                        break;
                }
                int64_t wait = r.retry_after_ms >= 0 ? r.retry_after_ms : backoff;
                if (!r.retryable || waited + wait > RETRY_FOR_MS)
                        return cli_error(EIO, "%s: %s (%" PRIu64 " spans sent before it)", otlp_post_url(e->post),
                                         r.message, e->sent);
                sleep_ms(wait);
                waited += wait;
                backoff = backoff * 2 > 8000 ? 8000 : backoff * 2;
        }
        otlp_request_reset(&e->req);
        return 0;
}

static int on_run(void *ctx, const Ferret__RunInfo *run)
{
        struct otlp_export *e = ctx;
        e->run = strdup(run->run);
        return e->run ? 0 : cli_error(ENOMEM, "out of memory");
}

static int on_batch(void *ctx, const Ferret__Batch *b, const struct wire_spans *spans)
{
        struct otlp_export *e = ctx;
        struct otlp_resource res;
        bool observer = b->process && b->process->observer;
        otlp_resource_of_batch(b, e->run, e->service, &res);
        for (size_t i = 0; i < spans->n; i++) {
                const struct wire_span *s = &spans->spans[i];
                if (observer)
                        otlp_resource_of_process_span(spans, s, b, e->run, e->service, &res);
                if (otlp_request_add(&e->req, &res, spans, s) < 0)
                        return cli_error(ENOMEM, "out of memory");
                if (e->req.n_spans >= OTLP_SPANS || e->req.bytes >= OTLP_BYTES) {
                        int r = post(e);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

int export_otlp(const char *runtime_dir, const char *run, const char *url, const char *service)
{
        struct otlp_export e = { .service = service };
        static const struct span_stream_ops ops = { .run = on_run, .batch = on_batch };
        otlp_post_global_init();
        int r = otlp_post_new(url, &e.post);
        if (r == -EINVAL)
                return cli_error(r, "--to takes an http:// or https:// URL, not '%s'", url);
        if (r < 0)
                return cli_error(r, "out of memory");
        otlp_request_init(&e.req);
        r = span_stream(runtime_dir, run, &ops, &e);
        if (r >= 0)
                r = post(&e);
        if (r >= 0)
                fprintf(stderr, "ferret: run %s: %" PRIu64 " spans sent to %s in %" PRIu64 " request%s%s\n", e.run,
                        e.sent, otlp_post_url(e.post), e.requests, e.requests == 1 ? "" : "s",
                        e.rejected ? " (the collector rejected some: see above)" : "");
        if (r >= 0 && e.rejected)
                r = cli_error(EIO, "the collector rejected %" PRIu64 " spans", e.rejected);
        otlp_request_free(&e.req);
        otlp_post_free(e.post);
        free(e.run);
        return r;
}
