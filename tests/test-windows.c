/* SPDX-License-Identifier: MIT */
/*
 * Time windows answered from time buckets (ferretd/buckets.h), against the
 * truth of generated spans: seeded random trees of spans over ten minutes,
 * many starting exactly on a bucket edge or a nanosecond before one, and
 * children that start in a later bucket than their parent. For windows on
 * bucket edges, the tree and the summary come from buckets, and hold
 * exactly the spans that start in the window (count, total, self, min,
 * max, errors, warnings per call path and per name), as the tree built
 * from the spans does; a window that cuts a bucket is summed from spans,
 * exactly too; a relative time is widened to whole buckets.
 * FERRET_TEST_SEED=N repeats a run.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fixture.h"
#include "harness.h"
#include "path.h"
#include "raw.h"

#define W 60000000000ull                  /* the default bucket: a minute */
#define MINUTES 10
#define MAX_SPANS 4000

static const char *const NAMES[] = { "request", "db", "cache", "parse", "render" };

struct gen_span {
        uint64_t id, parent, start, duration, self, path, parent_path;
        unsigned status;
        const char *name;
        char key[96];                     /* the name path: "request>db>cache" */
};

struct gen {
        uint64_t state;
        struct gen_span spans[MAX_SPANS];
        size_t n;
};

static uint64_t next(struct gen *g)
{
        uint64_t z = (g->state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

static uint64_t below(struct gen *g, uint64_t n)
{
        return n ? next(g) % n : 0;
}

/* A start in [from, to): often exactly on a bucket edge inside it, or a
 * nanosecond before one. */
static uint64_t pick_start(struct gen *g, uint64_t from, uint64_t to)
{
        uint64_t edge = (from / W + 1) * W;
        unsigned roll = (unsigned)below(g, 10);
        if (roll < 2 && edge < to)
                return edge;
        if (roll < 3 && edge - 1 < to && edge - 1 >= from)
                return edge - 1;
        return from + below(g, to - from);
}

static size_t add_span(struct gen *g, size_t parent, uint64_t start, uint64_t duration, const char *name)
{
        struct gen_span *s = &g->spans[g->n];
        *s = (struct gen_span){ .id = g->n + 1, .start = start, .duration = duration, .self = duration, .name = name };
        unsigned roll = (unsigned)below(g, 20);
        s->status = roll < 2 ? WIRE_STATUS_ERROR : roll < 3 ? WIRE_STATUS_WARNING : WIRE_STATUS_OK;
        uint64_t key = path_key_bytes(name, strlen(name));
        if (parent != SIZE_MAX) {
                struct gen_span *p = &g->spans[parent];
                s->parent = p->id;
                s->parent_path = p->path;
                char up[sizeof(p->key)];
                memcpy(up, p->key, sizeof(up));
                snprintf(s->key, sizeof(s->key), "%s>%s", up, name);
                p->self -= duration;
        } else {
                snprintf(s->key, sizeof(s->key), "%s", name);
        }
        s->path = path_step(s->parent_path, key);
        return g->n++;
}

/* Children lie inside their parent, one after another, so that the self
 * time is the duration less theirs. */
static void add_children(struct gen *g, size_t parent, unsigned depth)
{
        if (depth >= 3)
                return;
        unsigned kids = (unsigned)below(g, 4);
        uint64_t at = g->spans[parent].start, end = g->spans[parent].start + g->spans[parent].duration;
        for (unsigned k = 0; k < kids && g->n + 1 < MAX_SPANS && at + 2 < end; k++) {
                uint64_t start = pick_start(g, at, end - 1);
                uint64_t duration = 1 + below(g, (end - start) / 2);
                size_t c = add_span(g, parent, start, duration, NAMES[1 + below(g, 4)]);
                add_children(g, c, depth + 1);
                at = start + duration;
        }
}

static void generate(struct gen *g, uint64_t base)
{
        g->n = 0;
        while (g->n + 40 < MAX_SPANS) {
                uint64_t start = pick_start(g, base, base + MINUTES * W);
                uint64_t duration = 1000 + below(g, below(g, 4) ? 2000000000ull : 150000000000ull);
                size_t r = add_span(g, SIZE_MAX, start, duration, NAMES[below(g, 2)]);
                add_children(g, r, 0);
        }
}

static void send_some(struct raw_client *c, const struct gen *g, const size_t *which, size_t n)
{
        static const char *names[MAX_SPANS];
        static uint64_t d[MAX_SPANS], ids[MAX_SPANS], parents[MAX_SPANS], starts[MAX_SPANS], paths[MAX_SPANS],
                parent_paths[MAX_SPANS];
        static unsigned statuses[MAX_SPANS];
        for (size_t k = 0; k < n; k++) {
                const struct gen_span *s = &g->spans[which[k]];
                names[k] = s->name;
                d[k] = s->duration;
                ids[k] = s->id;
                parents[k] = s->parent;
                starts[k] = s->start;
                paths[k] = s->path;
                parent_paths[k] = s->parent_path;
                statuses[k] = s->status;
        }
        struct raw_spans batch = { .n = n, .names = names, .durations = d, .ids = ids, .parents = parents,
                                   .starts = starts, .statuses = statuses, .paths = paths,
                                   .parent_paths = parent_paths };
        raw_send_batch(c, "windows", &batch);
        /* Stored, so that the next batch is another commit: the buckets
         * they share are sums of merge operands. */
        CHECK_EQ(raw_flush(c, 10000), 0);
}

/* In batches of whole requests (a root and what lies under it), each its
 * own commit; now and then a root's childless child comes in the next
 * batch, after its parent, and takes from the parent's self time then. */
static void send(struct raw_client *c, struct gen *g)
{
        static size_t batch[MAX_SPANS], later[MAX_SPANS];
        size_t n = 0, n_later = 0;
        for (size_t i = 0; i <= g->n; i++) {
                bool root = i == g->n || !g->spans[i].parent;
                if (root && n >= 300) {
                        send_some(c, g, batch, n);
                        memcpy(batch, later, n_later * sizeof(*later));
                        n = n_later;
                        n_later = 0;
                }
                if (i == g->n)
                        break;
                const struct gen_span *s = &g->spans[i];
                bool childless = i + 1 == g->n || g->spans[i + 1].parent != s->id;
                bool under_root = s->parent && !g->spans[s->parent - 1].parent;
                if (under_root && childless && below(g, 5) == 0)
                        later[n_later++] = i;
                else
                        batch[n++] = i;
        }
        memcpy(batch + n, later, n_later * sizeof(*later));
        n += n_later;
        if (n)
                send_some(c, g, batch, n);
}

struct stats {
        char key[96];
        long long count, total, self, min, max, errors, warnings;
};

struct table {
        struct stats rows[MAX_SPANS];
        size_t n;
};

static struct stats *row(struct table *t, const char *key)
{
        for (size_t i = 0; i < t->n; i++)
                if (strcmp(t->rows[i].key, key) == 0)
                        return &t->rows[i];
        struct stats *s = &t->rows[t->n++];
        *s = (struct stats){ .min = -1 };
        snprintf(s->key, sizeof(s->key), "%s", key);
        return s;
}

static void truth(const struct gen *g, uint64_t since, uint64_t until, bool by_name, struct table *t)
{
        t->n = 0;
        for (size_t i = 0; i < g->n; i++) {
                const struct gen_span *s = &g->spans[i];
                if (s->start < since || (until && s->start >= until))
                        continue;
                struct stats *r = row(t, by_name ? s->name : s->key);
                r->count++;
                r->total += (long long)s->duration;
                r->self += (long long)s->self;
                r->min = r->min < 0 || (long long)s->duration < r->min ? (long long)s->duration : r->min;
                r->max = (long long)s->duration > r->max ? (long long)s->duration : r->max;
                r->errors += s->status == WIRE_STATUS_ERROR;
                r->warnings += s->status == WIRE_STATUS_WARNING;
        }
}

static long long get(json_t *o, const char *key)
{
        return json_integer_value(json_object_get(o, key));
}

static void flatten(json_t *nodes, const char *prefix, struct table *t)
{
        size_t i;
        json_t *node;
        json_array_foreach(nodes, i, node) {
                char key[96];
                const char *name = json_string_value(json_object_get(node, "name"));
                snprintf(key, sizeof(key), "%s%s%s", prefix, *prefix ? ">" : "", name);
                struct stats *r = row(t, key);
                r->count = get(node, "count");
                r->total = get(node, "total_ns");
                r->self = get(node, "self_ns");
                r->min = r->count ? get(node, "min_ns") : -1;
                r->max = get(node, "max_ns");
                r->errors = get(node, "errors");
                r->warnings = get(node, "warnings");
                flatten(json_object_get(node, "children"), key, t);
        }
}

/* Every row of @want with spans is in @got, equal; @got has no spans more. */
static bool same(const struct table *want, const struct table *got, const char *what)
{
        bool ok = true;
        long long got_spans = 0, want_spans = 0;
        for (size_t i = 0; i < got->n; i++)
                got_spans += got->rows[i].count;
        for (size_t i = 0; i < want->n; i++) {
                const struct stats *w = &want->rows[i];
                want_spans += w->count;
                const struct stats *g = NULL;
                for (size_t k = 0; k < got->n && !g; k++)
                        if (strcmp(got->rows[k].key, w->key) == 0)
                                g = &got->rows[k];
                if (!g || g->count != w->count || g->total != w->total || g->self != w->self || g->min != w->min ||
                    g->max != w->max || g->errors != w->errors || g->warnings != w->warnings) {
                        fprintf(stderr, "%s: %s: want count %lld total %lld self %lld min %lld max %lld errors %lld "
                                        "warnings %lld, got ",
                                what, w->key, w->count, w->total, w->self, w->min, w->max, w->errors, w->warnings);
                        if (g)
                                fprintf(stderr, "%lld %lld %lld %lld %lld %lld %lld\n", g->count, g->total, g->self,
                                        g->min, g->max, g->errors, g->warnings);
                        else
                                fprintf(stderr, "nothing\n");
                        ok = false;
                }
        }
        if (got_spans != want_spans) {
                fprintf(stderr, "%s: %lld spans, want %lld\n", what, got_spans, want_spans);
                ok = false;
        }
        return ok;
}

static void at(uint64_t ns, char *buf, size_t size)
{
        snprintf(buf, size, "@%" PRIu64 ".%09" PRIu64, ns / 1000000000u, ns % 1000000000u);
}

static json_t *query(struct daemon_fixture *f, bool tree, bool from_spans, uint64_t since, uint64_t until)
{
        char a[40], b[40];
        const char *args[12];
        size_t n = 0;
        args[n++] = "query";
        args[n++] = "--run";
        args[n++] = "windows";
        if (tree)
                args[n++] = "--tree";
        if (from_spans)
                args[n++] = "--from-spans";
        if (since) {
                at(since, a, sizeof(a));
                args[n++] = "--since";
                args[n++] = a;
        }
        if (until) {
                at(until, b, sizeof(b));
                args[n++] = "--until";
                args[n++] = b;
        }
        args[n] = NULL;
        return fixture_ferret_json(f, args);
}

static void summary_rows(json_t *summary, struct table *t)
{
        t->n = 0;
        size_t i;
        json_t *r;
        json_array_foreach(json_object_get(summary, "rows"), i, r) {
                struct stats *s = row(t, json_string_value(json_object_get(r, "name")));
                s->count = get(r, "count");
                s->total = get(r, "total_ns");
                s->self = get(r, "self_ns");
                s->min = get(r, "min_ns");
                s->max = get(r, "max_ns");
                s->errors = get(r, "errors");
                s->warnings = get(r, "warnings");
        }
}

static bool check_window(struct daemon_fixture *f, const struct gen *g, uint64_t since, uint64_t until,
                         const char *built_from)
{
        static struct table want, got, spans;
        char what[96];
        bool ok = true;
        snprintf(what, sizeof(what), "window [%+lld, %+lld) s", since ? (long long)(since / 1000000000u) : 0,
                 until ? (long long)(until / 1000000000u) : 0);

        truth(g, since, until, false, &want);
        json_t *tree = query(f, true, false, since, until);
        CHECK_STR(json_string_value(json_object_get(tree, "built_from")), built_from);
        got.n = 0;
        flatten(json_object_get(tree, "roots"), "", &got);
        ok = same(&want, &got, what) && ok;
        /* The tree from spans holds the same nodes, those with no span in
         * the window (on the way to ones that have) included. */
        json_t *by_span = query(f, true, true, since, until);
        spans.n = 0;
        flatten(json_object_get(by_span, "roots"), "", &spans);
        if (spans.n != got.n) {
                fprintf(stderr, "%s: %zu nodes from buckets, %zu from spans\n", what, got.n, spans.n);
                ok = false;
        }
        ok = same(&spans, &got, what) && ok;
        json_decref(tree);
        json_decref(by_span);

        truth(g, since, until, true, &want);
        json_t *summary = query(f, false, false, since, until);
        CHECK_STR(json_string_value(json_object_get(summary, "built_from")),
                  strcmp(built_from, "spans") == 0 ? "spans" : "time buckets");
        summary_rows(summary, &got);
        snprintf(what + strlen(what), sizeof(what) - strlen(what), " (summary)");
        ok = same(&want, &got, what) && ok;
        json_decref(summary);
        return ok;
}

TEST(windows_on_bucket_edges_are_sums_of_buckets_and_exact)
{
        static struct gen g;
        const char *seed_env = getenv("FERRET_TEST_SEED");
        uint64_t seed = seed_env ? strtoull(seed_env, NULL, 10) : (uint64_t)time(NULL);
        fprintf(stderr, "FERRET_TEST_SEED=%" PRIu64 "\n", seed);
        g.state = seed;
        const uint64_t base = (1700000000ull / 60) * 60 * 1000000000ull;
        generate(&g, base);

        struct daemon_fixture f;
        struct raw_client c;
        fixture_start(&f);
        raw_open(&c, f.runtime_dir);
        send(&c, &g);

        bool ok = true;
        /* Fixed edges, the run's first and last buckets, open ends. */
        ok = check_window(&f, &g, base + 2 * W, base + 5 * W, "time buckets") && ok;
        ok = check_window(&f, &g, base, base + W, "time buckets") && ok;
        ok = check_window(&f, &g, base + 9 * W, 0, "time buckets") && ok;
        ok = check_window(&f, &g, 0, base + 3 * W, "time buckets") && ok;
        /* Random ones, on edges. */
        for (int i = 0; i < 6; i++) {
                uint64_t a = below(&g, MINUTES), b = a + 1 + below(&g, MINUTES - a);
                ok = check_window(&f, &g, base + a * W, base + b * W, "time buckets") && ok;
        }
        /* A window that cuts buckets: summed from the spans, as exactly. */
        ok = check_window(&f, &g, base + 2 * W + 1, base + 4 * W - 1, "spans") && ok;
        CHECK(ok);

        raw_close(&c);
        fixture_cleanup(&f);
}

/* A time back from now ("5m") is widened to the edges of its bucket: the
 * answer says which window it is, and it is all buckets. */
TEST(a_relative_window_is_widened_to_whole_buckets)
{
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        uint64_t now_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
        struct daemon_fixture f;
        struct raw_client c;
        fixture_start(&f);
        raw_open(&c, f.runtime_dir);
        const char *names[2] = { "old", "new" };
        uint64_t d[2] = { 1000, 1000 }, ids[2] = { 1, 2 }, parents[2] = { 0, 0 };
        uint64_t starts[2] = { now_ns - 20 * W, now_ns - 2 * W };
        uint64_t paths[2] = { path_step(0, path_key_bytes("old", 3)), path_step(0, path_key_bytes("new", 3)) };
        uint64_t parent_paths[2] = { 0, 0 };
        struct raw_spans batch = { .n = 2, .names = names, .durations = d, .ids = ids, .parents = parents,
                                   .starts = starts, .paths = paths, .parent_paths = parent_paths };
        raw_send_batch(&c, "windows", &batch);
        CHECK_EQ(raw_flush(&c, 10000), 0);

        const char *args[] = { "query", "--tree", "--run", "windows", "--since", "5m", NULL };
        json_t *tree = fixture_ferret_json(&f, args);
        CHECK_STR(json_string_value(json_object_get(tree, "built_from")), "time buckets");
        uint64_t since = (uint64_t)get(tree, "since_ns");
        CHECK_EQ(since % W, 0);
        CHECK_CMP(since, <=, now_ns - 5 * W);
        CHECK_CMP(since, >, now_ns - 7 * W);
        json_t *roots = json_object_get(tree, "roots");
        CHECK_EQ(json_array_size(roots), 1);
        CHECK_STR(json_string_value(json_object_get(json_array_get(roots, 0), "name")), "new");
        json_decref(tree);

        const char *summary_args[] = { "query", "--run", "windows", "--since", "5m", NULL };
        json_t *summary = fixture_ferret_json(&f, summary_args);
        CHECK_STR(json_string_value(json_object_get(summary, "built_from")), "time buckets");
        CHECK_EQ(json_array_size(json_object_get(summary, "rows")), 1);
        json_decref(summary);
        raw_close(&c);
        fixture_cleanup(&f);
}

static void send_at(struct raw_client *c, uint64_t *next_id, uint64_t start, size_t n)
{
        const char *names[8];
        uint64_t d[8], ids[8], parents[8] = { 0 }, starts[8], paths[8], parent_paths[8] = { 0 };
        for (size_t i = 0; i < n && i < 8; i++) {
                names[i] = "tick";
                d[i] = 1000 + i;
                ids[i] = (*next_id)++;
                starts[i] = start + i;
                paths[i] = path_step(0, path_key_bytes("tick", 4));
        }
        struct raw_spans batch = { .n = n, .names = names, .durations = d, .ids = ids, .parents = parents,
                                   .starts = starts, .paths = paths, .parent_paths = parent_paths };
        raw_send_batch(c, "restart", &batch);
        CHECK_EQ(raw_flush(c, 10000), 0);
}

static long long window_count(struct daemon_fixture *f, uint64_t since, uint64_t until)
{
        char a[40], b[40];
        at(since, a, sizeof(a));
        at(until, b, sizeof(b));
        const char *args[] = { "query", "--run", "restart", "--since", a, "--until", b, NULL };
        json_t *summary = fixture_ferret_json(f, args);
        CHECK_STR(json_string_value(json_object_get(summary, "built_from")), "time buckets");
        json_t *rows = json_object_get(summary, "rows");
        long long n = json_array_size(rows) ? get(json_array_get(rows, 0), "count") : 0;
        json_decref(summary);
        return n;
}

/* A ferretd that restarts in the middle of a bucket goes on from what it
 * committed: the latest buckets are written whole, so the new one reads
 * them back before adding; an older bucket takes what comes as merges. */
TEST(buckets_carry_on_across_a_restart)
{
        const uint64_t base = (1700000000ull / 60) * 60 * 1000000000ull;
        struct daemon_fixture f;
        struct raw_client before, after;
        uint64_t id = 1;
        fixture_start(&f);
        raw_open(&before, f.runtime_dir);
        send_at(&before, &id, base + 1000, 8);
        send_at(&before, &id, base - 5 * W, 4);          /* an old bucket: a merge */
        send_at(&before, &id, base + 2000, 2);
        raw_close(&before);
        CHECK_EQ(fixture_stop(&f), 0);
        fixture_restart(&f);
        raw_open(&after, f.runtime_dir);                  /* another client: its own seq */
        send_at(&after, &id, base + 30000000000ull, 5);   /* the same bucket, after the restart */
        send_at(&after, &id, base + W + 1, 3);
        send_at(&after, &id, base - 5 * W + 7, 2);
        CHECK_EQ(window_count(&f, base, base + W), 15);
        CHECK_EQ(window_count(&f, base + W, base + 2 * W), 3);
        CHECK_EQ(window_count(&f, base - 5 * W, base - 4 * W), 6);
        raw_close(&after);
        fixture_cleanup(&f);
}
