/* SPDX-License-Identifier: MIT */
/*
 * Which directories of sockets Ferret trusts with spans. Under /tmp anyone
 * may create /tmp/ferret-UID first, and a daemon listening there receives
 * everything a program records (command lines included): a directory is
 * trusted only if it is a directory (not a symlink), belongs to this user,
 * to root or to the system daemon's user (ferret), and no one else may
 * write it. The client library, the command line tool and the daemon all
 * ask here; the Python package mirrors it (ferret/_daemon.py).
 */
#pragma once

#include <stddef.h>

/* The system daemon's user, which owns /run/ferret. */
#define RUNTIME_SYSTEM_USER "ferret"

/* 0 when @dir may be trusted; -ENOENT when it does not exist; -EPERM with
 * the reason in @why ("/tmp/ferret-1000 belongs to uid 1001") otherwise. */
int runtime_dir_check(const char *dir, char *why, size_t why_size);
/* The same of the process at the other end of the connected Unix socket
 * @fd: a directory trusted once may be gone (a cleaner of /tmp, a private
 * daemon's exit) and made again by anyone, and ZeroMQ reconnects by path.
 * 0, or -EPERM with the reason ("the ferretd there runs as uid 1001"). */
int runtime_peer_check(int fd, char *why, size_t why_size);
