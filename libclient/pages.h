/* SPDX-License-Identifier: MIT */
/*
 * Memory straight from mmap, not malloc: the library's first allocation on
 * a thread may come from a signal handler that interrupted malloc there.
 * Both return NULL on failure; the memory goes back with munmap().
 */
#pragma once

#include <stddef.h>
#include <sys/mman.h>

/* Zeroed memory. */
static inline void *map_zeroed(size_t size)
{
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? NULL : p;
}

/* Address space for arrays that grow as used: pages are backed when first
 * touched, and not charged against the commit limit before. */
static inline void *map_reserved(size_t size)
{
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        return p == MAP_FAILED ? NULL : p;
}
