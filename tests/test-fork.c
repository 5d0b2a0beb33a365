/* SPDX-License-Identifier: MIT */
/*
 * fork() from a multi-threaded traced program. Its own file, because GCC 12's
 * AddressSanitizer does not guard its allocator's lock across fork(): a child
 * forked while another thread allocates can inherit that lock held and hang
 * in malloc. Under ASan this test is skipped; the plain build runs it.
 */
#include <errno.h>
#include <ferret.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "harness.h"
#include "spans.h"

extern void __asan_init(void) __attribute__((weak));

static atomic_bool stop_noise;

/* Spans from other threads while the main thread forks; a bounded number,
 * so the tree stays small. */
static void *noise(void *unused)
{
        for (int i = 0; !atomic_load(&stop_noise); i++) {
                if (i >= 5000) {
                        sched_yield();
                        continue;
                }
                FERRET_SCOPE(s, "noise") {
                        ferret_span_tag_int(s, "x", i);
                }
        }
        return NULL;
}

/* fork() while other threads trace: the child gets a working client of its
 * own, and its first span is a child of the span open in the forking thread. */
TEST(fork_from_threads)
{
        if (__asan_init)
                SKIP("fork() from threads under GCC 12's AddressSanitizer can hang in its allocator");
        struct daemon_fixture f;
        fixture_start(&f);
        setenv("FERRET_RUN_ID", "fork", 1);
        pid_t test = fork();
        CHECK(test >= 0);
        if (test == 0) {
                pthread_t threads[3];
                for (int i = 0; i < 3; i++)
                        pthread_create(&threads[i], NULL, noise, NULL);
                ferret_span_t *before = ferret_span_begin("before_fork");
                pid_t child = fork();
                if (child == 0) {
                        /* No other thread exists here; the client must not
                         * wait for them or for the parent's flusher. */
                        ferret_span_t *s = ferret_span_begin("in_child");
                        ferret_span_tag_int(s, "pid", getpid());
                        ferret_span_end(s);
                        ferret_span_end(before);   /* the parent's: records nothing here */
                        int r = ferret_flush(20000);
                        if (r != 0)
                                fprintf(stderr, "flush in the forked child: %s\n", ferret_strerror(r));
                        _exit(r == 0 ? 0 : 1);
                }
                int status;
                waitpid(child, &status, 0);
                ferret_span_end(before);
                atomic_store(&stop_noise, true);
                for (int i = 0; i < 3; i++)
                        pthread_join(threads[i], NULL);
                int r = ferret_flush(20000);
                if (r != 0 && r != -ENODATA)
                        fprintf(stderr, "flush in the parent: %s\n", ferret_strerror(r));
                _exit(WIFEXITED(status) && WEXITSTATUS(status) == 0 && (r == 0 || r == -ENODATA) ? 0 : 1);
        }
        WAIT_OK(test);

        struct flat_tree t;
        flat_tree_load(&f, "fork", &t);
        CHECK_EQ(flat_tree_count(&t, "before_fork"), 1);
        CHECK_EQ(flat_tree_count(&t, "in_child"), 1);
        CHECK_CMP(flat_tree_count(&t, "noise"), >, 0);
        for (size_t k = 0; k < t.n; k++) {
                if (strcmp(span_name(t.spans[k].span), "in_child") != 0)
                        continue;
                json_t *s = t.spans[k].span, *parent = t.spans[k].parent;
                CHECK(parent != NULL);
                CHECK_STR(span_name(parent), "before_fork");
                CHECK(json_integer_value(json_object_get(s, "pid")) != json_integer_value(json_object_get(parent, "pid")));
                CHECK_EQ(json_integer_value(json_object_get(s, "pid")), json_integer_value(span_tag(s, "pid")));
        }
        flat_tree_free(&t);
        fixture_cleanup(&f);
}

