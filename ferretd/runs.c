/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "log.h"
#include "paths.h"
#include "recent.h"
#include "runs.h"
#include "wire.h"

void runs_init(struct runs *rs, struct store *store)
{
        *rs = (struct runs){ .store = store };
}

static void name_stats_free(void *p)
{
        struct name_stats *st = p;
        if (!st)
                return;
        hist_free(&st->hist);
        free(st);
}

static void run_free(void *p)
{
        struct run *run = p;
        if (!run)
                return;
        strmap_free(&run->names, name_stats_free);
        paths_free(run->paths);
        recent_free(&run->recent);
        handed_on_free(&run->handed_on);
        u64map_free(&run->clients);
        u64map_free(&run->client_seqs);
        u64map_free(&run->gap_next);
        u64map_free(&run->gap_end);
        u64map_free(&run->gap_lost);
        u64map_free(&run->child_ns);
        u64map_free(&run->suspended_ns);
        for (size_t i = 0; i < run->n_notes; i++)
                free(run->notes[i]);
        free(run->notes);
        free(run->id);
        free(run);
}

void runs_free(struct runs *rs)
{
        strmap_free(&rs->by_id, run_free);
}

int stats_from_stored(struct name_stats *st, const Ferretd__StoredStats *s)
{
        *st = (struct name_stats){
                .count = s->count, .total_ns = s->total_ns, .min_ns = s->min_ns, .max_ns = s->max_ns,
                .errors = s->errors, .warnings = s->warnings, .self_ns = s->self_ns, .untimed = s->untimed,
        };
        return hist_set(&st->hist, s->hist_first, s->hist, s->n_hist);
}

/* The stored record points into @st's histogram: use it before @st changes. */
void stats_to_stored(const struct name_stats *st, Ferretd__StoredStats *s)
{
        *s = (Ferretd__StoredStats)FERRETD__STORED_STATS__INIT;
        s->count = st->count;
        s->total_ns = st->total_ns;
        s->min_ns = st->min_ns;
        s->max_ns = st->max_ns;
        s->errors = st->errors;
        s->warnings = st->warnings;
        s->self_ns = st->self_ns;
        s->untimed = st->untimed;
        s->hist_first = st->hist.first;
        s->n_hist = st->hist.n;
        s->hist = st->hist.counts;
}

static int load_stats(uint32_t number, const char *name, const void *value, size_t value_len, void *userdata)
{
        struct run *run = userdata;

        Ferretd__StoredStats *s = ferretd__stored_stats__unpack(NULL, value_len, value);
        struct name_stats *st = calloc(1, sizeof(*st));
        int r = -ENOMEM;
        if (s && st && stats_from_stored(st, s) == 0 && strmap_put(&run->names, name, st) == 0) {
                st = NULL;
                r = 0;
        }
        if (!s)
                r = log_warning_errno(EIO, "Damaged statistics record for '%s' in run %s, ignoring", name, run->id);
        name_stats_free(st);
        ferretd__stored_stats__free_unpacked(s, NULL);
        return r < 0 && r != -EIO ? r : 0;
}

static int run_load(struct runs *rs, struct run *run)
{
        Ferret__RunInfo *info;
        int r = store_load_run(rs->store, run->number, &info);
        if (r < 0)
                return r;
        run->spans = info->spans;
        run->first_ns = info->first_ns ? info->first_ns : UINT64_MAX;
        run->last_ns = info->last_ns;
        run->dropped = info->dropped;
        run->processes = info->processes;
        run->trimmed = info->trimmed;
        for (size_t i = 0; i < info->n_notes; i++)
                run_add_note(run, info->notes[i]);
        ferret__run_info__free_unpacked(info, NULL);

        r = store_scan_stats(rs->store, run->number, load_stats, run);
        return r < 0 ? r : paths_load(rs->store, run->number, &run->paths);
}

int runs_get(struct runs *rs, const char *id, struct run **ret)
{
        struct run *run = strmap_get(&rs->by_id, id);
        if (run) {
                *ret = run;
                return 0;
        }
        run = calloc(1, sizeof(*run));
        if (!run || !(run->id = strdup(id))) {
                free(run);
                return -ENOMEM;
        }
        int r = store_run_number(rs->store, id, &run->number);
        if (r == 0) {
                run->named = true;
                r = run_load(rs, run);
        } else if (r == -ENOENT) {
                run->number = store_allocate_run(rs->store);
                run->first_ns = UINT64_MAX;
                run->dirty = true;
                r = paths_load(NULL, run->number, &run->paths);
        }
        if (r == 0)
                r = strmap_put(&rs->by_id, id, run);
        if (r < 0) {
                run_free(run);
                return r;
        }
        *ret = run;
        return 0;
}

struct name_stats *run_name_stats(struct run *run, const char *name)
{
        struct name_stats *st = strmap_get(&run->names, name);
        if (st)
                return st;
        if (run->names.n >= RUN_MAX_NAMES) {
                /* A client that makes up names without end (an id in each)
                 * would grow the run's statistics without end: past the
                 * bound, new names share one row, and the run says so. */
                char note[96];
                snprintf(note, sizeof(note), "more than %u span names: the others are counted as %s",
                         RUN_MAX_NAMES, RUN_OTHER_NAMES);
                run_add_note(run, note);
                if (strcmp(name, RUN_OTHER_NAMES) != 0 && (st = strmap_get(&run->names, RUN_OTHER_NAMES)))
                        return st;
                name = RUN_OTHER_NAMES;
        }
        st = calloc(1, sizeof(*st));
        if (!st)
                return NULL;
        st->min_ns = UINT64_MAX;
        if (strmap_put(&run->names, name, st) < 0) {
                free(st);
                return NULL;
        }
        return st;
}

void name_stats_add(struct name_stats *st, uint64_t d, uint64_t self, unsigned status)
{
        st->count++;
        st->total_ns += d;
        st->self_ns += self;
        if (d < st->min_ns)
                st->min_ns = d;
        if (d > st->max_ns)
                st->max_ns = d;
        if (status == WIRE_STATUS_ERROR)
                st->errors++;
        else if (status == WIRE_STATUS_WARNING)
                st->warnings++;
        hist_add(&st->hist, d, 1);
        st->dirty = true;
}

void name_stats_add_folded(struct name_stats *st, uint64_t count, uint64_t total, uint64_t max)
{
        if (!count)
                return;
        uint64_t avg = total / count;
        st->count += count;
        st->total_ns += total;
        st->self_ns += total;
        if (avg < st->min_ns)
                st->min_ns = avg;
        if (max > st->max_ns)
                st->max_ns = max;
        hist_add(&st->hist, avg, count);
        st->dirty = true;
}

void name_stats_add_untimed(struct name_stats *st, uint64_t count)
{
        if (!count)
                return;
        st->count += count;
        st->untimed += count;
        st->dirty = true;
}

void run_add_note(struct run *run, const char *note)
{
        for (size_t i = 0; i < run->n_notes; i++)
                if (strcmp(run->notes[i], note) == 0)
                        return;
        if (run->n_notes >= RUN_MAX_NOTES)
                return;
        char **p = realloc(run->notes, (run->n_notes + 1) * sizeof(*p));
        if (!p)
                return;
        run->notes = p;
        if ((run->notes[run->n_notes] = strdup(note))) {
                run->n_notes++;
                run->dirty = true;
        }
}

void runs_write_dirty(struct runs *rs, struct store_batch *b)
{
        STRMAP_FOREACH(&rs->by_id, e) {
                struct run *run = e->value;
                STRMAP_FOREACH(&run->names, n) {
                        struct name_stats *st = n->value;
                        if (!st->dirty)
                                continue;
                        Ferretd__StoredStats s;
                        stats_to_stored(st, &s);
                        store_batch_put_stats(b, run->number, n->key, &s);
                        st->dirty = false;
                }
                paths_write_dirty(run->paths, run->number, b);
                if (!run->dirty)
                        continue;
                if (!run->named) {
                        store_batch_put_run_name(b, run->id, run->number);
                        run->named = true;
                }
                Ferret__RunInfo info = FERRET__RUN_INFO__INIT;
                info.run = run->id;
                info.spans = run->spans;
                info.first_ns = run->first_ns == UINT64_MAX ? 0 : run->first_ns;
                info.last_ns = run->last_ns;
                info.dropped = run->dropped;
                info.processes = run->processes;
                info.trimmed = run->trimmed;
                info.n_notes = run->n_notes;
                info.notes = run->notes;
                store_batch_put_run(b, run->number, &info);
                run->dirty = false;
        }
}

/* The map does not delete: it is rebuilt without the runs that go. Every
 * run is clean here (after a commit), so nothing is lost. */
static void runs_drop(struct runs *rs, bool (*drop)(const struct run *run, const void *arg), const void *arg)
{
        bool any = false;
        STRMAP_FOREACH(&rs->by_id, e)
                any = any || drop(e->value, arg);
        if (!any)
                return;
        struct strmap keep = { 0 };
        STRMAP_FOREACH(&rs->by_id, e) {
                struct run *run = e->value;
                if (drop(run, arg) || strmap_put(&keep, e->key, run) < 0)
                        run_free(run);
        }
        strmap_free(&rs->by_id, NULL);
        rs->by_id = keep;
}

struct idle_arg {
        uint64_t now_ns, idle_ns;
};

static bool is_idle(const struct run *run, const void *arg)
{
        const struct idle_arg *a = arg;
        return a->now_ns - run->last_used_ns > a->idle_ns;
}

void runs_evict_idle(struct runs *rs, uint64_t now_ns, uint64_t idle_ns)
{
        struct idle_arg a = { now_ns, idle_ns };
        runs_drop(rs, is_idle, &a);
}

static bool is_named(const struct run *run, const void *arg)
{
        return strcmp(run->id, arg) == 0;
}

void runs_forget(struct runs *rs, const char *id)
{
        runs_drop(rs, is_named, id);
}

void runs_mark_trimmed(struct runs *rs, const char *id)
{
        struct run *run;
        if (runs_get(rs, id, &run) == 0) {
                run->trimmed = true;
                run->dirty = true;
        }
}
