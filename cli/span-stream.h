/* SPDX-License-Identifier: MIT */
/*
 * Every span of a run, streamed: ferretd answers a run's stored batches in
 * chunks of about 8 MiB (TreeRequest.expand with a cursor), and each batch
 * is decoded and handed on before the next chunk is asked for, so the
 * memory an export takes does not grow with the run. Batches come in the
 * store's order, by the start of their first span; the spans of a batch in
 * the order their client encoded them (the order they ended).
 */
#pragma once

#include "ferret.pb-c.h"
#include "wire.h"

struct span_stream_ops {
        /* Once, before any batch: the run's record (spans, times, dropped). */
        int (*run)(void *ctx, const Ferret__RunInfo *run);
        /* Each stored batch: its process identity and its decoded spans,
         * valid for the call only. */
        int (*batch)(void *ctx, const Ferret__Batch *b, const struct wire_spans *spans);
};

/* Streams the spans of run @run (NULL: the newest) from the daemon in
 * @runtime_dir. A callback's negative result stops the stream and is
 * returned. Errors (an unknown run, a daemon that is gone, a batch that
 * does not decode) are printed. Returns 0 or a negative errno. */
int span_stream(const char *runtime_dir, const char *run, const struct span_stream_ops *ops, void *ctx);
