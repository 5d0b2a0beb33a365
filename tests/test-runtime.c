/* SPDX-License-Identifier: MIT */
/*
 * The one policy of where a daemon's sockets are (proto/runtime-dir.h) and
 * of starting a private daemon (proto/runtime-daemon.h), which the client
 * library, the command, ferretd, the Python package, the tests and the
 * benchmarks all call: which runtime directory under which environment,
 * which directories and listeners are refused, what "a daemon listens"
 * means, a database's private directory, and waiting for READY=1 from the
 * process started and no other.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "harness.h"
#include "runtime-daemon.h"

#define WHY 512

static char base[64];

/* A fresh directory for the test, under which XDG_RUNTIME_DIR points, and
 * no FERRET_RUNTIME_DIR. */
static const char *setup(void)
{
        if (base[0]) {
                char *rm[] = { "rm", "-rf", base, NULL };
                fixture_run(rm, NULL, NULL, NULL);
        }
        snprintf(base, sizeof(base), "/tmp/ferret-test-runtime-XXXXXX");
        CHECK(mkdtemp(base));
        unsetenv("FERRET_RUNTIME_DIR");
        setenv("XDG_RUNTIME_DIR", base, 1);
        return base;
}

static void cleanup(void)
{
        char *rm[] = { "rm", "-rf", base, NULL };
        fixture_run(rm, NULL, NULL, NULL);
        base[0] = '\0';
}

/* @name in the test's directory; kept until 64 more have been asked for. */
static const char *path(const char *name)
{
        static char buf[64][256];
        static int next;
        char *p = buf[next++ % 64];
        snprintf(p, sizeof(buf[0]), "%s/%s", base, name);
        return p;
}

static void make_dir(const char *dir, mode_t mode)
{
        CHECK(mkdir(dir, 0700) == 0);
        CHECK(chmod(dir, mode) == 0);   /* whatever the umask */
}

/* A listener on @dir/query.sock, as a daemon's; its descriptor. */
static int listen_in(const char *dir)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        CHECK_OK(runtime_socket_path(dir, RUNTIME_QUERY_SOCKET, sa.sun_path, sizeof(sa.sun_path)));
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(fd >= 0);
        CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
        CHECK(listen(fd, 16) == 0);
        return fd;
}

/* A socket file nobody listens on: what a daemon killed with SIGKILL leaves. */
static void stale_in(const char *dir)
{
        close(listen_in(dir));
}

TEST(socket_names_and_endpoints)
{
        char buf[256];
        CHECK_OK(runtime_socket_path("/run/ferret", RUNTIME_INGEST_SOCKET, buf, sizeof(buf)));
        CHECK_STR(buf, "/run/ferret/ingest.sock");
        CHECK_OK(runtime_endpoint("/run/ferret", RUNTIME_QUERY_SOCKET, buf, sizeof(buf)));
        CHECK_STR(buf, "ipc:///run/ferret/query.sock");
        /* Longer than a Unix socket's address may be: refused, not cut. */
        char longer[200];
        memset(longer, 'x', sizeof(longer) - 1);
        longer[0] = '/';
        longer[sizeof(longer) - 1] = '\0';
        CHECK_EQ(runtime_socket_path(longer, RUNTIME_QUERY_SOCKET, buf, sizeof(buf)), -ENAMETOOLONG);
        CHECK_EQ(runtime_endpoint(longer, RUNTIME_QUERY_SOCKET, buf, sizeof(buf)), -ENAMETOOLONG);
}

TEST(the_users_directory_and_the_private_ones)
{
        char buf[256], want[256];
        setup();
        runtime_user_dir(buf, sizeof(buf));
        CHECK_STR(buf, path("ferret"));
        runtime_private_dir("/srv/traces/x.db", buf, sizeof(buf));
        CHECK_STR(buf, path("ferret-db-979fa73d3bf91ae9"));     /* FNV-1a of the name */
        runtime_private_template(buf, sizeof(buf));
        CHECK_STR(buf, path("ferret-private-XXXXXX"));
        /* Without XDG_RUNTIME_DIR (or with an empty one): /tmp, the uid in
         * every name. */
        for (int empty = 0; empty < 2; empty++) {
                if (empty)
                        setenv("XDG_RUNTIME_DIR", "", 1);
                else
                        unsetenv("XDG_RUNTIME_DIR");
                runtime_user_dir(buf, sizeof(buf));
                snprintf(want, sizeof(want), "/tmp/ferret-%u", (unsigned)getuid());
                CHECK_STR(buf, want);
                runtime_private_dir("/srv/traces/x.db", buf, sizeof(buf));
                snprintf(want, sizeof(want), "/tmp/ferret-%u-db-979fa73d3bf91ae9", (unsigned)getuid());
                CHECK_STR(buf, want);
                runtime_private_template(buf, sizeof(buf));
                snprintf(want, sizeof(want), "/tmp/ferret-%u-private-XXXXXX", (unsigned)getuid());
                CHECK_STR(buf, want);
        }
        /* ferretd's own default: the system's directory as root, else the
         * user's. */
        runtime_listen_dir(buf, sizeof(buf));
        snprintf(want, sizeof(want), "/tmp/ferret-%u", (unsigned)getuid());
        CHECK_STR(buf, geteuid() == 0 ? RUNTIME_SYSTEM_DIR : want);
        cleanup();
}

TEST(a_database_has_one_name)
{
        char cwd[256], a[256], b[256], c[256], d[256];
        setup();
        CHECK(getcwd(cwd, sizeof(cwd)));
        make_dir(path("dbs"), 0700);
        make_dir(path("x.db"), 0700);
        CHECK(symlink("x.db", path("link.db")) == 0);
        CHECK(chdir(base) == 0);
        runtime_db_name("dbs/../x.db", a, sizeof(a));
        runtime_db_name("./x.db", b, sizeof(b));
        runtime_db_name("link.db", c, sizeof(c));
        runtime_db_name(path("x.db"), d, sizeof(d));
        CHECK_STR(a, path("x.db"));
        CHECK_STR(b, a);
        CHECK_STR(c, a);
        CHECK_STR(d, a);
        /* Not made yet: its directory's real path, and its own name. */
        runtime_db_name("dbs/../new.db", a, sizeof(a));
        CHECK_STR(a, path("new.db"));
        runtime_db_name("new.db", a, sizeof(a));
        CHECK_STR(a, path("new.db"));
        /* One name, one private directory. */
        runtime_private_dir(c, a, sizeof(a));
        runtime_private_dir(d, b, sizeof(b));
        CHECK_STR(a, b);
        CHECK(chdir(cwd) == 0);
        cleanup();
}

TEST(what_a_listening_daemon_is)
{
        char why[WHY];
        setup();
        CHECK_EQ(runtime_probe(path("absent"), RUNTIME_QUERY_SOCKET, why, sizeof(why)), -ENOENT);
        make_dir(path("empty"), 0700);
        CHECK_EQ(runtime_probe(path("empty"), RUNTIME_QUERY_SOCKET, why, sizeof(why)), -ENOENT);
        make_dir(path("stale"), 0700);
        stale_in(path("stale"));
        CHECK_EQ(runtime_probe(path("stale"), RUNTIME_QUERY_SOCKET, why, sizeof(why)), -ECONNREFUSED);
        make_dir(path("up"), 0700);
        int fd = listen_in(path("up"));
        CHECK_EQ(runtime_probe(path("up"), RUNTIME_QUERY_SOCKET, why, sizeof(why)), 0);
        /* A daemon too busy to accept is busy, not absent. */
        int waiting[64], n = 0;
        bool full = false;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        runtime_socket_path(path("up"), RUNTIME_QUERY_SOCKET, sa.sun_path, sizeof(sa.sun_path));
        while (!full && n < 64) {
                waiting[n] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                full = connect(waiting[n++], (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno == EAGAIN;
        }
        CHECK(full);
        CHECK_EQ(runtime_probe(path("up"), RUNTIME_QUERY_SOCKET, why, sizeof(why)), 0);
        while (n > 0)
                close(waiting[--n]);
        close(fd);
        /* A directory others may write is not even looked into. */
        make_dir(path("open"), 0700);
        int open_fd = listen_in(path("open"));
        CHECK(chmod(path("open"), 0777) == 0);
        CHECK_EQ(runtime_probe(path("open"), RUNTIME_QUERY_SOCKET, why, sizeof(why)), -EPERM);
        CHECK(strstr(why, "may be written by others (mode 777)"));
        close(open_fd);
        cleanup();
}

TEST(untrusted_directories_are_refused)
{
        char why[WHY];
        setup();
        make_dir(path("group"), 0770);
        CHECK_EQ(runtime_dir_check(path("group"), why, sizeof(why)), -EPERM);
        CHECK(strstr(why, "may be written by others (mode 770)"));
        make_dir(path("sticky"), 01777);
        CHECK_EQ(runtime_dir_check(path("sticky"), why, sizeof(why)), -EPERM);
        make_dir(path("mine"), 0700);
        CHECK_EQ(runtime_dir_check(path("mine"), why, sizeof(why)), 0);
        /* Readable by others is fine: connecting needs write permission on
         * the socket, which ferretd gives its group only. */
        make_dir(path("shared"), 0755);
        CHECK_EQ(runtime_dir_check(path("shared"), why, sizeof(why)), 0);
        CHECK(symlink("mine", path("link")) == 0);
        CHECK_EQ(runtime_dir_check(path("link"), why, sizeof(why)), -EPERM);
        CHECK(strstr(why, "is a symbolic link"));
        CHECK(close(open(path("file"), O_CREAT | O_WRONLY | O_CLOEXEC, 0600)) == 0);
        CHECK_EQ(runtime_dir_check(path("file"), why, sizeof(why)), -EPERM);
        CHECK(strstr(why, "is not a directory"));
        CHECK_EQ(runtime_dir_check(path("absent"), why, sizeof(why)), -ENOENT);
        cleanup();
}

/* As root: a directory of another user, and a listener that runs as
 * another user in a directory of ours (a directory replaced after it was
 * checked), are both refused. */
TEST(another_users_directory_and_daemon_are_refused)
{
        char why[WHY];
        if (geteuid() != 0) {
                printf("needs root to be another user: not checked\n");
                return;
        }
        setup();
        make_dir(path("theirs"), 0700);
        CHECK(chown(path("theirs"), 65534, 65534) == 0);
        CHECK_EQ(runtime_dir_check(path("theirs"), why, sizeof(why)), -EPERM);
        CHECK(strstr(why, "belongs to uid 65534, not to you"));

        make_dir(path("replaced"), 0700);
        int go[2];
        CHECK(pipe(go) == 0);
        pid_t child = fork();
        if (child == 0) {
                /* Bound as root (only root may write the directory), then
                 * listening as nobody: the credentials a peer sees are
                 * those of listen(). */
                struct sockaddr_un sa = { .sun_family = AF_UNIX };
                runtime_socket_path(path("replaced"), RUNTIME_QUERY_SOCKET, sa.sun_path, sizeof(sa.sun_path));
                int fd = socket(AF_UNIX, SOCK_STREAM, 0);
                if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || setgid(65534) < 0 ||
                    setuid(65534) < 0 || listen(fd, 4) < 0)
                        _exit(1);
                close(go[0]);
                if (write(go[1], "x", 1) != 1)
                        _exit(1);
                pause();
                _exit(0);
        }
        char c;
        close(go[1]);
        CHECK_EQ(read(go[0], &c, 1), 1);
        CHECK_EQ(runtime_probe(path("replaced"), RUNTIME_QUERY_SOCKET, why, sizeof(why)), -EPERM);
        CHECK(strstr(why, "the ferretd there runs as uid 65534, not as you"));
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        close(go[0]);
        cleanup();
}

TEST(an_explicit_directory_is_used_as_it_is)
{
        char buf[256], why[WHY];
        setup();
        /* The user's daemon listens, but FERRET_RUNTIME_DIR names another
         * directory, which does not exist yet: that one, no fallback. */
        make_dir(path("ferret"), 0700);
        int fd = listen_in(path("ferret"));
        setenv("FERRET_RUNTIME_DIR", path("elsewhere"), 1);
        CHECK_EQ(runtime_find(NULL, buf, sizeof(buf), why, sizeof(why)), 0);
        CHECK_STR(buf, path("elsewhere"));
        /* The command's --runtime-dir before the environment. */
        CHECK_EQ(runtime_find(path("given"), buf, sizeof(buf), why, sizeof(why)), 0);
        CHECK_STR(buf, path("given"));
        /* An empty variable is no variable. */
        setenv("FERRET_RUNTIME_DIR", "", 1);
        CHECK_EQ(runtime_find(NULL, buf, sizeof(buf), why, sizeof(why)), 0);
        CHECK_STR(buf, path("ferret"));
        /* Named, but open to others: refused, with the reason. */
        make_dir(path("open"), 0777);
        setenv("FERRET_RUNTIME_DIR", path("open"), 1);
        CHECK_EQ(runtime_find(NULL, buf, sizeof(buf), why, sizeof(why)), -EPERM);
        CHECK_STR(buf, path("open"));
        CHECK(strstr(why, "may be written by others"));
        close(fd);
        cleanup();
}

TEST(the_users_daemon_when_it_listens_else_the_systems)
{
        char buf[256], why[WHY];
        setup();
        /* Nobody listens in the user's directory: the system's. */
        CHECK_EQ(runtime_find(NULL, buf, sizeof(buf), why, sizeof(why)), 0);
        CHECK_STR(buf, RUNTIME_SYSTEM_DIR);
        /* A socket file left by a killed daemon is not a daemon. */
        make_dir(path("ferret"), 0700);
        stale_in(path("ferret"));
        CHECK_EQ(runtime_find(NULL, buf, sizeof(buf), why, sizeof(why)), 0);
        CHECK_STR(buf, RUNTIME_SYSTEM_DIR);
        CHECK(unlink(path("ferret/query.sock")) == 0);
        int fd = listen_in(path("ferret"));
        CHECK_EQ(runtime_find(NULL, buf, sizeof(buf), why, sizeof(why)), 0);
        CHECK_STR(buf, path("ferret"));
        close(fd);
        cleanup();
}

/* runtime_pick() is runtime_find()'s rule with the two directories given,
 * so that a system daemon can be stood in for. */
TEST(an_untrusted_users_directory_is_never_used)
{
        char buf[256], why[WHY];
        setup();
        make_dir(path("user"), 0700);
        int user = listen_in(path("user"));
        CHECK(chmod(path("user"), 0777) == 0);
        /* No system daemon either: the user's is named, refused. */
        CHECK_EQ(runtime_pick(path("user"), path("system"), buf, sizeof(buf), why, sizeof(why)), -EPERM);
        CHECK_STR(buf, path("user"));
        CHECK(strstr(why, "may be written by others"));
        /* A system daemon listens: that one. */
        make_dir(path("system"), 0755);
        int system = listen_in(path("system"));
        CHECK_EQ(runtime_pick(path("user"), path("system"), buf, sizeof(buf), why, sizeof(why)), 0);
        CHECK_STR(buf, path("system"));
        /* Nobody listens anywhere, the user's directory is fine: the
         * system's, where a daemon may come later. */
        close(user);
        close(system);
        CHECK(chmod(path("user"), 0700) == 0);
        CHECK_EQ(runtime_pick(path("user"), path("nowhere"), buf, sizeof(buf), why, sizeof(why)), 0);
        CHECK_STR(buf, path("nowhere"));
        /* ... unless the system's is not to be trusted either. */
        make_dir(path("open-system"), 0777);
        CHECK_EQ(runtime_pick(path("user"), path("open-system"), buf, sizeof(buf), why, sizeof(why)), -EPERM);
        CHECK_STR(buf, path("open-system"));
        cleanup();
}

TEST(ready_is_a_whole_line)
{
        const char *yes[] = { "READY=1", "READY=1\n", "STATUS=x\nREADY=1", "READY=1\nSTATUS=Serving /db\nMAINPID=7" };
        const char *no[] = { "", "READY=0", "READY=10", "XREADY=1", "STATUS=READY=1", "STATUS=x READY=1\n",
                             "STOPPING=1" };
        for (size_t i = 0; i < sizeof(yes) / sizeof(*yes); i++)
                CHECK(runtime_notify_ready(yes[i], strlen(yes[i])));
        for (size_t i = 0; i < sizeof(no) / sizeof(*no); i++)
                CHECK(!runtime_notify_ready(no[i], strlen(no[i])));
}

static const char *fake(void)
{
        const char *p = getenv("FERRET_FAKE_FERRETD");
        if (!p)
                harness_fail(__FILE__, __LINE__, "FERRET_FAKE_FERRETD is not set (run the tests through meson test)");
        return p;
}

static char *slurp(const char *p)
{
        static char buf[4096];
        FILE *f = fopen(p, "r");
        size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
        buf[n] = '\0';
        if (f)
                fclose(f);
        return buf;
}

struct started {
        struct runtime_start s;
        struct runtime_daemon d;
        char why[WHY];
        int r;
};

static void *start_thread(void *arg)
{
        struct started *st = arg;
        st->r = runtime_daemon_start(&st->s, &st->d, st->why, sizeof(st->why));
        return NULL;
}

TEST(a_daemon_is_started_as_one_policy_says)
{
        static const char *const args[] = { "--log-level", "warning", NULL };
        struct runtime_daemon d;
        char why[WHY];
        setup();
        setenv("FAKE_FERRETD", "ready", 1);
        setenv("FAKE_FERRETD_OUT", path("seen"), 1);
        setenv("LD_PRELOAD", "", 1);
        setenv("JOURNAL_STREAM", "1:2", 1);
        setenv("NOTIFY_SOCKET", "/run/systemd/notify", 1);
        struct runtime_start s = { .ferretd = fake(), .db = "/srv/x.db", .runtime_dir = path("rt"), .args = args,
                                   .exit_with_parent = true };
        CHECK_OK(runtime_daemon_start(&s, &d, why, sizeof(why)));
        CHECK(d.pid > 0 && !d.remove_dir);
        CHECK_STR(d.runtime_dir, path("rt"));
        struct stat st;
        CHECK(lstat(path("rt"), &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700);
        char *seen = slurp(path("seen"));
        char want[1024];
        snprintf(want, sizeof(want),
                 "--db\n/srv/x.db\n--runtime-dir\n%s\n--log-level\nwarning\n--exit-with-parent\n--\n"
                 "LD_PRELOAD=unset\nJOURNAL_STREAM=unset\nNOTIFY_SOCKET=set\nfd0=/dev/null\nfd1=/dev/null\n",
                 path("rt"));
        CHECK_STR(seen, want);
        /* The notify socket went with the wait. */
        char *ls[] = { "ls", "-A", (char *)path("rt"), NULL }, *out;
        fixture_run(ls, NULL, &out, NULL);
        CHECK_STR(out, "");
        free(out);
        int status = runtime_daemon_stop(&d);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        CHECK_EQ(d.pid, 0);
        CHECK_EQ(runtime_daemon_stop(&d), 0);

        /* From another thread, the daemon cannot be tied to our exit (the
         * kernel ties it to the thread): no --exit-with-parent. */
        struct started t = { .s = s };
        pthread_t th;
        CHECK_EQ(pthread_create(&th, NULL, start_thread, &t), 0);
        pthread_join(th, NULL);
        CHECK_OK(t.r);
        CHECK(!strstr(slurp(path("seen")), "--exit-with-parent"));
        runtime_daemon_stop(&t.d);

        /* No directory given: a new one of ours, removed when it stops. */
        s.runtime_dir = NULL;
        CHECK_OK(runtime_daemon_start(&s, &d, why, sizeof(why)));
        CHECK(d.remove_dir);
        CHECK(strncmp(d.runtime_dir, path("ferret-private-"), strlen(path("ferret-private-"))) == 0);
        CHECK(access(d.runtime_dir, F_OK) == 0);
        runtime_daemon_stop(&d);
        CHECK(access(d.runtime_dir, F_OK) < 0 && errno == ENOENT);
        unsetenv("LD_PRELOAD");
        unsetenv("JOURNAL_STREAM");
        unsetenv("NOTIFY_SOCKET");
        unsetenv("FAKE_FERRETD_OUT");
        cleanup();
}

TEST(only_the_daemon_started_says_it_is_ready)
{
        struct runtime_daemon d;
        char why[WHY];
        setup();
        struct runtime_start s = { .ferretd = fake(), .db = "/srv/x.db", .runtime_dir = path("rt"),
                                   .timeout_ms = 1500 };
        /* Its child says READY=1; a status text holds "READY=1": neither is
         * the daemon's readiness. Killed at the deadline, nothing left. */
        const char *modes[] = { "child-ready", "status-ready" };
        for (size_t i = 0; i < 2; i++) {
                setenv("FAKE_FERRETD", modes[i], 1);
                CHECK_EQ(runtime_daemon_start(&s, &d, why, sizeof(why)), -ETIMEDOUT);
                CHECK_STR(why, "ferretd did not become ready within 1 s");
                CHECK(access(path("rt"), F_OK) < 0 && errno == ENOENT);
        }
        CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD);       /* every daemon reaped */
        /* A daemon that exits ends the wait at once, with its status. */
        setenv("FAKE_FERRETD", "exit", 1);
        s.timeout_ms = 0;
        CHECK_EQ(runtime_daemon_start(&s, &d, why, sizeof(why)), -EIO);
        CHECK_STR(why, "ferretd did not start (exit status 3)");
        CHECK(access(path("rt"), F_OK) < 0 && errno == ENOENT);
        /* A directory someone may write is no place for its sockets. */
        make_dir(path("open"), 0777);
        s.runtime_dir = path("open");
        setenv("FAKE_FERRETD", "ready", 1);
        CHECK_EQ(runtime_daemon_start(&s, &d, why, sizeof(why)), -EPERM);
        CHECK(strstr(why, "will not start ferretd there: ") && strstr(why, "may be written by others"));
        CHECK(access(path("open"), F_OK) == 0);         /* not ours to remove */
        s.ferretd = NULL;
        CHECK_EQ(runtime_daemon_start(&s, &d, why, sizeof(why)), -ENOENT);
        CHECK_STR(why, "cannot find ferretd");
        cleanup();
}

/* runtime_choose() with the real ferretd: the database's private daemon,
 * found again by the next run, and a directory of our own when its private
 * directory is someone else's. */
TEST(a_run_into_a_database_finds_its_private_daemon)
{
        struct runtime_choice c, again;
        char why[WHY], db[256], dir[256];
        setup();
        setenv("FERRET_RUNTIME_DIR", path("nobody-here"), 1);
        snprintf(db, sizeof(db), "%s", path("x.db"));
        CHECK_OK(runtime_choose(NULL, db, fixture_ferretd_path(), &c, why, sizeof(why)));
        runtime_private_dir(db, dir, sizeof(dir));
        CHECK_STR(c.runtime_dir, dir);
        CHECK_STR(c.db, db);
        CHECK(c.daemon.pid > 0);
        CHECK_EQ(c.n_notes, 0);
        CHECK_OK(runtime_choose(NULL, path("./x.db"), fixture_ferretd_path(), &again, why, sizeof(why)));
        CHECK_STR(again.runtime_dir, dir);
        CHECK_EQ(again.daemon.pid, 0);
        /* The default daemon, when it serves the database, takes the run;
         * without a database, any default daemon that takes spans: the
         * command's --runtime-dir before FERRET_RUNTIME_DIR. */
        CHECK_OK(runtime_choose(dir, NULL, NULL, &again, why, sizeof(why)));
        CHECK_STR(again.runtime_dir, dir);
        CHECK_STR(again.db, "");
        CHECK_EQ(again.daemon.pid, 0);
        setenv("FERRET_RUNTIME_DIR", dir, 1);
        CHECK_OK(runtime_choose(NULL, db, NULL, &again, why, sizeof(why)));
        CHECK_STR(again.runtime_dir, dir);
        CHECK_EQ(again.daemon.pid, 0);
        int status = runtime_daemon_stop(&c.daemon);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

        /* Someone else's private directory: a new one, and a note. */
        setenv("FERRET_RUNTIME_DIR", path("nobody-here"), 1);
        if (mkdir(dir, 0700) < 0)
                CHECK(errno == EEXIST);         /* ferretd removes it as it stops */
        CHECK(chmod(dir, 0777) == 0);
        CHECK_OK(runtime_choose(NULL, db, fixture_ferretd_path(), &c, why, sizeof(why)));
        CHECK(strcmp(c.runtime_dir, dir) != 0 && c.daemon.pid > 0 && c.daemon.remove_dir);
        CHECK_EQ(c.n_notes, 1);
        CHECK(strstr(c.notes[0], "not using ") && strstr(c.notes[0], "recording with a private ferretd elsewhere"));
        runtime_daemon_stop(&c.daemon);
        CHECK(access(c.runtime_dir, F_OK) < 0);
        cleanup();
}
