/* SPDX-License-Identifier: MIT */
/*
 * A fixed array of notes, filled lock-free: a writer reserves an index,
 * writes the text, then marks it ready for the flusher. A run's summary
 * says what it needs to in far fewer than NOTES_MAX lines.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "encode.h"
#include "notes.h"

#define NOTES_MAX 32
#define NOTE_BYTES 512

static struct {
        _Atomic unsigned reserved;
        struct {
                _Atomic bool ready;
                char text[NOTE_BYTES];
        } slot[NOTES_MAX];
} notes_g;

void notes_add(const char *text)
{
        unsigned i = atomic_fetch_add(&notes_g.reserved, 1);
        if (i >= NOTES_MAX)
                return;
        size_t len = strnlen(text, NOTE_BYTES - 1);
        memcpy(notes_g.slot[i].text, text, len);
        notes_g.slot[i].text[len] = '\0';
        atomic_store_explicit(&notes_g.slot[i].ready, true, memory_order_release);
}

void notes_encode(struct encoder *e, unsigned *next)
{
        unsigned n = atomic_load(&notes_g.reserved);
        while (*next < n && *next < NOTES_MAX
               && atomic_load_explicit(&notes_g.slot[*next].ready, memory_order_acquire)
               && encoder_add_note(e, notes_g.slot[*next].text) == 0)
                (*next)++;
}

void notes_after_fork_child(void)
{
        for (unsigned i = 0; i < NOTES_MAX; i++)
                atomic_store(&notes_g.slot[i].ready, false);
        atomic_store(&notes_g.reserved, 0);
}
