/* SPDX-License-Identifier: MIT */
/*
 * Where a ferretd's sockets are, decided here once for the client library,
 * the ferret command, ferretd, the Python package (through its extension),
 * the tests and the benchmarks:
 *
 * - A runtime directory holds a daemon's sockets, ingest.sock and
 *   query.sock. The system daemon's is /run/ferret; a user's own is
 *   $XDG_RUNTIME_DIR/ferret, or /tmp/ferret-UID without XDG_RUNTIME_DIR.
 * - A program, a command and the Python package use FERRET_RUNTIME_DIR (or
 *   the command's --runtime-dir) when it is set, as it is, never another;
 *   else the user's directory when a daemon listens there, else
 *   /run/ferret (runtime_find()).
 * - Under /tmp anyone may create /tmp/ferret-UID first, and a daemon
 *   listening there receives everything a program records (command lines
 *   included): a directory is trusted only if it is a directory (not a
 *   symlink), belongs to this user, to root or to the system daemon's user
 *   (ferret), and no one else may write it; and a daemon only if it runs as
 *   one of those users. A directory that is not trusted is never used.
 * - A database's private daemon (`ferret run --db`, Python's
 *   Profiler(db_path=)) listens in a directory named after the database's
 *   one name: $XDG_RUNTIME_DIR/ferret-db-HASH, else /tmp/ferret-UID-db-HASH.
 *
 * Starting a private daemon is runtime-daemon.h's. Nothing here prints:
 * reasons come back as text for the caller to say.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* The sockets a ferretd binds in its runtime directory: spans in (PULL;
 * not bound by a read-only daemon), requests and acknowledgements (ROUTER;
 * every daemon binds it, so it is the one that says whether one is there). */
#define RUNTIME_INGEST_SOCKET "ingest.sock"
#define RUNTIME_QUERY_SOCKET "query.sock"

/* The system daemon's runtime directory (ferretd.service), and its user,
 * which owns it. */
#define RUNTIME_SYSTEM_DIR "/run/ferret"
#define RUNTIME_SYSTEM_USER "ferret"

/* The environment variable naming the runtime directory to use. */
#define RUNTIME_DIR_ENV "FERRET_RUNTIME_DIR"

/* Room for a runtime directory's path: a socket's path in it must fit in
 * sockaddr_un's 108 bytes anyway. */
#define RUNTIME_DIR_MAX 256

/* @dir/@name in @buf, for bind() or connect(): 0, or -ENAMETOOLONG when it
 * does not fit @size or a Unix socket's address. */
int runtime_socket_path(const char *dir, const char *name, char *buf, size_t size);
/* "ipc://@dir/@name" in @buf, for ZeroMQ: 0, or -ENAMETOOLONG. */
int runtime_endpoint(const char *dir, const char *name, char *buf, size_t size);

/* The user's own runtime directory: $XDG_RUNTIME_DIR/ferret, else
 * /tmp/ferret-UID. */
void runtime_user_dir(char *buf, size_t size);
/* Where ferretd listens when not told: /run/ferret as root, else the
 * user's own directory. */
void runtime_listen_dir(char *buf, size_t size);

/* 0 when @dir may be trusted; -ENOENT when it does not exist; -EPERM with
 * the reason in @why ("/tmp/ferret-1000 belongs to uid 1001, not to you")
 * otherwise. */
int runtime_dir_check(const char *dir, char *why, size_t why_size);
/* The same of the process at the other end of the connected Unix socket
 * @fd: a directory trusted once may be gone (a cleaner of /tmp, a private
 * daemon's exit) and made again by anyone, and ZeroMQ reconnects by path.
 * 0, or -EPERM with the reason ("the ferretd there runs as uid 1001, not
 * as you"). */
int runtime_peer_check(int fd, char *why, size_t why_size);

/* Whether a trusted daemon listens on socket @name in @dir, by connecting
 * and closing at once (ZeroMQ forgets a peer that never spoke). 0 when one
 * does, also when its backlog is full (busy, not absent); -EPERM with
 * @why when the directory or the listener is not to be trusted; -ENOENT
 * or -ECONNREFUSED when nobody listens; -EACCES when the socket or its
 * directory is not ours to use (runtime_denied_why()); another -errno when
 * it could not be told. */
int runtime_probe(const char *dir, const char *name, char *why, size_t why_size);
/* For a probe's -EACCES: "you are not in the ferret group", or what else
 * is true. Returns @buf. */
const char *runtime_denied_why(const char *dir, char *buf, size_t size);

/* The runtime directory to use, in @buf: @override (the command's
 * --runtime-dir) or FERRET_RUNTIME_DIR when set, as they are; else
 * runtime_pick() between the user's own directory and /run/ferret. 0, or
 * -EPERM with @why when the directory in @buf must not be used (nothing is
 * to be sent there, nor asked of it), or -ENAMETOOLONG. */
int runtime_find(const char *override, char *buf, size_t size, char *why, size_t why_size);
/* The rule between a user's directory @user and the system's @system: the
 * user's when a trusted daemon listens there; else the system's when one
 * listens there; else the user's with -EPERM and @why when it is not to be
 * trusted, so that the refusal names it; else the system's (-EPERM if that
 * one is not to be trusted), where a daemon may come later. */
int runtime_pick(const char *user, const char *system, char *buf, size_t size, char *why, size_t why_size);

/* The database's one name: its real path, so that `dbs/../x.db`, `./x.db`
 * and a symbolic link to it are one database, with one private daemon. A
 * database not made yet is named after its directory's real path. */
void runtime_db_name(const char *path, char *buf, size_t size);
/* The runtime directory of the private daemon of database @db (its one
 * name): $XDG_RUNTIME_DIR/ferret-db-HASH, else /tmp/ferret-UID-db-HASH,
 * HASH being the FNV-1a of the name, in 16 hex digits. */
void runtime_private_dir(const char *db, char *buf, size_t size);
/* Where a new private directory of random name goes (mkdtemp), when the
 * one named after a database is someone else's, or for a private daemon
 * of no particular database: $XDG_RUNTIME_DIR/ferret-private-XXXXXX, else
 * /tmp/ferret-UID-private-XXXXXX. The template, in @buf. */
void runtime_private_template(char *buf, size_t size);
