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
