/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"

struct counters counters_g;

uint64_t now_mono_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t now_wall_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int acks_init(struct acks *a)
{
        *a = (struct acks){ 0 };
        pthread_mutex_init(&a->lock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&a->published, &ca);
        pthread_condattr_destroy(&ca);
        a->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        return a->event_fd < 0 ? -errno : 0;
}

void acks_free(struct acks *a)
{
        u64map_free(&a->stored);
        u64map_free(&a->older);
        if (a->event_fd >= 0)
                close(a->event_fd);
        pthread_mutex_destroy(&a->lock);
        pthread_cond_destroy(&a->published);
}

void acks_publish(struct acks *a, const struct u64map *pending)
{
        if (!pending->n)
                return;
        pthread_mutex_lock(&a->lock);
        /* Between publishes only: what one commit stored stays together. */
        if (a->stored.n >= ACKS_GENERATION) {
                u64map_free(&a->older);
                a->older = a->stored;
                a->stored = (struct u64map){ 0 };
        }
        for (size_t i = 0; i < pending->cap; i++) {
                uint64_t old;
                if (!pending->keys[i])
                        continue;
                if (!u64map_get(&a->stored, pending->keys[i], &old) || old < pending->values[i])
                        u64map_put(&a->stored, pending->keys[i], pending->values[i]);
        }
        pthread_cond_broadcast(&a->published);
        pthread_mutex_unlock(&a->lock);
        uint64_t one = 1;
        ssize_t r = write(a->event_fd, &one, sizeof(one));
        (void)r;
}

uint64_t acks_stored(struct acks *a, uint64_t client_id)
{
        uint64_t seq = 0;
        pthread_mutex_lock(&a->lock);
        if (!u64map_get(&a->stored, client_id, &seq))
                u64map_get(&a->older, client_id, &seq);
        pthread_mutex_unlock(&a->lock);
        return seq;
}

int acks_wait(struct acks *a, uint64_t client_id, uint64_t seq, uint64_t until_mono_ns)
{
        struct timespec ts = { .tv_sec = (time_t)(until_mono_ns / 1000000000u),
                               .tv_nsec = (long)(until_mono_ns % 1000000000u) };
        uint64_t stored = 0;
        int r = 0;
        pthread_mutex_lock(&a->lock);
        for (;;) {
                if (!u64map_get(&a->stored, client_id, &stored))
                        u64map_get(&a->older, client_id, &stored);
                if (stored >= seq || r == ETIMEDOUT)
                        break;
                r = pthread_cond_timedwait(&a->published, &a->lock, &ts);
        }
        pthread_mutex_unlock(&a->lock);
        return stored >= seq ? 0 : -ETIMEDOUT;
}
