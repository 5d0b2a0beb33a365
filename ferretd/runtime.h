/* SPDX-License-Identifier: MIT */
/* The runtime directory: created with the right mode, locked against a
 * second daemon, and the home of the daemon's sockets. */
#pragma once

#include <stddef.h>

/* Fills in the defaults: as root /var/lib/ferret/db and /run/ferret; else
 * $XDG_DATA_HOME/ferret/db (~/.local/share) and $XDG_RUNTIME_DIR/ferret
 * (/tmp/ferret-$UID). */
void runtime_default_db(char *buf, size_t size);
void runtime_default_dir(char *buf, size_t size);

/* Creates @dir (and missing parents) and takes its lock. Returns the lock's
 * fd, -EBUSY (logged) when another ferretd holds it, or another -errno. */
int runtime_lock(const char *dir);
void runtime_unlock(const char *dir, int fd);
/* Creates the parents of @path that are missing. */
int runtime_mkdir_parents(const char *path, int mode);
