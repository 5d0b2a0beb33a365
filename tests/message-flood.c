/* SPDX-License-Identifier: MIT */
/*
 * A hostile peer for the memory-bound test: `message-flood DIR CONNECTIONS
 * MESSAGES [tiny]` sends MESSAGES batches of exactly the largest size
 * ferretd takes (or, with "tiny", messages of one byte, which no batch is), spread over CONNECTIONS connections to DIR/ingest.sock, each
 * carrying one string longer than a name may be (so ferretd decodes the
 * whole message, then rejects and counts it). Each connection queues at
 * most one message of its own, so what piles up piles up in ferretd. It
 * prints "full K" the first time connection K could not hand over a
 * message at once (ferretd stopped reading it), and "sent N" at the end.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "runtime-dir.h"
#include "wire.h"

static void *ctx;
static const char *dir;
static long per_connection;
static uint8_t *message;
static size_t message_len;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static void *sockets[256];

/* A Batch of WIRE_MAX_MESSAGE_BYTES, or a byte or two less where the
 * string's own length prefix steps over the exact size. */
static int build_message(void)
{
        Ferret__Batch b = FERRET__BATCH__INIT;
        Ferret__SpanColumns cols = FERRET__SPAN_COLUMNS__INIT;
        b.version = WIRE_PROTOCOL_VERSION;
        b.run_id = "flood";
        b.client_id = 0x466c6f6f64;
        b.seq = 1;
        b.spans = &cols;
        char *strings[2] = { "", NULL };
        cols.n_strings = 2;
        cols.strings = strings;
        char *big = malloc(WIRE_MAX_MESSAGE_BYTES + 1);
        if (!big)
                return -ENOMEM;
        size_t len = WIRE_MAX_MESSAGE_BYTES, size;
        for (;;) {
                memset(big, 'x', len);
                big[len] = '\0';
                strings[1] = big;
                size = ferret__batch__get_packed_size(&b);
                if (size <= WIRE_MAX_MESSAGE_BYTES)
                        break;
                len -= size - WIRE_MAX_MESSAGE_BYTES;
        }
        message = malloc(size);
        if (!message)
                return -ENOMEM;
        message_len = ferret__batch__pack(&b, message);
        free(big);
        return 0;
}

static void *connection_main(void *arg)
{
        long k = (long)(intptr_t)arg;
        char endpoint[512];
        int one = 1, zero = 0;
        void *push = zmq_socket(ctx, ZMQ_PUSH);
        zmq_setsockopt(push, ZMQ_SNDHWM, &one, sizeof(one));
        zmq_setsockopt(push, ZMQ_LINGER, &zero, sizeof(zero));
        if (runtime_endpoint(dir, RUNTIME_INGEST_SOCKET, endpoint, sizeof(endpoint)) < 0 ||
            zmq_connect(push, endpoint) < 0) {
                fprintf(stderr, "message-flood: cannot connect to %s: %s\n", endpoint, zmq_strerror(errno));
                exit(1);
        }
        bool told = false;
        for (long i = 0; i < per_connection; i++) {
                if (zmq_send(push, message, message_len, ZMQ_DONTWAIT) == (int)message_len)
                        continue;
                if (errno != EAGAIN) {
                        fprintf(stderr, "message-flood: send failed: %s\n", zmq_strerror(errno));
                        exit(1);
                }
                /* The first message waits for the connection; after that a
                 * full queue is ferretd's doing. */
                if (!told && i > 0) {
                        pthread_mutex_lock(&out_lock);
                        printf("full %ld\n", k);
                        fflush(stdout);
                        pthread_mutex_unlock(&out_lock);
                        told = true;
                }
                if (zmq_send(push, message, message_len, 0) != (int)message_len) {
                        fprintf(stderr, "message-flood: send failed: %s\n", zmq_strerror(errno));
                        exit(1);
                }
        }
        sockets[k] = push;    /* closed by main, when told */
        return NULL;
}

int main(int argc, char **argv)
{
        if (argc != 4 && !(argc == 5 && strcmp(argv[4], "tiny") == 0)) {
                fprintf(stderr, "Usage: message-flood DIR CONNECTIONS MESSAGES [tiny]\n");
                return 2;
        }
        dir = argv[1];
        long connections = atol(argv[2]), messages = atol(argv[3]);
        if (connections < 1 || connections > 256 || messages < connections) {
                fprintf(stderr, "message-flood: 1 to 256 connections, and at least one message each\n");
                return 2;
        }
        per_connection = messages / connections;
        if (argc == 5) {
                message = malloc(1);
                message[0] = 0x08;      /* a field's tag, and no value */
                message_len = 1;
        } else if (build_message() < 0)
                return 1;
        ctx = zmq_ctx_new();
        pthread_t threads[256];
        for (long k = 0; k < connections; k++)
                pthread_create(&threads[k], NULL, connection_main, (void *)(intptr_t)k);
        for (long k = 0; k < connections; k++)
                pthread_join(threads[k], NULL);
        printf("sent %ld of %zu bytes\n", per_connection * connections, message_len);
        fflush(stdout);
        char line[16];
        if (!fgets(line, sizeof(line), stdin))
                fprintf(stderr, "message-flood: stdin closed, leaving\n");
        /* Linger until every message is handed over to ferretd. */
        int forever = -1;
        for (long k = 0; k < connections; k++) {
                zmq_setsockopt(sockets[k], ZMQ_LINGER, &forever, sizeof(forever));
                zmq_close(sockets[k]);
        }
        zmq_ctx_term(ctx);
        return 0;
}
