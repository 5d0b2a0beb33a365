/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"
#include "lane-sort.h"

/* Records read at once from each spilled run while merging. */
#define MERGE_READ_SPANS 4096

int lane_sort_init(struct lane_sort *s, size_t memory_spans)
{
        *s = (struct lane_sort){ .cap = memory_spans ? memory_spans : LANE_SORT_DEFAULT_SPANS };
        name_table_init(&s->names, LANE_SORT_MAX_NAMES);
        s->buf = malloc(s->cap * sizeof(*s->buf));
        return s->buf ? 0 : -ENOMEM;
}

static uint64_t lane_hash(uint32_t pid, uint32_t tid, bool async)
{
        uint64_t h = ((uint64_t)pid << 32 | tid) * 0x9E3779B97F4A7C15ull;
        return (h ^ (h >> 29) ^ async) * 0xBF58476D1CE4E5B9ull;
}

static int lanes_rehash(struct lane_sort *s, size_t n_slots)
{
        uint32_t *slots = calloc(n_slots, sizeof(*slots));
        if (!slots)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_lanes; i++) {
                const struct lane *l = &s->lanes[i];
                size_t k = lane_hash(l->pid, l->tid, l->async) & (n_slots - 1);
                while (slots[k])
                        k = (k + 1) & (n_slots - 1);
                slots[k] = (uint32_t)i + 1;
        }
        free(s->lane_slots);
        s->lane_slots = slots;
        s->n_lane_slots = n_slots;
        return 0;
}

static int64_t lane_of(struct lane_sort *s, uint32_t pid, uint32_t tid, bool async, const Ferret__Process *process)
{
        if ((s->n_lanes + 1) * 2 > s->n_lane_slots && lanes_rehash(s, s->n_lane_slots ? s->n_lane_slots * 2 : 64) < 0)
                return -ENOMEM;
        size_t k = lane_hash(pid, tid, async) & (s->n_lane_slots - 1);
        for (; s->lane_slots[k]; k = (k + 1) & (s->n_lane_slots - 1)) {
                const struct lane *l = &s->lanes[s->lane_slots[k] - 1];
                if (l->pid == pid && l->tid == tid && l->async == async)
                        return s->lane_slots[k] - 1;
        }
        if (wire_grow((void **)&s->lanes, &s->cap_lanes, s->n_lanes + 1, sizeof(*s->lanes)) < 0)
                return -ENOMEM;
        struct lane *l = &s->lanes[s->n_lanes];
        *l = (struct lane){ .pid = pid, .tid = tid, .async = async };
        char proc[300], thread[64];
        if (asprintf(&l->label, "%s, %s%s", export_process_label(process, pid, proc, sizeof(proc)),
                     export_thread_label(pid, tid, thread, sizeof(thread)), async ? ", async" : "") < 0) {
                l->label = NULL;
                return -ENOMEM;
        }
        s->lane_slots[k] = (uint32_t)s->n_lanes + 1;
        return (int64_t)s->n_lanes++;
}

static int by_lane_and_start(const void *a, const void *b)
{
        const struct lane_span *x = a, *y = b;
        if (x->lane != y->lane)
                return x->lane < y->lane ? -1 : 1;
        if (x->start_ns != y->start_ns)
                return x->start_ns < y->start_ns ? -1 : 1;
        /* The enclosing span first. */
        if (x->end_ns != y->end_ns)
                return x->end_ns > y->end_ns ? -1 : 1;
        return 0;
}

/* Sorts the buffer and writes it out as a run of its own. */
static int spill(struct lane_sort *s)
{
        qsort(s->buf, s->n, sizeof(*s->buf), by_lane_and_start);
        if (wire_grow((void **)&s->runs, &s->cap_runs, s->n_runs + 1, sizeof(*s->runs)) < 0)
                return -ENOMEM;
        FILE *f = tmpfile();
        if (!f)
                return -errno;
        if (fwrite(s->buf, sizeof(*s->buf), s->n, f) != s->n || fflush(f) != 0) {
                int e = errno ? errno : EIO;
                fclose(f);
                return -e;
        }
        rewind(f);
        s->runs[s->n_runs++] = f;
        s->n = 0;
        return 0;
}

int lane_sort_add(struct lane_sort *s, const Ferret__Process *process, const struct wire_spans *spans)
{
        for (size_t i = 0; i < spans->n; i++) {
                const struct wire_span *w = &spans->spans[i];
                bool async = w->flags & FERRET__SPAN_FLAG__SPAN_FLAG_ASYNC;
                int64_t lane = lane_of(s, w->pid, w->tid, async, process);
                int64_t name = lane < 0 ? lane : name_table_add(&s->names, w->name);
                if (name < 0)
                        return (int)name;
                if (s->n == s->cap) {
                        int r = spill(s);
                        if (r < 0)
                                return r;
                }
                uint64_t end = w->start_ns + w->duration_ns;
                s->buf[s->n++] = (struct lane_span){
                        .start_ns = w->start_ns,
                        .end_ns = end < w->start_ns ? UINT64_MAX : end,
                        .lane = (uint32_t)lane,
                        .name = (uint32_t)name,
                        .flags = w->flags,
                };
                s->lanes[lane].spans++;
        }
        return 0;
}

/* One spilled run being merged: a window of its records. */
struct cursor {
        FILE *f;
        struct lane_span *buf;
        size_t at, n;
};

static bool cursor_fill(struct cursor *c)
{
        if (c->at < c->n)
                return true;
        c->n = fread(c->buf, sizeof(*c->buf), MERGE_READ_SPANS, c->f);
        c->at = 0;
        return c->n > 0;
}

/* A binary min-heap of cursors by their current record. */
static void sift_down(struct cursor **h, size_t n, size_t i)
{
        for (;;) {
                size_t m = i, l = 2 * i + 1, r = l + 1;
                if (l < n && by_lane_and_start(&h[l]->buf[h[l]->at], &h[m]->buf[h[m]->at]) < 0)
                        m = l;
                if (r < n && by_lane_and_start(&h[r]->buf[h[r]->at], &h[m]->buf[h[m]->at]) < 0)
                        m = r;
                if (m == i)
                        return;
                struct cursor *t = h[i];
                h[i] = h[m];
                h[m] = t;
                i = m;
        }
}

static int merge(struct lane_sort *s, int (*fn)(void *ctx, const struct lane_span *sp), void *ctx)
{
        size_t k = s->n_runs;
        struct cursor *cursors = calloc(k, sizeof(*cursors));
        struct cursor **heap = calloc(k, sizeof(*heap));
        struct lane_span *bufs = malloc(k * MERGE_READ_SPANS * sizeof(*bufs));
        size_t n = 0;
        int r = 0;
        if (!cursors || !heap || !bufs) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < k; i++) {
                cursors[i] = (struct cursor){ .f = s->runs[i], .buf = bufs + i * MERGE_READ_SPANS };
                if (cursor_fill(&cursors[i]))
                        heap[n++] = &cursors[i];
        }
        for (size_t i = n / 2; i-- > 0;)
                sift_down(heap, n, i);
        while (n > 0 && r >= 0) {
                struct cursor *c = heap[0];
                r = fn(ctx, &c->buf[c->at++]);
                if (!cursor_fill(c)) {
                        if (ferror(c->f))
                                r = r < 0 ? r : -EIO;
                        heap[0] = heap[--n];
                }
                sift_down(heap, n, 0);
        }
out:
        free(cursors);
        free(heap);
        free(bufs);
        return r;
}

int lane_sort_each(struct lane_sort *s, int (*fn)(void *ctx, const struct lane_span *sp), void *ctx)
{
        if (s->n_runs == 0) {
                qsort(s->buf, s->n, sizeof(*s->buf), by_lane_and_start);
                for (size_t i = 0; i < s->n; i++) {
                        int r = fn(ctx, &s->buf[i]);
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        if (s->n) {
                int r = spill(s);
                if (r < 0)
                        return r;
        }
        /* The spilled runs' memory is freed before the merge takes its own. */
        free(s->buf);
        s->buf = NULL;
        s->cap = 0;
        return merge(s, fn, ctx);
}

void lane_sort_free(struct lane_sort *s)
{
        free(s->buf);
        for (size_t i = 0; i < s->n_runs; i++)
                fclose(s->runs[i]);
        free(s->runs);
        for (size_t i = 0; i < s->n_lanes; i++)
                free(s->lanes[i].label);
        free(s->lanes);
        free(s->lane_slots);
        name_table_free(&s->names);
        *s = (struct lane_sort){ 0 };
}
