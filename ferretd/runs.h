/* SPDX-License-Identifier: MIT */
/*
 * The ingest thread's view of the runs it writes to: run records and
 * per-name statistics, kept in memory and written back with each commit
 * (so statistics always match the spans stored beside them). A run not
 * written to for a while is dropped from memory and reloaded on demand.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "handed-on.h"
#include "histogram.h"
#include "map.h"
#include "store.h"

struct recent_span;
struct recent_spans {
        struct recent_span *slots;    /* see recent.h */
        uint8_t *next;                /* per set, the way to replace next */
};

struct name_stats {
        uint64_t count, total_ns, self_ns, min_ns, max_ns, errors, warnings;
        uint64_t untimed;             /* of count: calls without a duration */
        struct histogram hist;
        bool dirty;
};

struct run_paths;

struct run {
        uint32_t number;
        char *id;
        uint64_t spans, first_ns, last_ns, dropped;
        uint32_t processes;
        struct strmap names;                /* name -> struct name_stats */
        struct run_paths *paths;            /* its call paths (paths.h) */
        struct u64map clients;              /* client id -> spans accounted for: stored or dropped */
        struct u64map client_seqs;          /* client id -> seq of its last batch accepted */
        /* A client's batches skipped over (counted lost) that may still
         * come, oldest first: the next one awaited, the first after them,
         * and what of the count is still lost. In memory only. */
        struct u64map gap_next, gap_end, gap_lost;
        /* Self time pending: children end first, and their time waits here
         * until their parent arrives. Per run, so that span ids one client
         * makes up cannot reach another run's spans. */
        struct u64map child_ns;             /* parent span id -> time of its children seen */
        struct u64map suspended_ns;         /* span id -> time of its suspension children seen */
        struct recent_spans recent;         /* its latest spans (recent.h) */
        struct handed_on handed_on;         /* children given their parent, waiting for it */
        bool dirty, named;                  /* named: its 'n' record is stored */
        bool trimmed;
        char **notes;
        size_t n_notes;
        uint64_t last_used_ns;
};

struct runs {
        struct store *store;
        struct strmap by_id;                /* run id -> struct run */
};

void runs_init(struct runs *rs, struct store *store);
void runs_free(struct runs *rs);
/* The run named @id, loaded from the store or created. */
int runs_get(struct runs *rs, const char *id, struct run **ret);
/* The statistics of @name in @run, created empty if new. */
struct name_stats *run_name_stats(struct run *run, const char *name);
void name_stats_add(struct name_stats *st, uint64_t duration_ns, uint64_t self_ns, unsigned status);
/* Calls counted but not recorded one by one: their average stands in for
 * each of them in the histogram. */
void name_stats_add_folded(struct name_stats *st, uint64_t count, uint64_t total_ns, uint64_t max_ns);
/* Calls known only by their number (a client's guard stopped timing them). */
void name_stats_add_untimed(struct name_stats *st, uint64_t count);
/* Adds a note to a run (kept once; a run holds at most RUN_MAX_NOTES). */
void run_add_note(struct run *run, const char *note);
#define RUN_MAX_NOTES 64
/* Distinct span names a run keeps statistics of; beyond, RUN_OTHER_NAMES. */
#define RUN_MAX_NAMES 100000u
#define RUN_OTHER_NAMES "(other names)"
/* Adds every dirty record to @b and marks them clean. */
void runs_write_dirty(struct runs *rs, struct store_batch *b);
/* Forgets run @id (removed from the store); nothing of it is written back. */
void runs_forget(struct runs *rs, const char *id);
/* Notes that run @id lost its oldest spans to the size bound. */
void runs_mark_trimmed(struct runs *rs, const char *id);
/* Forgets runs unused for @idle_ns (they are all clean after a commit). */
void runs_evict_idle(struct runs *rs, uint64_t now_ns, uint64_t idle_ns);

/* StoredStats <-> struct name_stats (the histogram is copied). */
int stats_from_stored(struct name_stats *st, const Ferretd__StoredStats *s);
void stats_to_stored(const struct name_stats *st, Ferretd__StoredStats *s);
