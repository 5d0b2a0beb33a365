/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

void cli_find_runtime_dir(const struct cli *cli, char *buf, size_t size)
{
        char why[PATH_MAX + 64];
        /* A directory refused here is refused again, with its reason, by
         * cli_request(): the command that asks says why. */
        runtime_find(cli->runtime_dir, buf, size, why, sizeof(why));
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

        char why[PATH_MAX + 64];
        r = runtime_probe(dir, RUNTIME_QUERY_SOCKET, why, sizeof(why));
        if (r == -EPERM)
                return cli_error(EPERM, "will not use the ferretd in %s: %s", dir, why);
        if (r == -EACCES)
                return cli_error(EACCES, "permission denied: cannot talk to the ferretd in %s (%s)", dir,
                                 runtime_denied_why(dir, why, sizeof(why)));
        if (r < 0)
                return cli_error(ECONNREFUSED,
                                 "no ferretd is running in %s (start one with `ferretd` or `systemctl start ferretd`, "
                                 "or read a database directly with `ferret analyze DB`)", dir);
        r = runtime_endpoint(dir, RUNTIME_QUERY_SOCKET, endpoint, sizeof(endpoint));
        if (r < 0)
                return cli_error(r, "runtime directory %s is too long for a socket path", dir);
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
