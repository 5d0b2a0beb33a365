/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <zmq.h>

#include "cli.h"
#include "wire.h"
#include "runtime-dir.h"

int cli_error(int error, const char *fmt, ...)
{
        va_list ap;
        fputs("ferret: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return error ? -abs(error) : -EINVAL;
}

int cli_probe_daemon(const char *dir)
{
        char why[PATH_MAX + 64];
        if (runtime_dir_check(dir, why, sizeof(why)) == -EPERM)
                return -EPERM;          /* not even looked at: runtime-dir.h */
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/query.sock", dir) >= (int)sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        int r = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : -errno;
        close(fd);
        return r;
}

bool cli_daemon_alive(const char *dir)
{
        return cli_probe_daemon(dir) == 0;
}

const char *cli_denied_why(const char *dir, char *buf, size_t size)
{
        struct stat st;
        struct group *g;
        char path[PATH_MAX];
        if (runtime_dir_check(dir, buf, size) == -EPERM)
                return buf;
        snprintf(path, sizeof(path), "%s/query.sock", dir);
        /* The socket, or the directory when it cannot even be looked at. */
        if (stat(path, &st) < 0 && stat(dir, &st) < 0)
                snprintf(buf, size, "you may not use %s", dir);
        else if ((g = getgrgid(st.st_gid)) && st.st_uid != getuid())
                snprintf(buf, size, "you are not in the %s group", g->gr_name);
        else
                snprintf(buf, size, "you may not use %s", dir);
        return buf;
}

void cli_find_runtime_dir(const struct cli *cli, char *buf, size_t size)
{
        const char *env = getenv("FERRET_RUNTIME_DIR"), *xdg = getenv("XDG_RUNTIME_DIR");
        if (cli->runtime_dir) {
                snprintf(buf, size, "%s", cli->runtime_dir);
                return;
        }
        if (env && *env) {
                snprintf(buf, size, "%s", env);
                return;
        }
        if (xdg && *xdg)
                snprintf(buf, size, "%s/ferret", xdg);
        else
                snprintf(buf, size, "/tmp/ferret-%u", (unsigned)getuid());
        /* The user's directory when its daemon answers; the system's else,
         * unless the user's is not to be trusted and no system daemon is
         * there either: then the user's, so that the refusal names it. */
        if (!cli_daemon_alive(buf) &&
            (cli_probe_daemon(buf) != -EPERM || cli_daemon_alive("/run/ferret")))
                snprintf(buf, size, "/run/ferret");
}

/* The answer each question expects. */
static Ferret__Response__BodyCase answer_to(Ferret__Request__BodyCase question)
{
        switch (question) {
        case FERRET__REQUEST__BODY_RUNS:
                return FERRET__RESPONSE__BODY_RUNS;
        case FERRET__REQUEST__BODY_SUMMARY:
                return FERRET__RESPONSE__BODY_SUMMARY;
        case FERRET__REQUEST__BODY_TREE:
                return FERRET__RESPONSE__BODY_TREE;
        case FERRET__REQUEST__BODY_STATUS:
                return FERRET__RESPONSE__BODY_STATUS;
        case FERRET__REQUEST__BODY_FLUSH:
                return FERRET__RESPONSE__BODY_FLUSH;
        case FERRET__REQUEST__BODY_REMOVE:
                return FERRET__RESPONSE__BODY_REMOVE;
        default:
                return FERRET__RESPONSE__BODY__NOT_SET;
        }
}

int cli_request(const char *dir, Ferret__Request *req, int timeout_ms, Ferret__Response **ret)
{
        char endpoint[PATH_MAX];
        int r = 0;

        char untrusted[PATH_MAX + 64];
        if (runtime_dir_check(dir, untrusted, sizeof(untrusted)) == -EPERM)
                return cli_error(EPERM, "will not use the ferretd in %s: %s", dir, untrusted);
        r = cli_probe_daemon(dir);
        if (r == -EACCES || r == -EPERM) {
                char why[PATH_MAX + 64];
                return cli_error(EACCES, "permission denied: cannot talk to the ferretd in %s (%s)", dir,
                                 cli_denied_why(dir, why, sizeof(why)));
        }
        if (r < 0)
                return cli_error(ECONNREFUSED,
                                 "no ferretd is running in %s (start one with `ferretd` or `systemctl start ferretd`, "
                                 "or read a database directly with `ferret analyze DB`)", dir);

        snprintf(endpoint, sizeof(endpoint), "ipc://%s/query.sock", dir);
        void *ctx = zmq_ctx_new();
        void *sock = ctx ? zmq_socket(ctx, ZMQ_REQ) : NULL;
        if (!sock) {
                r = cli_error(errno, "cannot create a socket: %s", zmq_strerror(errno));
                goto out;
        }
        int zero = 0;
        zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero));
        zmq_setsockopt(sock, ZMQ_RCVTIMEO, &timeout_ms, sizeof(timeout_ms));
        zmq_setsockopt(sock, ZMQ_SNDTIMEO, &timeout_ms, sizeof(timeout_ms));
        if (zmq_connect(sock, endpoint) < 0) {
                r = cli_error(errno, "cannot connect to %s: %s", endpoint, zmq_strerror(errno));
                goto out;
        }

        req->version = WIRE_PROTOCOL_VERSION;
        size_t len = ferret__request__get_packed_size(req);
        uint8_t *buf = malloc(len ? len : 1);
        if (!buf) {
                r = cli_error(ENOMEM, "out of memory");
                goto out;
        }
        ferret__request__pack(req, buf);
        int sent = zmq_send(sock, buf, len, 0);
        free(buf);
        if (sent < 0) {
                r = cli_error(errno, "cannot send to ferretd in %s: %s", dir, zmq_strerror(errno));
                goto out;
        }

        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, sock, 0) < 0) {
                r = errno == EAGAIN ? cli_error(ETIMEDOUT, "ferretd in %s did not answer within %d s", dir, timeout_ms / 1000)
                                    : cli_error(errno, "cannot read ferretd's answer: %s", zmq_strerror(errno));
                zmq_msg_close(&msg);
                goto out;
        }
        Ferret__Response *resp = ferret__response__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
        zmq_msg_close(&msg);
        if (!resp) {
                r = cli_error(EPROTO, "ferretd in %s sent a malformed answer", dir);
                goto out;
        }
        if (resp->error) {
                r = cli_error(resp->error, "%s", resp->error_message && *resp->error_message
                                                         ? resp->error_message : strerror(-resp->error));
                ferret__response__free_unpacked(resp, NULL);
                goto out;
        }
        if (resp->body_case != answer_to(req->body_case)) {
                r = cli_error(EPROTO, "ferretd answered with something else than asked");
                ferret__response__free_unpacked(resp, NULL);
                goto out;
        }
        *ret = resp;
out:
        if (sock)
                zmq_close(sock);
        if (ctx)
                zmq_ctx_term(ctx);
        return r;
}
