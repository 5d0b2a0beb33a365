/* SPDX-License-Identifier: MIT */
/*
 * What the pictures (ferret flame, ferret report) share: durations written
 * for a page (always UTF-8, whatever the terminal's locale), a colour per
 * name, and the line that says which run a picture shows.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ferret.pb-c.h"

/* "950 ns", "12.30 µs", "120.50 ms", "2.35 s". */
const char *pic_duration(uint64_t ns, char *buf, size_t size);
/* A warm colour for frames of @name, the same for the same name in every
 * picture: "hsl(H,S%,L%)". */
const char *pic_color(const char *name, char *buf, size_t size);
/* "1,234 spans · 3 processes · 0 dropped · 58.24 ms from 2026-12-04 21:51:29",
 * and the window when @since_ns or @until_ns is set; markup-escaped. */
void pic_run_header(FILE *f, const Ferret__RunInfo *run, uint64_t since_ns, uint64_t until_ns);
/* Writes @s cut to @chars characters ("long_na.."), markup-escaped; nothing
 * when fewer than 3 fit. */
void pic_label(FILE *f, const char *s, long chars);

/* The options ferret flame and ferret report share. */
struct pic_options {
        const char *run;               /* NULL: the newest */
        const char *db;                /* a database directory to read, or NULL */
        const char *output;            /* NULL: standard output */
        uint64_t since_ns, until_ns;   /* a window of start times; 0: open */
        bool whole_buckets;            /* a bound was relative (5m): whole time buckets */
};

#define PIC_OPTIONS_HELP \
        "  -r, --run ID            the run (default: the newest)\n" \
        "      --db DB             read the database directory DB (read-only), not the daemon\n" \
        "  -s, --since WHEN        only spans that start at WHEN or later (5m, 2h,\n" \
        "                          \"2026-12-04 10:30\", @SECONDS)\n" \
        "  -u, --until WHEN        only spans that start before WHEN\n"

/* Parses the options of a picture verb (argv[0]). Markup is not written to
 * a terminal: without -o, standard output must be a file or a pipe.
 * Returns 1 to go on, 0 after --help, or -EINVAL after printing why. */
int pic_parse_options(struct cli *cli, int argc, char **argv, const char *usage, struct pic_options *ret);
/* The run's merged tree, with percentiles, from the daemon in @dir (free
 * with ferret__response__free_unpacked()). Errors are printed. */
int pic_request_tree(const char *dir, const struct pic_options *o, Ferret__Response **ret);
