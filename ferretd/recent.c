/* SPDX-License-Identifier: MIT */
#include <stdlib.h>

#include "path.h"
#include "recent.h"

/* Four ways a set, the oldest replaced first: a span is forgotten after
 * four later ones fell in its set, not one, so that the few spans between
 * a parent and its late child seldom push it out. */
#define WAYS 4
#define SETS (RECENT_SPANS / WAYS)

static struct recent_span *set_of(struct recent_spans *r, uint64_t id)
{
        return &r->slots[((size_t)path_mix(id) & (SETS - 1)) * WAYS];
}

void recent_put(struct recent_spans *r, const struct recent_span *s)
{
        if (!r->slots && !(r->slots = calloc(RECENT_SPANS, sizeof(*r->slots))))
                return;         /* then a late child is not counted, as before */
        if (!r->next && !(r->next = calloc(SETS, sizeof(*r->next))))
                return;
        size_t set = (size_t)path_mix(s->id) & (SETS - 1);
        r->slots[set * WAYS + r->next[set]] = *s;
        r->next[set] = (uint8_t)((r->next[set] + 1) % WAYS);
}

struct recent_span *recent_get(struct recent_spans *r, uint64_t id)
{
        if (!r->slots || !id)
                return NULL;
        struct recent_span *set = set_of(r, id);
        for (int w = 0; w < WAYS; w++)
                if (set[w].id == id)
                        return &set[w];
        return NULL;
}

void recent_free(struct recent_spans *r)
{
        free(r->slots);
        free(r->next);
        r->slots = NULL;
        r->next = NULL;
}
