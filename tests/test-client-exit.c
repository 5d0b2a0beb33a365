/* SPDX-License-Identifier: MIT */
/*
 * Spans when threads and processes end, against a real ferretd: a process
 * that returns from main() with spans still buffered, or calls exit() while
 * other threads trace; ten thousand threads that live a moment each; and
 * threads that exit with spans open, some of them ended later by another
 * thread. A program rarely flushes before it ends, so the client must
 * deliver what was ended, record what was left open (as unfinished, with
 * a warning), and never crash on a span whose thread is gone.
 */
#include <ferret.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "harness.h"
#include "seeded-random.h"
#include "spans.h"
#include "traced-child.h"

/* Returning from main() with spans still buffered delivers them: no flush. */
TEST(exit_delivers_buffered_spans)
{
        struct daemon_fixture f;
        fixture_start(&f);
        pid_t child = fork_in_run("exit", 0);
        if (child == 0) {
                for (int i = 0; i < 5000; i++)
                        FERRET_SCOPE(s, "buffered") {
                        }
                exit(0);
        }
        WAIT_OK(child);
        json_t *sum = run_summary(&f, "exit");
        CHECK_EQ(summary_number(sum, "buffered", "count"), 5000);
        json_decref(sum);
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
        pid_t child = fork_in_run("busy-exit", 30);
        if (child == 0) {
                pthread_t t[3];
                for (int i = 0; i < 3; i++)
                        pthread_create(&t[i], NULL, trace_forever, NULL);
                for (int i = 0; i < 1000; i++)
                        FERRET_SCOPE(s, "main_work") {
                        }
                exit(0);
        }
        WAIT_OK(child);
        json_t *sum = run_summary(&f, "busy-exit");
        CHECK_EQ(summary_number(sum, "main_work", "count"), 1000);
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
        pid_t child = fork_in_run("threads", 0);
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
        json_t *sum = run_summary(&f, "threads");
        CHECK_EQ(summary_number(sum, "short", "count"), 100000);
        /* Left open: recorded when its thread exited, with a warning. */
        CHECK_EQ(summary_number(sum, "left_open", "count"), 10000);
        CHECK_EQ(summary_number(sum, "left_open", "warnings"), 10000);
        json_decref(sum);
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
        struct child_report report;
        fixture_start(&f);
        pid_t child = fork_reporting("leavers", 0, &report);
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
                child_report_send(&report, begun, ended);
                exit_when_all_stored();
        }
        WAIT_OK(child);
        int got[2];
        child_report_receive(&report, got);
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

/* A span one thread ends just as its own thread exits: the exit records it
 * as unfinished, or the other thread records it ended, never both. The two
 * threads are let go together, round after round, so that the end and the
 * exit overlap. */
#define RACE_ROUNDS 3000

struct exit_race {
        pthread_barrier_t go;
        ferret_span_t *_Atomic span;
};

static void *race_owner(void *arg)
{
        struct exit_race *r = arg;
        atomic_store(&r->span, ferret_span_begin("raced"));
        pthread_barrier_wait(&r->go);
        return NULL;    /* the thread exits with the span open */
}

static void *race_ender(void *arg)
{
        struct exit_race *r = arg;
        pthread_barrier_wait(&r->go);
        ferret_span_end(atomic_load(&r->span));
        return NULL;
}

TEST(a_span_ended_as_its_thread_exits_is_stored_once)
{
        struct daemon_fixture f;
        fixture_start(&f);
        pid_t child = fork_in_run("exit-race", 120);
        if (child == 0) {
                for (int i = 0; i < RACE_ROUNDS; i++) {
                        struct exit_race r = { .span = NULL };
                        pthread_barrier_init(&r.go, NULL, 2);
                        pthread_t owner, ender;
                        if (pthread_create(&ender, NULL, race_ender, &r) != 0 ||
                            pthread_create(&owner, NULL, race_owner, &r) != 0)
                                _exit(2);
                        pthread_join(owner, NULL);
                        pthread_join(ender, NULL);
                        pthread_barrier_destroy(&r.go);
                }
                exit_when_all_stored();
        }
        WAIT_OK(child);
        json_t *sum = run_summary(&f, "exit-race");
        CHECK_EQ(summary_number(sum, "raced", "count"), RACE_ROUNDS);
        json_decref(sum);
        fixture_cleanup(&f);
}
