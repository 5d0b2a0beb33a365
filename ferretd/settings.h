/* SPDX-License-Identifier: MIT */
/*
 * ferretd's settings: defaults, then the configuration file, then the
 * command line, each overriding the one before. The file holds one
 * "key = value" a line ('#' starts a comment), with the command line's long
 * option names as keys:
 *
 *         db = /var/lib/ferret/db
 *         retain-days = 30
 *         max-size = 20G
 *         max-clients = 1024
 *         max-paths = 131072
 *         bucket-seconds = 60
 *         forward = http://collector:4318
 *         forward-service = checkout
 *         forward-backlog = 10000000
 *         otlp-listen = 127.0.0.1:4318
 *         otlp-allow-remote = no
 */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "retention.h"

/* Past this, the descriptors of clients alone would pass what a process
 * may usually open. */
#define MAX_CLIENTS_LIMIT 65536u
/* Call paths a run may keep: at about 250 bytes each, 4 GiB. */
#define MAX_PATHS_LIMIT (16u << 20)
/* A time bucket of a day at most: windows are answered in whole buckets. */
#define BUCKET_SECONDS_LIMIT 86400u

struct settings {
        char db[PATH_MAX];
        char runtime_dir[PATH_MAX];
        int log_level;
        bool read_only;
        bool exit_with_parent;
        unsigned max_clients;            /* connections served at once, on each socket */
        unsigned max_paths;              /* distinct call paths a run keeps (paths.h) */
        unsigned bucket_seconds;         /* width of the time buckets of new runs (buckets.h) */
        struct retention_config retention;
        char forward_url[1024];          /* an OTLP/HTTP collector to send everything to, or "" */
        char forward_service[256];       /* service.name of what is forwarded; "": each program's */
        uint64_t forward_backlog;        /* spans stored and not yet forwarded, at most */
        char otlp_listen[256];           /* ADDRESS:PORT of the OTLP/HTTP receiver, or "" */
        bool otlp_allow_remote;          /* it may listen on an address that is not loopback */
};

/* Applies one setting. Returns 0, or -EINVAL after logging why. */
int settings_set(struct settings *s, const char *key, const char *value, const char *where);
/* Reads @path. Returns 0, -ENOENT when it does not exist, or -EINVAL/-EIO
 * after logging the line at fault. */
int settings_load_file(struct settings *s, const char *path);
/* The same from an open stream, named @path in messages (the fuzzer's). */
int settings_load_stream(struct settings *s, FILE *f, const char *path);
