/* SPDX-License-Identifier: MIT */
/*
 * A private ferretd: started by `ferret run` and Python's Profiler for a
 * database no daemon serves, by `ferret analyze` to read one, and by the
 * tests and the benchmarks. Its sockets go where runtime-dir.h says. It
 * says it is ready through the systemd notify protocol, on a socket of ours
 * in its runtime directory: a message that holds the line READY=1, from the
 * process we started (the kernel vouches for the sender, SO_PASSCRED). We
 * wait for that, or for its exit, never for a fixed time.
 *
 * For the command, the Python extension, the tests and the benchmarks:
 * never the client library, which never starts a daemon. Nothing here
 * prints; reasons come back as text.
 */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "runtime-dir.h"

/* How long a daemon may take to become ready: only a bound on a hang (a
 * large database may take a while to open); readiness or the daemon's exit
 * ends the wait. */
#define RUNTIME_READY_TIMEOUT_MS 60000

struct runtime_daemon {
        pid_t pid;                              /* 0 when none runs */
        char runtime_dir[RUNTIME_DIR_MAX];
        bool remove_dir;                        /* made for it: removed when it stops */
};

struct runtime_start {
        const char *ferretd;                    /* the program */
        const char *db;
        const char *runtime_dir;                /* NULL: a new one (runtime_private_template()) */
        const char *const *args;                /* more arguments, NULL-terminated, or NULL */
        const char *log;                        /* a file its stderr is appended to, or NULL: ours */
        int timeout_ms;                         /* 0: RUNTIME_READY_TIMEOUT_MS */
        /* It gets SIGTERM if we die without stopping it. The kernel ties
         * that to the thread that started it, so this holds only when the
         * main thread starts it. */
        bool exit_with_parent;
};

/* Starts ferretd as @s says, with our environment less what would trace it
 * or redirect its notifications (LD_PRELOAD, NOTIFY_SOCKET, JOURNAL_STREAM),
 * stdin and stdout on /dev/null, and waits until it is ready. The runtime
 * directory is made (0700) when missing and must pass runtime_dir_check().
 * 0 and @ret filled; or -errno with the reason in @why, and nothing left
 * running nor behind (a directory made here is removed). */
int runtime_daemon_start(const struct runtime_start *s, struct runtime_daemon *ret, char *why, size_t why_size);
/* SIGTERM, then waits while it stores what it received; removes a
 * directory made for it. Returns its wait status (0 when none ran), or
 * -ECHILD when someone else reaped it. @d may be stopped again. */
int runtime_daemon_stop(struct runtime_daemon *d);

/* Whether @msg, a notify datagram (newline-separated assignments), says
 * READY=1. */
bool runtime_notify_ready(const char *msg, size_t len);

/* Whether the daemon listening in @dir takes spans now (not read-only, its
 * disk not full) into database @db (its one name), or into any database
 * when @db is NULL. Asks it for its status, waiting at most @timeout_ms. */
bool runtime_daemon_serves(const char *dir, const char *db, int timeout_ms);

/* Where spans go when a run names database @db (NULL: none), as `ferret
 * run` and Python's Profiler(db_path=) decide:
 * - without @db, the default daemon (runtime_find(@override): the
 *   command's --runtime-dir, or NULL) when it takes spans;
 * - else @db's one name (./ferret.db without @db), served by the default
 *   daemon when it serves that database;
 * - else by the daemon listening in its private directory;
 * - else by a private ferretd started there (from @ferretd, which may be
 *   NULL when it is not to be found), or in a new directory of our own when
 *   that one is not to be trusted.
 * What the user should know comes back in @notes. */
#define RUNTIME_NOTES_MAX 2
struct runtime_choice {
        char runtime_dir[RUNTIME_DIR_MAX];
        char db[PATH_MAX];                      /* "" when the default daemon's own database */
        struct runtime_daemon daemon;           /* .pid > 0: started for this choice, to stop */
        char notes[RUNTIME_NOTES_MAX][PATH_MAX + 256];
        size_t n_notes;
};
int runtime_choose(const char *override, const char *db, const char *ferretd, struct runtime_choice *ret, char *why,
                   size_t why_size);
