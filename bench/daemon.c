/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "daemon.h"
#include "runtime-daemon.h"

/* Starts ferretd on the paths of @d as runtime_daemon_start() starts every
 * private daemon, waiting for its READY=1 or its exit; on failure its log
 * is printed, and the directory left to the caller. */
static int daemon_spawn(struct bench_daemon *d)
{
        const char *args[32] = { "--log-level", "warning" };
        size_t n = 2;
        for (size_t i = 0; d->extra && d->extra[i] && n < 31; i++)
                args[n++] = d->extra[i];
        args[n] = NULL;
        struct runtime_start s = { .ferretd = bench_ferretd_path(), .db = d->db, .runtime_dir = d->runtime_dir,
                                   .args = args, .log = d->log };
        struct runtime_daemon rd;
        char why[512];
        int r = runtime_daemon_start(&s, &rd, why, sizeof(why));
        if (r < 0) {
                fprintf(stderr, "%s\n", why);
                d->pid = 0;
                bench_daemon_print_log(d);
                return r;
        }
        d->pid = rd.pid;
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
        struct runtime_daemon rd = { .pid = d->pid };
        status = runtime_daemon_stop(&rd);
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
