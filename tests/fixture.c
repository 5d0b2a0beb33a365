/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "harness.h"
#include "runtime-daemon.h"

extern char **environ;

/* Daemons this process started: a failing test exits at once, and must not
 * leave them behind (they would hold the test runner's pipes open). */
#define MAX_DAEMONS 8
static pid_t running[MAX_DAEMONS];
static pid_t owner;

static void kill_leftovers(void)
{
        if (getpid() != owner)
                return;         /* a forked child of the test: not its daemons */
        for (int i = 0; i < MAX_DAEMONS; i++)
                if (running[i] > 0) {
                        kill(running[i], SIGKILL);
                        waitpid(running[i], NULL, 0);
                }
}

static void track(pid_t pid, pid_t old)
{
        if (!owner) {
                owner = getpid();
                atexit(kill_leftovers);
        }
        for (int i = 0; i < MAX_DAEMONS; i++)
                if (running[i] == old) {
                        running[i] = pid;
                        return;
                }
}

const char *fixture_ferret_path(void)
{
        const char *p = getenv("FERRET_CLI");
        if (!p)
                harness_fail(__FILE__, __LINE__, "FERRET_CLI is not set (run the tests through meson test)");
        return p;
}

const char *fixture_ferretd_path(void)
{
        const char *p = getenv("FERRETD");
        if (!p)
                harness_fail(__FILE__, __LINE__, "FERRETD is not set (run the tests through meson test)");
        return p;
}

static char *read_file(const char *path)
{
        FILE *f = fopen(path, "r");
        if (!f)
                return strdup("");
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *buf = malloc((size_t)n + 1);
        size_t got = fread(buf, 1, (size_t)n, f);
        buf[got] = '\0';
        fclose(f);
        return buf;
}

char *fixture_log(struct daemon_fixture *f)
{
        return read_file(f->log);
}

/* Starts ferretd as runtime_daemon_start() starts every private daemon:
 * it waits for its READY=1, or for its exit, never for a fixed time. */
static void start_daemon(struct daemon_fixture *f, const char *const extra[])
{
        const char *args[16] = { "--log-level", "debug" };
        size_t k = 2;
        for (size_t i = 0; extra && extra[i] && k < 15; i++)
                args[k++] = extra[i];
        args[k] = NULL;
        struct runtime_start s = { .ferretd = fixture_ferretd_path(), .db = f->db, .runtime_dir = f->runtime_dir,
                                   .args = args, .log = f->log };
        struct runtime_daemon d;
        char why[512];
        if (runtime_daemon_start(&s, &d, why, sizeof(why)) < 0) {
                char *log = read_file(f->log);
                harness_fail(__FILE__, __LINE__, "%s; its log:\n%s", why, log ? log : "");
        }
        f->pid = d.pid;
        track(f->pid, 0);
}

void fixture_start(struct daemon_fixture *f)
{
        snprintf(f->dir, sizeof(f->dir), "/tmp/ferret-test-XXXXXX");
        if (!mkdtemp(f->dir))
                harness_fail(__FILE__, __LINE__, "mkdtemp: %s", strerror(errno));
        snprintf(f->db, sizeof(f->db), "%s/db", f->dir);
        snprintf(f->runtime_dir, sizeof(f->runtime_dir), "%s/run", f->dir);
        snprintf(f->log, sizeof(f->log), "%s/ferretd.log", f->dir);
        setenv("FERRET_RUNTIME_DIR", f->runtime_dir, 1);
        start_daemon(f, NULL);
}

void fixture_restart(struct daemon_fixture *f)
{
        start_daemon(f, NULL);
}

void fixture_restart_args(struct daemon_fixture *f, const char *const extra[])
{
        start_daemon(f, extra);
}

int fixture_stop(struct daemon_fixture *f)
{
        int status = 0;
        if (f->pid <= 0)
                return 0;
        struct runtime_daemon d = { .pid = f->pid };
        status = runtime_daemon_stop(&d);
        track(0, f->pid);
        f->pid = 0;
        char *log = fixture_log(f);
        printf("--- ferretd log ---\n%s--- end of log ---\n", log);
        free(log);
        return status;
}

void fixture_forget(struct daemon_fixture *f)
{
        track(0, f->pid);
        f->pid = 0;
}

void fixture_cleanup(struct daemon_fixture *f)
{
        fixture_stop(f);
        if (f->dir[0]) {
                char *argv[] = { "rm", "-rf", f->dir, NULL };
                fixture_run(argv, NULL, NULL, NULL);
        }
}

static char *drain(int fd)
{
        size_t cap = 4096, len = 0;
        char *buf = malloc(cap);
        for (;;) {
                if (len + 1 >= cap)
                        buf = realloc(buf, cap *= 2);
                ssize_t n = read(fd, buf + len, cap - len - 1);
                if (n <= 0)
                        break;
                len += (size_t)n;
        }
        buf[len] = '\0';
        return buf;
}

int fixture_run(char *const argv[], char *const extra_env[], char **ret_out, char **ret_err)
{
        char out_path[] = "/tmp/ferret-test-out-XXXXXX", err_path[] = "/tmp/ferret-test-err-XXXXXX";
        int out = mkstemp(out_path), err = mkstemp(err_path);
        size_t n = 0, m = 0;
        while (environ[n])
                n++;
        while (extra_env && extra_env[m])
                m++;
        char **env = calloc(n + m + 1, sizeof(*env));
        memcpy(env, environ, n * sizeof(*env));
        if (m)
                memcpy(env + n, extra_env, m * sizeof(*env));

        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, out, STDOUT_FILENO);
        posix_spawn_file_actions_adddup2(&fa, err, STDERR_FILENO);
        pid_t pid;
        int r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, env);
        posix_spawn_file_actions_destroy(&fa);
        free(env);
        if (r)
                harness_fail(__FILE__, __LINE__, "cannot run %s: %s", argv[0], strerror(r));
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        lseek(out, 0, SEEK_SET);
        lseek(err, 0, SEEK_SET);
        char *o = drain(out), *e = drain(err);
        close(out);
        close(err);
        unlink(out_path);
        unlink(err_path);
        if (ret_out)
                *ret_out = o;
        else
                free(o);
        if (ret_err)
                *ret_err = e;
        else {
                if (*e)
                        fprintf(stderr, "%s", e);
                free(e);
        }
        return status;
}

json_t *fixture_ferret_json(struct daemon_fixture *f, const char *const args[])
{
        const char *argv[32];
        size_t n = 0;
        argv[n++] = fixture_ferret_path();
        for (size_t i = 0; args[i] && n < 28; i++)
                argv[n++] = args[i];
        argv[n++] = "--json";
        argv[n++] = "--runtime-dir";
        argv[n++] = f->runtime_dir;
        argv[n] = NULL;
        char *out, *err;
        int status = fixture_run((char *const *)argv, NULL, &out, &err);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                harness_fail(__FILE__, __LINE__, "ferret %s failed (status %d): %s", args[0], status, err);
        json_error_t je;
        json_t *j = json_loads(out, 0, &je);
        if (!j)
                harness_fail(__FILE__, __LINE__, "ferret %s printed invalid JSON: %s\n%s", args[0], je.text, out);
        free(out);
        free(err);
        return j;
}
