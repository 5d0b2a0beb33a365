/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "forward.h"
#include "ingest.h"
#include "paths.h"
#include "held.h"
#include "log.h"
#include "peers.h"
#include "recent.h"
#include "runs.h"
#include "wire.h"

/* A commit happens when any bound is reached. The time bound keeps queries
 * fresh; the size bounds keep write batches efficient but not huge. */
#define COMMIT_AFTER_NS (20 * 1000000ull)
#define COMMIT_SPANS 200000
#define COMMIT_BYTES (32u << 20)
#define RUN_IDLE_NS (600 * 1000000000ull)
#define RETRY_AFTER_MS 1000
/* On stop, the socket counts as drained after this long without a message. */
#define DRAIN_QUIET_MS 50
#define DRAIN_MAX_MS 5000
#define REJECT_LOG_LIMIT 20
/* Children whose parent has not arrived; beyond this, forget them (their
 * parents' self time then counts them in). */
#define CHILD_MAP_MAX (2u << 20)
/* How often the size bound is checked, and the age bound applied. */
#define SIZE_CHECK_NS (1000 * 1000000ull)
#define AGE_CHECK_NS (60 * 1000000000ull)
#define REMOVE_TIMEOUT_S 120

struct ingest {
        struct store *store;
        struct acks *acks;
        void *socket;
        struct peers *peers;
        struct forwarder *forwarder;     /* told what each commit stored, or NULL */
        int wake_fd;
        pthread_t thread;
        _Atomic bool stop;

        struct runs runs;
        struct store_batch *batch;
        struct u64map pending_acks;
        uint64_t pending_spans;
        uint64_t first_pending_ns;       /* 0 when nothing is pending */
        bool failing;                    /* the last commit failed */
        uint64_t next_retry_ns;          /* while failing: when to try again */
        struct held held;                /* received while failing, not yet taken */

        struct wire_decoder decoder;
        struct wire_spans spans;
        struct retention_config retention;
        uint64_t next_size_check_ns, next_age_check_ns;

        /* One removal at a time, handed over from the query thread. */
        pthread_mutex_t remove_lock;
        pthread_cond_t remove_cond;
        char remove_run[256];
        bool remove_pending;
        int remove_result;

        struct u64map batch_ids;         /* span id -> index + 1, per message */
        struct name_stats **by_name;     /* string index -> stats, per message */
        size_t by_name_cap;
        uint64_t rejected_logged;
};

static int reject(struct ingest *in, const char *why, size_t len)
{
        atomic_fetch_add(&counters_g.rejected_messages, 1);
        if (in->rejected_logged++ < REJECT_LOG_LIMIT)
                log_warning("Rejected a message of %zu bytes: %s, ignoring", len, why);
        return -EPROTO;
}

/* What a run knows of one client: the spans accounted for from it (stored,
 * or counted dropped: by the client, or lost on the way), which its
 * batches' sent_before is compared with, and the seq of its last batch
 * accepted. Kept in the run's maps and in the store's client record. */
struct client_record {
        uint64_t stored, seq;
};

static int client_load(struct ingest *in, struct run *run, const Ferret__Batch *b, struct client_record *c)
{
        *c = (struct client_record){ 0 };
        if (u64map_get(&run->clients, b->client_id, &c->stored)) {
                u64map_get(&run->client_seqs, b->client_id, &c->seq);
                return 0;
        }
        if (store_get_client(in->store, run->number, b->client_id, &c->stored, &c->seq) == 0) {
                /* Stored by an earlier daemon: acknowledge it again, so that
                 * the client lets go of what it keeps for a resend. */
                uint64_t acked;
                if (c->seq && (!u64map_get(&in->pending_acks, b->client_id, &acked) || acked < c->seq) &&
                    u64map_put(&in->pending_acks, b->client_id, c->seq) < 0)
                        return -ENOMEM;
                if (!in->first_pending_ns)
                        in->first_pending_ns = now_mono_ns();
        } else {
                if (!b->process || !b->process->observer)
                        run->processes++;
                /* For the label of its node in a call tree (path-tree.c). */
                if (b->process && b->process->pid && b->process->executable && *b->process->executable &&
                    strlen(b->process->executable) < STORE_MAX_KEY)
                        store_batch_put_process(in->batch, run->number, b->process->pid, b->process->executable);
        }
        if (u64map_put(&run->clients, b->client_id, c->stored) < 0 ||
            u64map_put(&run->client_seqs, b->client_id, c->seq) < 0)
                return -ENOMEM;
        return 0;
}

/* A client sends its batches in seq order, and after a reconnection sends
 * again every one the daemon has not acknowledged: some were stored
 * already, some arrive ahead of one it lost. The next batch is the one
 * after the last stored, unless the client says it no longer has that one
 * (first_unacked above it: lost on the way, counted from sent_before). */
enum admission { ADMIT, DUPLICATE, EARLY, LATE };

static enum admission admit(struct run *run, const Ferret__Batch *b, const struct client_record *c)
{
        if (b->seq <= c->seq) {
                /* The oldest of a gap counted lost, come after all (on the
                 * connection a client left, read after its last word). */
                uint64_t next, end;
                if (u64map_get(&run->gap_next, b->client_id, &next) && b->seq == next &&
                    u64map_get(&run->gap_end, b->client_id, &end) && b->seq < end)
                        return LATE;
                return DUPLICATE;
        }
        uint64_t next = c->seq + 1 > b->first_unacked ? c->seq + 1 : b->first_unacked;
        return b->seq > next ? EARLY : ADMIT;
}

/* What a span counts for in its parent's children's time: its duration,
 * less the times it was suspended (its suspension children, which arrived
 * before it): a generator's lifetime overlaps its caller's own work. */
static uint64_t span_time_for_parent(struct u64map *suspended_ns, const struct wire_span *s)
{
        uint64_t away = 0;
        if (!u64map_take(suspended_ns, s->span_id, &away))
                return s->duration_ns;
        return away < s->duration_ns ? s->duration_ns - away : 0;
}

/* A child whose parent was accounted in an earlier batch (they come from
 * different threads' buffers, which the client sends as they fill): its
 * time, @d, is taken from the parent's self time now, as it would have
 * been, if it began before the parent ended. Returns 1 when the parent is
 * known so, 0 when it is not, or -ENOMEM. */
static int late_time(struct run *run, uint64_t parent_id, uint64_t start_ns, uint64_t d)
{
        struct recent_span *p = recent_get(&run->recent, parent_id);
        if (!p)
                return 0;
        uint64_t take = start_ns < p->end_ns ? (d < p->self_left ? d : p->self_left) : 0;
        if (take) {
                p->self_left -= take;
                p->stats->self_ns -= take < p->stats->self_ns ? take : p->stats->self_ns;
                p->stats->dirty = true;
                run->dirty = true;
                if (p->path_stats && paths_take_self(run, p->path_stats, p->start_ns, take) < 0)
                        return -ENOMEM;
        }
        return 1;
}

static int account(struct ingest *in, struct run *run, const Ferret__Batch *b)
{
        const Ferret__SpanColumns *c = b->spans;
        size_t n = in->spans.n;

        if (c && c->n_strings > in->by_name_cap) {
                struct name_stats **p = realloc(in->by_name, c->n_strings * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                in->by_name = p;
                in->by_name_cap = c->n_strings;
        }
        if (c)
                memset(in->by_name, 0, c->n_strings * sizeof(*in->by_name));

        /* Self time: a span's duration minus its children's. Children end
         * first, so they are in this batch or an earlier one; their time
         * waits in the run's child_ns until their parent arrives. */
        if (run->child_ns.n > CHILD_MAP_MAX)
                u64map_clear(&run->child_ns);
        if (run->suspended_ns.n > CHILD_MAP_MAX)
                u64map_clear(&run->suspended_ns);
        u64map_clear(&in->batch_ids);
        for (size_t i = 0; i < n; i++)
                if (u64map_put(&in->batch_ids, in->spans.spans[i].span_id, i + 1) < 0)
                        return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const struct wire_span *s = &in->spans.spans[i];
                uint64_t d = span_time_for_parent(&run->suspended_ns, s), at;
                /* A child that began after its parent ended (work handed
                 * on to another thread) is none of the parent's time. It
                 * arrives with the parent or after: in the same batch it is
                 * known by its start. */
                if (!s->parent_id)
                        continue;
                bool in_batch = u64map_get(&in->batch_ids, s->parent_id, &at);
                if (in_batch) {
                        const struct wire_span *p = &in->spans.spans[at - 1];
                        if (s->start_ns >= p->start_ns + p->duration_ns)
                                continue;
                } else {
                        int late = late_time(run, s->parent_id, s->start_ns, d);
                        if (late < 0)
                                return late;
                        if (late)
                                continue;
                }
                bool held = false;
                if (!in_batch && (s->flags & FERRET__SPAN_FLAG__SPAN_FLAG_HANDED_ON)) {
                        int r = handed_on_add(&run->handed_on, s->parent_id, s->start_ns, d);
                        if (r == -ENOMEM)
                                return r;
                        held = r == 0;
                }
                if (!held && u64map_add(&run->child_ns, s->parent_id, d) < 0)
                        return -ENOMEM;
                /* However its time reaches the parent (a generator's
                 * "(yield)" is handed on: its parent is not the thread's
                 * current span), a suspension is none of the parent's time
                 * for the parent's own parent. */
                if ((s->flags & FERRET__SPAN_FLAG__SPAN_FLAG_SUSPENSION) &&
                    u64map_add(&run->suspended_ns, s->parent_id, s->duration_ns) < 0)
                        return -ENOMEM;
        }
        /* A span whose end was dropped: its children's time goes to its
         * parent, which they hang under. */
        for (size_t i = 0; c && i < c->n_lost_span; i++) {
                uint64_t t = 0;
                u64map_take(&run->child_ns, c->lost_span[i], &t);
                t += handed_on_take(&run->handed_on, c->lost_span[i], UINT64_MAX);
                /* The parent may have come already (the client says what
                 * it lost when it next has room, after the parent's end). */
                int late = t && c->lost_parent[i] ? late_time(run, c->lost_parent[i], 0, t) : 1;
                if (late < 0 || (!late && u64map_add(&run->child_ns, c->lost_parent[i], t) < 0))
                        return -ENOMEM;
        }

        if (paths_add_lost(run, c) < 0)
                return -ENOMEM;
        uint64_t first = UINT64_MAX;
        for (size_t i = 0; i < n; i++) {
                const struct wire_span *s = &in->spans.spans[i];
                struct name_stats **slot = &in->by_name[c->name[i]];
                if (!*slot && !(*slot = run_name_stats(run, s->name)))
                        return -ENOMEM;
                uint64_t children = 0;
                u64map_take(&run->child_ns, s->span_id, &children);
                children += handed_on_take(&run->handed_on, s->span_id, s->start_ns + s->duration_ns);
                uint64_t self = children < s->duration_ns ? s->duration_ns - children : 0;
                name_stats_add(*slot, s->duration_ns, self, wire_span_status(s));
                struct path_stats *at_path;
                if (paths_add_span(run, &in->spans, s, self, &at_path) < 0)
                        return -ENOMEM;
                recent_put(&run->recent, &(struct recent_span){ .id = s->span_id, .path = s->path,
                                                                .start_ns = s->start_ns,
                                                                .end_ns = s->start_ns + s->duration_ns,
                                                                .self_left = self, .stats = *slot,
                                                                .path_stats = at_path });
                if (s->start_ns < first)
                        first = s->start_ns;
                if (s->start_ns + s->duration_ns > run->last_ns)
                        run->last_ns = s->start_ns + s->duration_ns;
        }
        if (first < run->first_ns)
                run->first_ns = first;

        for (size_t i = 0; c && i < c->n_folded_name; i++) {
                struct name_stats **slot = &in->by_name[c->folded_name[i]];
                if (!*slot && !(*slot = run_name_stats(run, c->strings[c->folded_name[i]])))
                        return -ENOMEM;
                name_stats_add_folded(*slot, c->folded_count[i], c->folded_total_ns[i], c->folded_max_ns[i]);
                if (c->n_folded_untimed)
                        name_stats_add_untimed(*slot, c->folded_untimed[i]);
        }
        for (size_t i = 0; i < b->n_notes; i++)
                if (strlen(b->notes[i]) <= WIRE_MAX_NAME_BYTES)
                        run_add_note(run, b->notes[i]);

        run->spans += n;
        run->dirty = true;
        run->last_used_ns = now_mono_ns();
        return first == UINT64_MAX ? 0 : 1;
}

/* What this client sent (or dropped) before this batch and we did not
 * account for was lost on the way (it no longer had it to resend):
 * dropped, for the run. The record per client is in the database, so a
 * restarted daemon goes on counting, and a process is counted once. The
 * batches skipped are remembered, in case they come after all. */
static int count_client(struct ingest *in, struct run *run, const Ferret__Batch *b,
                        const struct client_record *client, size_t n)
{
        uint64_t accounted = client->stored;
        uint64_t lost = b->sent_before > accounted ? b->sent_before - accounted : 0;
        accounted = (b->sent_before > accounted ? b->sent_before : accounted) + n + b->dropped;
        if (u64map_put(&run->clients, b->client_id, accounted) < 0 ||
            u64map_put(&run->client_seqs, b->client_id, b->seq) < 0)
                return -ENOMEM;
        if (b->seq > client->seq + 1 && lost &&
            (u64map_put(&run->gap_next, b->client_id, client->seq + 1) < 0 ||
             u64map_put(&run->gap_end, b->client_id, b->seq) < 0 ||
             u64map_put(&run->gap_lost, b->client_id, lost) < 0))
                return -ENOMEM;
        store_batch_put_client(in->batch, run->number, b->client_id, accounted, b->seq);
        if (lost)
                atomic_fetch_add(&counters_g.lost_in_transit, lost);
        run->dropped += b->dropped + lost;
        return 0;
}

/* A batch of a gap, counted lost when a later one came: its spans are
 * stored after all, and no longer dropped (its own drops were counted
 * with the gap). */
static void count_late(struct run *run, const Ferret__Batch *b, size_t n)
{
        uint64_t end = 0, lost = 0, unused;
        u64map_get(&run->gap_end, b->client_id, &end);
        u64map_get(&run->gap_lost, b->client_id, &lost);
        /* Never more than the gap counted, whatever a batch claims. */
        uint64_t found = n + b->dropped < lost ? n + b->dropped : lost;
        uint64_t stored = n < found ? n : found;
        if (b->seq + 1 < end && found < lost) {
                u64map_put(&run->gap_next, b->client_id, b->seq + 1);
                u64map_put(&run->gap_lost, b->client_id, lost - found);
        } else {
                u64map_take(&run->gap_next, b->client_id, &unused);
                u64map_take(&run->gap_end, b->client_id, &unused);
                u64map_take(&run->gap_lost, b->client_id, &unused);
        }
        run->dropped -= stored < run->dropped ? stored : run->dropped;
        uint64_t in_transit = atomic_load(&counters_g.lost_in_transit);
        atomic_fetch_sub(&counters_g.lost_in_transit, found < in_transit ? found : in_transit);
}

static int ingest_message(struct ingest *in, const void *data, size_t len)
{
        const char *reason = NULL;
        int r;

        if (len > WIRE_MAX_MESSAGE_BYTES)
                return reject(in, "larger than the limit", len);
        Ferret__Batch *b;
        r = wire_batch_decode(&in->decoder, data, len, &b);
        if (r == -EPROTO)
                return reject(in, "not a Batch", len);
        if (r < 0)
                return r;
        if (b->version != WIRE_PROTOCOL_VERSION)
                return reject(in, "unsupported protocol version", len);
        if (!b->run_id[0] || strlen(b->run_id) > 255 || !b->client_id || !b->seq)
                return reject(in, "no run id, client id or seq", len);
        wire_spans_clear(&in->spans);
        uint32_t pid = b->process ? b->process->pid : 0;
        if (b->spans) {
                r = wire_spans_append(&in->spans, b->spans, pid, &reason);
                if (r == -EPROTO)
                        return reject(in, reason, len);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < b->spans->n_strings; i++)
                        if (strlen(b->spans->strings[i]) > WIRE_MAX_NAME_BYTES)
                                return reject(in, "string longer than the limit", len);
                /* No client makes 0 (ids are random and 0 means "no
                 * parent"); a span with it could never be found. */
                for (size_t i = 0; i < in->spans.n; i++)
                        if (!in->spans.spans[i].span_id)
                                return reject(in, "a span id of 0", len);
        }

        struct run *run;
        r = runs_get(&in->runs, b->run_id, &run);
        if (r < 0)
                return log_error_errno(r, "Failed to load run %s: %m", b->run_id);
        struct client_record client;
        r = client_load(in, run, b, &client);
        if (r < 0)
                return r;
        enum admission admission = admit(run, b, &client);
        switch (admission) {
        case DUPLICATE:
                atomic_fetch_add(&counters_g.duplicate_batches, 1);
                return 0;
        case EARLY:
                atomic_fetch_add(&counters_g.early_batches, 1);
                return 0;
        case ADMIT:
        case LATE:
                break;
        }
        r = account(in, run, b);
        if (r < 0)
                return r;
        if (admission == LATE)
                count_late(run, b, in->spans.n);
        else if ((r = count_client(in, run, b, &client, in->spans.n)) < 0)
                return r;
        /* Stored when it has spans, or says which spans' ends were lost
         * (the trees need it to place their children). */
        if (in->spans.n || (b->spans && b->spans->n_lost_span)) {
                uint64_t first = in->spans.n ? UINT64_MAX : run->last_ns;
                for (size_t i = 0; i < in->spans.n; i++)
                        if (in->spans.spans[i].start_ns < first)
                                first = in->spans.spans[i].start_ns;
                store_batch_put_chunk(in->store, in->batch, run->number, first, data, len, (uint32_t)in->spans.n);
        }

        uint64_t seq;
        if (!u64map_get(&in->pending_acks, b->client_id, &seq) || seq < b->seq)
                u64map_put(&in->pending_acks, b->client_id, b->seq);
        in->pending_spans += in->spans.n;
        if (!in->first_pending_ns)
                in->first_pending_ns = now_mono_ns();
        atomic_fetch_add(&counters_g.received_batches, 1);
        atomic_fetch_add(&counters_g.received_spans, in->spans.n);
        atomic_fetch_add(&counters_g.dropped_by_clients, b->dropped);
        return 0;
}

static int commit(struct ingest *in)
{
        if (!in->first_pending_ns)
                return 0;
        runs_write_dirty(&in->runs, in->batch);
        int r = store_commit(in->store, in->batch);
        if (r < 0) {
                /* Keep everything and stop reading until the disk takes it:
                 * clients then drop (and count) instead of us losing what
                 * was accepted. Queries go on. */
                if (!in->failing && r == -ENOSPC)
                        log_error("Disk full: holding %llu spans, taking no more, and waiting for space "
                                  "(checked every %d ms)", (unsigned long long)in->pending_spans, RETRY_AFTER_MS);
                else if (!in->failing)
                        log_error("Commit failed; holding %llu spans and retrying every %d ms",
                                  (unsigned long long)in->pending_spans, RETRY_AFTER_MS);
                atomic_store(&counters_g.disk_full, r == -ENOSPC);
                in->failing = true;
                in->next_retry_ns = now_mono_ns() + RETRY_AFTER_MS * 1000000ull;
                return r;
        }
        if (in->failing)
                log_notice("Commit succeeded again");
        in->failing = false;
        atomic_store(&counters_g.disk_full, false);
        atomic_fetch_add(&counters_g.stored_spans, in->pending_spans);
        forward_notify(in->forwarder, in->pending_spans);
        acks_publish(in->acks, &in->pending_acks);
        u64map_clear(&in->pending_acks);
        in->pending_spans = 0;
        in->first_pending_ns = 0;
        runs_evict_idle(&in->runs, now_mono_ns(), RUN_IDLE_NS);
        return 0;
}

/* Runs the retention bounds (with nothing pending: commit first). */
static void apply_retention(struct ingest *in, bool age_too)
{
        uint64_t now = now_mono_ns();
        if (commit(in) < 0)
                return;
        struct retention_config c = in->retention;
        if (!age_too)
                c.retain_days = 0;
        int removed = retention_apply(in->store, &in->runs, &c, now_wall_ns());
        if (removed > 0)
                atomic_fetch_add(&counters_g.runs_removed, (uint64_t)removed);
        /* Runs marked trimmed are written back now. */
        if (!in->first_pending_ns)
                in->first_pending_ns = now;
        commit(in);
        in->next_size_check_ns = now + SIZE_CHECK_NS;
        if (age_too)
                in->next_age_check_ns = now + AGE_CHECK_NS;
}

static void serve_removal(struct ingest *in)
{
        pthread_mutex_lock(&in->remove_lock);
        if (in->remove_pending) {
                int r = commit(in);
                if (r == 0)
                        r = retention_remove_run(in->store, &in->runs, in->remove_run);
                if (r == 0)
                        atomic_fetch_add(&counters_g.runs_removed, 1);
                in->remove_result = r;
                in->remove_pending = false;
                pthread_cond_broadcast(&in->remove_cond);
        }
        pthread_mutex_unlock(&in->remove_lock);
}

int ingest_remove_run(struct ingest *in, const char *run_id)
{
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += REMOVE_TIMEOUT_S;
        pthread_mutex_lock(&in->remove_lock);
        while (in->remove_pending)          /* another removal first */
                if (pthread_cond_timedwait(&in->remove_cond, &in->remove_lock, &until) == ETIMEDOUT) {
                        pthread_mutex_unlock(&in->remove_lock);
                        return -ETIMEDOUT;
                }
        snprintf(in->remove_run, sizeof(in->remove_run), "%s", run_id);
        in->remove_pending = true;
        ingest_hurry(in);
        int r = 0;
        while (in->remove_pending && r != ETIMEDOUT)
                r = pthread_cond_timedwait(&in->remove_cond, &in->remove_lock, &until);
        r = in->remove_pending ? -ETIMEDOUT : in->remove_result;
        pthread_mutex_unlock(&in->remove_lock);
        return r;
}

static bool commit_due(struct ingest *in)
{
        return in->first_pending_ns &&
               (in->pending_spans >= COMMIT_SPANS || store_batch_bytes(in->batch) >= COMMIT_BYTES ||
                now_mono_ns() - in->first_pending_ns >= COMMIT_AFTER_NS);
}

static void count_held(struct ingest *in)
{
        atomic_store(&counters_g.held_bytes, in->held.bytes);
}

/* Receives what is queued, up to a commit's worth: first what was held,
 * so that each client's batches keep their order. Returns messages read. */
static int receive_some(struct ingest *in)
{
        int n = 0;
        zmq_msg_t *front;
        while (!commit_due(in) && (front = held_front(&in->held))) {
                ingest_message(in, zmq_msg_data(front), zmq_msg_size(front));
                held_pop(&in->held);
                n++;
        }
        count_held(in);
        if (in->held.n)
                return n;
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        while (!commit_due(in) && zmq_msg_recv(&msg, in->socket, ZMQ_DONTWAIT) >= 0) {
                ingest_message(in, zmq_msg_data(&msg), zmq_msg_size(&msg));
                n++;
        }
        zmq_msg_close(&msg);
        return n;
}

/* While the store takes nothing: keeps what arrives, up to the bound,
 * rather than leave it in ZeroMQ's queues (bounded per connection only). */
static void hold_some(struct ingest *in)
{
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        while (!held_full(&in->held) && zmq_msg_recv(&msg, in->socket, ZMQ_DONTWAIT) >= 0) {
                if (zmq_msg_size(&msg) == 0) {
                        reject(in, "empty", 0);         /* no batch is: not worth holding */
                        continue;
                }
                if (held_push(&in->held, &msg) < 0) {
                        reject(in, "out of memory to hold it while the disk is full", zmq_msg_size(&msg));
                        break;
                }
        }
        zmq_msg_close(&msg);
        count_held(in);
}

static void drain_and_commit(struct ingest *in)
{
        uint64_t until = now_mono_ns() + DRAIN_MAX_MS * 1000000ull;
        zmq_pollitem_t item = { .socket = in->socket, .events = ZMQ_POLLIN };
        /* A client that keeps sending would keep this loop busy for ever:
         * the deadline holds whatever arrives. */
        while (now_mono_ns() < until) {
                if (receive_some(in) == 0 && !commit_due(in)) {
                        if (now_mono_ns() >= until || zmq_poll(&item, 1, DRAIN_QUIET_MS) <= 0)
                                break;
                        continue;
                }
                if (commit_due(in) && commit(in) < 0 && now_mono_ns() >= until)
                        break;
        }
        while (commit(in) < 0 && now_mono_ns() < until)
                zmq_poll(NULL, 0, RETRY_AFTER_MS);
        if (in->first_pending_ns || in->held.n)
                log_error("Could not store %llu received spans and %zu messages held (%zu bytes) before exiting",
                          (unsigned long long)in->pending_spans, in->held.n, in->held.bytes);
}

static void *ingest_main(void *arg)
{
        struct ingest *in = arg;
        zmq_pollitem_t items[3] = {
                { .socket = in->socket, .events = ZMQ_POLLIN },
                { .fd = in->wake_fd, .events = ZMQ_POLLIN },
                { .socket = in->peers ? in->peers->monitor : NULL, .events = ZMQ_POLLIN },
        };
        int n_items = in->peers ? 3 : 2;

        bool bounded = in->retention.retain_days > 0 || in->retention.max_size_bytes > 0;
        while (!atomic_load(&in->stop)) {
                long timeout = bounded ? (long)(SIZE_CHECK_NS / 1000000) : -1;
                if (in->failing) {
                        uint64_t now = now_mono_ns();
                        timeout = now >= in->next_retry_ns ? 0 : (long)((in->next_retry_ns - now) / 1000000) + 1;
                } else if (in->held.n)
                        timeout = 0;    /* what was held is taken before anything new */
                else if (in->first_pending_ns) {
                        uint64_t age = now_mono_ns() - in->first_pending_ns;
                        timeout = age >= COMMIT_AFTER_NS ? 0 : (long)((COMMIT_AFTER_NS - age) / 1000000) + 1;
                }
                items[0].events = in->failing && held_full(&in->held) ? 0 : ZMQ_POLLIN;
                if (zmq_poll(items, n_items, timeout) < 0 && errno != EINTR)
                        break;
                /* Even while the disk is full: peers are counted as they come. */
                if (in->peers && (items[2].revents & ZMQ_POLLIN))
                        peers_handle(in->peers);
                if (items[1].revents & ZMQ_POLLIN) {
                        uint64_t v;
                        ssize_t r = read(in->wake_fd, &v, sizeof(v));
                        (void)r;
                        /* A flush is waiting: commit what we have now. */
                        if (in->first_pending_ns && !in->failing)
                                commit(in);
                }
                if (!in->failing)
                        receive_some(in);
                else
                        hold_some(in);
                if (in->failing ? now_mono_ns() >= in->next_retry_ns : commit_due(in))
                        commit(in);
                serve_removal(in);
                uint64_t now = now_mono_ns();
                if (bounded && !in->failing && now >= in->next_size_check_ns) {
                        bool age = now >= in->next_age_check_ns;
                        if (age || (in->retention.max_size_bytes &&
                                    store_disk_bytes(in->store) > in->retention.max_size_bytes))
                                apply_retention(in, age);
                        else
                                in->next_size_check_ns = now + SIZE_CHECK_NS;
                }
        }
        drain_and_commit(in);
        return NULL;
}

int ingest_start(struct store *store, struct acks *acks, void *socket, struct peers *peers,
                 const struct retention_config *retention, struct forwarder *forwarder, struct ingest **ret)
{
        struct ingest *in = calloc(1, sizeof(*in));
        if (!in)
                return -ENOMEM;
        in->store = store;
        in->acks = acks;
        in->socket = socket;
        in->peers = peers;
        in->forwarder = forwarder;
        in->retention = *retention;
        pthread_mutex_init(&in->remove_lock, NULL);
        pthread_cond_init(&in->remove_cond, NULL);
        runs_init(&in->runs, store);
        in->batch = store_batch_new();
        in->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (!in->batch || in->wake_fd < 0) {
                store_batch_free(in->batch);
                free(in);
                return -ENOMEM;
        }
        /* Bounds first, before the daemon says it is ready. */
        if (in->retention.retain_days > 0 || in->retention.max_size_bytes > 0)
                apply_retention(in, true);
        int r = -pthread_create(&in->thread, NULL, ingest_main, in);
        if (r < 0) {
                store_batch_free(in->batch);
                close(in->wake_fd);
                free(in);
                return r;
        }
        *ret = in;
        return 0;
}

void ingest_hurry(struct ingest *in)
{
        uint64_t one = 1;
        ssize_t r = write(in->wake_fd, &one, sizeof(one));
        (void)r;
}

void ingest_stop(struct ingest *in)
{
        if (!in)
                return;
        atomic_store(&in->stop, true);
        ingest_hurry(in);
        pthread_join(in->thread, NULL);
        zmq_close(in->socket);
        runs_free(&in->runs);
        store_batch_free(in->batch);
        u64map_free(&in->pending_acks);
        u64map_free(&in->batch_ids);
        held_free(&in->held);
        wire_spans_free(&in->spans);
        wire_decoder_free(&in->decoder);
        free(in->by_name);
        close(in->wake_fd);
        pthread_mutex_destroy(&in->remove_lock);
        pthread_cond_destroy(&in->remove_cond);
        free(in);
}
