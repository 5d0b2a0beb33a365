/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>

#include "cli.h"
#include "span-stream.h"

/* A chunk of a large run takes a while to read from disk on a slow one. */
#define CHUNK_TIMEOUT_MS 120000

static int hand_on(const Ferret__TreeResponse *t, const struct span_stream_ops *ops, void *ctx,
                   struct wire_spans *spans)
{
        for (size_t i = 0; i < t->n_batches; i++) {
                Ferret__Batch *b = wire_batch_unpack(t->batches[i].data, t->batches[i].len);
                if (!b)
                        return cli_error(EPROTO, "a stored batch of run %s does not decode", t->run->run);
                wire_spans_clear(spans);
                int r = 0;
                if (b->spans && wire_spans_append(spans, b->spans, b->process ? b->process->pid : 0, NULL) < 0)
                        r = cli_error(EPROTO, "a stored batch of run %s is inconsistent", t->run->run);
                if (r == 0)
                        r = ops->batch(ctx, b, spans);
                ferret__batch__free_unpacked(b, NULL);
                if (r < 0)
                        return r;
        }
        return 0;
}

int span_stream(const char *runtime_dir, const char *run, const struct span_stream_ops *ops, void *ctx)
{
        struct wire_spans spans = { 0 };
        char name[1100];
        uint64_t cursor = 0;
        bool first = true;
        int r;
        snprintf(name, sizeof(name), "%s", run ? run : "");
        do {
                Ferret__Request req = FERRET__REQUEST__INIT;
                Ferret__TreeRequest tree = FERRET__TREE_REQUEST__INIT;
                Ferret__Response *resp;
                tree.run = name;
                tree.expand = true;
                tree.cursor = cursor;
                tree.focus = "";
                req.body_case = FERRET__REQUEST__BODY_TREE;
                req.tree = &tree;
                r = cli_request(runtime_dir, &req, CHUNK_TIMEOUT_MS, &resp);
                if (r < 0)
                        break;
                const Ferret__TreeResponse *t = resp->tree;
                if (!t->run) {
                        r = cli_error(EPROTO, "ferretd answered without the run's record");
                } else {
                        /* The next chunks come from the same run, even if a
                         * newer one starts meanwhile. */
                        snprintf(name, sizeof(name), "%s", t->run->run);
                        if (first && ops->run)
                                r = ops->run(ctx, t->run);
                        first = false;
                        if (r >= 0)
                                r = hand_on(t, ops, ctx, &spans);
                        cursor = t->next_cursor;
                }
                ferret__response__free_unpacked(resp, NULL);
        } while (r >= 0 && cursor);
        wire_spans_free(&spans);
        return r < 0 ? r : 0;
}
