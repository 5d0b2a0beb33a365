/* SPDX-License-Identifier: MIT */
#include <stdlib.h>

#include "path.h"
#include "recent.h"

static size_t slot_of(uint64_t id)
{
        return (size_t)path_mix(id) & (RECENT_SPANS - 1);
}

void recent_put(struct recent_spans *r, const struct recent_span *s)
{
        if (!r->slots && !(r->slots = calloc(RECENT_SPANS, sizeof(*r->slots))))
                return;         /* then a late child is not counted, as before */
        r->slots[slot_of(s->id)] = *s;
}

struct recent_span *recent_get(struct recent_spans *r, uint64_t id)
{
        if (!r->slots || !id)
                return NULL;
        struct recent_span *s = &r->slots[slot_of(id)];
        return s->id == id ? s : NULL;
}

void recent_free(struct recent_spans *r)
{
        free(r->slots);
        r->slots = NULL;
}
