/* SPDX-License-Identifier: MIT */
/*
 * Where a command's data comes from: the daemon that serves the user (the
 * runtime directory cli_find_runtime_dir() picks), or a database directory
 * named on the command line (ferret analyze DB, --db DB), which a read-only
 * ferretd of our own serves for the length of the command. The one place
 * that decides what a database directory must look like.
 */
#pragma once

#include <limits.h>
#include <stdbool.h>

#include "cli.h"

struct source {
        char runtime_dir[PATH_MAX];    /* where to send requests */
        struct runtime_daemon daemon;
        bool own_daemon;               /* daemon was started for @db */
};

/* Opens the data of @db (NULL: the user's daemon). A missing or unreadable
 * directory, or one that is not a Ferret database, is one line on stderr
 * and a negative errno (not a usage error). */
int source_open(const struct cli *cli, const char *db, struct source *ret);
/* Stops a daemon source_open() started (after it answered everything).
 * Returns @r when negative, else the daemon's stop result. */
int source_close(struct source *s, int r);
