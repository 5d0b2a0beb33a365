/* SPDX-License-Identifier: MIT */
/*
 * A signal handler that traces, against a real ferretd: a profiling timer
 * interrupts a program in the middle of its own spans, first one thread
 * nesting them, then threads that begin and end them in random orders and
 * hand some to another thread to end. ferret.h lets a handler begin, tag
 * and end spans, so the client must survive being interrupted by itself
 * anywhere: no deadlock, no corruption, every span of the program under
 * the parent the rules give, and each of the handler's spans stored or
 * counted as dropped.
 */
#include <ferret.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "harness.h"
#include "seeded-random.h"
#include "spans.h"
#include "traced-child.h"

/* How many signals the handler traced in, and whether it should still:
 * atomic (lock-free, so signal-safe), as any thread of the program may
 * take the signal. */
static atomic_int fired;
static atomic_bool stopped;

/* Traces two spans a signal: one through FERRET_SCOPE (a literal name,
 * interned once), with a tag, and one through ferret_span_begin() (a name
 * copied at run time). */
static void on_alarm(int sig)
{
        (void)sig;
        /* ThreadSanitizer runs a caught signal's handler later, at the next
         * call it intercepts: a signal that came before timer_delete() may
         * be handled after `fired` was read, inside ferret_flush(). */
        if (atomic_load(&stopped))
                return;
        int n = atomic_fetch_add(&fired, 1) + 1;
        FERRET_SCOPE(s, "in_handler") {
                ferret_span_tag_int(s, "n", n);
        }
        ferret_span_end(ferret_span_begin("dynamic_in_handler"));
}

/* In a child whose environment is set: starts the client, then on_alarm()
 * every 50 us. Exits with 3 if there is no timer. */
static timer_t start_alarms(void)
{
        /* As ferret.h asks: the client starts here, not in the first
         * handler (which could interrupt malloc). */
        CHECK(ferret_enabled());
        timer_t timer;
        if (start_profiling_timer(on_alarm, 50, &timer) < 0)
                _exit(3);
        return timer;
}

/* Stops the alarms; returns how many signals the handler traced in. */
static int stop_alarms(timer_t timer)
{
        timer_delete(timer);
        atomic_store(&stopped, true);
        return atomic_load(&fired);
}

/* The run's spans are the program's @program_spans and the handler's; each
 * of the two spans a signal traces is stored or counted as dropped. */
static void check_handler_spans(json_t *sum, long long program_spans, int signals)
{
        long long in_handler = summary_number(sum, "in_handler", "count");
        long long dynamic = summary_number(sum, "dynamic_in_handler", "count");
        CHECK_EQ(json_integer_value(json_object_get(sum, "spans")), program_spans + in_handler + dynamic);
        CHECK_EQ(in_handler + dynamic + json_integer_value(json_object_get(sum, "dropped")), 2 * signals);
}

#define ITERATIONS 300000

/* A signal handler that traces, interrupting the program in the middle of
 * its own spans: no deadlock, no corruption; the program's spans are all
 * stored, and each of the handler's is stored or counted as dropped. */
TEST(signal_handler_traces)
{
        struct daemon_fixture f;
        struct child_report report;
        fixture_start(&f);
        pid_t child = fork_reporting("signals", 60, &report);
        if (child == 0) {
                setenv("FERRET_ON_FULL", "block:10000", 1);
                timer_t timer = start_alarms();
                for (int i = 0; i < ITERATIONS; i++) {
                        ferret_span_t *outer = ferret_span_beginf("outer %d", i % 4);
                        FERRET_SCOPE(inner, "inner") {
                                ferret_span_tag_str(inner, "k", "v");
                        }
                        ferret_span_end(outer);
                }
                child_report_send(&report, stop_alarms(timer), 0);
                exit_when_flushed();
        }
        WAIT_OK(child);
        int got[2];
        child_report_receive(&report, got);
        int signals = got[0];
        printf("%d signals\n", signals);
        CHECK_CMP(signals, >, 10);

        json_t *sum = run_summary(&f, "signals");
        CHECK_EQ(summary_number(sum, "inner", "count"), ITERATIONS);
        long long outers = 0;
        for (int k = 0; k < 4; k++) {
                char name[16];
                snprintf(name, sizeof(name), "outer %d", k);
                outers += summary_number(sum, name, "count");
        }
        CHECK_EQ(outers, ITERATIONS);
        check_handler_spans(sum, 2 * ITERATIONS, signals);
        json_decref(sum);
        fixture_cleanup(&f);
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
        struct child_report report;
        fixture_start(&f);
        pid_t child = fork_reporting("random", 120, &report);
        if (child == 0) {
                setenv("FERRET_ON_FULL", "block:10000", 1);
                timer_t timer = start_alarms();
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
                int signals = stop_alarms(timer);
                pthread_mutex_lock(&e.lock);
                e.stop = true;
                pthread_cond_broadcast(&e.cond);
                pthread_mutex_unlock(&e.lock);
                pthread_join(ender_thread, NULL);
                child_report_send(&report, begun, signals);
                exit_when_flushed();
        }
        WAIT_OK(child);
        int got[2];
        child_report_receive(&report, got);
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
                 * which on_alarm() does not do. */
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
        check_handler_spans(sum, (long long)random, got[1]);
        json_decref(sum);
        flat_tree_free(&t);
        fixture_cleanup(&f);
}
