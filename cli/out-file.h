/* SPDX-License-Identifier: MIT */
/*
 * Where a picture or an export goes: standard output, or a file that is
 * written beside its final name and renamed into place only once it is
 * whole, so that a failed command (a full disk, a run that does not exist,
 * an interrupted daemon) never leaves a partial file behind, nor spoils the
 * file a previous command wrote.
 */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>

struct out_sink;

struct out_file {
        FILE *f;                       /* where to write */
        const char *path;              /* NULL: standard output */
        char tmp[PATH_MAX];            /* the file beside @path, until committed */
        struct out_sink *sink;         /* the file's descriptor and its first write error */
};

/* Opens @path (NULL or "-": standard output) for writing. Prints the error
 * and returns a negative errno when the file cannot be made; nothing is
 * left behind then. */
int out_file_open(const char *path, struct out_file *ret);
/* Finishes the output: flushes it and, for a file, renames it into place.
 * @r is the writer's result: when negative the file is removed instead.
 * Writers print the errors they meet (a daemon's answer), but not failed
 * writes: those are found here (ferror) and printed once. Returns 0, @r
 * when it was negative, or the write error. */
int out_file_close(struct out_file *o, int r);
