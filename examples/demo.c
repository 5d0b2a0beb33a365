/* SPDX-License-Identifier: MIT */
/*
 * A tour of the Ferret client API: nested spans, literal and dynamic names,
 * tags of every type, statuses, and a span handed to another thread.
 *
 * Run it traced and look at the result:
 *
 *         ferret run --db demo.db build/examples/ferret-demo
 *         ferret analyze demo.db --tree
 */
#include <errno.h>
#include <ferret.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

static void work(long usec)
{
        struct timespec ts = { 0, usec * 1000 };
        nanosleep(&ts, NULL);
}

/* A worker thread continues the span it was given: its spans are children
 * of that span, although they run on another thread. */
static void *worker(void *arg)
{
        ferret_ctx_t parent = *(ferret_ctx_t *)arg;
        ferret_span_t *s = ferret_span_begin_in(parent, "worker");
        for (int i = 0; i < 3; i++)
                FERRET_SCOPE(chunk, "process_chunk") {
                        ferret_span_tag_int(chunk, "chunk", i);
                        work(2000);
                }
        ferret_span_end(s);
        return NULL;
}

static int fetch_user(int id)
{
        ferret_span_t *s = ferret_span_beginf("fetch_user:%d", id);
        ferret_span_tag_str(s, "table", "users");
        ferret_span_tag_int(s, "shard", id % 4);
        work(1000 + id * 300);
        if (id == 3) {
                ferret_span_set_status(s, FERRET_STATUS_ERROR, "user 3 not found");
                ferret_span_end(s);
                return -1;
        }
        if (id == 2) {
                ferret_span_tag_bool(s, "slow", true);
                ferret_span_set_status(s, FERRET_STATUS_WARNING, "slow query");
        }
        ferret_span_end(s);
        return 0;
}

int main(void)
{
        FERRET_SCOPE(batch, "process_batch") {
                ferret_span_tag_double(batch, "sample_rate", 0.25);
                for (int id = 1; id <= 4; id++)
                        fetch_user(id);

                FERRET_SCOPE(compute, "heavy_computation") {
                        volatile unsigned long sum = 0;
                        for (unsigned long i = 0; i < 3000000; i++)
                                sum += i * i;
                        (void)sum;
                        ferret_span_tag_int(compute, "iterations", 3000000);
                }

                pthread_t t;
                ferret_ctx_t ctx = ferret_span_context(batch);
                pthread_create(&t, NULL, worker, &ctx);
                pthread_join(t, NULL);
        }

        int r = ferret_flush(5000);
        if (r < 0 && r != -ECONNREFUSED)
                fprintf(stderr, "ferret-demo: spans not stored: %s\n", ferret_strerror(r));
        printf("ferret-demo: done\n");
        return 0;
}
