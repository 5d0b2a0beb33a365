/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "out-file.h"

/* A file written through stdio keeps the errno of its first failed write:
 * stdio only remembers that one failed, and by the time the output is
 * closed errno may say anything (or nothing, and "no space left" became
 * "input/output error"). */
struct out_sink {
        int fd;
        int error;
};

static ssize_t sink_write(void *cookie, const char *buf, size_t size)
{
        struct out_sink *s = cookie;
        size_t done = 0;
        while (done < size) {
                ssize_t n = write(s->fd, buf + done, size - done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        if (!s->error)
                                s->error = n < 0 ? errno : EIO;
                        return done ? (ssize_t)done : -1;
                }
                done += (size_t)n;
        }
        return (ssize_t)done;
}

static int sink_close(void *cookie)
{
        struct out_sink *s = cookie;
        int r = close(s->fd);
        if (r < 0 && !s->error)
                s->error = errno;
        return r;
}

int out_file_open(const char *path, struct out_file *ret)
{
        struct out_file o = { .f = stdout };
        if (path && strcmp(path, "-") != 0) {
                o.path = path;
                if (snprintf(o.tmp, sizeof(o.tmp), "%s.XXXXXX", path) >= (int)sizeof(o.tmp))
                        return cli_error(ENAMETOOLONG, "cannot write %s: the name is too long", path);
                if (!(o.sink = calloc(1, sizeof(*o.sink))))
                        return cli_error(ENOMEM, "out of memory");
                int fd = mkstemp(o.tmp);
                if (fd < 0) {
                        int e = errno;
                        free(o.sink);
                        return cli_error(e, "cannot write %s: %s", path, strerror(e));
                }
                /* mkstemp() makes the file 0600; a picture or an export
                 * is the user's ordinary file, made with their umask. */
                mode_t mask = umask(0);
                umask(mask);
                (void)fchmod(fd, 0666 & ~mask);
                o.sink->fd = fd;
                static const cookie_io_functions_t io = { .write = sink_write, .close = sink_close };
                o.f = fopencookie(o.sink, "w", io);
                if (!o.f) {
                        int e = errno;
                        close(fd);
                        unlink(o.tmp);
                        free(o.sink);
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
                if (o->sink->error)
                        w = -o->sink->error;
                if (r >= 0 && w == 0 && rename(o->tmp, o->path) < 0)
                        w = -errno;
                if (r < 0 || w < 0)
                        unlink(o->tmp);
                free(o->sink);
                o->sink = NULL;
        }
        o->f = NULL;
        if (w < 0)
                return cli_error(w, "cannot write %s: %s", o->path ? o->path : "the output", strerror(-w));
        return r < 0 ? r : 0;
}
