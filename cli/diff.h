/* SPDX-License-Identifier: MIT */
/*
 * What `ferret diff` shows, by name or by call path: lines of two sides,
 * the change from A to B, and whether it is beyond the runs' own noise.
 * One policy for both, and one way of printing them.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"

/* One run's numbers for a name or a path; present false where it is missing. */
struct diff_side {
        bool present;
        uint64_t count, total_ns;
        uint64_t p50_ns, p50_low_ns, p50_high_ns;
        uint64_t p95_ns, p95_low_ns, p95_high_ns;
};

struct diff_line {
        const char *name;
        /* By call path: the line of the path's parent (-1 at a root), lines
         * coming depth first. */
        long parent;
        size_t depth;
        struct diff_side a, b;
        bool p50_flag, p95_flag;      /* set by diff_line_judge() */
        double impact;                /* |total B - total A| */
};

/* Beyond noise: the two 95% intervals do not overlap, and the values
 * differ by more than the 0.4% resolution of the daemon's histograms (with
 * margin). */
bool diff_beyond_noise(uint64_t a, uint64_t a_low, uint64_t a_high, uint64_t b, uint64_t b_low, uint64_t b_high);
/* The change from @a to @b in percent (INFINITY from 0). */
double diff_change(uint64_t a, uint64_t b);
/* Sets the line's flags and impact from its sides. */
void diff_line_judge(struct diff_line *l);
/* A p95 grown beyond noise by more than @fail_over percent. */
bool diff_line_regressed(const struct diff_line *l, double fail_over);

/* The table (or, with --json, the rows), then, with @fail_over >= 0, the
 * gate: an error naming the first line that regressed. @by_path: the lines
 * are call paths, indented by depth and named by path in JSON. */
int diff_print(const struct cli *cli, const char *run_a, const char *run_b, const struct diff_line *lines, size_t n,
               double fail_over, bool by_path);

/* `ferret diff --tree`: the two runs' merged trees side by side, by call path. */
int diff_trees(const struct cli *cli, const char *dir, const char *run_a, const char *run_b, double fail_over);
