/* SPDX-License-Identifier: MIT */
/* The runtime directory: created with the right mode, locked against a
 * second daemon, and the home of the daemon's sockets. */
#pragma once

#include <stddef.h>

/* The default database: as root /var/lib/ferret/db; else
 * $XDG_DATA_HOME/ferret/db (~/.local/share). The default runtime directory
 * is runtime_listen_dir()'s (proto/runtime-dir.h). */
void runtime_default_db(char *buf, size_t size);

/* Creates @dir (and missing parents) and takes its lock. Returns the lock's
 * fd, -EBUSY (logged) when another ferretd holds it, or another -errno. */
int runtime_lock(const char *dir);
void runtime_unlock(const char *dir, int fd);
/* Creates the parents of @path that are missing. */
int runtime_mkdir_parents(const char *path, int mode);
