/* SPDX-License-Identifier: MIT */
/*
 * The client with no daemon to talk to: none started, a socket a dead one
 * left behind, FERRET_DISABLE=absent with and without a daemon, and a
 * daemon killed under a program that traces. A traced program must never
 * block or crash because of the daemon: spans are dropped and
 * ferret_flush() says why, and a daemon that comes back after SIGKILL still
 * holds what was flushed before.
 */
#include <errno.h>
#include <ferret.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "harness.h"
#include "runtime-dir.h"
#include "spans.h"
#include "traced-child.h"

/* A child tracing with @runtime_dir as its runtime directory, where no
 * daemon listens: its flush must say so. */
static void run_without_daemon(const char *runtime_dir)
{
        /* A watchdog: a blocked client would be killed here and the test
         * would see the signal. */
        pid_t child = fork_in_run(NULL, 20);
        if (child == 0) {
                setenv("FERRET_RUNTIME_DIR", runtime_dir, 1);
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
        CHECK(runtime_socket_path(dir, RUNTIME_INGEST_SOCKET, path, size) == 0);
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
        pid_t child = fork_in_run(run, 20);
        if (child == 0) {
                setenv("FERRET_RUNTIME_DIR", dir, 1);
                setenv("FERRET_DISABLE", "absent", 1);
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
        CHECK_EQ(summary_number(sum, "if_absent", "count"), 1000);
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
        pid_t child = fork_in_run(NULL, 30);
        if (child == 0) {
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
        CHECK_EQ(summary_number(sum, "before", "count"), 1000);
        json_decref(sum);
        fixture_cleanup(&f);
}
