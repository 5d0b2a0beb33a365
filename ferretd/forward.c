/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon.h"
#include "forward.h"
#include "log.h"
#include "otlp-out.h"
#include "otlp-post.h"
#include "wire.h"

#define FORWARD_BYTES (4u << 20)      /* a request stays well under what collectors take */
#define GATHER_MS 200                 /* a request that is not full waits this long for more */
#define IDLE_WAIT_MS 1000
#define POST_TIMEOUT_MS 10000
#define BACKOFF_FIRST_MS 500
#define BACKOFF_MAX_MS 30000
#define RETRY_AFTER_MAX_MS (5 * 60 * 1000)
#define RUN_NAMES 64                  /* run numbers -> ids remembered */

struct run_name {
        uint32_t number;
        char *id;
};

struct forwarder {
        struct store *store;
        char *url, *service;
        uint64_t backlog_bound;
        struct otlp_post *post;
        struct otlp_request req;
        struct wire_decoder decoder;
        struct wire_spans spans;
        struct run_name runs[RUN_NAMES];
        unsigned next_run_slot;
        pthread_t thread;

        pthread_mutex_t lock;         /* guards what follows */
        pthread_cond_t cond;
        uint64_t notified;            /* bumped by forward_notify() */
        bool stop;
        uint64_t stop_deadline_ns;
        struct forward_totals totals;
        uint64_t failures;
        char last_error[256];

        _Atomic uint64_t backlog;     /* spans in the index */
        /* The request being gathered: entries from next_seq to last_seq. */
        uint64_t next_seq, last_seq;
        uint64_t req_spans;           /* entries' spans in it, sent or not (removed ones too) */
        uint64_t req_removed;         /* of those, spans whose batch was removed before it was sent */
        bool req_has_entries;
        int failing;                  /* 0, or 1 once a failure was logged */
};

static uint64_t deadline_ns(uint64_t ms)
{
        return now_mono_ns() + ms * 1000000u;
}

/* Waits on the condition until @until_ns (monotonic), a notification or a
 * stop. Called with the lock held. */
static void wait_until(struct forwarder *f, uint64_t until_ns)
{
        if (until_ns <= now_mono_ns())
                return;
        /* The condition waits on CLOCK_MONOTONIC, now_mono_ns()'s clock. */
        struct timespec ts = { .tv_sec = (time_t)(until_ns / 1000000000u), .tv_nsec = (long)(until_ns % 1000000000u) };
        pthread_cond_timedwait(&f->cond, &f->lock, &ts);
}

static const char *run_id_of(struct forwarder *f, uint32_t number)
{
        for (unsigned i = 0; i < RUN_NAMES; i++)
                if (f->runs[i].id && f->runs[i].number == number)
                        return f->runs[i].id;
        Ferret__RunInfo *info;
        if (store_load_run(f->store, number, &info) < 0)
                return NULL;
        struct run_name *slot = &f->runs[f->next_run_slot++ % RUN_NAMES];
        free(slot->id);
        slot->number = number;
        slot->id = strdup(info->run);
        ferret__run_info__free_unpacked(info, NULL);
        return slot->id;
}

static int add_batch(struct forwarder *f, const Ferret__Batch *b, const char *run_id)
{
        wire_spans_clear(&f->spans);
        if (!b->spans || wire_spans_append(&f->spans, b->spans, b->process ? b->process->pid : 0, NULL) < 0)
                return -EPROTO;
        struct otlp_resource res;
        bool observer = b->process && b->process->observer;
        otlp_resource_of_batch(b, run_id, f->service, &res);
        for (size_t i = 0; i < f->spans.n; i++) {
                const struct wire_span *s = &f->spans.spans[i];
                if (observer)
                        otlp_resource_of_process_span(&f->spans, s, b, run_id, f->service, &res);
                if (otlp_request_add(&f->req, &res, &f->spans, s) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* One backlog entry into the request being gathered. Returns 1 once the
 * request is full. */
static int gather_entry(uint64_t seq, uint32_t run, uint64_t start_ns, uint32_t spans, void *userdata)
{
        struct forwarder *f = userdata;
        if (f->req.n_spans >= FORWARD_SPANS || f->req.bytes >= FORWARD_BYTES)
                return 1;
        char *data;
        size_t len;
        int r = store_get_forward_chunk(f->store, seq, run, start_ns, &data, &len);
        if (r == -ENOENT)
                f->req_removed += spans;  /* removed since: retention, ferret rm */
        else if (r < 0)
                return r;
        else {
                Ferret__Batch *b;
                const char *run_id = run_id_of(f, run);
                if (!run_id || wire_batch_decode(&f->decoder, data, len, &b) < 0 || add_batch(f, b, run_id) == -EPROTO)
                        f->req_removed += spans;  /* cannot be read back: counted as lost */
                store_free_value(data);
        }
        f->last_seq = seq;
        f->req_spans += spans;
        f->req_has_entries = true;
        return 0;
}

static int gather(struct forwarder *f)
{
        uint64_t from = f->req_has_entries ? f->last_seq + 1 : f->next_seq;
        return store_scan_forward(f->store, from, gather_entry, f);
}

/* The request's entries are done with: removed from the index, with the
 * totals, and the next request starts after them. */
static int finish_request(struct forwarder *f, uint64_t sent, uint64_t dropped, uint64_t rejected)
{
        pthread_mutex_lock(&f->lock);
        struct forward_totals t = f->totals;
        t.sent += sent;
        t.dropped += dropped;
        t.rejected += rejected;
        pthread_mutex_unlock(&f->lock);
        int r = store_forward_done(f->store, f->last_seq + 1, &t);
        if (r < 0)
                return r;
        pthread_mutex_lock(&f->lock);
        f->totals = t;
        pthread_mutex_unlock(&f->lock);
        uint64_t b = atomic_load(&f->backlog);
        atomic_fetch_sub(&f->backlog, f->req_spans < b ? f->req_spans : b);
        f->next_seq = f->last_seq + 1;
        f->req_spans = f->req_removed = 0;
        f->req_has_entries = false;
        otlp_request_reset(&f->req);
        return 0;
}

static bool stopping(struct forwarder *f, bool *past_grace)
{
        pthread_mutex_lock(&f->lock);
        bool s = f->stop;
        *past_grace = s && now_mono_ns() >= f->stop_deadline_ns;
        pthread_mutex_unlock(&f->lock);
        return s;
}

/* Past the backlog bound, the request in hand (the oldest spans) is given
 * up and counted as dropped. */
static bool over_backlog(struct forwarder *f)
{
        return atomic_load(&f->backlog) > f->backlog_bound;
}

static void note_failure(struct forwarder *f, const struct otlp_post_result *r, int64_t wait_ms)
{
        pthread_mutex_lock(&f->lock);
        f->failures++;
        snprintf(f->last_error, sizeof(f->last_error), "%s", r->message);
        pthread_mutex_unlock(&f->lock);
        if (!f->failing) {
                log_warning("Forwarding to %s failed: %s; trying again in %lld ms, and on until it works",
                            otlp_post_url(f->post), r->message, (long long)wait_ms);
                f->failing = 1;
        }
}

/* Sends the gathered request until the collector takes it, refuses it for
 * good, the backlog bound gives it up, or ferretd stops. */
static int send_request(struct forwarder *f)
{
        const uint8_t *body;
        size_t len;
        if (!f->req.n_spans)
                return finish_request(f, 0, f->req_removed, 0);
        if (otlp_request_finish(&f->req, &body, &len) < 0)
                return -ENOMEM;
        int64_t backoff = BACKOFF_FIRST_MS;
        for (;;) {
                struct otlp_post_result r;
                if (otlp_post_send(f->post, body, len, POST_TIMEOUT_MS, &r) == 0) {
                        uint64_t rejected = r.rejected_spans > 0 ? (uint64_t)r.rejected_spans : 0;
                        if (rejected)
                                log_warning("The collector at %s rejected %llu of %zu spans: %s", otlp_post_url(f->post),
                                            (unsigned long long)rejected, f->req.n_spans, r.message);
                        if (f->failing) {
                                log_notice("Forwarding to %s works again", otlp_post_url(f->post));
                                f->failing = 0;
                        }
                        return finish_request(f, f->req.n_spans - rejected, f->req_removed, rejected);
                }
                if (!r.retryable) {
                        log_error("The collector at %s refused %zu spans: %s; counted as rejected",
                                  otlp_post_url(f->post), f->req.n_spans, r.message);
                        pthread_mutex_lock(&f->lock);
                        snprintf(f->last_error, sizeof(f->last_error), "%s", r.message);
                        pthread_mutex_unlock(&f->lock);
                        return finish_request(f, 0, f->req_removed, f->req.n_spans);
                }
                int64_t wait = r.retry_after_ms >= 0 ? r.retry_after_ms : backoff;
                if (wait > RETRY_AFTER_MAX_MS)
                        wait = RETRY_AFTER_MAX_MS;
                backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
                note_failure(f, &r, wait);
                bool past_grace;
                uint64_t until = deadline_ns((uint64_t)wait);
                pthread_mutex_lock(&f->lock);
                while (!f->stop && now_mono_ns() < until)
                        wait_until(f, until);
                pthread_mutex_unlock(&f->lock);
                if (stopping(f, &past_grace) && past_grace)
                        return 0;     /* left in the backlog for the next start */
                if (over_backlog(f)) {
                        log_warning("Forwarding backlog over %llu spans: %zu of the oldest dropped",
                                    (unsigned long long)f->backlog_bound, f->req.n_spans);
                        return finish_request(f, 0, f->req_removed + f->req.n_spans, 0);
                }
        }
}

static void *forward_main(void *arg)
{
        struct forwarder *f = arg;
        for (;;) {
                bool past_grace;
                bool stop = stopping(f, &past_grace);
                if (stop && past_grace)
                        break;
                pthread_mutex_lock(&f->lock);
                uint64_t seen = f->notified;
                pthread_mutex_unlock(&f->lock);
                int r = gather(f);
                if (r == 0 && f->req_has_entries && f->req.n_spans < FORWARD_SPANS && !stop) {
                        /* Not full: a little more time for more to come. */
                        uint64_t until = deadline_ns(GATHER_MS);
                        pthread_mutex_lock(&f->lock);
                        while (!f->stop && now_mono_ns() < until)
                                wait_until(f, until);
                        pthread_mutex_unlock(&f->lock);
                        r = gather(f);
                }
                if (r < 0) {
                        log_error_errno(r, "Failed to read the forwarding backlog: %m; trying again");
                } else if (f->req_has_entries) {
                        r = send_request(f);
                        if (r < 0)
                                log_error_errno(r, "Failed to forward: %m; trying again");
                        else
                                continue;
                } else if (stop)
                        break;        /* everything is sent */
                pthread_mutex_lock(&f->lock);
                if (f->notified == seen && !f->stop)
                        wait_until(f, deadline_ns(r < 0 ? BACKOFF_MAX_MS : IDLE_WAIT_MS));
                pthread_mutex_unlock(&f->lock);
        }
        return NULL;
}

static int count_entry(uint64_t seq, uint32_t run, uint64_t start_ns, uint32_t spans, void *userdata)
{
        struct forwarder *f = userdata;
        atomic_fetch_add(&f->backlog, spans);
        return 0;
}

int forward_start(struct store *store, const struct forward_config *cfg, struct forwarder **ret)
{
        struct forwarder *f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        f->store = store;
        f->backlog_bound = cfg->backlog_spans ? cfg->backlog_spans : FORWARD_BACKLOG_DEFAULT;
        f->url = strdup(cfg->url);
        f->service = cfg->service ? strdup(cfg->service) : NULL;
        pthread_mutex_init(&f->lock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&f->cond, &ca);
        pthread_condattr_destroy(&ca);
        otlp_request_init(&f->req);
        int r = !f->url || (cfg->service && !f->service) ? -ENOMEM : otlp_post_new(cfg->url, &f->post);
        if (r == 0)
                r = store_get_forward_totals(store, &f->totals);
        if (r == 0)
                r = store_scan_forward(store, 0, count_entry, f);
        if (r == 0) {
                store_set_forwarding(store, true);
                r = -pthread_create(&f->thread, NULL, forward_main, f);
        }
        if (r < 0) {
                store_set_forwarding(store, false);
                otlp_post_free(f->post);
                free(f->url);
                free(f->service);
                free(f);
                return r;
        }
        if (atomic_load(&f->backlog))
                log_info("Forwarding to %s, %llu spans stored before and not yet sent first", otlp_post_url(f->post),
                         (unsigned long long)atomic_load(&f->backlog));
        else
                log_info("Forwarding to %s", otlp_post_url(f->post));
        *ret = f;
        return 0;
}

void forward_notify(struct forwarder *f, uint64_t spans)
{
        if (!f || !spans)
                return;
        atomic_fetch_add(&f->backlog, spans);
        pthread_mutex_lock(&f->lock);
        f->notified++;
        pthread_cond_signal(&f->cond);
        pthread_mutex_unlock(&f->lock);
}

void forward_get_status(struct forwarder *f, struct forward_status *ret)
{
        pthread_mutex_lock(&f->lock);
        *ret = (struct forward_status){
                .sent = f->totals.sent,
                .dropped = f->totals.dropped,
                .rejected = f->totals.rejected,
                .failures = f->failures,
        };
        snprintf(ret->last_error, sizeof(ret->last_error), "%s", f->last_error);
        pthread_mutex_unlock(&f->lock);
        ret->backlog = atomic_load(&f->backlog);
}

const char *forward_url(const struct forwarder *f)
{
        return otlp_post_url(f->post);
}

void forward_stop(struct forwarder *f, int grace_ms)
{
        if (!f)
                return;
        pthread_mutex_lock(&f->lock);
        f->stop = true;
        f->stop_deadline_ns = deadline_ns((uint64_t)grace_ms);
        pthread_cond_signal(&f->cond);
        pthread_mutex_unlock(&f->lock);
        pthread_join(f->thread, NULL);
        store_set_forwarding(f->store, false);
        uint64_t left = atomic_load(&f->backlog);
        if (left)
                log_info("Forwarding stopped with %llu spans not yet sent: sent at the next start",
                         (unsigned long long)left);
        otlp_request_free(&f->req);
        wire_decoder_free(&f->decoder);
        wire_spans_free(&f->spans);
        for (unsigned i = 0; i < RUN_NAMES; i++)
                free(f->runs[i].id);
        otlp_post_free(f->post);
        pthread_mutex_destroy(&f->lock);
        pthread_cond_destroy(&f->cond);
        free(f->url);
        free(f->service);
        free(f);
}
