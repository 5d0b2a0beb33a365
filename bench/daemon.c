/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "daemon.h"

extern char **environ;

/* How long a daemon may take to become ready. Only a bound on a hang:
 * readiness (or the daemon's death) ends the wait. */
#define READY_TIMEOUT_MS 60000

/* The environment for the daemon: ours without what would confuse it (a
 * preloaded tracing agent, another notify socket), plus our NOTIFY_SOCKET. */
static char **daemon_env(const char *notify_entry)
{
        size_t n = 0;
        while (environ[n])
                n++;
        char **env = calloc(n + 2, sizeof(*env));
        if (!env)
                return NULL;
        size_t j = 0;
        for (size_t i = 0; i < n; i++)
                if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0 && strncmp(environ[i], "NOTIFY_SOCKET=", 14) != 0)
                        env[j++] = environ[i];
        env[j++] = (char *)notify_entry;
        return env;
}

/* Waits for "READY=1" on @fd, or for the daemon (@pidfd) to exit. */
static int wait_ready(int fd, int pidfd)
{
        uint64_t deadline = bench_now_ns() + (uint64_t)READY_TIMEOUT_MS * 1000000u;
        for (;;) {
                struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = pidfd, .events = POLLIN } };
                uint64_t now = bench_now_ns();
                if (now >= deadline)
                        return -ETIMEDOUT;
                int r = poll(p, pidfd >= 0 ? 2 : 1, (int)((deadline - now) / 1000000u) + 1);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (p[0].revents & POLLIN) {
                        char msg[512];
                        ssize_t len = recv(fd, msg, sizeof(msg) - 1, 0);
                        if (len > 0) {
                                msg[len] = '\0';
                                /* The protocol sends newline-separated
                                 * assignments; READY=1 may come with others. */
                                if (strncmp(msg, "READY=1", 7) == 0 || strstr(msg, "\nREADY=1"))
                                        return 0;
                        }
                        continue;
                }
                if (pidfd >= 0 && (p[1].revents & POLLIN))
                        return -ECHILD;
        }
}

/* Starts ferretd on the paths of @d and waits for it to be ready; on
 * failure the daemon is stopped, its log printed, and the directory left
 * to the caller. */
static int daemon_spawn(struct bench_daemon *d)
{
        int r;
        char notify[256], notify_entry[300];
        snprintf(notify, sizeof(notify), "%s/notify.sock", d->dir);
        snprintf(notify_entry, sizeof(notify_entry), "NOTIFY_SOCKET=%s", notify);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", notify);
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                r = -errno;
                fprintf(stderr, "Failed to bind %s: %s\n", notify, strerror(errno));
                if (fd >= 0)
                        close(fd);
                return r;
        }

        char **env = daemon_env(notify_entry);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, d->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
        char *argv[32] = { (char *)bench_ferretd_path(), "--db", d->db, "--runtime-dir", d->runtime_dir,
                           "--log-level", "warning", NULL };
        for (size_t i = 0, n = 7; d->extra && d->extra[i] && n < 31; i++)
                argv[n++] = d->extra[i];
        r = env ? posix_spawn(&d->pid, argv[0], &fa, NULL, argv, env) : ENOMEM;
        posix_spawn_file_actions_destroy(&fa);
        free(env);
        if (r) {
                fprintf(stderr, "Failed to start %s: %s\n", argv[0], strerror(r));
                close(fd);
                d->pid = 0;
                return -r;
        }

        /* A pidfd makes the daemon's early death an event to poll, so a
         * daemon that fails to start is reported at once. */
        int pidfd = (int)syscall(SYS_pidfd_open, d->pid, 0);
        r = wait_ready(fd, pidfd);
        if (pidfd >= 0)
                close(pidfd);
        close(fd);
        unlink(notify);
        if (r < 0) {
                fprintf(stderr, "ferretd did not become ready: %s\n",
                        r == -ECHILD ? "it exited" : strerror(-r));
                bench_daemon_stop(d);
                bench_daemon_print_log(d);
                return r;
        }
        return 0;
}

int bench_daemon_start(struct bench_daemon *d)
{
        return bench_daemon_start_args(d, NULL);
}

int bench_daemon_start_args(struct bench_daemon *d, char *const *extra)
{
        memset(d, 0, sizeof(*d));
        d->extra = extra;
        int r = bench_mkdtemp("ferret-bench", d->dir, sizeof(d->dir));
        if (r < 0) {
                fprintf(stderr, "Failed to create a temporary directory: %s\n", strerror(-r));
                return r;
        }
        snprintf(d->db, sizeof(d->db), "%s/db", d->dir);
        snprintf(d->runtime_dir, sizeof(d->runtime_dir), "%s/run", d->dir);
        snprintf(d->log, sizeof(d->log), "%s/ferretd.log", d->dir);
        r = daemon_spawn(d);
        if (r < 0) {
                bench_rmtree(d->dir);
                d->dir[0] = '\0';
        }
        return r;
}

int bench_daemon_restart(struct bench_daemon *d)
{
        if (d->pid > 0)
                return -EBUSY;
        return daemon_spawn(d);
}

int bench_daemon_cpu_ns(const struct bench_daemon *d, uint64_t *ret)
{
        char path[64], buf[1024];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)d->pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return -EIO;
        buf[n] = '\0';
        /* The command name may hold spaces and parentheses: fields are
         * counted from the last ')'. utime and stime are fields 14 and 15;
         * the state, field 3, is the first after it. */
        char *p = strrchr(buf, ')');
        if (!p)
                return -EIO;
        unsigned long long utime = 0, stime = 0;
        if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
                return -EIO;
        long hz = sysconf(_SC_CLK_TCK);
        *ret = (utime + stime) * (1000000000ull / (unsigned long long)(hz > 0 ? hz : 100));
        return 0;
}

int bench_daemon_memory(const struct bench_daemon *d, uint64_t *ret_peak_kb, uint64_t *ret_rss_kb)
{
        char path[64], line[256];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)d->pid);
        FILE *f = fopen(path, "re");
        if (!f)
                return -errno;
        unsigned long long peak = 0, rss = 0;
        bool have_peak = false, have_rss = false;
        while (fgets(line, sizeof(line), f)) {
                if (sscanf(line, "VmHWM: %llu kB", &peak) == 1)
                        have_peak = true;
                else if (sscanf(line, "VmRSS: %llu kB", &rss) == 1)
                        have_rss = true;
        }
        fclose(f);
        if (!have_peak || !have_rss)
                return -EIO;
        *ret_peak_kb = peak;
        *ret_rss_kb = rss;
        return 0;
}

int bench_daemon_reset_peak(const struct bench_daemon *d)
{
        /* "5" resets the peak resident set size (Linux 4.0 and later). */
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/clear_refs", (int)d->pid);
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = write(fd, "5", 1) == 1 ? 0 : -errno;
        close(fd);
        return r;
}

static void describe_status(int status, char *ret, size_t size)
{
        if (WIFEXITED(status))
                snprintf(ret, size, "exit status %d", WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
                snprintf(ret, size, "signal %s", strsignal(WTERMSIG(status)));
        else
                snprintf(ret, size, "wait status %d", status);
}

bool bench_daemon_alive(struct bench_daemon *d)
{
        int status;
        if (d->pid <= 0)
                return false;
        if (waitpid(d->pid, &status, WNOHANG) != d->pid)
                return true;
        char how[64];
        describe_status(status, how, sizeof(how));
        fprintf(stderr, "ferretd (pid %d) exited during the benchmark: %s\n", (int)d->pid, how);
        d->pid = 0;
        bench_daemon_print_log(d);
        return false;
}

int bench_daemon_stop(struct bench_daemon *d)
{
        int status = 0;
        if (d->pid <= 0)
                return 0;
        kill(d->pid, SIGTERM);
        while (waitpid(d->pid, &status, 0) < 0 && errno == EINTR)
                ;
        d->pid = 0;
        return status;
}

void bench_daemon_print_log(const struct bench_daemon *d)
{
        FILE *f = fopen(d->log, "re");
        if (!f)
                return;
        char line[1024];
        fprintf(stderr, "--- ferretd log (%s) ---\n", d->log);
        while (fgets(line, sizeof(line), f))
                fputs(line, stderr);
        fprintf(stderr, "--- end of log ---\n");
        fclose(f);
}

void bench_daemon_cleanup(struct bench_daemon *d)
{
        int status = bench_daemon_stop(d);
        if (status && !(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM)) {
                char how[64];
                describe_status(status, how, sizeof(how));
                fprintf(stderr, "ferretd stopped with %s\n", how);
                bench_daemon_print_log(d);
        }
        bench_rmtree(d->dir);
        d->dir[0] = '\0';
}
