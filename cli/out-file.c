/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "out-file.h"

int out_file_open(const char *path, struct out_file *ret)
{
        struct out_file o = { .f = stdout };
        if (path && strcmp(path, "-") != 0) {
                o.path = path;
                if (snprintf(o.tmp, sizeof(o.tmp), "%s.XXXXXX", path) >= (int)sizeof(o.tmp))
                        return cli_error(ENAMETOOLONG, "cannot write %s: the name is too long", path);
                int fd = mkstemp(o.tmp);
                if (fd < 0)
                        return cli_error(errno, "cannot write %s: %m", path);
                /* mkstemp() makes the file 0600; a picture or an export
                 * is the user's ordinary file, made with their umask. */
                mode_t mask = umask(0);
                umask(mask);
                (void)fchmod(fd, 0666 & ~mask);
                o.f = fdopen(fd, "w");
                if (!o.f) {
                        int e = errno;
                        close(fd);
                        unlink(o.tmp);
                        return cli_error(e, "cannot write %s: %s", path, strerror(e));
                }
        }
        *ret = o;
        return 0;
}

int out_file_close(struct out_file *o, int r)
{
        /* A write that failed (a full disk, a closed pipe) is reported
         * here, once, whatever the writer made of it. */
        errno = 0;
        int w = fflush(o->f) != 0 || ferror(o->f) ? -(errno ? errno : EIO) : 0;
        if (o->path) {
                if (fclose(o->f) != 0 && w == 0)
                        w = -(errno ? errno : EIO);
                if (r >= 0 && w == 0 && rename(o->tmp, o->path) < 0)
                        w = -errno;
                if (r < 0 || w < 0)
                        unlink(o->tmp);
        }
        o->f = NULL;
        if (w < 0)
                return cli_error(w, "cannot write %s: %s", o->path ? o->path : "the output", strerror(-w));
        return r < 0 ? r : 0;
}
