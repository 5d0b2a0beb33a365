/* SPDX-License-Identifier: MIT */
/*
 * Makes the fuzzers' seed corpora from real messages: `capture DIR OUT MS`
 * listens where a ferretd would (DIR/ingest.sock, DIR/query.sock) for MS
 * milliseconds and writes every batch a client sends to OUT/batch/ and
 * every request the command line sends to OUT/request/, one file each.
 * tests/fuzz/make-seeds drives it with real programs and commands.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "runtime-dir.h"

static long long now_ms(void)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

static void save(const char *out, const char *kind, unsigned n, const void *data, size_t len)
{
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s/%s-%04u", out, kind, kind, n);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
                perror(path);
                exit(1);
        }
}

int main(int argc, char **argv)
{
        if (argc != 4) {
                fprintf(stderr, "usage: capture DIR OUT MS\n");
                return 2;
        }
        char endpoint[4096];
        void *ctx = zmq_ctx_new();
        void *pull = zmq_socket(ctx, ZMQ_PULL), *router = zmq_socket(ctx, ZMQ_ROUTER);
        runtime_endpoint(argv[1], RUNTIME_INGEST_SOCKET, endpoint, sizeof(endpoint));
        if (zmq_bind(pull, endpoint) < 0)
                return fprintf(stderr, "bind %s: %s\n", endpoint, zmq_strerror(errno)), 1;
        runtime_endpoint(argv[1], RUNTIME_QUERY_SOCKET, endpoint, sizeof(endpoint));
        if (zmq_bind(router, endpoint) < 0)
                return fprintf(stderr, "bind %s: %s\n", endpoint, zmq_strerror(errno)), 1;
        long long until = now_ms() + atol(argv[3]);
        unsigned batches = 0, requests = 0;
        zmq_pollitem_t items[] = { { pull, 0, ZMQ_POLLIN, 0 }, { router, 0, ZMQ_POLLIN, 0 } };
        while (now_ms() < until) {
                if (zmq_poll(items, 2, (long)(until - now_ms())) <= 0)
                        continue;
                zmq_msg_t m;
                zmq_msg_init(&m);
                if ((items[0].revents & ZMQ_POLLIN) && zmq_msg_recv(&m, pull, ZMQ_DONTWAIT) >= 0)
                        save(argv[2], "batch", batches++, zmq_msg_data(&m), zmq_msg_size(&m));
                if (items[1].revents & ZMQ_POLLIN) {
                        /* [identity][empty][request]: the last frame. */
                        int more = 1;
                        while (more && zmq_msg_recv(&m, router, ZMQ_DONTWAIT) >= 0)
                                more = zmq_msg_more(&m);
                        save(argv[2], "request", requests++, zmq_msg_data(&m), zmq_msg_size(&m));
                }
                zmq_msg_close(&m);
        }
        printf("%u batches, %u requests\n", batches, requests);
        zmq_close(pull);
        zmq_close(router);
        zmq_ctx_term(ctx);
        return 0;
}
