/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "source.h"

/* 0 when @db is a directory RocksDB made that we may read, else the error,
 * printed. */
static int check_database(const char *db)
{
        char current[PATH_MAX];
        struct stat st;
        /* Not usage errors: the argument was well formed. */
        if (stat(db, &st) < 0)
                return errno == ENOENT ? cli_error(ENOENT, "no database at %s", db)
                                       : cli_error(errno, "cannot read %s: %s", db, strerror(errno));
        snprintf(current, sizeof(current), "%s/CURRENT", db);
        if (S_ISDIR(st.st_mode) && (access(db, R_OK | X_OK) < 0 || (access(current, F_OK) < 0 && errno != ENOENT)))
                return cli_error(errno, "cannot read %s: %s", db, strerror(errno));
        if (!S_ISDIR(st.st_mode) || access(current, F_OK) < 0)
                return cli_error(ENOMEDIUM, "%s is not a Ferret database", db);
        return 0;
}

int source_open(const struct cli *cli, const char *db, struct source *ret)
{
        struct source s = { .own_daemon = false };
        if (!db) {
                cli_find_runtime_dir(cli, s.runtime_dir, sizeof(s.runtime_dir));
                *ret = s;
                return 0;
        }
        int r = check_database(db);
        if (r < 0)
                return r;
        r = private_daemon_start(db, &s.daemon);
        if (r < 0)
                return r;
        s.own_daemon = true;
        snprintf(s.runtime_dir, sizeof(s.runtime_dir), "%s", s.daemon.runtime_dir);
        *ret = s;
        return 0;
}

int source_close(struct source *s, int r)
{
        if (!s->own_daemon)
                return r;
        s->own_daemon = false;
        int stopped = private_daemon_stop(&s->daemon);
        return r < 0 ? r : stopped;
}
