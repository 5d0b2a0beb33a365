/* SPDX-License-Identifier: MIT */
/*
 * Keeping the database within its bounds: runs older than the retention
 * period go, and while the database is larger than its size bound the
 * oldest runs go, then the oldest spans of the last run. Called by the
 * ingest thread, the only writer, with nothing pending.
 */
#pragma once

#include <stdint.h>

#include "runs.h"
#include "store.h"

struct retention_config {
        double retain_days;           /* 0: keep runs until removed */
        uint64_t max_size_bytes;      /* 0: no bound */
};

/* Applies both bounds. Returns the number of runs removed, or -EIO. */
int retention_apply(struct store *s, struct runs *rs, const struct retention_config *c, uint64_t now_wall_ns);
/* Removes the run named @run_id. Returns 0, -ENOENT or -EIO. */
int retention_remove_run(struct store *s, struct runs *rs, const char *run_id);
