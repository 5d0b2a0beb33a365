/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "retention.h"

/* Trimming the last run removes this share of its oldest batches a step. */
#define TRIM_FRACTION 0.25
/* Steps of one pass: a bound that cannot be met (the write-ahead log alone
 * exceeds it) must not empty the database. */
#define MAX_STEPS 64

struct run_entry {
        uint32_t number;
        char *id;
        uint64_t first_ns, last_ns;
};

struct run_list {
        struct run_entry *runs;
        size_t n, cap;
};

static int visit_run(uint32_t number, const void *value, size_t value_len, void *userdata)
{
        struct run_list *l = userdata;
        Ferret__RunInfo *info = ferret__run_info__unpack(NULL, value_len, value);
        if (!info)
                return 0;
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 64;
                struct run_entry *p = realloc(l->runs, cap * sizeof(*p));
                if (!p) {
                        ferret__run_info__free_unpacked(info, NULL);
                        return -ENOMEM;
                }
                l->runs = p;
                l->cap = cap;
        }
        l->runs[l->n] = (struct run_entry){
                .number = number,
                .id = strdup(info->run), .first_ns = info->first_ns, .last_ns = info->last_ns,
        };
        ferret__run_info__free_unpacked(info, NULL);
        if (!l->runs[l->n].id)
                return -ENOMEM;
        l->n++;
        return 0;
}

/* Runs in creation order, oldest first. */
static int list_runs(struct store *s, struct run_list *ret)
{
        *ret = (struct run_list){ 0 };
        return store_scan_runs(s, false, visit_run, ret);
}

static void free_runs(struct run_list *l)
{
        for (size_t i = 0; i < l->n; i++)
                free(l->runs[i].id);
        free(l->runs);
}

static int remove_entry(struct store *s, struct runs *rs, const struct run_entry *e, const char *why)
{
        runs_forget(rs, e->id);
        int r = store_delete_run(s, e->number, e->id);
        if (r == 0)
                log_info("Removed run %s (%s)", e->id, why);
        return r;
}

int retention_remove_run(struct store *s, struct runs *rs, const char *run_id)
{
        uint32_t number;
        int r = store_run_number(s, run_id, &number);
        if (r < 0)
                return r;
        struct run_entry e = { .number = number, .id = (char *)run_id };
        return remove_entry(s, rs, &e, "ferret rm");
}

int retention_apply(struct store *s, struct runs *rs, const struct retention_config *c, uint64_t now_wall_ns)
{
        struct run_list l;
        int removed = 0;
        size_t first = 0;
        if (!c->retain_days && !c->max_size_bytes)
                return 0;
        int r = list_runs(s, &l);
        if (r < 0)
                goto out;

        if (c->retain_days > 0) {
                uint64_t keep_after = now_wall_ns - (uint64_t)(c->retain_days * 86400e9);
                for (size_t i = 0; i < l.n; i++) {
                        uint64_t last = l.runs[i].last_ns ? l.runs[i].last_ns : l.runs[i].first_ns;
                        if (!last || last >= keep_after)
                                continue;
                        r = remove_entry(s, rs, &l.runs[i], "older than the retention period");
                        if (r < 0)
                                goto out;
                        l.runs[i].number = 0;   /* gone */
                        removed++;
                }
        }

        for (int step = 0; c->max_size_bytes && step < MAX_STEPS; step++) {
                if (store_disk_bytes(s) <= c->max_size_bytes)
                        break;
                /* The write-ahead log only shrinks once the memtable is
                 * written out; do that before removing anything. */
                store_flush(s);
                if (store_disk_bytes(s) <= c->max_size_bytes)
                        break;
                while (first < l.n && !l.runs[first].number)
                        first++;
                size_t alive = 0;
                for (size_t i = first; i < l.n; i++)
                        alive += l.runs[i].number != 0;
                if (alive == 0)
                        break;
                if (alive > 1) {
                        r = remove_entry(s, rs, &l.runs[first], "over the size bound");
                        if (r < 0)
                                goto out;
                        l.runs[first].number = 0;
                        removed++;
                        continue;
                }
                /* One run left, and still too large: its oldest spans go. */
                r = store_trim_run(s, l.runs[first].number, TRIM_FRACTION);
                if (r == -ENOENT)
                        break;
                if (r < 0)
                        goto out;
                runs_mark_trimmed(rs, l.runs[first].id);
                log_info("Removed the oldest spans of run %s (over the size bound)", l.runs[first].id);
        }
        r = 0;
out:
        free_runs(&l);
        return r < 0 ? r : removed;
}
