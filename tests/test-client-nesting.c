/* SPDX-License-Identifier: MIT */
/*
 * Spans under the right parent, against a real ferretd: nested spans with
 * tags and statuses from many processes and threads at once, spans ended
 * out of order or on another thread than the one that began them, and a
 * thread nesting far deeper than any program should. A span's parent is
 * decided in the client, on the thread, from what is open there; these
 * tests check the tree the daemon stores, span by span.
 */
#include <ferret.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "harness.h"
#include "spans.h"
#include "traced-child.h"

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

        pid_t pids[PROCESSES];
        for (int p = 0; p < PROCESSES; p++) {
                pids[p] = fork_in_run("pipeline", 0);
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
        json_t *sum = run_summary(&f, "pipeline");
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
        pid_t child = fork_in_run("handoff", 0);
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

/* Nests @depth spans on one thread, in run @run, and ends them all. */
static void nest_process(const char *run, int depth)
{
        pid_t child = fork_in_run(run, 60);
        if (child == 0) {
                setenv("FERRET_ON_FULL", "block:10000", 1);
                ferret_span_t **open = malloc((size_t)depth * sizeof(*open));
                for (int i = 0; i < depth; i++)
                        open[i] = ferret_span_begin("nest");
                for (int i = depth; i-- > 0;)
                        ferret_span_end(open[i]);
                exit_when_flushed();
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
