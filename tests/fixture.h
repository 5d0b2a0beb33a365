/* SPDX-License-Identifier: MIT */
/*
 * A private ferretd for a test: its own temporary directory (database,
 * sockets, log), started and awaited through its readiness message, stopped
 * with SIGTERM. Also runs the ferret command and parses its --json output.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

struct daemon_fixture {
        char dir[128];
        char db[192];
        char runtime_dir[192];
        char log[192];
        pid_t pid;
};

/* Creates the directory and starts the daemon; points FERRET_RUNTIME_DIR
 * at it, so the test's own client (and its children) use it. */
void fixture_start(struct daemon_fixture *f);
/* Starts the daemon again on the same directory, with extra arguments. */
void fixture_restart(struct daemon_fixture *f);
void fixture_restart_args(struct daemon_fixture *f, const char *const extra[]);
/* SIGTERM and wait; returns the daemon's exit status and prints its log. */
int fixture_stop(struct daemon_fixture *f);
/* The test killed the daemon itself and reaped it. */
void fixture_forget(struct daemon_fixture *f);
/* fixture_stop() if running, then removes the directory. */
void fixture_cleanup(struct daemon_fixture *f);

/* Runs a program; returns its wait status. Output is captured when the
 * pointers are not NULL (free them). @env adds NAME=VALUE entries. */
int fixture_run(char *const argv[], char *const env[], char **ret_out, char **ret_err);
/* Runs `ferret ARGS... --json --runtime-dir <fixture's>` and parses stdout. */
json_t *fixture_ferret_json(struct daemon_fixture *f, const char *const args[]);
/* The daemon's log so far (free it). */
char *fixture_log(struct daemon_fixture *f);

const char *fixture_ferret_path(void);
const char *fixture_ferretd_path(void);
