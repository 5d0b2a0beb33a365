/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "held.h"

int held_push(struct held *h, zmq_msg_t *msg)
{
        if (h->n == h->cap) {
                size_t cap = h->cap ? 2 * h->cap : 64;
                zmq_msg_t *msgs = malloc(cap * sizeof(*msgs));
                if (!msgs)
                        return -ENOMEM;
                /* zmq_msg_t may be moved with zmq_msg_move only. */
                for (size_t i = 0; i < h->n; i++) {
                        zmq_msg_init(&msgs[i]);
                        zmq_msg_move(&msgs[i], &h->msgs[(h->first + i) % h->cap]);
                        zmq_msg_close(&h->msgs[(h->first + i) % h->cap]);
                }
                free(h->msgs);
                h->msgs = msgs;
                h->cap = cap;
                h->first = 0;
        }
        zmq_msg_t *slot = &h->msgs[(h->first + h->n) % h->cap];
        size_t size = zmq_msg_size(msg);
        if (size < HELD_COPY_BELOW) {
                if (zmq_msg_init_size(slot, size) < 0)
                        return -ENOMEM;
                memcpy(zmq_msg_data(slot), zmq_msg_data(msg), size);
                zmq_msg_close(msg);
                zmq_msg_init(msg);
        } else {
                zmq_msg_init(slot);
                zmq_msg_move(slot, msg);
        }
        h->bytes += size + HELD_MESSAGE_OVERHEAD;
        h->n++;
        return 0;
}

zmq_msg_t *held_front(struct held *h)
{
        return h->n ? &h->msgs[h->first] : NULL;
}

void held_pop(struct held *h)
{
        zmq_msg_t *m = &h->msgs[h->first];
        h->bytes -= zmq_msg_size(m) + HELD_MESSAGE_OVERHEAD;
        zmq_msg_close(m);
        h->first = (h->first + 1) % h->cap;
        h->n--;
}

void held_free(struct held *h)
{
        while (h->n)
                held_pop(h);
        free(h->msgs);
        *h = (struct held){ 0 };
}
