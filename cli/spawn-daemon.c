/* SPDX-License-Identifier: MIT */
/*
 * A private ferretd: `ferret run` starts one for its database when no daemon
 * serves it, and `ferret analyze` starts a read-only one to read a database
 * directly. The daemon says it is ready through the systemd notify protocol
 * on a socket of ours, so we wait for that message, or for its exit, never
 * for a fixed time.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "runtime-dir.h"

#define READY_TIMEOUT_MS 30000

extern char **environ;

int cli_find_helper(const char *name, const char *build_subdir, char *buf, size_t size)
{
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n > 0) {
                exe[n] = '\0';
                char *dir = dirname(exe);
                snprintf(buf, size, "%s/%s", dir, name);
                if (access(buf, R_OK) == 0)
                        return 0;
                /* Running from the build tree: cli/ferret beside ferretd/ferretd. */
                snprintf(buf, size, "%s/../%s/%s", dir, build_subdir, name);
                if (access(buf, R_OK) == 0)
                        return 0;
                /* Installed by pip: bin/ferret, and the package beside the library. */
                snprintf(buf, size, "%s/../lib/python%s/site-packages/ferret/%s", dir, FERRET_PYTHON_VERSION,
                         name);
                if (access(buf, R_OK) == 0)
                        return 0;
        }
        snprintf(buf, size, "%s/%s", strstr(name, ".so") ? FERRET_LIBDIR : FERRET_BINDIR, name);
        if (access(buf, R_OK) == 0)
                return 0;
        return cli_error(ENOENT, "cannot find %s (looked beside %s and in the install directories)", name,
                         n > 0 ? "this program" : "?");
}

static int pidfd_open_compat(pid_t pid)
{
#ifdef SYS_pidfd_open
        return (int)syscall(SYS_pidfd_open, pid, 0);
#else
        errno = ENOSYS;
        return -1;
#endif
}

/* A datagram and the pid of its sender, which the kernel vouches for
 * (SO_PASSCRED on the socket). */
static ssize_t recv_from_pid(int fd, char *buf, size_t size, pid_t *ret_pid)
{
        union {
                struct cmsghdr h;
                char space[CMSG_SPACE(sizeof(struct ucred))];
        } control;
        struct iovec iov = { .iov_base = buf, .iov_len = size };
        struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof(control) };
        ssize_t len = recvmsg(fd, &m, 0);
        for (struct cmsghdr *c = len >= 0 ? CMSG_FIRSTHDR(&m) : NULL; c; c = CMSG_NXTHDR(&m, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
                        struct ucred cred;
                        memcpy(&cred, CMSG_DATA(c), sizeof(cred));
                        *ret_pid = cred.pid;
                }
        return len;
}

static int wait_ready(int notify_fd, pid_t pid)
{
        int pidfd = pidfd_open_compat(pid);
        struct pollfd fds[2] = { { .fd = notify_fd, .events = POLLIN }, { .fd = pidfd, .events = POLLIN } };
        int waited = 0;
        for (;;) {
                /* Without pidfds (old kernels), look at the child every 100 ms. */
                int step = pidfd >= 0 ? READY_TIMEOUT_MS : 100;
                int n = poll(fds, pidfd >= 0 ? 2 : 1, step);
                if (n < 0 && errno != EINTR)
                        break;
                if (n > 0 && (fds[0].revents & POLLIN)) {
                        char msg[512];
                        pid_t sender = 0;
                        ssize_t len = recv_from_pid(notify_fd, msg, sizeof(msg) - 1, &sender);
                        /* Only the daemon we started may say it is ready. */
                        if (len > 0 && sender == pid) {
                                msg[len] = '\0';
                                if (strstr(msg, "READY=1")) {
                                        if (pidfd >= 0)
                                                close(pidfd);
                                        return 0;
                                }
                        }
                        continue;
                }
                int status;
                if (waitpid(pid, &status, WNOHANG) == pid) {
                        if (pidfd >= 0)
                                close(pidfd);
                        return cli_error(EIO, "ferretd did not start (%s %d)",
                                         WIFEXITED(status) ? "exit status" : "signal",
                                         WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
                }
                waited += step;
                if (waited >= READY_TIMEOUT_MS)
                        break;
        }
        if (pidfd >= 0)
                close(pidfd);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return cli_error(ETIMEDOUT, "ferretd did not become ready within %d s", READY_TIMEOUT_MS / 1000);
}

int private_daemon_start(const char *db, const char *runtime_dir, bool read_only, struct private_daemon *ret)
{
        char daemon[PATH_MAX], notify_path[PATH_MAX], notify_env[PATH_MAX + 16];
        struct private_daemon d = { .pid = -1 };
        int r;

        r = cli_find_helper("ferretd", "ferretd", daemon, sizeof(daemon));
        if (r < 0)
                return r;
        if (runtime_dir)
                snprintf(d.runtime_dir, sizeof(d.runtime_dir), "%s", runtime_dir);
        else {
                const char *base = getenv("XDG_RUNTIME_DIR");
                snprintf(d.runtime_dir, sizeof(d.runtime_dir), "%s/ferret-private-XXXXXX",
                         base && *base ? base : "/tmp");
                if (!mkdtemp(d.runtime_dir))
                        return cli_error(errno, "cannot create a directory in %s: %m", base && *base ? base : "/tmp");
                d.remove_dir = true;
        }
        bool made = mkdir(d.runtime_dir, 0700) == 0;
        if (!made && errno != EEXIST)
                return cli_error(errno, "cannot create %s: %m", d.runtime_dir);
        /* There already: made by someone else since it was chosen? */
        char why[PATH_MAX + 64];
        if (runtime_dir_check(d.runtime_dir, why, sizeof(why)) < 0)
                return cli_error(EPERM, "will not start ferretd there: %s", why);

        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(notify_path, sizeof(notify_path), "%s/notify.sock", d.runtime_dir);
        if (strlen(notify_path) >= sizeof(sa.sun_path)) {
                r = cli_error(ENAMETOOLONG, "runtime directory %s is too long for a socket path", d.runtime_dir);
                goto fail;
        }
        strcpy(sa.sun_path, notify_path);
        unlink(notify_path);
        int one = 1;
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0) {
                r = cli_error(errno, "cannot create %s: %m", notify_path);
                goto fail;
        }

        /* The daemon's environment: ours, with NOTIFY_SOCKET pointing here
         * and without anything that would trace the daemon itself. */
        size_t n = 0;
        while (environ[n])
                n++;
        char **env = calloc(n + 2, sizeof(*env));
        if (!env) {
                r = cli_error(ENOMEM, "out of memory");
                goto fail;
        }
        size_t j = 0;
        for (size_t i = 0; i < n; i++)
                if (strncmp(environ[i], "NOTIFY_SOCKET=", 14) != 0 && strncmp(environ[i], "LD_PRELOAD=", 11) != 0 &&
                    strncmp(environ[i], "JOURNAL_STREAM=", 15) != 0)
                        env[j++] = environ[i];
        snprintf(notify_env, sizeof(notify_env), "NOTIFY_SOCKET=%s", notify_path);
        env[j++] = notify_env;

        char *argv[] = { daemon, "--db", (char *)db, "--runtime-dir", d.runtime_dir, "--log-level", "warning",
                         "--exit-with-parent", read_only ? "--read-only" : NULL, NULL };
        r = posix_spawn(&d.pid, daemon, NULL, NULL, argv, env);
        free(env);
        if (r != 0) {
                r = cli_error(r, "cannot start %s: %s", daemon, strerror(r));
                goto fail;
        }
        r = wait_ready(fd, d.pid);
        if (r < 0)
                goto fail;
        close(fd);
        unlink(notify_path);
        *ret = d;
        return 0;

fail:
        if (fd >= 0)
                close(fd);
        unlink(notify_path);
        if (d.remove_dir || made)
                rmdir(d.runtime_dir);   /* what a failed start leaves behind */
        return r;
}

int private_daemon_stop(struct private_daemon *d)
{
        int status, r = 0;
        if (d->pid <= 0)
                return 0;
        kill(d->pid, SIGTERM);
        while (waitpid(d->pid, &status, 0) < 0)
                if (errno != EINTR) {
                        status = 0;
                        break;
                }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                r = cli_error(EIO, "ferretd for this run did not stop cleanly");
        if (d->remove_dir)
                rmdir(d->runtime_dir);
        d->pid = -1;
        return r;
}
