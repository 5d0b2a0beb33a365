/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "runtime.h"
#include "runtime-dir.h"

void runtime_default_db(char *buf, size_t size)
{
        const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
        if (geteuid() == 0)
                snprintf(buf, size, "/var/lib/ferret/db");
        else if (xdg && *xdg)
                snprintf(buf, size, "%s/ferret/db", xdg);
        else
                snprintf(buf, size, "%s/.local/share/ferret/db", home && *home ? home : "/tmp");
}

int runtime_mkdir_parents(const char *path, int mode)
{
        char buf[PATH_MAX];
        if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
                return -ENAMETOOLONG;
        for (char *p = buf + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                if (mkdir(buf, (mode_t)mode) < 0 && errno != EEXIST)
                        return -errno;
                *p = '/';
        }
        return 0;
}

int runtime_lock(const char *dir)
{
        char path[PATH_MAX];
        int r = runtime_mkdir_parents(dir, 0755);
        if (r < 0)
                return log_error_errno(r, "Failed to create the parents of %s: %m", dir);
        /* Sockets and lock are for the owner and the group only. The group
         * may not write the directory: a member who could would rename a
         * socket and bind their own in its place. */
        if (mkdir(dir, 0750) < 0 && errno != EEXIST)
                return log_error_errno(errno, "Failed to create runtime directory %s: %m", dir);
        /* One that was there already may be someone else's, made for the
         * sockets we are about to put in it. */
        char why[PATH_MAX + 64];
        if (runtime_dir_check(dir, why, sizeof(why)) < 0) {
                log_error("Refusing runtime directory: %s", why);
                return -EPERM;
        }
        snprintf(path, sizeof(path), "%s/ferretd.lock", dir);
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0660);
        if (fd < 0)
                return log_error_errno(errno, "Failed to open %s: %m", path);
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                char pid[32] = "";
                ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
                pid[n > 0 ? n : 0] = '\0';
                pid[strcspn(pid, "\n")] = '\0';
                close(fd);
                log_error("Another ferretd%s%s%s already serves %s", *pid ? " (pid " : "", pid, *pid ? ")" : "", dir);
                return -EBUSY;
        }
        char pid[32];
        int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
        if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n)
                log_warning_errno(errno, "Failed to write the pid to %s: %m, ignoring", path);
        return fd;
}

void runtime_unlock(const char *dir, int fd)
{
        char path[PATH_MAX];
        if (fd < 0)
                return;
        snprintf(path, sizeof(path), "%s/ferretd.lock", dir);
        unlink(path);
        close(fd);
        /* Ours if empty now (a private daemon's); a shared one stays. */
        rmdir(dir);
}
