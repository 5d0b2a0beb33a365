/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "runtime-daemon.h"
#include "wire.h"

/* How long a daemon may take to say what it serves. */
#define STATUS_TIMEOUT_MS 5000

extern char **environ;

static int pidfd_open_compat(pid_t pid)
{
#ifdef SYS_pidfd_open
        return (int)syscall(SYS_pidfd_open, pid, 0);
#else
        errno = ENOSYS;
        return -1;
#endif
}

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool runtime_notify_ready(const char *msg, size_t len)
{
        /* One assignment a line; READY=1 must be one of them, whole (a
         * STATUS= line may hold any text, a database's path included). */
        const char *p = msg, *end = msg + len;
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                size_t n = (size_t)((nl ? nl : end) - p);
                if (n == 7 && memcmp(p, "READY=1", 7) == 0)
                        return true;
                if (!nl)
                        break;
                p = nl + 1;
        }
        return false;
}

/* A datagram and the pid of its sender, which the kernel vouches for
 * (SO_PASSCRED on the socket); 0 when it did not say. */
static ssize_t recv_from_pid(int fd, char *buf, size_t size, pid_t *ret_pid)
{
        union {
                struct cmsghdr h;
                char space[CMSG_SPACE(sizeof(struct ucred))];
        } control;
        struct iovec iov = { .iov_base = buf, .iov_len = size };
        struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof(control) };
        ssize_t len = recvmsg(fd, &m, MSG_DONTWAIT);
        *ret_pid = 0;
        for (struct cmsghdr *c = len >= 0 ? CMSG_FIRSTHDR(&m) : NULL; c; c = CMSG_NXTHDR(&m, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
                        struct ucred cred;
                        memcpy(&cred, CMSG_DATA(c), sizeof(cred));
                        *ret_pid = cred.pid;
                }
        return len;
}

/* Waits for READY=1 from @pid on @notify_fd, or for its exit. A daemon
 * that exited is reaped; one that did not become ready in time is killed
 * and reaped. */
static int wait_ready(int notify_fd, pid_t pid, int timeout_ms, char *why, size_t why_size)
{
        int pidfd = pidfd_open_compat(pid), r;
        struct pollfd fds[2] = { { .fd = notify_fd, .events = POLLIN }, { .fd = pidfd, .events = POLLIN } };
        int64_t deadline = now_ms() + timeout_ms;
        for (;;) {
                int64_t left = deadline - now_ms();
                if (left <= 0) {
                        kill(pid, SIGKILL);
                        waitpid(pid, NULL, 0);
                        snprintf(why, why_size, "ferretd did not become ready within %d s", timeout_ms / 1000);
                        r = -ETIMEDOUT;
                        break;
                }
                /* Without pidfds (old kernels), look at the child every 100 ms. */
                int n = poll(fds, pidfd >= 0 ? 2 : 1, (int)(pidfd >= 0 || left < 100 ? left : 100));
                if (n < 0 && errno != EINTR) {
                        r = -errno;
                        kill(pid, SIGKILL);
                        waitpid(pid, NULL, 0);
                        snprintf(why, why_size, "cannot wait for ferretd: %s", strerror(-r));
                        break;
                }
                if (n > 0 && (fds[0].revents & POLLIN)) {
                        char msg[4096];
                        pid_t sender;
                        ssize_t len = recv_from_pid(notify_fd, msg, sizeof(msg), &sender);
                        /* Only the daemon we started may say it is ready. */
                        if (len > 0 && sender == pid && runtime_notify_ready(msg, (size_t)len)) {
                                r = 0;
                                break;
                        }
                        continue;
                }
                int status;
                if (waitpid(pid, &status, WNOHANG) == pid) {
                        snprintf(why, why_size, "ferretd did not start (%s %d)",
                                 WIFEXITED(status) ? "exit status" : "signal",
                                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
                        r = -EIO;
                        break;
                }
        }
        if (pidfd >= 0)
                close(pidfd);
        return r;
}

/* Ours, less what would trace the daemon (a preloaded agent), send its
 * notifications elsewhere, or make it log for the journal: plus @notify. */
static char **daemon_environment(const char *notify)
{
        size_t n = 0, j = 0;
        while (environ[n])
                n++;
        char **env = calloc(n + 2, sizeof(*env));
        if (!env)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (strncmp(environ[i], "NOTIFY_SOCKET=", 14) != 0 && strncmp(environ[i], "LD_PRELOAD=", 11) != 0 &&
                    strncmp(environ[i], "JOURNAL_STREAM=", 15) != 0)
                        env[j++] = environ[i];
        env[j] = (char *)notify;
        return env;
}

static char **daemon_arguments(const struct runtime_start *s, const char *runtime_dir)
{
        size_t n = 0, j = 0;
        while (s->args && s->args[n])
                n++;
        char **argv = calloc(n + 7, sizeof(*argv));
        if (!argv)
                return NULL;
        argv[j++] = (char *)s->ferretd;
        argv[j++] = "--db";
        argv[j++] = (char *)s->db;
        argv[j++] = "--runtime-dir";
        argv[j++] = (char *)runtime_dir;
        for (size_t i = 0; i < n; i++)
                argv[j++] = (char *)s->args[i];
        /* PR_SET_PDEATHSIG fires when the thread that started the child
         * exits: from any other thread it would stop the daemon early. */
        if (s->exit_with_parent && (pid_t)syscall(SYS_gettid) == getpid())
                argv[j++] = "--exit-with-parent";
        return argv;
}

static int spawn(const struct runtime_start *s, const char *runtime_dir, const char *notify, pid_t *ret,
                 char *why, size_t why_size)
{
        char notify_env[sizeof(((struct sockaddr_un *)0)->sun_path) + 16];
        snprintf(notify_env, sizeof(notify_env), "NOTIFY_SOCKET=%s", notify);
        char **env = daemon_environment(notify_env), **argv = daemon_arguments(s, runtime_dir);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        /* Its terminal and its output are the program's, not the daemon's. */
        posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
        if (s->log)
                posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, s->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int r = env && argv ? posix_spawn(ret, s->ferretd, &fa, NULL, argv, env) : ENOMEM;
        posix_spawn_file_actions_destroy(&fa);
        free(env);
        free(argv);
        if (r != 0)
                snprintf(why, why_size, "cannot start %s: %s", s->ferretd, strerror(r));
        return -r;
}

int runtime_daemon_start(const struct runtime_start *s, struct runtime_daemon *ret, char *why, size_t why_size)
{
        static atomic_uint started;
        struct runtime_daemon d = { .pid = 0 };
        char notify[sizeof(((struct sockaddr_un *)0)->sun_path)] = "";
        int fd = -1, r;
        bool made = false;

        if (!s->ferretd) {
                snprintf(why, why_size, "cannot find ferretd");
                return -ENOENT;
        }
        if (s->runtime_dir) {
                if ((size_t)snprintf(d.runtime_dir, sizeof(d.runtime_dir), "%s", s->runtime_dir) >= sizeof(d.runtime_dir)) {
                        snprintf(why, why_size, "runtime directory %s is too long", s->runtime_dir);
                        return -ENAMETOOLONG;
                }
                made = mkdir(d.runtime_dir, 0700) == 0;
                if (!made && errno != EEXIST) {
                        r = -errno;
                        snprintf(why, why_size, "cannot create %s: %s", d.runtime_dir, strerror(-r));
                        return r;
                }
        } else {
                runtime_private_template(d.runtime_dir, sizeof(d.runtime_dir));
                if (!mkdtemp(d.runtime_dir)) {
                        r = -errno;
                        snprintf(why, why_size, "cannot create %s: %s", d.runtime_dir, strerror(-r));
                        return r;
                }
                made = d.remove_dir = true;
        }
        /* There already: made by someone else since it was chosen? */
        char untrusted[PATH_MAX + 64];
        if (runtime_dir_check(d.runtime_dir, untrusted, sizeof(untrusted)) < 0) {
                snprintf(why, why_size, "will not start ferretd there: %s", untrusted);
                r = -EPERM;
                goto fail;
        }

        /* A name of its own: two commands may start a daemon in one
         * directory at once (one of them then fails to lock it). */
        char name[64];
        snprintf(name, sizeof(name), "notify-%d-%u.sock", (int)getpid(), atomic_fetch_add(&started, 1));
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (runtime_socket_path(d.runtime_dir, name, sa.sun_path, sizeof(sa.sun_path)) < 0) {
                snprintf(why, why_size, "runtime directory %s is too long for a socket path", d.runtime_dir);
                r = -ENAMETOOLONG;
                goto fail;
        }
        int one = 1;
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0) {
                r = -errno;
                snprintf(why, why_size, "cannot create %s: %s", sa.sun_path, strerror(-r));
                goto fail;
        }
        snprintf(notify, sizeof(notify), "%s", sa.sun_path);

        r = spawn(s, d.runtime_dir, notify, &d.pid, why, why_size);
        if (r < 0)
                goto fail;
        r = wait_ready(fd, d.pid, s->timeout_ms > 0 ? s->timeout_ms : RUNTIME_READY_TIMEOUT_MS, why, why_size);
        if (r < 0)
                goto fail;
        close(fd);
        unlink(notify);
        *ret = d;
        return 0;

fail:
        if (fd >= 0)
                close(fd);
        if (*notify)
                unlink(notify);
        if (made)
                rmdir(d.runtime_dir);   /* what a failed start leaves behind */
        return r;
}

int runtime_daemon_stop(struct runtime_daemon *d)
{
        int status = 0;
        if (d->pid > 0) {
                kill(d->pid, SIGTERM);
                while (waitpid(d->pid, &status, 0) < 0)
                        if (errno != EINTR) {
                                status = 0;     /* someone else waited for it */
                                break;
                        }
                d->pid = 0;
        }
        if (d->remove_dir) {
                rmdir(d->runtime_dir);
                d->remove_dir = false;
        }
        return status;
}

bool runtime_daemon_serves(const char *dir, const char *db, int timeout_ms)
{
        char why[PATH_MAX + 64], endpoint[PATH_MAX + 16];
        if (runtime_probe(dir, RUNTIME_QUERY_SOCKET, why, sizeof(why)) < 0 ||
            runtime_endpoint(dir, RUNTIME_QUERY_SOCKET, endpoint, sizeof(endpoint)) < 0)
                return false;

        Ferret__Request req = FERRET__REQUEST__INIT;
        Ferret__StatusRequest st = FERRET__STATUS_REQUEST__INIT;
        uint8_t buf[64];
        req.version = WIRE_PROTOCOL_VERSION;
        req.body_case = FERRET__REQUEST__BODY_STATUS;
        req.status = &st;
        size_t len = ferret__request__pack(&req, buf);

        bool serves = false;
        int zero = 0;
        void *ctx = zmq_ctx_new();
        void *sock = ctx ? zmq_socket(ctx, ZMQ_REQ) : NULL;
        if (sock) {
                zmq_msg_t msg;
                zmq_msg_init(&msg);
                zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero));
                zmq_setsockopt(sock, ZMQ_RCVTIMEO, &timeout_ms, sizeof(timeout_ms));
                zmq_setsockopt(sock, ZMQ_SNDTIMEO, &timeout_ms, sizeof(timeout_ms));
                if (zmq_connect(sock, endpoint) == 0 && zmq_send(sock, buf, len, 0) == (int)len &&
                    zmq_msg_recv(&msg, sock, 0) >= 0) {
                        Ferret__Response *resp = ferret__response__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
                        if (resp && !resp->error && resp->body_case == FERRET__RESPONSE__BODY_STATUS && resp->status)
                                serves = !resp->status->read_only && !resp->status->disk_full &&
                                         (!db || strcmp(resp->status->db_path, db) == 0);
                        ferret__response__free_unpacked(resp, NULL);
                }
                zmq_msg_close(&msg);
                zmq_close(sock);
        }
        if (ctx)
                zmq_ctx_term(ctx);
        return serves;
}

static void note(struct runtime_choice *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct runtime_choice *c, const char *fmt, ...)
{
        va_list ap;
        if (c->n_notes == RUNTIME_NOTES_MAX)
                return;
        va_start(ap, fmt);
        vsnprintf(c->notes[c->n_notes++], sizeof(c->notes[0]), fmt, ap);
        va_end(ap);
}

int runtime_choose(const char *override, const char *db, const char *ferretd, struct runtime_choice *ret, char *why,
                   size_t why_size)
{
        static const char *const args[] = { "--log-level", "warning", NULL };
        struct runtime_choice *c = calloc(1, sizeof(*c));
        char shared[RUNTIME_DIR_MAX], shared_why[PATH_MAX + 64], private_why[PATH_MAX + 64];
        int r;
        if (!c) {
                snprintf(why, why_size, "out of memory");
                return -ENOMEM;
        }

        int shared_r = runtime_find(override, shared, sizeof(shared), shared_why, sizeof(shared_why));
        if (!db && shared_r == 0 && runtime_daemon_serves(shared, NULL, STATUS_TIMEOUT_MS)) {
                snprintf(c->runtime_dir, sizeof(c->runtime_dir), "%s", shared);
                goto done;
        }
        runtime_db_name(db ? db : "ferret.db", c->db, sizeof(c->db));
        if (!db) {
                /* Someone might have expected the default daemon to take it. */
                int probe = shared_r == -EPERM ? -EPERM : runtime_probe(shared, RUNTIME_QUERY_SOCKET, shared_why,
                                                                         sizeof(shared_why));
                if (probe == -EACCES)
                        runtime_denied_why(shared, shared_why, sizeof(shared_why));
                if (probe == -EACCES || probe == -EPERM)
                        note(c, "permission denied by the ferretd in %s (%s): recording into %s with a private ferretd",
                             shared, shared_why, c->db);
        }
        if (shared_r == 0 && runtime_daemon_serves(shared, c->db, STATUS_TIMEOUT_MS)) {
                snprintf(c->runtime_dir, sizeof(c->runtime_dir), "%s", shared);
                goto done;
        }

        /* The database's private daemon: its own directory's, or a new one. */
        struct runtime_start s = { .ferretd = ferretd, .db = c->db, .runtime_dir = c->runtime_dir, .args = args,
                                   .exit_with_parent = true };
        runtime_private_dir(c->db, c->runtime_dir, sizeof(c->runtime_dir));
        if (runtime_dir_check(c->runtime_dir, private_why, sizeof(private_why)) == -EPERM) {
                /* Someone else's: a directory of our own for this run. */
                note(c, "not using %s; recording with a private ferretd elsewhere", private_why);
                s.runtime_dir = NULL;
        } else if (runtime_probe(c->runtime_dir, RUNTIME_QUERY_SOCKET, private_why, sizeof(private_why)) == 0)
                goto done;
        r = runtime_daemon_start(&s, &c->daemon, why, why_size);
        if (r < 0) {
                free(c);
                return r;
        }
        snprintf(c->runtime_dir, sizeof(c->runtime_dir), "%s", c->daemon.runtime_dir);
done:
        *ret = *c;
        free(c);
        return 0;
}
