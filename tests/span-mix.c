/* SPDX-License-Identifier: MIT */
/*
 * A program for the export tests: THREADS threads each record SPANS spans
 * as seeded random trees (a name pool per depth, so that no name nests in
 * itself), with tags of every type, some errors and warnings, and now and
 * then an async span (one at a time on a thread) around nested work. Each
 * thread's spans nest, so that what a viewer shows for a thread and a name
 * is the sum of their durations, which the test knows from the stored
 * spans.
 *
 *   span-mix SEED THREADS SPANS
 */
#include <ferret.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define MAX_DEPTH 4
static const char *const names[MAX_DEPTH][3] = {
        { "request", "batch", "job" },
        { "parse", "plan", "query" },
        { "read", "decode", "lookup" },
        { "hash", "copy", "compare" },
};

struct worker {
        unsigned seed;
        long spans, made;
};

static unsigned next(unsigned *x)
{
        *x = *x * 1103515245u + 12345u;
        return *x >> 8;
}

static void busy(unsigned ns)
{
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        do
                clock_gettime(CLOCK_MONOTONIC, &b);
        while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) < (long)ns);
}

static void tree(struct worker *w, int depth)
{
        if (w->made >= w->spans)
                return;
        ferret_span_t *s = ferret_span_begin(names[depth][next(&w->seed) % 3]);
        w->made++;
        unsigned r = next(&w->seed) % 100;
        if (r < 5)
                ferret_span_set_status(s, FERRET_STATUS_ERROR, "failed on purpose");
        else if (r < 10)
                ferret_span_set_status(s, FERRET_STATUS_WARNING, "slow");
        if (r % 7 == 0) {
                ferret_span_tag_str(s, "table", "users");
                ferret_span_tag_int(s, "rows", (int64_t)r - 50);
                ferret_span_tag_double(s, "ratio", r / 3.0);
                ferret_span_tag_bool(s, "cached", r & 1);
        }
        busy(200 + next(&w->seed) % 3000);
        if (depth + 1 < MAX_DEPTH)
                for (unsigned k = next(&w->seed) % 3; k > 0; k--)
                        tree(w, depth + 1);
        busy(100 + next(&w->seed) % 500);
        ferret_span_end(s);
}

static void *work(void *arg)
{
        struct worker *w = arg;
        while (w->made < w->spans) {
                if (next(&w->seed) % 20 == 0) {
                        ferret_span_t *a = ferret_span_begin("await_io");
                        ferret_span_set_kind(a, FERRET_KIND_ASYNC);
                        w->made++;
                        tree(w, 1);
                        busy(500);
                        ferret_span_end(a);
                } else {
                        tree(w, 0);
                }
        }
        return NULL;
}

int main(int argc, char **argv)
{
        if (argc != 4) {
                fprintf(stderr, "usage: span-mix SEED THREADS SPANS\n");
                return 2;
        }
        unsigned seed = (unsigned)strtoul(argv[1], NULL, 10);
        int threads = atoi(argv[2]);
        long spans = atol(argv[3]);
        pthread_t t[64];
        struct worker w[64];
        if (threads < 1 || threads > 64 || spans < 1)
                return 2;
        for (int i = 0; i < threads; i++) {
                w[i] = (struct worker){ .seed = seed * 7919u + (unsigned)i, .spans = spans };
                pthread_create(&t[i], NULL, work, &w[i]);
        }
        for (int i = 0; i < threads; i++)
                pthread_join(t[i], NULL);
        return ferret_flush(10000) == 0 ? 0 : 1;
}
