/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>

#include "lane-walk.h"
#include "wire.h"

struct open_span {
        uint32_t name;
        uint64_t end_ns;
};

struct walk {
        const struct lane_walk_ops *ops;
        void *ctx;
        uint32_t lane;                 /* UINT32_MAX before the first */
        struct open_span *stack;
        size_t depth, cap;
};

/* Closes the spans open at @until (all of them at UINT64_MAX). */
static int close_until(struct walk *w, uint64_t until)
{
        while (w->depth && (until == UINT64_MAX || w->stack[w->depth - 1].end_ns <= until)) {
                w->depth--;
                if (w->ops->close) {
                        int r = w->ops->close(w->ctx, w->stack[w->depth].name, w->stack[w->depth].end_ns, w->depth);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int end_lane(struct walk *w)
{
        if (w->lane == UINT32_MAX)
                return 0;
        int r = close_until(w, UINT64_MAX);
        return r < 0 ? r : w->ops->lane_end ? w->ops->lane_end(w->ctx) : 0;
}

static int on_span(void *ctx, const struct lane_span *sp)
{
        struct walk *w = ctx;
        int r;
        if (sp->lane != w->lane) {
                if ((r = end_lane(w)) < 0)
                        return r;
                w->lane = sp->lane;
                if (w->ops->lane && (r = w->ops->lane(w->ctx, sp->lane)) < 0)
                        return r;
        }
        if ((r = close_until(w, sp->start_ns)) < 0)
                return r;
        uint64_t end = sp->end_ns;
        if (w->depth && end > w->stack[w->depth - 1].end_ns)
                end = w->stack[w->depth - 1].end_ns;
        if (wire_grow((void **)&w->stack, &w->cap, w->depth + 1, sizeof(*w->stack)) < 0)
                return -ENOMEM;
        if (w->ops->open && (r = w->ops->open(w->ctx, sp, end, w->depth)) < 0)
                return r;
        w->stack[w->depth++] = (struct open_span){ .name = sp->name, .end_ns = end };
        return 0;
}

int lane_walk(struct lane_sort *sort, const struct lane_walk_ops *ops, void *ctx)
{
        struct walk w = { .ops = ops, .ctx = ctx, .lane = UINT32_MAX };
        int r = lane_sort_each(sort, on_span, &w);
        if (r >= 0)
                r = end_lane(&w);
        free(w.stack);
        return r;
}
