/* SPDX-License-Identifier: MIT */
/*
 * The client library against a real ferretd: many processes and threads,
 * fork() from a multi-threaded program, exit with buffered spans, and no
 * daemon at all.
 */
#include <errno.h>
#include <math.h>
#include <ferret.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "harness.h"
#include "spans.h"

#define PROCESSES 4
#define THREADS 4
#define ITERATIONS 400

struct worker_args {
        int proc, thread;
};

static void *pipeline_worker(void *p)
{
        const struct worker_args *a = p;
        for (int i = 0; i < ITERATIONS; i++) {
                ferret_span_t *outer = ferret_span_begin("outer");
                char label[32];
                snprintf(label, sizeof(label), "%d-%d-%d", a->proc, a->thread, i);
                ferret_span_tag_int(outer, "proc", a->proc);
                ferret_span_tag_int(outer, "thread", a->thread);
                ferret_span_tag_int(outer, "i", i);
                ferret_span_tag_str(outer, "label", label);
                ferret_span_tag_double(outer, "ratio", i / 8.0);
                ferret_span_tag_bool(outer, "even", i % 2 == 0);

                ferret_span_t *inner = ferret_span_begin("inner");
                ferret_span_tag_int(inner, "i", i);
                if (i % 5 == 0)
                        ferret_span_set_status(inner, FERRET_STATUS_WARNING, "slow");
                ferret_span_end(inner);

                FERRET_SCOPE(leaf, "leaf") {
                        ferret_span_tag_int(leaf, "i", i);
                }
                if (i % 7 == 0)
                        ferret_span_set_status(outer, FERRET_STATUS_ERROR, "boom");
                ferret_span_end(outer);
        }
        return NULL;
}

static void pipeline_process(int proc)
{
        pthread_t threads[THREADS];
        struct worker_args args[THREADS];
        for (int t = 0; t < THREADS; t++) {
                args[t] = (struct worker_args){ proc, t };
                pthread_create(&threads[t], NULL, pipeline_worker, &args[t]);
        }
        for (int t = 0; t < THREADS; t++)
                pthread_join(threads[t], NULL);
        int r = ferret_flush(30000);
        if (r < 0) {
                fprintf(stderr, "flush in process %d: %s\n", proc, ferret_strerror(r));
                _exit(1);
        }
        _exit(0);
}

/* 4 processes x 4 threads of nested spans with tags and statuses: every span
 * is stored, under the right parent, with its name, tags and status. */
TEST(processes_and_threads)
{
        struct daemon_fixture f;
        fixture_start(&f);
        setenv("FERRET_RUN_ID", "pipeline", 1);

        pid_t pids[PROCESSES];
        for (int p = 0; p < PROCESSES; p++) {
                pids[p] = fork();
                CHECK(pids[p] >= 0);
                if (pids[p] == 0)
                        pipeline_process(p);
        }
        for (int p = 0; p < PROCESSES; p++)
                WAIT_OK(pids[p]);

        struct flat_tree t;
        flat_tree_load(&f, "pipeline", &t);
        const size_t outers = PROCESSES * THREADS * ITERATIONS;
        CHECK_EQ(t.n, 3 * outers);
        CHECK_EQ(flat_tree_count(&t, "outer"), outers);
        CHECK_EQ(flat_tree_count(&t, "inner"), outers);
        CHECK_EQ(flat_tree_count(&t, "leaf"), outers);
        CHECK_EQ(json_array_size(json_object_get(t.tree, "roots")), outers);

        /* Every (proc, thread, i) appears exactly once. */
        static char seen[PROCESSES][THREADS][ITERATIONS];
        for (size_t k = 0; k < t.n; k++) {
                json_t *s = t.spans[k].span, *parent = t.spans[k].parent;
                if (strcmp(span_name(s), "outer") == 0) {
                        CHECK(parent == NULL);
                        int proc = (int)json_integer_value(span_tag(s, "proc"));
                        int thread = (int)json_integer_value(span_tag(s, "thread"));
                        int i = (int)json_integer_value(span_tag(s, "i"));
                        CHECK(proc >= 0 && proc < PROCESSES && thread >= 0 && thread < THREADS && i >= 0 && i < ITERATIONS);
                        CHECK(!seen[proc][thread][i]);
                        seen[proc][thread][i] = 1;
                        char label[32];
                        snprintf(label, sizeof(label), "%d-%d-%d", proc, thread, i);
                        CHECK_STR(json_string_value(span_tag(s, "label")), label);
                        CHECK(json_is_real(span_tag(s, "ratio")) && json_real_value(span_tag(s, "ratio")) == i / 8.0);
                        CHECK(json_is_boolean(span_tag(s, "even")) && json_boolean_value(span_tag(s, "even")) == (i % 2 == 0));
                        CHECK_STR(span_status(s), i % 7 == 0 ? "error" : "ok");
                        if (i % 7 == 0)
                                CHECK_STR(json_string_value(json_object_get(s, "message")), "boom");
                        json_t *children = json_object_get(s, "children");
                        CHECK_EQ(json_array_size(children), 2);
                        CHECK_STR(span_name(json_array_get(children, 0)), "inner");
                        CHECK_STR(span_name(json_array_get(children, 1)), "leaf");
                } else {
                        CHECK(parent != NULL);
                        CHECK_STR(span_name(parent), "outer");
                        int i = (int)json_integer_value(span_tag(s, "i"));
                        CHECK_EQ(i, json_integer_value(span_tag(parent, "i")));
                        CHECK_EQ(json_integer_value(json_object_get(s, "tid")), json_integer_value(json_object_get(parent, "tid")));
                        CHECK_EQ(json_integer_value(json_object_get(s, "pid")), json_integer_value(json_object_get(parent, "pid")));
                        if (strcmp(span_name(s), "inner") == 0)
                                CHECK_STR(span_status(s), i % 5 == 0 ? "warning" : "ok");
                        /* A child lies within its parent's time. */
                        CHECK_CMP(json_integer_value(json_object_get(s, "start_ns")), >=,
                                  json_integer_value(json_object_get(parent, "start_ns")));
                        CHECK_CMP(json_integer_value(json_object_get(s, "duration_ns")), <=,
                                  json_integer_value(json_object_get(parent, "duration_ns")));
                }
        }
        flat_tree_free(&t);

        /* The summary agrees with what was sent. */
        const char *args[] = { "query", "--run", "pipeline", NULL };
        json_t *sum = fixture_ferret_json(&f, args);
        CHECK_EQ(json_integer_value(json_object_get(sum, "spans")), 3 * outers);
        CHECK_EQ(json_integer_value(json_object_get(sum, "dropped")), 0);
        json_t *outer = summary_row(sum, "outer"), *inner = summary_row(sum, "inner");
        CHECK(outer && inner);
        CHECK_EQ(json_integer_value(json_object_get(outer, "count")), outers);
        size_t sevens = (ITERATIONS + 6) / 7, fives = (ITERATIONS + 4) / 5;
        CHECK_EQ(json_integer_value(json_object_get(outer, "errors")), PROCESSES * THREADS * sevens);
        CHECK_EQ(json_integer_value(json_object_get(inner, "warnings")), PROCESSES * THREADS * fives);
        json_decref(sum);

        const char *runs_args[] = { "runs", NULL };
        json_t *runs = fixture_ferret_json(&f, runs_args);
        CHECK_EQ(json_array_size(runs), 1);
        CHECK_STR(json_string_value(json_object_get(json_array_get(runs, 0), "run")), "pipeline");
        CHECK_EQ(json_integer_value(json_object_get(json_array_get(runs, 0), "spans")), 3 * outers);
        json_decref(runs);
        fixture_cleanup(&f);
}

/* Forks a child whose spans belong to run @run; returns its pid (0 in it). */
static pid_t fork_in_run(const char *run)
{
        setenv("FERRET_RUN_ID", run, 1);
        pid_t child = fork();
        CHECK(child >= 0);
        return child;
}

/* In a child: waits until everything is stored, and exits with 0 only if
 * nothing was dropped. */
static void exit_when_all_stored(void)
{
        ferret_stats_t st;
        ferret_get_stats(&st);
        _exit(ferret_flush(30000) == 0 && st.dropped == 0 ? 0 : 1);
}

/* Starts @f's daemon and forks a child in run @run that reports two
 * numbers back through @counts (child_report(), then parent_counts()). */
static pid_t fork_reporting(struct daemon_fixture *f, const char *run, int counts[2])
{
        fixture_start(f);
        CHECK(pipe(counts) == 0);
        return fork_in_run(run);
}

static void child_report(int counts[2], int a, int b)
{
        int sent[2] = { a, b };
        if (write(counts[1], sent, sizeof(sent)) != sizeof(sent))
                _exit(4);
}

static void parent_counts(int counts[2], int ret[2])
{
        CHECK_EQ(read(counts[0], ret, 2 * sizeof(int)), 2 * sizeof(int));
}

/* Returning from main() with spans still buffered delivers them: no flush. */
TEST(exit_delivers_buffered_spans)
{
        struct daemon_fixture f;
        fixture_start(&f);
        pid_t child = fork_in_run("exit");
        if (child == 0) {
                for (int i = 0; i < 5000; i++)
                        FERRET_SCOPE(s, "buffered") {
                        }
                exit(0);
        }
        WAIT_OK(child);
        const char *args[] = { "query", "--run", "exit", NULL };
        json_t *sum = fixture_ferret_json(&f, args);
        CHECK_EQ(json_integer_value(json_object_get(summary_row(sum, "buffered"), "count")), 5000);
        json_decref(sum);
        fixture_cleanup(&f);
}

/* String tag values of every length the hot path treats apart (short ones
 * are measured while copied, longer ones take the general path, past 255
 * bytes they are cut), keys given as literals or at run time, and a span
 * whose tags outgrow its slot: entries that do not fit are dropped whole. */
static const size_t tag_lengths[] = { 0, 1, 15, 16, 17, 100, 255, 300 };
#define N_TAG_LENGTHS (sizeof(tag_lengths) / sizeof(tag_lengths[0]))

static void tag_value(char *buf, size_t len)
{
        for (size_t i = 0; i < len; i++)
                buf[i] = (char)('a' + i % 26);
        buf[len] = '\0';
}

TEST(tag_values_of_every_length)
{
        struct daemon_fixture f;
        fixture_start(&f);
        pid_t child = fork_in_run("tags");
        if (child == 0) {
                char value[301], key[16] = "runtime";
                for (size_t i = 0; i < N_TAG_LENGTHS; i++) {
                        tag_value(value, tag_lengths[i]);
                        FERRET_SCOPE(s, "length") {
                                ferret_span_tag_int(s, "n", (int64_t)tag_lengths[i]);
                                ferret_span_tag_str(s, "v", value);
                        }
                        FERRET_SCOPE(s, "length") {
                                ferret_span_tag_int(s, "n", (int64_t)tag_lengths[i]);
                                ferret_span_tag_str(s, key, value);
                        }
                }
                FERRET_SCOPE(s, "null") {
                        ferret_span_tag_str(s, "v", NULL);
                }
                /* Each entry takes 1 + 4 (key number) + 2 + 15 + 1 = 23
                 * bytes: 16 of them fit in a slot's 384 (416 less the room
                 * kept for ferret.omitted). */
                FERRET_SCOPE(s, "full") {
#define FILL(k) ferret_span_tag_str(s, k, "abcdefghijklmno")
                        FILL("k00"); FILL("k01"); FILL("k02"); FILL("k03"); FILL("k04");
                        FILL("k05"); FILL("k06"); FILL("k07"); FILL("k08"); FILL("k09");
                        FILL("k10"); FILL("k11"); FILL("k12"); FILL("k13"); FILL("k14");
                        FILL("k15"); FILL("k16"); FILL("k17"); FILL("k18"); FILL("k19");
#undef FILL
                        ferret_span_tag_int(s, "late", 1);
                }
                exit(0);
        }
        WAIT_OK(child);

        struct flat_tree t;
        flat_tree_load(&f, "tags", &t);
        CHECK_EQ(t.n, 2 * N_TAG_LENGTHS + 2);
        size_t lengths_seen = 0;
        for (size_t k = 0; k < t.n; k++) {
                json_t *s = t.spans[k].span;
                if (strcmp(span_name(s), "length") == 0) {
                        size_t len = (size_t)json_integer_value(span_tag(s, "n"));
                        char want[301];
                        tag_value(want, len < 255 ? len : 255);
                        json_t *v = span_tag(s, "v") ? span_tag(s, "v") : span_tag(s, "runtime");
                        CHECK_STR(json_string_value(v), want);
                        lengths_seen++;
                } else if (strcmp(span_name(s), "null") == 0)
                        CHECK_STR(json_string_value(span_tag(s, "v")), "");
                else {
                        CHECK_STR(span_name(s), "full");
                        for (int i = 0; i < 20; i++) {
                                char key[8];
                                snprintf(key, sizeof(key), "k%02d", i);
                                if (i < 16)
                                        CHECK_STR(json_string_value(span_tag(s, key)), "abcdefghijklmno");
                                else
                                        CHECK(span_tag(s, key) == NULL);
                        }
                        CHECK(span_tag(s, "late") == NULL);
                        CHECK_EQ(json_integer_value(span_tag(s, "ferret.omitted")), 5);
                }
        }
        CHECK_EQ(lengths_seen, 2 * N_TAG_LENGTHS);
        flat_tree_free(&t);
        fixture_cleanup(&f);
}

static void *trace_forever(void *unused)
{
        for (;;)
                FERRET_SCOPE(s, "busy") {
                        ferret_span_tag_int(s, "x", 1);
                }
        return NULL;
}

/* exit() while other threads still trace: the process ends normally, and
 * what was ended before exit is stored. */
TEST(exit_while_threads_trace)
{
        struct daemon_fixture f;
        fixture_start(&f);
        pid_t child = fork_in_run("busy-exit");
        if (child == 0) {
                alarm(30);
                pthread_t t[3];
                for (int i = 0; i < 3; i++)
                        pthread_create(&t[i], NULL, trace_forever, NULL);
                for (int i = 0; i < 1000; i++)
                        FERRET_SCOPE(s, "main_work") {
                        }
                exit(0);
        }
        WAIT_OK(child);
        const char *args[] = { "query", "--run", "busy-exit", NULL };
        json_t *sum = fixture_ferret_json(&f, args);
        CHECK_EQ(json_integer_value(json_object_get(summary_row(sum, "main_work"), "count")), 1000);
        json_decref(sum);
        fixture_cleanup(&f);
}

/* Threads that exit with spans open neither crash nor lose the others;
 * thousands of short-lived threads all deliver their spans. */
static void *short_lived(void *unused)
{
        for (int i = 0; i < 10; i++)
                FERRET_SCOPE(s, "short") {
                }
        ferret_span_begin("left_open");     /* never ended */
        return NULL;
}

TEST(short_lived_threads)
{
        struct daemon_fixture f;
        fixture_start(&f);
        pid_t child = fork_in_run("threads");
        if (child == 0) {
                for (int i = 0; i < 10000; i++) {
                        pthread_t t;
                        if (pthread_create(&t, NULL, short_lived, NULL) != 0)
                                _exit(2);
                        pthread_join(t, NULL);
                }
                exit_when_all_stored();
        }
        WAIT_OK(child);
        const char *args[] = { "query", "--run", "threads", NULL };
        json_t *sum = fixture_ferret_json(&f, args);
        CHECK_EQ(json_integer_value(json_object_get(summary_row(sum, "short"), "count")), 100000);
        /* Left open: recorded when its thread exited, with a warning. */
        CHECK_EQ(json_integer_value(json_object_get(summary_row(sum, "left_open"), "count")), 10000);
        CHECK_EQ(json_integer_value(json_object_get(summary_row(sum, "left_open"), "warnings")), 10000);
        json_decref(sum);
        fixture_cleanup(&f);
}

/* Ends @p's span on a thread of its own, as a program that hands work over. */
static void *end_elsewhere(void *p)
{
        ferret_span_end(p);
        return NULL;
}

#define HANDOFFS 1000   /* many times the slots a thread has */

/* Spans ended out of order, and on another thread than the one that began
 * them: each is stored once under the right parent, the spans begun after
 * them are children of the right span, and no slot is lost on the way (a
 * thread has far fewer slots than the spans here). */
TEST(spans_end_out_of_order_and_elsewhere)
{
        struct daemon_fixture f;
        fixture_start(&f);
        pid_t child = fork_in_run("handoff");
        if (child == 0) {
                for (int i = 0; i < HANDOFFS; i++) {
                        ferret_span_t *a = ferret_span_begin_literal("ooo_a");
                        ferret_span_t *b = ferret_span_begin_literal("ooo_b");
                        ferret_span_end(a);     /* b is still open: its children are b's */
                        ferret_span_end(ferret_span_begin_literal("ooo_c"));
                        ferret_span_end(b);

                        ferret_span_t *holder = ferret_span_begin("holder");
                        ferret_span_t *handed = ferret_span_begin_literal("handed");
                        pthread_t t;
                        if (pthread_create(&t, NULL, end_elsewhere, handed) != 0)
                                _exit(2);
                        pthread_join(t, NULL);
                        ferret_span_end(ferret_span_begin_literal("after"));
                        ferret_span_end(holder);
                }
                exit_when_all_stored();
        }
        WAIT_OK(child);

        struct flat_tree t;
        flat_tree_load(&f, "handoff", &t);
        static const struct {
                const char *name, *parent;
        } expect[] = {
                { "ooo_a", NULL }, { "ooo_b", "ooo_a" }, { "ooo_c", "ooo_b" },
                { "holder", NULL }, { "handed", "holder" }, { "after", "holder" },
        };
        for (size_t e = 0; e < sizeof(expect) / sizeof(expect[0]); e++) {
                size_t n = 0;
                for (size_t i = 0; i < t.n; i++) {
                        if (strcmp(span_name(t.spans[i].span), expect[e].name) != 0)
                                continue;
                        n++;
                        json_t *parent = t.spans[i].parent;
                        if (expect[e].parent)
                                CHECK_STR(parent ? span_name(parent) : "(root)", expect[e].parent);
                        else
                                CHECK(parent == NULL);
                }
                CHECK_EQ(n, HANDOFFS);
        }
        CHECK_EQ(t.n, 6 * HANDOFFS);
        flat_tree_free(&t);
        fixture_cleanup(&f);
}

#define BURST 300000

/* Emits BURST spans as fast as possible from one thread, then flushes. */
static void burst_process(const char *run, const char *buffer, const char *on_full)
{
        pid_t child = fork();
        CHECK(child >= 0);
        if (child == 0) {
                alarm(60);
                setenv("FERRET_RUN_ID", run, 1);
                setenv("FERRET_BUFFER_SIZE", buffer, 1);
                if (on_full)
                        setenv("FERRET_ON_FULL", on_full, 1);
                for (int i = 0; i < BURST; i++)
                        FERRET_SCOPE(s, "burst") {
                                ferret_span_tag_int(s, "i", i);
                        }
                int r = ferret_flush(30000);
                _exit(r == 0 || r == -ENODATA ? 0 : 1);
        }
        WAIT_OK(child);
}

/* A small buffer overflows: what is not stored is counted as dropped, and
 * the two add up to what was emitted. With FERRET_ON_FULL=block nothing is
 * dropped at all. */
TEST(drops_add_up)
{
        struct daemon_fixture f;
        fixture_start(&f);
        burst_process("dropping", "64k", NULL);
        json_t *sum = run_summary(&f, "dropping");
        long long stored = json_integer_value(json_object_get(sum, "spans"));
        long long dropped = json_integer_value(json_object_get(sum, "dropped"));
        printf("stored %lld, dropped %lld of %d\n", stored, dropped, BURST);
        CHECK_CMP(dropped, >, 0);
        CHECK_EQ(stored + dropped, BURST);
        CHECK_EQ(json_integer_value(json_object_get(summary_row(sum, "burst"), "count")), stored);
        json_decref(sum);

        const char *status_args[] = { "status", NULL };
        json_t *st = fixture_ferret_json(&f, status_args);
        CHECK_EQ(json_integer_value(json_object_get(st, "dropped_by_clients")), dropped);
        json_decref(st);

        burst_process("blocking", "64k", "block:10000");
        sum = run_summary(&f, "blocking");
        CHECK_EQ(json_integer_value(json_object_get(sum, "spans")), BURST);
        CHECK_EQ(json_integer_value(json_object_get(sum, "dropped")), 0);
        json_decref(sum);
        fixture_cleanup(&f);
}

static void nest_process(const char *run, int depth)
{
        pid_t child = fork();
        CHECK(child >= 0);
        if (child == 0) {
                alarm(60);
                setenv("FERRET_RUN_ID", run, 1);
                setenv("FERRET_ON_FULL", "block:10000", 1);
                ferret_span_t **open = malloc((size_t)depth * sizeof(*open));
                for (int i = 0; i < depth; i++)
                        open[i] = ferret_span_begin("nest");
                for (int i = depth; i-- > 0;)
                        ferret_span_end(open[i]);
                int r = ferret_flush(30000);
                _exit(r == 0 || r == -ENODATA ? 0 : 1);
        }
        WAIT_OK(child);
}

/* A thread may nest 100,000 spans (131,072): all are stored. Deeper ones
 * are dropped, counted, and the run's notes say why. */
TEST(deep_nesting_is_stored)
{
        struct daemon_fixture f;
        fixture_start(&f);
        nest_process("nest", 100000);
        json_t *sum = run_summary(&f, "nest");
        CHECK_EQ(json_integer_value(json_object_get(sum, "spans")), 100000);
        CHECK_EQ(json_integer_value(json_object_get(sum, "dropped")), 0);
        CHECK_EQ(json_array_size(json_object_get(sum, "notes")), 0);
        json_decref(sum);

        nest_process("too-deep", 131072 + 1000);
        sum = run_summary(&f, "too-deep");
        CHECK_EQ(json_integer_value(json_object_get(sum, "spans")), 131072);
        CHECK_EQ(json_integer_value(json_object_get(sum, "dropped")), 1000);
        json_t *note = json_array_get(json_object_get(sum, "notes"), 0);
        CHECK(note && strstr(json_string_value(note), "nested more than 131072 deep"));
        json_decref(sum);
        fixture_cleanup(&f);
}

/* Limits never split a character: a 300-byte name of two-byte characters
 * keeps 127 of them (254 bytes); NaN and infinite tags reach the JSON. */
TEST(limits_keep_characters_whole)
{
        char long_name[301], want[255];
        for (int i = 0; i < 150; i++)
                memcpy(long_name + 2 * i, "\xc3\xa9", 2);     /* é */
        long_name[300] = '\0';
        memcpy(want, long_name, 254);
        want[254] = '\0';
        struct daemon_fixture f;
        fixture_start(&f);
        pid_t child = fork();
        CHECK(child >= 0);
        if (child == 0) {
                alarm(60);
                setenv("FERRET_RUN_ID", "text", 1);
                ferret_span_end(ferret_span_begin(long_name));
                ferret_span_t *s = ferret_span_begin("tags");
                ferret_span_tag_str(s, "value", long_name);
                ferret_span_tag_double(s, "nan", NAN);
                ferret_span_tag_double(s, "inf", INFINITY);
                ferret_span_end(s);
                _exit(ferret_flush(10000) == 0 ? 0 : 1);
        }
        WAIT_OK(child);
        struct flat_tree t;
        flat_tree_load(&f, "text", &t);
        CHECK_EQ(t.n, 2);
        CHECK_EQ(flat_tree_count(&t, want), 1);
        json_t *span = t.spans[strcmp(span_name(t.spans[0].span), "tags") == 0 ? 0 : 1].span;
        json_t *value = span_tag(span, "value"), *nan = span_tag(span, "nan"), *inf = span_tag(span, "inf");
        CHECK(value && nan && inf);
        CHECK_EQ(strcmp(json_string_value(value), want), 0);
        CHECK_EQ(strcmp(json_string_value(nan), "NaN"), 0);
        CHECK_EQ(strcmp(json_string_value(inf), "Infinity"), 0);
        flat_tree_free(&t);
        fixture_cleanup(&f);
}

/* Tags past a span's room are counted, not lost unseen: 40 tags, 10 more
 * through the interned-key path, and a message on one span keep what fits,
 * and ferret.omitted counts the rest, so that the two add up. */
TEST(tags_past_the_room_are_counted)
{
        struct daemon_fixture f;
        fixture_start(&f);
        pid_t child = fork();
        CHECK(child >= 0);
        if (child == 0) {
                alarm(60);
                setenv("FERRET_RUN_ID", "many-tags", 1);
                static ferret_name_t named[10];
                ferret_span_t *s = ferret_span_begin("crowded");
                char key[16];
                for (int i = 0; i < 40; i++) {
                        snprintf(key, sizeof(key), "k%02d", i);
                        ferret_span_tag_str(s, key, "twenty bytes of text");
                }
                for (int i = 0; i < 10; i++) {
                        snprintf(key, sizeof(key), "n%d", i);
                        ferret_span_tag_int_named(s, &named[i], key, i);
                }
                ferret_span_set_status(s, FERRET_STATUS_ERROR, "and a message");
                ferret_span_end(s);
                _exit(ferret_flush(10000) == 0 ? 0 : 1);
        }
        WAIT_OK(child);
        struct flat_tree t;
        flat_tree_load(&f, "many-tags", &t);
        CHECK_EQ(t.n, 1);
        json_t *span = t.spans[0].span, *tags = json_object_get(span, "tags");
        json_t *omitted = json_object_get(tags, "ferret.omitted");
        CHECK(json_is_integer(omitted));
        CHECK(json_integer_value(omitted) > 0);
        CHECK(json_object_get(tags, "k00") != NULL);
        long long kept = (long long)json_object_size(tags) - 1 + (json_object_get(span, "message") != NULL);
        CHECK_EQ(kept + json_integer_value(omitted), 51);
        flat_tree_free(&t);
        fixture_cleanup(&f);
}

/* A span whose end is dropped (its children filled the buffer): the
 * children that were stored hang under its parent, not at the root. */
TEST(children_of_a_dropped_span_hang_under_its_parent)
{
        struct daemon_fixture f;
        fixture_start(&f);
        pid_t child = fork();
        CHECK(child >= 0);
        if (child == 0) {
                alarm(60);
                setenv("FERRET_RUN_ID", "orphans", 1);
                setenv("FERRET_BUFFER_SIZE", "64k", 1);
                ferret_span_t *grand = ferret_span_begin("grand");
                ferret_span_t *parent = ferret_span_begin("parent");
                for (int i = 0; i < 100000; i++)
                        ferret_span_end(ferret_span_begin("child"));
                ferret_span_end(parent);      /* the buffer is full: dropped */
                ferret_flush(10000);
                /* The first of these are dropped too, until the thread looks
                 * at its buffer again (see ring_full_drop()). */
                for (int i = 0; i < 1000; i++)
                        ferret_span_end(ferret_span_begin("pad"));
                ferret_span_end(grand);
                int r = ferret_flush(10000);
                _exit(r == 0 || r == -ENODATA ? 0 : 1);
        }
        WAIT_OK(child);
        struct flat_tree t;
        flat_tree_load(&f, "orphans", &t);
        size_t parents = flat_tree_count(&t, "parent"), children = flat_tree_count(&t, "child");
        printf("%zu children stored, parent %s\n", children, parents ? "stored" : "dropped");
        CHECK_CMP(children, >, 0);
        CHECK_EQ(flat_tree_count(&t, "grand"), 1);
        for (size_t i = 0; i < t.n; i++)
                if (strcmp(span_name(t.spans[i].span), "child") == 0) {
                        CHECK(t.spans[i].parent != NULL);
                        CHECK_EQ(strcmp(span_name(t.spans[i].parent), parents ? "parent" : "grand"), 0);
                }
        flat_tree_free(&t);
        fixture_cleanup(&f);
}

static volatile sig_atomic_t fired, stopped;

static void on_alarm(int sig)
{
        /* ThreadSanitizer runs a caught signal's handler later, at the next
         * call it intercepts: a signal that came before timer_delete() may
         * be handled after `fired` was read, inside ferret_flush(). */
        if (stopped)
                return;
        fired++;
        FERRET_SCOPE(s, "in_handler") {
                ferret_span_tag_int(s, "n", fired);
        }
        ferret_span_end(ferret_span_begin("dynamic_in_handler"));
}

/* A signal handler that traces, interrupting the program in the middle of
 * its own spans: no deadlock, no corruption; the program's spans are all
 * stored, and each of the handler's is stored or counted as dropped. */
TEST(signal_handler_traces)
{
        struct daemon_fixture f;
        int counts[2];
        fixture_start(&f);
        CHECK(pipe(counts) == 0);
        pid_t child = fork();
        CHECK(child >= 0);
        if (child == 0) {
                alarm(60);
                setenv("FERRET_RUN_ID", "signals", 1);
                setenv("FERRET_ON_FULL", "block:10000", 1);
                /* As ferret.h asks: the client starts here, not in the
                 * first handler (which could interrupt malloc). */
                CHECK(ferret_enabled());
                struct sigaction sa = { .sa_handler = on_alarm, .sa_flags = SA_RESTART };
                sigaction(SIGPROF, &sa, NULL);
                timer_t timer;
                struct sigevent ev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGPROF };
                struct itimerspec every = { { 0, 50000 }, { 0, 50000 } };
                if (timer_create(CLOCK_MONOTONIC, &ev, &timer) < 0 || timer_settime(timer, 0, &every, NULL) < 0)
                        _exit(3);
                for (int i = 0; i < BURST; i++) {
                        ferret_span_t *outer = ferret_span_beginf("outer %d", i % 4);
                        FERRET_SCOPE(inner, "inner") {
                                ferret_span_tag_str(inner, "k", "v");
                        }
                        ferret_span_end(outer);
                }
                timer_delete(timer);
                stopped = 1;
                int n = fired;
                int r = ferret_flush(30000);
                if (write(counts[1], &n, sizeof(n)) != sizeof(n))
                        _exit(4);
                if (r != 0 && r != -ENODATA)
                        fprintf(stderr, "flush: %s\n", ferret_strerror(r));
                _exit(r == 0 || r == -ENODATA ? 0 : 1);
        }
        WAIT_OK(child);
        int signals = 0;
        CHECK_EQ(read(counts[0], &signals, sizeof(signals)), sizeof(signals));
        printf("%d signals\n", signals);
        CHECK_CMP(signals, >, 10);

        json_t *sum = run_summary(&f, "signals");
        CHECK_EQ(json_integer_value(json_object_get(summary_row(sum, "inner"), "count")), BURST);
        long long outers = 0;
        for (int k = 0; k < 4; k++) {
                char name[16];
                snprintf(name, sizeof(name), "outer %d", k);
                outers += json_integer_value(json_object_get(summary_row(sum, name), "count"));
        }
        CHECK_EQ(outers, BURST);
        json_t *handler = summary_row(sum, "in_handler"), *dyn = summary_row(sum, "dynamic_in_handler");
        long long in_handler = handler ? json_integer_value(json_object_get(handler, "count")) : 0;
        long long dynamic = dyn ? json_integer_value(json_object_get(dyn, "count")) : 0;
        CHECK_EQ(json_integer_value(json_object_get(sum, "spans")), 2 * BURST + in_handler + dynamic);
        CHECK_EQ(in_handler + dynamic + json_integer_value(json_object_get(sum, "dropped")), 2 * signals);
        json_decref(sum);
        fixture_cleanup(&f);
}

/* on_alarm() for a process whose threads all take the signal in turn:
 * the count and the stop flag are atomic (lock-free, so signal-safe). */
static atomic_int random_fired;
static atomic_bool random_stopped;

static void on_random_alarm(int sig)
{
        (void)sig;
        if (atomic_load(&random_stopped))
                return;
        atomic_fetch_add(&random_fired, 1);
        FERRET_SCOPE(s, "in_handler") {
        }
        ferret_span_end(ferret_span_begin("dynamic_in_handler"));
}

/* A thread ending spans of others, handed over one at a time. */
struct ender {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        ferret_span_t *span;          /* to end; NULL once ended */
        bool stop;
};

static void *ender_main(void *p)
{
        struct ender *e = p;
        pthread_mutex_lock(&e->lock);
        for (;;) {
                while (!e->span && !e->stop)
                        pthread_cond_wait(&e->cond, &e->lock);
                if (e->span) {
                        ferret_span_end(e->span);
                        e->span = NULL;
                        pthread_cond_broadcast(&e->cond);
                } else
                        break;
        }
        pthread_mutex_unlock(&e->lock);
        return NULL;
}

/* Ends @s on the ender's thread and waits until it has. */
static void end_on_ender(struct ender *e, ferret_span_t *s)
{
        if (!s)
                return;   /* a span that was dropped: nothing to end */
        pthread_mutex_lock(&e->lock);
        while (e->span)                 /* another thread's turn first */
                pthread_cond_wait(&e->cond, &e->lock);
        e->span = s;
        pthread_cond_broadcast(&e->cond);
        while (e->span == s)
                pthread_cond_wait(&e->cond, &e->lock);
        pthread_mutex_unlock(&e->lock);
}

#define RANDOM_THREADS 4
#define RANDOM_STEPS 20000
#define RANDOM_OPEN_MAX 40

struct random_worker {
        int thread;
        struct ender *ender;
        int begun;
};

static unsigned next_random(unsigned *state)
{
        *state = *state * 1103515245u + 12345u;
        return *state >> 16;
}

/* Begins and ends spans in a random order: nested, out of order, on the
 * ender's thread. Each span carries its number and the number of the span
 * that should be its parent: the latest begun on this thread that is still
 * open (the thread's chain, past the spans ended out of turn). */
static void *random_worker_main(void *p)
{
        struct random_worker *w = p;
        struct {
                ferret_span_t *span;
                int id;
        } open[RANDOM_OPEN_MAX];
        int n = 0;
        unsigned rng = 7919u * (unsigned)(w->thread + 1);
        for (int step = 0; step < RANDOM_STEPS || n > 0; step++) {
                unsigned r = next_random(&rng) % 100;
                if (step < RANDOM_STEPS && n < RANDOM_OPEN_MAX && (r < 45 || n == 0)) {
                        int id = w->thread * 1000000 + step;
                        ferret_span_t *s = ferret_span_begin_literal("random");
                        ferret_span_tag_int(s, "id", id);
                        ferret_span_tag_int(s, "parent", n ? open[n - 1].id : -1);
                        open[n].span = s;
                        open[n].id = id;
                        n++;
                        w->begun++;
                        continue;
                }
                /* End the newest, one in the middle, or hand one over. */
                int k = r < 75 || step >= RANDOM_STEPS ? n - 1 : (int)(next_random(&rng) % (unsigned)n);
                if (r >= 90 && step < RANDOM_STEPS)
                        end_on_ender(w->ender, open[k].span);
                else
                        ferret_span_end(open[k].span);
                memmove(&open[k], &open[k + 1], (size_t)(n - k - 1) * sizeof(open[0]));
                n--;
        }
        return NULL;
}

/* Threads that begin and end spans in random orders, hand some to another
 * thread to end, and are interrupted by a signal handler that traces too:
 * every span is stored under the parent the rules give, and the handler's
 * spans are stored or counted as dropped. */
TEST(random_orders_keep_their_parents)
{
        struct daemon_fixture f;
        int counts[2];
        pid_t child = fork_reporting(&f, "random", counts);
        if (child == 0) {
                alarm(120);
                setenv("FERRET_ON_FULL", "block:10000", 1);
                CHECK(ferret_enabled());
                struct sigaction sa = { .sa_handler = on_random_alarm, .sa_flags = SA_RESTART };
                sigaction(SIGPROF, &sa, NULL);
                timer_t timer;
                struct sigevent ev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGPROF };
                struct itimerspec every = { { 0, 50000 }, { 0, 50000 } };
                if (timer_create(CLOCK_MONOTONIC, &ev, &timer) < 0 || timer_settime(timer, 0, &every, NULL) < 0)
                        _exit(3);
                struct ender e = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
                pthread_t ender_thread, threads[RANDOM_THREADS];
                struct random_worker workers[RANDOM_THREADS];
                pthread_create(&ender_thread, NULL, ender_main, &e);
                for (int t = 0; t < RANDOM_THREADS; t++) {
                        workers[t] = (struct random_worker){ .thread = t, .ender = &e };
                        pthread_create(&threads[t], NULL, random_worker_main, &workers[t]);
                }
                int begun = 0;
                for (int t = 0; t < RANDOM_THREADS; t++) {
                        pthread_join(threads[t], NULL);
                        begun += workers[t].begun;
                }
                timer_delete(timer);
                atomic_store(&random_stopped, true);
                pthread_mutex_lock(&e.lock);
                e.stop = true;
                pthread_cond_broadcast(&e.cond);
                pthread_mutex_unlock(&e.lock);
                pthread_join(ender_thread, NULL);
                int r = ferret_flush(30000);
                child_report(counts, begun, atomic_load(&random_fired));
                _exit(r == 0 || r == -ENODATA ? 0 : 1);
        }
        WAIT_OK(child);
        int got[2];
        parent_counts(counts, got);
        printf("%d spans begun, %d signals\n", got[0], got[1]);

        struct flat_tree t;
        flat_tree_load(&f, "random", &t);
        size_t random = 0;
        for (size_t i = 0; i < t.n; i++) {
                json_t *s = t.spans[i].span, *parent = t.spans[i].parent;
                if (strcmp(span_name(s), "random") != 0)
                        continue;
                random++;
                long long want = json_integer_value(span_tag(s, "parent"));
                /* A handler's span may sit between a span and its parent
                 * only if the handler began a span and never ended it,
                 * which on_random_alarm() does not do. */
                if (want < 0)
                        CHECK(parent == NULL);
                else {
                        CHECK(parent != NULL);
                        CHECK_STR(span_name(parent), "random");
                        CHECK_EQ(json_integer_value(span_tag(parent, "id")), want);
                }
        }
        /* Every span stored: none dropped for want of a slot, though a
         * thread ends many of them out of turn. */
        CHECK_EQ(random, got[0]);
        json_t *sum = run_summary(&f, "random");
        json_t *handler = summary_row(sum, "in_handler"), *dyn = summary_row(sum, "dynamic_in_handler");
        long long in_handler = handler ? json_integer_value(json_object_get(handler, "count")) : 0;
        long long dynamic = dyn ? json_integer_value(json_object_get(dyn, "count")) : 0;
        CHECK_EQ(json_integer_value(json_object_get(sum, "spans")), (long long)random + in_handler + dynamic);
        CHECK_EQ(in_handler + dynamic + json_integer_value(json_object_get(sum, "dropped")), 2 * got[1]);
        json_decref(sum);
        flat_tree_free(&t);
        fixture_cleanup(&f);
}

#define LEAVERS 200
#define LEAVER_STEPS 30

/* What a leaving thread leaves behind: spans for main() to end after it
 * has exited, and its counts. */
struct leaver {
        int thread;
        ferret_span_t *later[LEAVER_STEPS];
        int n_later, begun, ended;
};

/* Begins spans and ends some, out of order too; leaves others to main(),
 * and exits with the rest open. */
static void *leaver_main(void *p)
{
        struct leaver *l = p;
        ferret_span_t *open[LEAVER_STEPS];
        int n = 0;
        unsigned rng = 31u * (unsigned)(l->thread + 1);
        for (int i = 0; i < LEAVER_STEPS; i++) {
                unsigned r = next_random(&rng) % 100;
                if (n == 0 || r < 50) {
                        open[n++] = ferret_span_begin_literal("left");
                        l->begun++;
                        continue;
                }
                int k = (int)(next_random(&rng) % (unsigned)n);
                if (r < 70) {
                        ferret_span_end(open[k]);
                        l->ended++;
                } else
                        l->later[l->n_later++] = open[k];
                memmove(&open[k], &open[k + 1], (size_t)(n - k - 1) * sizeof(open[0]));
                n--;
        }
        return NULL;
}

/* Threads exit with spans open, some ended out of order before, some held
 * by main() and ended after the thread is gone: each span is stored once,
 * those open at the exit as unfinished, with a warning, and ending them
 * afterwards records nothing more. */
TEST(spans_outlive_their_threads)
{
        struct daemon_fixture f;
        int counts[2];
        pid_t child = fork_reporting(&f, "leavers", counts);
        if (child == 0) {
                static struct leaver leavers[LEAVERS];
                pthread_t threads[LEAVERS];
                int begun = 0, ended = 0;
                for (int t = 0; t < LEAVERS; t++) {
                        leavers[t].thread = t;
                        if (pthread_create(&threads[t], NULL, leaver_main, &leavers[t]) != 0)
                                _exit(2);
                }
                for (int t = 0; t < LEAVERS; t++) {
                        pthread_join(threads[t], NULL);
                        begun += leavers[t].begun;
                        ended += leavers[t].ended;
                }
                for (int t = 0; t < LEAVERS; t++)
                        for (int k = 0; k < leavers[t].n_later; k++)
                                ferret_span_end(leavers[t].later[k]);
                child_report(counts, begun, ended);
                exit_when_all_stored();
        }
        WAIT_OK(child);
        int got[2];
        parent_counts(counts, got);
        printf("%d spans begun, %d ended by their threads\n", got[0], got[1]);
        json_t *sum = run_summary(&f, "leavers");
        json_t *row = summary_row(sum, "left");
        CHECK(row != NULL);
        CHECK_EQ(json_integer_value(json_object_get(row, "count")), got[0]);
        CHECK_EQ(json_integer_value(json_object_get(row, "warnings")), got[0] - got[1]);
        CHECK_EQ(json_integer_value(json_object_get(sum, "spans")), got[0]);
        json_decref(sum);
        fixture_cleanup(&f);
}


static void run_without_daemon(const char *runtime_dir)
{
        pid_t child = fork();
        CHECK(child >= 0);
        if (child == 0) {
                setenv("FERRET_RUNTIME_DIR", runtime_dir, 1);
                /* A watchdog: a blocked client would be killed here and the
                 * test would see the signal. */
                alarm(20);
                for (int i = 0; i < 200000; i++)
                        FERRET_SCOPE(s, "unseen") {
                                ferret_span_tag_int(s, "i", i);
                        }
                int r = ferret_flush(10000);
                _exit(r == -ECONNREFUSED ? 0 : 3);
        }
        WAIT_OK(child);
}

/* Puts in @dir the ingest socket a dead daemon leaves: the file stays,
 * nobody listens. Its path goes to @path. */
static void leave_dead_socket(const char *dir, char *path, size_t size)
{
        snprintf(path, size, "%s/ingest.sock", dir);
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
        close(fd);
}

/* No daemon, or a socket left by a dead one: spans are dropped, the program
 * neither blocks nor crashes, and flush says why. */
TEST(no_daemon)
{
        char dir[] = "/tmp/ferret-test-nodaemon-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        run_without_daemon(dir);

        char path[128];
        leave_dead_socket(dir, path, sizeof(path));
        run_without_daemon(dir);
        unlink(path);
        rmdir(dir);
}

/* With FERRET_DISABLE=absent, a child whose runtime directory is @dir: off
 * when @expect_on is false (every begin returns NULL, flush says tracing is
 * off), else on, its spans stored as run @run. */
static void run_if_absent(const char *dir, bool expect_on, const char *run)
{
        pid_t child = fork();
        CHECK(child >= 0);
        if (child == 0) {
                setenv("FERRET_RUNTIME_DIR", dir, 1);
                setenv("FERRET_DISABLE", "absent", 1);
                setenv("FERRET_RUN_ID", run, 1);
                alarm(20);
                if (ferret_enabled() != expect_on)
                        _exit(3);
                int recorded = 0;
                for (int i = 0; i < 1000; i++)
                        FERRET_SCOPE(s, "if_absent") {
                                recorded += s != NULL;
                        }
                int r = ferret_flush(10000);
                if (!expect_on)
                        _exit(recorded == 0 && r == -ECANCELED ? 0 : 4);
                _exit(recorded == 1000 && r == 0 ? 0 : 5);
        }
        WAIT_OK(child);
}

/* FERRET_DISABLE=absent turns tracing off when no daemon listens (nothing
 * there, or a socket a dead daemon left), and leaves it on when one does. */
TEST(disabled_when_absent)
{
        char dir[] = "/tmp/ferret-test-absent-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        run_if_absent(dir, false, "absent");

        char path[128];
        leave_dead_socket(dir, path, sizeof(path));
        run_if_absent(dir, false, "absent");
        unlink(path);
        rmdir(dir);

        struct daemon_fixture f;
        fixture_start(&f);
        run_if_absent(f.runtime_dir, true, "present");
        json_t *sum = run_summary(&f, "present");
        CHECK_EQ(json_integer_value(json_object_get(summary_row(sum, "if_absent"), "count")), 1000);
        json_decref(sum);
        fixture_cleanup(&f);
}

/* The daemon dies (SIGKILL) under a tracing program: the program goes on. */
TEST(daemon_killed_under_client)
{
        struct daemon_fixture f;
        fixture_start(&f);
        int ready[2], go[2];
        CHECK(pipe(ready) == 0 && pipe(go) == 0);
        pid_t child = fork();
        CHECK(child >= 0);
        if (child == 0) {
                alarm(30);
                for (int i = 0; i < 1000; i++)
                        FERRET_SCOPE(s, "before") {
                        }
                if (ferret_flush(10000) != 0)
                        _exit(1);
                char c = 1;
                if (write(ready[1], &c, 1) != 1)
                        _exit(1);
                /* The parent kills the daemon; keep tracing regardless. */
                if (read(go[0], &c, 1) != 1)
                        _exit(1);
                for (int i = 0; i < 100000; i++)
                        FERRET_SCOPE(s, "after") {
                        }
                int r = ferret_flush(5000);
                _exit(r == -ECONNREFUSED || r == -ETIMEDOUT ? 0 : 2);
        }
        char c;
        CHECK_EQ(read(ready[0], &c, 1), 1);
        kill(f.pid, SIGKILL);
        waitpid(f.pid, NULL, 0);
        fixture_forget(&f);
        CHECK_EQ(write(go[1], &c, 1), 1);
        WAIT_OK(child);

        /* After SIGKILL the database opens cleanly and holds what was flushed. */
        fixture_restart(&f);
        const char *args[] = { "query", NULL };
        json_t *sum = fixture_ferret_json(&f, args);
        CHECK_EQ(json_integer_value(json_object_get(summary_row(sum, "before"), "count")), 1000);
        json_decref(sum);
        fixture_cleanup(&f);
}
