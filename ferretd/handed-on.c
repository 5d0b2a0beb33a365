/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>

#include "handed-on.h"

int handed_on_add(struct handed_on *h, uint64_t parent_id, uint64_t start_ns, uint64_t ns)
{
        if (h->waiting >= HANDED_ON_MAX)
                return -ENOSPC;
        uint32_t i;
        if (h->free) {
                i = h->free - 1;
                h->free = h->children[i].next;
        } else {
                if (h->n == h->cap) {
                        uint32_t cap = h->cap ? 2 * h->cap : 256;
                        struct handed_on_child *c = realloc(h->children, cap * sizeof(*c));
                        if (!c)
                                return -ENOMEM;
                        h->children = c;
                        h->cap = cap;
                }
                i = h->n++;
        }
        uint64_t next = 0;
        u64map_get(&h->first, parent_id, &next);
        if (u64map_put(&h->first, parent_id, (uint64_t)i + 1) < 0) {
                h->children[i].next = h->free;
                h->free = i + 1;
                return -ENOMEM;
        }
        h->children[i] = (struct handed_on_child){ .start_ns = start_ns, .ns = ns, .next = (uint32_t)next };
        h->waiting++;
        return 0;
}

uint64_t handed_on_take(struct handed_on *h, uint64_t parent_id, uint64_t end_ns)
{
        uint64_t at, sum = 0;
        if (!h->waiting || !u64map_take(&h->first, parent_id, &at))
                return 0;
        while (at) {
                struct handed_on_child *c = &h->children[at - 1];
                uint32_t next = c->next;
                if (c->start_ns < end_ns)
                        sum += c->ns;
                c->next = h->free;
                h->free = (uint32_t)at;
                h->waiting--;
                at = next;
        }
        return sum;
}

void handed_on_free(struct handed_on *h)
{
        u64map_free(&h->first);
        free(h->children);
        *h = (struct handed_on){ 0 };
}
