/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "runtime-dir.h"

int runtime_socket_path(const char *dir, const char *name, char *buf, size_t size)
{
        int n = snprintf(buf, size, "%s/%s", dir, name);
        return n > 0 && (size_t)n < size && (size_t)n < sizeof(((struct sockaddr_un *)0)->sun_path) ? 0
                                                                                                    : -ENAMETOOLONG;
}

int runtime_endpoint(const char *dir, const char *name, char *buf, size_t size)
{
        char path[PATH_MAX];
        if (runtime_socket_path(dir, name, path, sizeof(path)) < 0)
                return -ENAMETOOLONG;
        int n = snprintf(buf, size, "ipc://%s", path);
        return n > 0 && (size_t)n < size ? 0 : -ENAMETOOLONG;
}

/* Where the user's runtime directories go: the session's own directory,
 * which only the user may write, else /tmp, where each name carries the
 * uid and is checked before use. */
static const char *user_base(void)
{
        const char *xdg = getenv("XDG_RUNTIME_DIR");
        return xdg && *xdg ? xdg : NULL;
}

void runtime_user_dir(char *buf, size_t size)
{
        const char *base = user_base();
        if (base)
                snprintf(buf, size, "%s/ferret", base);
        else
                snprintf(buf, size, "/tmp/ferret-%u", (unsigned)getuid());
}

void runtime_listen_dir(char *buf, size_t size)
{
        if (geteuid() == 0)
                snprintf(buf, size, "%s", RUNTIME_SYSTEM_DIR);
        else
                runtime_user_dir(buf, size);
}

static bool trusted_owner(uid_t uid)
{
        if (uid == geteuid() || uid == 0)
                return true;
        /* getpwnam_r: the client may run in any thread of any program. The
         * entry's strings go in @buf, which must be large enough for them. */
        struct passwd pw, *found = NULL;
        long size = sysconf(_SC_GETPW_R_SIZE_MAX);
        size_t n = size > 0 && size < (1 << 20) ? (size_t)size : 16384;
        char *buf = malloc(n);
        bool ok = buf && getpwnam_r(RUNTIME_SYSTEM_USER, &pw, buf, n, &found) == 0 && found && found->pw_uid == uid;
        free(buf);
        return ok;
}

int runtime_dir_check(const char *dir, char *why, size_t why_size)
{
        struct stat st;
        if (lstat(dir, &st) < 0)
                return errno == ENOENT ? -ENOENT : (snprintf(why, why_size, "cannot examine %s", dir), -EPERM);
        if (S_ISLNK(st.st_mode))
                snprintf(why, why_size, "%s is a symbolic link", dir);
        else if (!S_ISDIR(st.st_mode))
                snprintf(why, why_size, "%s is not a directory", dir);
        else if (!trusted_owner(st.st_uid))
                snprintf(why, why_size, "%s belongs to uid %u, not to you", dir, (unsigned)st.st_uid);
        else if (st.st_mode & (S_IWGRP | S_IWOTH))
                snprintf(why, why_size, "%s may be written by others (mode %03o)", dir, (unsigned)(st.st_mode & 0777));
        else
                return 0;
        return -EPERM;
}

int runtime_peer_check(int fd, char *why, size_t why_size)
{
        struct ucred cred;
        socklen_t len = sizeof(cred);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
                snprintf(why, why_size, "cannot tell who listens there");
                return -EPERM;
        }
        if (trusted_owner(cred.uid))
                return 0;
        snprintf(why, why_size, "the ferretd there runs as uid %u, not as you", (unsigned)cred.uid);
        return -EPERM;
}

int runtime_probe(const char *dir, const char *name, char *why, size_t why_size)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int r = runtime_dir_check(dir, why, why_size);
        if (r < 0)
                return r;       /* absent, or not even looked into */
        if (runtime_socket_path(dir, name, sa.sun_path, sizeof(sa.sun_path)) < 0)
                return -ENAMETOOLONG;
        /* Non-blocking: a daemon whose backlog is full answers EAGAIN at
         * once instead of holding the caller. */
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
                r = runtime_peer_check(fd, why, why_size);
        else if (errno == EAGAIN || errno == EINPROGRESS || errno == EINTR)
                r = 0;          /* busy, in a directory already trusted */
        else
                r = -errno;
        close(fd);
        return r;
}

const char *runtime_denied_why(const char *dir, char *buf, size_t size)
{
        struct stat st;
        struct group gr, *g = NULL;
        char path[PATH_MAX], names[4096];
        if (runtime_dir_check(dir, buf, size) == -EPERM)
                return buf;
        /* The socket, or the directory when it cannot even be looked at. */
        bool seen = runtime_socket_path(dir, RUNTIME_QUERY_SOCKET, path, sizeof(path)) == 0 && stat(path, &st) == 0;
        if (!seen && stat(dir, &st) < 0)
                snprintf(buf, size, "you may not use %s", dir);
        else if (st.st_uid != getuid() && getgrgid_r(st.st_gid, &gr, names, sizeof(names), &g) == 0 && g)
                snprintf(buf, size, "you are not in the %s group", g->gr_name);
        else
                snprintf(buf, size, "you may not use %s", dir);
        return buf;
}

int runtime_pick(const char *user, const char *system, char *buf, size_t size, char *why, size_t why_size)
{
        char system_why[PATH_MAX + 64];
        int user_r = runtime_probe(user, RUNTIME_QUERY_SOCKET, why, why_size);
        if (user_r == 0) {
                snprintf(buf, size, "%s", user);
                return 0;
        }
        int system_r = runtime_probe(system, RUNTIME_QUERY_SOCKET, system_why, sizeof(system_why));
        if (system_r != 0 && user_r == -EPERM) {
                snprintf(buf, size, "%s", user);
                return -EPERM;
        }
        snprintf(buf, size, "%s", system);
        if (system_r == -EPERM) {
                snprintf(why, why_size, "%s", system_why);
                return -EPERM;
        }
        return 0;
}

int runtime_find(const char *override, char *buf, size_t size, char *why, size_t why_size)
{
        const char *env = getenv(RUNTIME_DIR_ENV);
        const char *given = override && *override ? override : env && *env ? env : NULL;
        if (given) {
                if ((size_t)snprintf(buf, size, "%s", given) >= size) {
                        snprintf(why, why_size, "the runtime directory's name is too long");
                        return -ENAMETOOLONG;
                }
                return runtime_dir_check(buf, why, why_size) == -EPERM ? -EPERM : 0;
        }
        char user[RUNTIME_DIR_MAX];
        runtime_user_dir(user, sizeof(user));
        return runtime_pick(user, RUNTIME_SYSTEM_DIR, buf, size, why, why_size);
}

void runtime_db_name(const char *path, char *buf, size_t size)
{
        char cwd[PATH_MAX], real[PATH_MAX], dir[PATH_MAX];
        if (realpath(path, real)) {
                snprintf(buf, size, "%s", real);
                return;
        }
        snprintf(dir, sizeof(dir), "%s", path);
        char *slash = strrchr(dir, '/');
        const char *base = slash ? slash + 1 : path;
        if (slash)
                *(slash == dir ? slash + 1 : slash) = '\0';
        if (*base && realpath(slash ? dir : ".", real)) {
                snprintf(buf, size, "%s%s%s", real, strcmp(real, "/") ? "/" : "", base);
                return;
        }
        if (path[0] == '/' || !getcwd(cwd, sizeof(cwd)))
                snprintf(buf, size, "%s", path);
        else
                snprintf(buf, size, "%s/%s", cwd, path);
}

void runtime_private_dir(const char *db, char *buf, size_t size)
{
        /* FNV-1a, 64 bits: concurrent runs on one database find one daemon. */
        uint64_t h = 1469598103934665603ull;
        for (const char *p = db; *p; p++)
                h = (h ^ (uint8_t)*p) * 1099511628211ull;
        const char *base = user_base();
        if (base)
                snprintf(buf, size, "%s/ferret-db-%016llx", base, (unsigned long long)h);
        else
                snprintf(buf, size, "/tmp/ferret-%u-db-%016llx", (unsigned)getuid(), (unsigned long long)h);
}

void runtime_private_template(char *buf, size_t size)
{
        const char *base = user_base();
        if (base)
                snprintf(buf, size, "%s/ferret-private-XXXXXX", base);
        else
                snprintf(buf, size, "/tmp/ferret-%u-private-XXXXXX", (unsigned)getuid());
}
