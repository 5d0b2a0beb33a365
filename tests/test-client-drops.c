/* SPDX-License-Identifier: MIT */
/*
 * Spans the client drops, against a real ferretd: a buffer too small for a
 * burst, with and without FERRET_ON_FULL=block, and a span whose end is
 * dropped while its children were stored. The client never blocks a
 * program by default, so it drops when full; what it drops must be
 * counted, so that stored and dropped add up to what was emitted, and the
 * spans it did store must still hang in the right place.
 */
#include <dirent.h>
#include <ferret.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "harness.h"
#include "spans.h"
#include "traced-child.h"

#define BURST 300000

/* Emits BURST spans as fast as possible from one thread, then flushes. */
static void burst_process(const char *run, const char *buffer, const char *on_full)
{
        pid_t child = fork_in_run(run, 60);
        if (child == 0) {
                setenv("FERRET_BUFFER_SIZE", buffer, 1);
                if (on_full)
                        setenv("FERRET_ON_FULL", on_full, 1);
                for (int i = 0; i < BURST; i++)
                        FERRET_SCOPE(s, "burst") {
                                ferret_span_tag_int(s, "i", i);
                        }
                exit_when_flushed();
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
        CHECK_EQ(summary_number(sum, "burst", "count"), stored);
        json_decref(sum);

        const char *status_args[] = { "status", NULL };
        json_t *st = fixture_ferret_json(&f, status_args);
        CHECK_EQ(json_integer_value(json_object_get(st, "dropped_by_clients")), dropped);
        json_decref(st);

        /* Waiting up to a time, or the default time (10 s). */
        const char *block[] = { "block:10000", "block" };
        for (size_t i = 0; i < 2; i++) {
                char run[32];
                snprintf(run, sizeof(run), "blocking-%zu", i);
                burst_process(run, "64k", block[i]);
                sum = run_summary(&f, run);
                CHECK_EQ(json_integer_value(json_object_get(sum, "spans")), BURST);
                CHECK_EQ(json_integer_value(json_object_get(sum, "dropped")), 0);
                json_decref(sum);
        }
        fixture_cleanup(&f);
}

/* A span whose end is dropped (its children filled the buffer): the
 * children that were stored hang under its parent, not at the root. */
TEST(children_of_a_dropped_span_hang_under_its_parent)
{
        struct daemon_fixture f;
        fixture_start(&f);
        pid_t child = fork_in_run("orphans", 60);
        if (child == 0) {
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
                exit_when_flushed();
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

/* Spins for about @ns nanoseconds: a program that records at a pace its
 * flusher could encode. */
static void spin_ns(long ns)
{
        struct timespec t0, t;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        do
                clock_gettime(CLOCK_MONOTONIC, &t);
        while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < ns);
}

#define BEHIND_SPANS 3000000
/* What a stopped daemon's client may have encoded: the batches it keeps
 * (256), ZeroMQ's send queue (64) and a few in the socket, of 4,096 spans. */
#define BEHIND_SENT_MAX 1600000

/* A daemon that stops reading (here: stopped) leaves the records in the
 * rings: the flusher does not encode batches only to throw them away to
 * make room, which cost a busy program a third of a core. The program's
 * spans past what the rings hold are dropped as they begin, and counted;
 * once the daemon goes on, everything else is stored. */
TEST(a_daemon_that_stops_reading_leaves_the_records_in_the_rings)
{
        struct daemon_fixture f;
        fixture_start(&f);
        struct child_report report;
        pid_t child = fork_reporting("behind", 120, &report);
        if (child == 0) {
                ferret_span_end(ferret_span_begin("connect"));
                if (ferret_flush(10000) != 0 || kill(f.pid, SIGSTOP) != 0)
                        _exit(5);
                for (int i = 0; i < BEHIND_SPANS; i++) {
                        ferret_span_end(ferret_span_begin("burst"));
                        spin_ns(250);
                }
                ferret_stats_t st = { .size = sizeof(st) };
                ferret_get_stats(&st);
                kill(f.pid, SIGCONT);
                child_report_send(&report, (int)st.sent, (int)st.dropped);
                exit_when_flushed();
        }
        int got[2];
        child_report_receive(&report, got);
        kill(f.pid, SIGCONT);
        WAIT_OK(child);
        printf("daemon stopped: %d spans encoded and sent, %d dropped, of %d\n", got[0], got[1], BEHIND_SPANS);
        CHECK_CMP(got[0], <=, BEHIND_SENT_MAX);
        CHECK_CMP(got[1], >, 0);
        json_t *sum = run_summary(&f, "behind");
        long long stored = json_integer_value(json_object_get(sum, "spans"));
        long long dropped = json_integer_value(json_object_get(sum, "dropped"));
        printf("then stored %lld, dropped %lld\n", stored, dropped);
        CHECK_EQ(stored + dropped, BEHIND_SPANS + 1);
        CHECK_CMP(dropped, >=, got[1]);
        json_decref(sum);
        fixture_cleanup(&f);
}

/* The thread of this process named @name, or 0. */
static pid_t thread_named(const char *name)
{
        DIR *d = opendir("/proc/self/task");
        pid_t found = 0;
        for (struct dirent *e; d && !found && (e = readdir(d));) {
                char path[300], comm[32] = "";
                snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
                FILE *f = fopen(path, "r");
                if (f && fgets(comm, sizeof(comm), f) && strcmp(comm, name) == 0)
                        found = atoi(e->d_name);
                if (f)
                        fclose(f);
        }
        if (d)
                closedir(d);
        return found;
}

/* The flusher is told apart from the program's threads (top -H, ps -L),
 * and runs at their priority: a flusher given a lower one on 2 cores let a
 * program calling a function every 6 ns run 3 times faster, by dropping 93%
 * of its calls instead of 73%, and dropped spans of a Python program whose
 * 64 MiB buffer kept them all at equal priority (bench/python-overhead). */
TEST(the_flusher_is_named_and_keeps_the_programs_priority)
{
        struct daemon_fixture f;
        fixture_start(&f);
        struct child_report report;
        pid_t child = fork_reporting("nice", 60, &report);
        if (child == 0) {
                setpriority(PRIO_PROCESS, 0, 3);
                ferret_span_end(ferret_span_begin("start the client"));
                /* The flusher names itself as it starts. */
                pid_t flusher;
                while (!(flusher = thread_named("ferret-flusher\n")))
                        nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
                child_report_send(&report, getpriority(PRIO_PROCESS, 0), getpriority(PRIO_PROCESS, (id_t)flusher));
                exit_when_flushed();
        }
        int nice[2];
        child_report_receive(&report, nice);
        WAIT_OK(child);
        printf("program's thread at nice %d, flusher at %d\n", nice[0], nice[1]);
        CHECK_EQ(nice[0], 3);
        CHECK_EQ(nice[1], 3);
        fixture_cleanup(&f);
}
