/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

/* After a connection was cut, the next attempt waits this long. */
#define RETRY_MS 100

/* One attempt at a question: a REQ socket and the monitor that tells
 * whether its connection was cut. */
struct asking {
        void *ctx, *sock, *monitor;
};

static uint64_t mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void hang_up(struct asking *a)
{
        if (a->sock)
                zmq_socket_monitor(a->sock, NULL, 0);
        if (a->monitor)
                zmq_close(a->monitor);
        if (a->sock)
                zmq_close(a->sock);
        a->sock = a->monitor = NULL;
}

/* Connects anew and sends the question. Returns 0 or -errno. */
static int ask(struct asking *a, const char *endpoint, unsigned attempt, const void *question, size_t len)
{
        char monitor[64];
        int zero = 0;
        hang_up(a);
        a->sock = zmq_socket(a->ctx, ZMQ_REQ);
        a->monitor = zmq_socket(a->ctx, ZMQ_PAIR);
        if (!a->sock || !a->monitor)
                return -errno;
        zmq_setsockopt(a->sock, ZMQ_LINGER, &zero, sizeof(zero));
        zmq_setsockopt(a->monitor, ZMQ_RCVHWM, &zero, sizeof(zero));
        snprintf(monitor, sizeof(monitor), "inproc://ferret-cli-%u", attempt);
        if (zmq_socket_monitor(a->sock, monitor, ZMQ_EVENT_DISCONNECTED) < 0 ||
            zmq_connect(a->monitor, monitor) < 0 || zmq_connect(a->sock, endpoint) < 0)
                return -errno;
        /* Queued until the connection is made: REQ does not wait to send. */
        return zmq_send(a->sock, question, len, ZMQ_DONTWAIT) < 0 ? -errno : 0;
}

/* Waits for the answer until @until (mono_ms()). Returns 0 with it in
 * @msg, -ECONNRESET when the connection was cut first, -ETIMEDOUT, or
 * -errno. */
static int wait_answer(struct asking *a, zmq_msg_t *msg, uint64_t until)
{
        for (;;) {
                uint64_t now = mono_ms();
                if (now >= until)
                        return -ETIMEDOUT;
                zmq_pollitem_t items[2] = {
                        { .socket = a->sock, .events = ZMQ_POLLIN },
                        { .socket = a->monitor, .events = ZMQ_POLLIN },
                };
                if (zmq_poll(items, 2, (long)(until - now)) < 0)
                        return -errno;
                if (items[0].revents & ZMQ_POLLIN)
                        return zmq_msg_recv(msg, a->sock, ZMQ_DONTWAIT) < 0 ? -errno : 0;
                if (items[1].revents & ZMQ_POLLIN)
                        return -ECONNRESET;
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
        req->version = WIRE_PROTOCOL_VERSION;
        size_t len = ferret__request__get_packed_size(req);
        uint8_t *buf = malloc(len ? len : 1);
        void *ctx = zmq_ctx_new();
        struct asking a = { .ctx = ctx };
        if (!buf || !ctx) {
                r = cli_error(ENOMEM, "out of memory");
                goto out;
        }
        ferret__request__pack(req, buf);

        /* A connection cut before the answer (a daemon at its --max-clients
         * cuts the newest, or restarted) is made again and asked again,
         * until the time is up. */
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        uint64_t until = mono_ms() + (uint64_t)timeout_ms;
        bool answered = false, cut = false;
        for (unsigned attempt = 0; !answered && mono_ms() < until; attempt++) {
                r = ask(&a, endpoint, attempt, buf, len);
                if (r < 0) {
                        r = cli_error(r, "cannot send to ferretd in %s: %s", dir, zmq_strerror(-r));
                        goto out_msg;
                }
                r = wait_answer(&a, &msg, until);
                if (r < 0 && r != -ECONNRESET && r != -ETIMEDOUT) {
                        r = cli_error(r, "cannot read ferretd's answer: %s", zmq_strerror(-r));
                        goto out_msg;
                }
                answered = r == 0;
                if (r == -ECONNRESET) {
                        /* Not at once: a daemon at its cap cuts at once too. */
                        cut = true;
                        uint64_t now = mono_ms(), pause = until - now < RETRY_MS ? until - now : RETRY_MS;
                        struct timespec ts = { 0, (long)pause * 1000000L };
                        if (now < until)
                                nanosleep(&ts, NULL);
                }
        }
        if (!answered) {
                r = cli_error(ETIMEDOUT, "ferretd in %s did not answer within %d s%s", dir, timeout_ms / 1000,
                              cut ? " (it cut the connection: it may be serving the most clients it takes, "
                                    "its --max-clients)" : "");
                goto out_msg;
        }
        Ferret__Response *resp = ferret__response__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
        zmq_msg_close(&msg);
        r = 0;
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
        goto out;
out_msg:
        zmq_msg_close(&msg);
out:
        free(buf);
        hang_up(&a);
        if (ctx)
                zmq_ctx_term(ctx);
        return r;
}
