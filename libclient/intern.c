/* SPDX-License-Identifier: MIT */
/*
 * Names known at compile time get a number on their first use, so the hot
 * path records 4 bytes instead of copying the string. The table only grows;
 * readers (the flusher) look numbers up without a lock. Its memory comes
 * from mmap, not malloc: a call site's first span may be in a signal handler
 * that interrupted malloc.
 */
#include <string.h>

#include <pthread.h>
#include <stdatomic.h>

#include "intern.h"
#include "pages.h"
#include "record.h"

#define CHUNK_BITS 10
#define CHUNK_SIZE (1u << CHUNK_BITS)
#define MAX_CHUNKS 256                    /* 262,143 distinct names */
#define HASH_SLOTS (CHUNK_SIZE * MAX_CHUNKS * 2)

struct name {
        const char *text;
        size_t len;
};

static pthread_mutex_t intern_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(struct name *) chunks[MAX_CHUNKS];
static uint32_t *hash_slots;
static uint32_t n_names = 1;              /* 0 means "not interned" */
static char *text_next, *text_end;        /* room for copies of names */

#define TEXT_BLOCK (64u << 10)

/* A copy of @len bytes of @name and a NUL, from blocks never freed (like
 * the table). Called with intern_lock held. */
static char *copy_text(const char *name, size_t len)
{
        if ((size_t)(text_end - text_next) < len + 1) {
                char *block = map_zeroed(TEXT_BLOCK);
                if (!block)
                        return NULL;
                text_next = block;
                text_end = block + TEXT_BLOCK;
        }
        char *copy = text_next;
        memcpy(copy, name, len);
        copy[len] = '\0';
        text_next += len + 1;
        return copy;
}

static uint32_t hash_str(const char *s)
{
        uint32_t h = 2166136261u;
        for (; *s; s++)
                h = (h ^ (uint8_t)*s) * 16777619u;
        return h;
}

/* Returns the name's number, or 0 (the caller then copies the name) when the
 * table is full or memory is short. Copies the name: a literal in a library
 * that is unloaded later must not leave a dangling pointer. A caller that
 * shares the number with other threads (a call site's cache) stores it with
 * release order, and they load it with acquire: see intern_lookup(). */
/* Set while this thread holds intern_lock, against a signal handler that
 * would take it again: the handler's span then copies its name instead. */
static __thread bool interning __attribute__((tls_model("initial-exec")));

uint32_t intern_name(const char *name)
{
        uint32_t id = 0;
        if (!name || interning)
                return 0;
        interning = true;
        atomic_signal_fence(memory_order_seq_cst);
        pthread_mutex_lock(&intern_lock);
        if (!hash_slots && !(hash_slots = map_zeroed(HASH_SLOTS * sizeof(*hash_slots))))
                goto out;

        uint32_t h = hash_str(name) % HASH_SLOTS;
        for (; hash_slots[h]; h = (h + 1) % HASH_SLOTS) {
                const struct name *n = &atomic_load(&chunks[hash_slots[h] >> CHUNK_BITS])[hash_slots[h] & (CHUNK_SIZE - 1)];
                if (strcmp(n->text, name) == 0) {
                        id = hash_slots[h];
                        goto out;
                }
        }
        if (n_names >= CHUNK_SIZE * MAX_CHUNKS)
                goto out;
        struct name *chunk = atomic_load(&chunks[n_names >> CHUNK_BITS]);
        if (!chunk) {
                chunk = map_zeroed(CHUNK_SIZE * sizeof(*chunk));
                if (!chunk)
                        goto out;
                atomic_store(&chunks[n_names >> CHUNK_BITS], chunk);
        }
        size_t len = text_len(name, NAME_MAX_BYTES);
        char *copy = copy_text(name, len);
        if (!copy)
                goto out;
        chunk[n_names & (CHUNK_SIZE - 1)] = (struct name){ copy, len };
        id = n_names++;
        hash_slots[h] = id;
out:
        pthread_mutex_unlock(&intern_lock);
        atomic_signal_fence(memory_order_seq_cst);
        interning = false;
        return id;
}

/* fork(): held across it, so the child never inherits it locked by a
 * thread that does not exist there. */
void intern_before_fork(void)
{
        pthread_mutex_lock(&intern_lock);
}

void intern_after_fork(bool child)
{
        if (child)
                pthread_mutex_init(&intern_lock, NULL);
        else
                pthread_mutex_unlock(&intern_lock);
}

/* The caller got @id through a record, which the ring published with
 * release order. The thread that wrote the record either interned the name
 * itself or read the number from a call site's cache, which intern_name()'s
 * caller stores with release and every reader loads with acquire: either
 * way the entry below was written before the record, with no lock. */
const char *intern_lookup(uint32_t id, size_t *ret_len)
{
        const struct name *n = &atomic_load(&chunks[id >> CHUNK_BITS])[id & (CHUNK_SIZE - 1)];
        *ret_len = n->len;
        return n->text;
}
