/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "retain.h"

static struct retained_batch *at(struct retain *r, size_t i)
{
        return &r->slot[(r->first + i) % RETAIN_MAX_BATCHES];
}

static void drop_oldest(struct retain *r, uint64_t *evicted_unsent)
{
        struct retained_batch *b = at(r, 0);
        if (r->n_sent)
                r->n_sent--;
        else if (evicted_unsent)
                *evicted_unsent += b->spans;
        r->bytes -= b->len;
        free(b->data);
        *b = (struct retained_batch){ 0 };
        r->first = (r->first + 1) % RETAIN_MAX_BATCHES;
        r->n--;
}

int retain_push(struct retain *r, uint64_t seq, uint64_t spans, const void *data, size_t len,
                uint64_t *evicted_unsent)
{
        uint8_t *copy = malloc(len);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, data, len);
        while (r->n && (r->n == RETAIN_MAX_BATCHES || r->bytes + len > RETAIN_MAX_BYTES))
                drop_oldest(r, evicted_unsent);
        *at(r, r->n) = (struct retained_batch){ seq, spans, copy, len };
        r->n++;
        r->bytes += len;
        return 0;
}

void retain_acknowledged(struct retain *r, uint64_t stored_seq)
{
        /* Stored, so not lost, even if a rewind meant to send them again. */
        while (r->n && at(r, 0)->seq <= stored_seq)
                drop_oldest(r, NULL);
}

void retain_rewind(struct retain *r)
{
        r->n_sent = 0;
}

const struct retained_batch *retain_next_unsent(const struct retain *r)
{
        return r->n_sent < r->n ? &r->slot[(r->first + r->n_sent) % RETAIN_MAX_BATCHES] : NULL;
}

void retain_mark_sent(struct retain *r)
{
        if (r->n_sent < r->n)
                r->n_sent++;
}

uint64_t retain_first_seq(const struct retain *r, uint64_t otherwise)
{
        return r->n ? r->slot[r->first].seq : otherwise;
}

uint64_t retain_spans(const struct retain *r)
{
        uint64_t n = 0;
        for (size_t i = 0; i < r->n; i++)
                n += r->slot[(r->first + i) % RETAIN_MAX_BATCHES].spans;
        return n;
}

bool retain_has_sent(const struct retain *r)
{
        return r->n_sent > 0;
}

bool retain_would_evict_unsent(const struct retain *r, size_t len)
{
        size_t unsent = r->n - r->n_sent, unsent_bytes = 0;
        if (unsent == 0)
                return false;
        for (size_t i = r->n_sent; i < r->n; i++)
                unsent_bytes += r->slot[(r->first + i) % RETAIN_MAX_BATCHES].len;
        return unsent == RETAIN_MAX_BATCHES || unsent_bytes + len > RETAIN_MAX_BYTES;
}

void retain_free(struct retain *r)
{
        while (r->n)
                drop_oldest(r, NULL);
        *r = (struct retain){ 0 };
}
