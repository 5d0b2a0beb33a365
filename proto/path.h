/* SPDX-License-Identifier: MIT */
/*
 * Call-path identities. A span's path is its parent's path stepped by a key
 * of its name, computed by the client when the span begins (it knows the
 * parent then; ferretd, which receives children before their parents, does
 * not). Keys are 64-bit: a hash of the name's bytes, or a number the process
 * gives the name (an interned name, a function's address) mixed with the
 * process's random salt, so that one id never stands for two names. The same
 * name path in two processes may get two ids: ferretd merges paths by name
 * when it builds a tree, so ids only need to be fine enough, never coarse.
 *
 * A span whose parent's path the client cannot know (a context from another
 * process, or one it has forgotten) steps from the parent's foreign path, a
 * function of the parent's span id alone: ferretd recognises it and links it
 * to the parent's path when it sees the parent.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A span without a path (an older client, a span received over OTLP). */
#define PATH_NONE 0

/* The finaliser of MurmurHash3: each output bit depends on every input bit. */
static inline uint64_t path_mix(uint64_t x)
{
        x ^= x >> 33;
        x *= 0xff51afd7ed558ccdULL;
        x ^= x >> 33;
        x *= 0xc4ceb9fe1a85ec53ULL;
        x ^= x >> 33;
        return x;
}

/* The path of a span named by @key under a parent at @parent (PATH_NONE for
 * a root). Never PATH_NONE. */
static inline uint64_t path_step(uint64_t parent, uint64_t key)
{
        uint64_t p = path_mix(parent * 0x9e3779b97f4a7c15ULL + key);
        return p ? p : 1;
}

/* The key of a name given as bytes: the same in every process. */
static inline uint64_t path_key_bytes(const char *s, size_t len)
{
        uint64_t h = 0xcbf29ce484222325ULL ^ len;
        size_t i = 0;
        for (; i + 8 <= len; i += 8) {
                uint64_t w;
                memcpy(&w, s + i, 8);
                h = (h ^ w) * 0x100000001b3ULL;
                h ^= h >> 29;
        }
        uint64_t tail = 0;
        memcpy(&tail, s + i, len - i);
        return path_mix(h ^ tail);
}

/* The key of a name a process knows by a number of its own. */
static inline uint64_t path_key_local(uint64_t salt, uint64_t number)
{
        return (number * 0xd6e8feb86659fd93ULL) ^ salt;   /* one to one; path_step mixes */
}

/* The stand-in parent path of a span whose parent, @parent_span_id, is known
 * only by its id. */
static inline uint64_t path_foreign(uint64_t parent_span_id)
{
        return path_mix(parent_span_id ^ 0x5bd1e9955bd1e995ULL) | 1;
}
