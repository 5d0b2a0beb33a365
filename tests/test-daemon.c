/* SPDX-License-Identifier: MIT */
/*
 * ferretd through its sockets: exact statistics, hostile messages, SIGTERM
 * during a burst, a second daemon refused, batches resent after a restart.
 */
#include <errno.h>
#include <fcntl.h>
#include <ferret.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "harness.h"
#include "raw.h"
#include "spans.h"

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

static uint64_t exact_quantile(const uint64_t *sorted, size_t n, double q)
{
        size_t rank = (size_t)ceil(q * (double)n);
        return sorted[rank ? rank - 1 : 0];
}

static void check_close(json_t *row, const char *key, uint64_t exact)
{
        uint64_t got = (uint64_t)json_integer_value(json_object_get(row, key));
        double err = fabs((double)got - (double)exact) / (double)exact;
        if (err > 0.01)
                harness_fail(__FILE__, __LINE__, "%s: %llu vs exact %llu (%.2f%% off)", key, (unsigned long long)got,
                             (unsigned long long)exact, err * 100);
}

/* Count, total, min, max and percentiles of the summary match the durations
 * that were sent (percentiles within 1%). */
TEST(summary_matches_what_was_sent)
{
        struct daemon_fixture f;
        struct raw_client c;
        fixture_start(&f);
        raw_open(&c, f.runtime_dir);

        const size_t per_batch = 5000, batches = 20, n = per_batch * batches;
        uint64_t *d = malloc(n * sizeof(*d)), total = 0;
        uint64_t x = 88172645463325252ull;
        for (size_t i = 0; i < n; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                /* Log-uniform from 1 µs to 1 s: every bucket range is used. */
                d[i] = (uint64_t)(1000.0 * pow(1e6, (double)(x % 1000000) / 1e6));
                total += d[i];
        }
        for (size_t b = 0; b < batches; b++)
                raw_send_spans(&c, "exact", "work", d + b * per_batch, per_batch, b == 0 ? 2 : 0);
        CHECK_EQ(raw_flush(&c, 10000), 0);

        qsort(d, n, sizeof(*d), cmp_u64);
        const char *args[] = { "query", "--run", "exact", NULL };
        json_t *sum = fixture_ferret_json(&f, args);
        json_t *row = summary_row(sum, "work");
        CHECK(row != NULL);
        CHECK_EQ(json_integer_value(json_object_get(row, "count")), n);
        CHECK_EQ(json_integer_value(json_object_get(row, "total_ns")), total);
        CHECK_EQ(json_integer_value(json_object_get(row, "min_ns")), d[0]);
        CHECK_EQ(json_integer_value(json_object_get(row, "max_ns")), d[n - 1]);
        CHECK_EQ(json_integer_value(json_object_get(row, "errors")), per_batch);
        check_close(row, "p50_ns", exact_quantile(d, n, 0.50));
        check_close(row, "p90_ns", exact_quantile(d, n, 0.90));
        check_close(row, "p95_ns", exact_quantile(d, n, 0.95));
        check_close(row, "p99_ns", exact_quantile(d, n, 0.99));
        check_close(row, "p999_ns", exact_quantile(d, n, 0.999));
        json_decref(sum);
        free(d);
        raw_close(&c);
        fixture_cleanup(&f);
}

static json_t *status(struct daemon_fixture *f)
{
        const char *args[] = { "status", NULL };
        return fixture_ferret_json(f, args);
}

/* Garbage, inconsistent columns and a wrong version are rejected and
 * counted; the daemon goes on and stores the next good batch. */
TEST(bad_messages_are_rejected)
{
        struct daemon_fixture f;
        struct raw_client c;
        fixture_start(&f);
        raw_open(&c, f.runtime_dir);

        raw_send_bytes(&c, "\xff\xff\xff garbage", 12);

        /* A decodable batch whose columns disagree: 2 names, 1 duration. */
        Ferret__Batch b = FERRET__BATCH__INIT;
        Ferret__SpanColumns cols = FERRET__SPAN_COLUMNS__INIT;
        char *strings[] = { "", "x" };
        uint32_t names[] = { 1, 1 };
        uint64_t durations[] = { 5 };
        cols.n_strings = 2;
        cols.strings = strings;
        cols.n_name = 2;
        cols.name = names;
        cols.n_duration = 1;
        cols.duration = durations;
        b.version = WIRE_PROTOCOL_VERSION;
        b.run_id = "bad";
        b.client_id = 7;
        b.spans = &cols;
        uint8_t buf[256];
        size_t len = ferret__batch__pack(&b, buf);
        raw_send_bytes(&c, buf, len);

        b.version = 99;
        b.spans = NULL;
        len = ferret__batch__pack(&b, buf);
        raw_send_bytes(&c, buf, len);

        uint64_t good[] = { 100, 200, 300 };
        raw_send_spans(&c, "good", "fine", good, 3, 0);
        CHECK_EQ(raw_flush(&c, 10000), 0);

        /* An empty request and one that is not a Request: answered with an
         * error, and counted. */
        CHECK_EQ(raw_request_bytes(&c, "", 0, 10000), -EOPNOTSUPP);
        CHECK_EQ(raw_request_bytes(&c, "\xff\xff\xff", 3, 10000), -EPROTO);
        json_t *st = status(&f);
        CHECK_EQ(json_integer_value(json_object_get(st, "rejected_messages")), 5);
        CHECK_EQ(json_integer_value(json_object_get(st, "stored_spans")), 3);
        json_decref(st);
        const char *args[] = { "query", "--run", "good", NULL };
        json_t *sum = fixture_ferret_json(&f, args);
        CHECK_EQ(json_integer_value(json_object_get(summary_row(sum, "fine"), "count")), 3);
        json_decref(sum);
        const char *runs_args[] = { "runs", NULL };
        json_t *runs = fixture_ferret_json(&f, runs_args);
        CHECK_EQ(json_array_size(runs), 1);
        json_decref(runs);

        char *log = fixture_log(&f);
        CHECK(strstr(log, "Rejected a message") != NULL);
        free(log);
        raw_close(&c);
        fixture_cleanup(&f);
}

/* A peer may send any duration: one past 2^63 ns (what jansson cannot hold
 * as an integer) reaches --json as its exact decimal, never as a negative
 * number, in the summary and in the tree. */
TEST(durations_past_int64_print_exactly)
{
        struct daemon_fixture f;
        fixture_start(&f);
        struct raw_client c;
        raw_open(&c, f.runtime_dir);
        uint64_t huge[] = { (1ull << 63) + 5, 1000 };
        raw_send_spans(&c, "huge", "long", huge, 2, 0);
        CHECK_EQ(raw_flush(&c, 10000), 0);
        const char *args[] = { "query", "--run", "huge", NULL };
        json_t *sum = fixture_ferret_json(&f, args);
        json_t *max = json_object_get(summary_row(sum, "long"), "max_ns");
        CHECK(json_is_string(max));
        CHECK_EQ(strcmp(json_string_value(max), "9223372036854775813"), 0);
        CHECK_EQ(json_integer_value(json_object_get(summary_row(sum, "long"), "min_ns")), 1000);
        json_decref(sum);
        struct flat_tree t;
        flat_tree_load(&f, "huge", &t);
        CHECK_EQ(t.n, 2);
        size_t found = 0;
        for (size_t i = 0; i < t.n; i++) {
                json_t *d = json_object_get(t.spans[i].span, "duration_ns");
                if (json_is_string(d) && strcmp(json_string_value(d), "9223372036854775813") == 0)
                        found++;
                CHECK(!json_is_integer(d) || json_integer_value(d) >= 0);
        }
        CHECK_EQ(found, 1);
        flat_tree_free(&t);
        raw_close(&c);
        fixture_cleanup(&f);
}

/* Forged batches do not spoil a run: a span id of 0 is refused and
 * counted; spans that are their own ancestors stay in both trees (one of
 * the cycle becomes a root, and the trees say so); a span id in one run
 * cannot reach another run's self time. */
TEST(forged_batches_spoil_nothing)
{
        struct daemon_fixture f;
        fixture_start(&f);
        struct raw_client c;
        raw_open(&c, f.runtime_dir);

        const char *good_names[] = { "fine" };
        uint64_t d1[] = { 100 }, good_ids[] = { 5 }, no_parent[] = { 0 };
        struct raw_spans good = { .n = 1, .names = good_names, .durations = d1, .ids = good_ids, .parents = no_parent, .start_ns = 1700000000000000000ull, .status = 0 };
        raw_send_batch(&c, "zero", &good);
        const char *zero_names[] = { "zero", "beside" };
        uint64_t d2[] = { 100, 100 }, zero_ids[] = { 0, 6 }, zero_parents[] = { 0, 0 };
        struct raw_spans zero = { .n = 2, .names = zero_names, .durations = d2, .ids = zero_ids, .parents = zero_parents, .start_ns = 1700000000000000000ull, .status = 0 };
        raw_send_batch(&c, "zero", &zero);

        /* a <-> b, c its own parent, and d under a. */
        const char *cyc_names[] = { "a", "b", "c", "d" };
        uint64_t d4[] = { 1000, 1000, 1000, 10 }, cyc_ids[] = { 10, 11, 12, 13 }, cyc_parents[] = { 11, 10, 12, 10 };
        struct raw_spans cycle = { .n = 4, .names = cyc_names, .durations = d4, .ids = cyc_ids, .parents = cyc_parents, .start_ns = 1700000000000000000ull, .status = 0 };
        raw_send_batch(&c, "cycle", &cycle);

        /* Another run sends a "child" of the victim's span 100 first. */
        const char *evil_names[] = { "evil" }, *victim_names[] = { "victim" };
        uint64_t d900[] = { 900 }, evil_ids[] = { 99 }, evil_parents[] = { 100 };
        struct raw_spans evil = { .n = 1, .names = evil_names, .durations = d900, .ids = evil_ids, .parents = evil_parents, .start_ns = 1700000000000000000ull, .status = 0 };
        raw_send_batch(&c, "evil", &evil);
        uint64_t d1000[] = { 1000 }, victim_ids[] = { 100 };
        struct raw_spans victim = { .n = 1, .names = victim_names, .durations = d1000, .ids = victim_ids, .parents = no_parent, .start_ns = 1700000000000000000ull, .status = 0 };
        raw_send_batch(&c, "victim", &victim);
        CHECK_EQ(raw_flush(&c, 10000), 0);

        json_t *st = status(&f);
        CHECK_EQ(json_integer_value(json_object_get(st, "rejected_messages")), 1);
        json_decref(st);
        char *log = fixture_log(&f);
        CHECK(strstr(log, "a span id of 0") != NULL);
        free(log);
        const char *zero_args[] = { "query", "--run", "zero", "--tree", NULL };
        json_t *zt = fixture_ferret_json(&f, zero_args);
        CHECK(zt != NULL);
        json_decref(zt);

        struct flat_tree t;
        flat_tree_load(&f, "cycle", &t);
        CHECK_EQ(t.n, 4);
        flat_tree_free(&t);
        const char *merged_args[] = { "query", "--run", "cycle", "--tree", NULL };
        json_t *m = fixture_ferret_json(&f, merged_args);
        CHECK_EQ(json_integer_value(json_object_get(m, "cycles_cut")), 1);
        size_t names = 0;
        json_t *stack[16];
        size_t depth = 0;
        json_t *root;
        size_t k;
        json_array_foreach(json_object_get(m, "roots"), k, root)
                stack[depth++] = root;
        while (depth) {
                json_t *node = stack[--depth], *child;
                size_t j;
                names += strlen(json_string_value(json_object_get(node, "name"))) == 1;
                json_array_foreach(json_object_get(node, "children"), j, child)
                        if (depth < 16)
                                stack[depth++] = child;
        }
        CHECK_EQ(names, 4);
        json_decref(m);

        const char *victim_args[] = { "query", "--run", "victim", NULL };
        json_t *sum = fixture_ferret_json(&f, victim_args);
        CHECK_EQ(json_integer_value(json_object_get(summary_row(sum, "victim"), "self_ns")), 1000);
        json_decref(sum);
        raw_close(&c);
        fixture_cleanup(&f);
}

/* A client that makes up span names without end (an id in each) does not
 * grow the run's statistics without end: past RUN_MAX_NAMES distinct
 * names, the others share one row, counted, and the run says so. */
TEST(names_of_a_run_are_bounded)
{
        enum { PER_BATCH = 10000, NAMES = 100000 + 5 };
        struct daemon_fixture f;
        fixture_start(&f);
        struct raw_client c;
        raw_open(&c, f.runtime_dir);
        char (*text)[16] = malloc(PER_BATCH * sizeof(*text));
        const char **names = malloc(PER_BATCH * sizeof(*names));
        uint64_t *d = malloc(PER_BATCH * sizeof(*d)), *ids = malloc(PER_BATCH * sizeof(*ids)),
                 *parents = calloc(PER_BATCH, sizeof(*parents));
        CHECK(text && names && d && ids && parents);
        uint64_t id = 1;
        for (size_t first = 0; first < NAMES; first += PER_BATCH) {
                size_t n = NAMES - first < PER_BATCH ? NAMES - first : PER_BATCH;
                for (size_t i = 0; i < n; i++) {
                        snprintf(text[i], sizeof(text[i]), "op-%zu", first + i);
                        names[i] = text[i];
                        d[i] = 10;
                        ids[i] = id++;
                }
                struct raw_spans s = { .n = n, .names = names, .durations = d, .ids = ids, .parents = parents, .start_ns = 1700000000000000000ull, .status = 0 };
                raw_send_batch(&c, "names", &s);
        }
        CHECK_EQ(raw_flush(&c, 30000), 0);
        const char *args[] = { "query", "--run", "names", NULL };
        json_t *sum = fixture_ferret_json(&f, args);
        CHECK_EQ(json_array_size(json_object_get(sum, "rows")), 100000 + 1);
        CHECK_EQ(json_integer_value(json_object_get(summary_row(sum, "(other names)"), "count")), 5);
        json_t *note = json_array_get(json_object_get(sum, "notes"), 0);
        CHECK(note && strstr(json_string_value(note), "more than 100000 span names"));
        json_decref(sum);
        free(text);
        free(names);
        free(d);
        free(ids);
        free(parents);
        raw_close(&c);
        fixture_cleanup(&f);
}

static unsigned long long log_number(const char *log, const char *after)
{
        const char *p = strstr(log, after);
        if (!p)
                harness_fail(__FILE__, __LINE__, "\"%s\" is not in the log", after);
        return strtoull(p + strlen(after), NULL, 10);
}

/* SIGTERM while a client sends as fast as it can: every span the daemon
 * received is stored, and the client is not disturbed. */
TEST(sigterm_during_burst_loses_nothing)
{
        struct daemon_fixture f;
        fixture_start(&f);
        setenv("FERRET_RUN_ID", "burst", 1);
        int started[2], stop[2];
        CHECK(pipe(started) == 0 && pipe(stop) == 0);
        pid_t child = fork();
        CHECK(child >= 0);
        if (child == 0) {
                char c = 1;
                alarm(60);
                for (int i = 0; i < 10000; i++)
                        FERRET_SCOPE(s, "burst") {
                        }
                ferret_flush(10000);
                if (write(started[1], &c, 1) != 1)
                        _exit(1);
                fcntl(stop[0], F_SETFL, O_NONBLOCK);
                while (read(stop[0], &c, 1) != 1)
                        for (int i = 0; i < 1000; i++)
                                FERRET_SCOPE(s, "burst") {
                                        ferret_span_tag_int(s, "i", i);
                                }
                _exit(0);
        }
        char c;
        CHECK_EQ(read(started[0], &c, 1), 1);
        CHECK_EQ(fixture_stop(&f), 0);
        char *log = fixture_log(&f);
        unsigned long long received = log_number(log, "Stopped: "), stored = log_number(log, "spans received, ");
        free(log);
        CHECK_CMP(received, >=, 10000);
        CHECK_EQ(received, stored);
        CHECK_EQ(write(stop[1], &c, 1), 1);
        int status;
        CHECK_EQ(waitpid(child, &status, 0), child);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

        /* What the log says was stored is in the database: no more, no less. */
        fixture_restart(&f);
        const char *args[] = { "query", "--run", "burst", NULL };
        json_t *sum = fixture_ferret_json(&f, args);
        CHECK_EQ(json_integer_value(json_object_get(summary_row(sum, "burst"), "count")), stored);
        json_decref(sum);
        fixture_cleanup(&f);
}

/* A second daemon on the same runtime directory or database is refused
 * with one clear line. */
TEST(second_daemon_refused)
{
        struct daemon_fixture f;
        fixture_start(&f);
        char other_rt[256];
        snprintf(other_rt, sizeof(other_rt), "%s/other", f.dir);
        char *same_dir[] = { (char *)fixture_ferretd_path(), "--db", "/tmp/unused-db", "--runtime-dir", f.runtime_dir, NULL };
        char *same_db[] = { (char *)fixture_ferretd_path(), "--db", f.db, "--runtime-dir", other_rt, NULL };
        char *err;
        int st = fixture_run(same_dir, NULL, NULL, &err);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
        CHECK(strstr(err, "Another ferretd") != NULL);
        CHECK_EQ(strchr(err, '\n') - err + 1, (long)strlen(err));    /* one line */
        free(err);
        st = fixture_run(same_db, NULL, NULL, &err);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
        CHECK(strstr(err, "in use by another process") != NULL);
        CHECK_EQ(strchr(err, '\n') - err + 1, (long)strlen(err));
        free(err);
        fixture_cleanup(&f);
}

static json_t *run_record(struct daemon_fixture *f, const char *run)
{
        const char *args[] = { "runs", NULL };
        json_t *runs = fixture_ferret_json(f, args), *found = NULL;
        size_t i;
        json_t *r;
        json_array_foreach(runs, i, r)
                if (strcmp(json_string_value(json_object_get(r, "run")), run) == 0)
                        found = json_incref(r);
        json_decref(runs);
        return found;
}

/* Past --max-clients, a connection is cut at once and counted; its client,
 * like any whose daemon went away, gets in once another client has left,
 * and what it sent is stored. */
/* A daemon that serves at most @max clients on each socket. */
static void start_capped(struct daemon_fixture *f, const char *max)
{
        fixture_start(f);
        CHECK_EQ(fixture_stop(f), 0);
        const char *const cap[] = { "--max-clients", max, NULL };
        fixture_restart_args(f, cap);
}

/* Waits for the daemon to say it refused a connection. */
static void wait_refused(struct daemon_fixture *f)
{
        bool refused = false;
        for (int i = 0; i < 1000 && !refused; i++) {
                char *log = fixture_log(f);
                refused = strstr(log, "Refused a connection") != NULL;
                free(log);
                if (!refused)
                        usleep(10000);
        }
        CHECK(refused);
}

TEST(clients_past_the_cap_are_cut_counted_and_get_in_later)
{
        struct daemon_fixture f;
        struct raw_client a, b, c;
        uint64_t d[3] = { 1000, 2000, 3000 };
        start_capped(&f, "2");
        raw_open(&a, f.runtime_dir);
        raw_open(&b, f.runtime_dir);
        raw_send_spans(&a, "capped", "a", d, 3, 0);
        raw_send_spans(&b, "capped", "b", d, 3, 0);
        CHECK_EQ(raw_flush(&a, 10000), 0);
        CHECK_EQ(raw_flush(&b, 10000), 0);

        raw_open(&c, f.runtime_dir);          /* one too many, on both sockets */
        raw_send_spans(&c, "capped", "c", d, 3, 0);
        wait_refused(&f);
        CHECK_EQ(raw_flush(&c, 300), -ETIMEDOUT);      /* no answer: cut */

        /* Room for c, which reconnects and, as the library does, sends
         * again what was not acknowledged: its batch, or its question,
         * may have gone down with a connection that was cut. */
        raw_close(&b);
        int flushed = -ETIMEDOUT;
        for (int i = 0; i < 100 && flushed != 0; i++) {
                c.seq = c.sent = 0;
                raw_send_spans(&c, "capped", "c", d, 3, 0);
                flushed = raw_flush(&c, 200);
        }
        CHECK_EQ(flushed, 0);
        raw_close(&a);
        json_t *st = status(&f);
        CHECK(json_integer_value(json_object_get(st, "refused_connections")) >= 2);
        json_decref(st);
        json_t *r = run_record(&f, "capped");
        CHECK(r != NULL);
        CHECK_EQ(json_integer_value(json_object_get(r, "spans")), 9);
        CHECK_EQ(json_integer_value(json_object_get(r, "dropped")), 0);
        json_decref(r);
        raw_close(&c);
        fixture_cleanup(&f);
}

/* A command the daemon cut at its cap asks again on a new connection once
 * there is room, within its time, rather than waiting for an answer that
 * cannot come. (Whether the first question is lost with the connection
 * depends on how far ZeroMQ's handshake got before the cut: without the
 * asking again, the test above failed 1 run in 6, at `ferret status`.) */
TEST(a_command_cut_at_the_cap_asks_again)
{
        struct daemon_fixture f;
        struct raw_client a;
        uint64_t d[1] = { 1000 };
        start_capped(&f, "1");
        raw_open(&a, f.runtime_dir);
        raw_send_spans(&a, "capped", "a", d, 1, 0);
        CHECK_EQ(raw_flush(&a, 10000), 0);    /* a holds the one place */

        pid_t child = fork();
        CHECK(child >= 0);
        if (child == 0) {
                int null = open("/dev/null", O_WRONLY);
                dup2(null, STDOUT_FILENO);
                execl(fixture_ferret_path(), "ferret", "status", "--runtime-dir", f.runtime_dir, (char *)NULL);
                _exit(127);
        }
        wait_refused(&f);
        raw_close(&a);                        /* room now */
        int status;
        CHECK_EQ(waitpid(child, &status, 0), child);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        fixture_cleanup(&f);
}

/* Batches a client sent that never arrived (queued in a daemon that was
 * stopped) are counted as dropped for the run, from the client's count of
 * what it sent before each batch; a daemon restarted on the database goes
 * on counting, and counts the process once. */
TEST(batches_lost_on_the_way_are_counted)
{
        struct daemon_fixture f;
        struct raw_client c;
        uint64_t d[20];
        for (size_t i = 0; i < 20; i++)
                d[i] = 1000 + i;
        fixture_start(&f);
        raw_open(&c, f.runtime_dir);
        raw_send_spans(&c, "lossy", "work", d, 10, 0);
        c.seq++;                /* a batch of 20 spans vanishes on the way */
        c.sent += 20;
        raw_send_spans(&c, "lossy", "work", d, 10, 0);
        CHECK_EQ(raw_flush(&c, 10000), 0);
        json_t *r = run_record(&f, "lossy");
        CHECK(r != NULL);
        CHECK_EQ(json_integer_value(json_object_get(r, "spans")), 20);
        CHECK_EQ(json_integer_value(json_object_get(r, "dropped")), 20);
        CHECK_EQ(json_integer_value(json_object_get(r, "processes")), 1);
        json_decref(r);
        json_t *st = status(&f);
        CHECK_EQ(json_integer_value(json_object_get(st, "lost_in_transit")), 20);
        json_decref(st);

        /* The same client after a restart: nothing new is lost. */
        struct raw_client same = c;
        raw_close(&c);
        CHECK_EQ(fixture_stop(&f), 0);
        fixture_restart(&f);
        raw_open(&c, f.runtime_dir);
        c.client_id = same.client_id;
        c.seq = same.seq;
        c.sent = same.sent;
        raw_send_spans(&c, "lossy", "work", d, 5, 0);
        CHECK_EQ(raw_flush(&c, 10000), 0);
        r = run_record(&f, "lossy");
        CHECK_EQ(json_integer_value(json_object_get(r, "spans")), 25);
        CHECK_EQ(json_integer_value(json_object_get(r, "dropped")), 20);
        CHECK_EQ(json_integer_value(json_object_get(r, "processes")), 1);
        json_decref(r);
        raw_close(&c);
        fixture_cleanup(&f);
}

static void send_as(struct raw_client *c, uint64_t seq, uint64_t sent_before, uint64_t first_unacked, size_t n)
{
        uint64_t d[16];
        for (size_t i = 0; i < n && i < 16; i++)
                d[i] = 2000 + i;
        c->seq = seq - 1;
        c->sent = sent_before;
        c->first_unacked = first_unacked;
        raw_send_spans(c, "resend", "work", d, n < 16 ? n : 16, 0);
}

static void check_run(struct daemon_fixture *f, const char *run, long long spans, long long dropped)
{
        json_t *r = run_record(f, run);
        CHECK(r != NULL);
        CHECK_EQ(json_integer_value(json_object_get(r, "spans")), spans);
        CHECK_EQ(json_integer_value(json_object_get(r, "dropped")), dropped);
        CHECK_EQ(json_integer_value(json_object_get(r, "processes")), 1);
        json_decref(r);
}

/* A client resends, after a reconnection, every batch not acknowledged: the
 * daemon stores each batch once, in order, sets aside what it has and what
 * comes ahead of a batch the client still holds, and counts as lost only
 * what the client says it no longer has -- also after a restart. */
TEST(resent_batches_are_stored_once_in_order)
{
        struct daemon_fixture f;
        struct raw_client c;
        fixture_start(&f);
        raw_open(&c, f.runtime_dir);
        send_as(&c, 1, 0, 1, 10);
        send_as(&c, 3, 20, 2, 10);      /* 2 was lost on the way; the client has it */
        send_as(&c, 2, 10, 2, 10);      /* the resend: 2, 3 */
        send_as(&c, 3, 20, 2, 10);
        send_as(&c, 1, 0, 1, 10);       /* stored already */
        c.seq = 3;                      /* the flush waits for the highest */
        CHECK_EQ(raw_flush(&c, 10000), 0);
        check_run(&f, "resend", 30, 0);
        json_t *st = status(&f);
        CHECK_EQ(json_integer_value(json_object_get(st, "duplicate_batches")), 1);
        CHECK_EQ(json_integer_value(json_object_get(st, "early_batches")), 1);
        CHECK_EQ(json_integer_value(json_object_get(st, "lost_in_transit")), 0);
        json_decref(st);

        /* A restarted daemon knows from the database what it stored. */
        uint64_t id = c.client_id;
        raw_close(&c);
        CHECK_EQ(fixture_stop(&f), 0);
        fixture_restart(&f);
        raw_open(&c, f.runtime_dir);
        c.client_id = id;
        send_as(&c, 3, 20, 2, 10);
        CHECK_EQ(raw_flush(&c, 10000), 0);    /* acknowledged again, not stored again */
        send_as(&c, 5, 37, 3, 10);      /* ahead of 4, which the client holds */
        send_as(&c, 5, 37, 5, 10);      /* now it does not: 4's 7 spans are lost */
        CHECK_EQ(raw_flush(&c, 10000), 0);
        check_run(&f, "resend", 40, 7);
        st = status(&f);
        CHECK_EQ(json_integer_value(json_object_get(st, "duplicate_batches")), 1);
        CHECK_EQ(json_integer_value(json_object_get(st, "early_batches")), 1);
        CHECK_EQ(json_integer_value(json_object_get(st, "lost_in_transit")), 7);
        json_decref(st);

        /* 4 comes after all (on a connection the client left): stored,
         * and no longer lost; then it is a duplicate like any other. */
        send_as(&c, 4, 30, 4, 7);
        send_as(&c, 4, 30, 4, 7);
        send_as(&c, 6, 47, 6, 0);       /* after them: the flush waits for it */
        CHECK_EQ(raw_flush(&c, 10000), 0);
        check_run(&f, "resend", 47, 0);
        st = status(&f);
        CHECK_EQ(json_integer_value(json_object_get(st, "duplicate_batches")), 2);
        CHECK_EQ(json_integer_value(json_object_get(st, "lost_in_transit")), 0);
        json_decref(st);
        raw_close(&c);
        fixture_cleanup(&f);
}

/* A batch lost on the way takes with it the count of spans its client had
 * dropped: sent_before counts those too, so the run counts them lost. A
 * client's last word (an empty batch, on exit) counts what it sent and
 * the daemon never got; the batches skipped, if they come after all, only
 * in order and once. */
TEST(lost_batches_are_counted_with_their_drops_and_taken_if_they_come_late)
{
        struct daemon_fixture f;
        struct raw_client c;
        fixture_start(&f);
        raw_open(&c, f.runtime_dir);
        send_as(&c, 1, 0, 1, 10);
        /* Batch 2: 10 spans and 5 dropped, never arrives; nor 3. */
        send_as(&c, 4, 35, 4, 10);      /* 3 held 10 more */
        c.seq = 4;
        CHECK_EQ(raw_flush(&c, 10000), 0);
        check_run(&f, "resend", 20, 25);
        send_as(&c, 3, 25, 3, 10);      /* ahead of 2: stays lost */
        c.seq = 4;
        CHECK_EQ(raw_flush(&c, 10000), 0);
        check_run(&f, "resend", 20, 25);
        c.dropped = 5;
        send_as(&c, 2, 10, 2, 10);      /* the oldest of the gap: taken */
        send_as(&c, 3, 25, 3, 10);      /* then the next */
        c.dropped = 0;
        send_as(&c, 5, 45, 5, 0);       /* the last word: nothing missing */
        CHECK_EQ(raw_flush(&c, 10000), 0);
        check_run(&f, "resend", 40, 5);
        json_t *st = status(&f);
        CHECK_EQ(json_integer_value(json_object_get(st, "lost_in_transit")), 0);
        CHECK_EQ(json_integer_value(json_object_get(st, "duplicate_batches")), 1);
        json_decref(st);

        /* A late batch that claims more than the gap held takes back no
         * more than the gap's count. */
        send_as(&c, 7, 48, 7, 0);       /* 6 held 3 spans */
        send_as(&c, 6, 45, 6, 10);
        send_as(&c, 8, 48, 8, 0);
        CHECK_EQ(raw_flush(&c, 10000), 0);
        check_run(&f, "resend", 50, 5);
        raw_close(&c);
        fixture_cleanup(&f);
}

static uint64_t client_sent(void)
{
        ferret_stats_t st = { .size = sizeof(st) };
        ferret_get_stats(&st);
        return st.sent;
}

/* The library keeps what it sent until the daemon has stored it: spans
 * queued in a daemon that was killed reach the next one, and none is
 * counted dropped. */
TEST(spans_queued_in_a_killed_daemon_are_sent_again)
{
        enum { FIRST = 5000, QUEUED = 60000 };
        struct daemon_fixture f;
        fixture_start(&f);
        setenv("FERRET_RUN_ID", "killed", 1);
        int to_child[2], to_parent[2];
        CHECK(pipe(to_child) == 0 && pipe(to_parent) == 0);
        pid_t child = fork();
        CHECK(child >= 0);
        if (child == 0) {
                char c = 1;
                alarm(60);
                for (int i = 0; i < FIRST; i++)
                        FERRET_SCOPE(s, "before") {
                        }
                if (ferret_flush(10000) != 0 || write(to_parent[1], &c, 1) != 1 || read(to_child[0], &c, 1) != 1)
                        _exit(10);
                /* The daemon is stopped: these wait in its socket. */
                for (int i = 0; i < QUEUED; i++)
                        FERRET_SCOPE(s, "queued") {
                        }
                while (client_sent() < FIRST + QUEUED)
                        usleep(1000);
                if (write(to_parent[1], &c, 1) != 1 || read(to_child[0], &c, 1) != 1)
                        _exit(11);
                /* A new daemon: the library reconnects within its retry
                 * interval (2 s at most); until then a flush is refused. */
                int r = -1;
                for (int i = 0; i < 100 && r != 0; i++)
                        if ((r = ferret_flush(10000)) != 0)
                                usleep(50000);
                ferret_stats_t st = { .size = sizeof(st) };
                ferret_get_stats(&st);
                _exit(r != 0 ? 12 : st.dropped != 0 ? 13 : 0);
        }
        char c = 1;
        CHECK_EQ(read(to_parent[0], &c, 1), 1);
        CHECK_EQ(kill(f.pid, SIGSTOP), 0);
        CHECK_EQ(write(to_child[1], &c, 1), 1);
        CHECK_EQ(read(to_parent[0], &c, 1), 1);
        CHECK_EQ(kill(f.pid, SIGKILL), 0);
        CHECK_EQ(waitpid(f.pid, NULL, 0), f.pid);
        fixture_forget(&f);
        fixture_restart(&f);
        CHECK_EQ(write(to_child[1], &c, 1), 1);
        int wstatus;
        CHECK_EQ(waitpid(child, &wstatus, 0), child);
        CHECK(WIFEXITED(wstatus));
        CHECK_EQ(WEXITSTATUS(wstatus), 0);
        check_run(&f, "killed", FIRST + QUEUED, 0);
        json_t *st = status(&f);
        CHECK_EQ(json_integer_value(json_object_get(st, "lost_in_transit")), 0);
        json_decref(st);
        fixture_cleanup(&f);
}
