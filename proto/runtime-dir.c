/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime-dir.h"

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
