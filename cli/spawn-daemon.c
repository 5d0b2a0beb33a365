/* SPDX-License-Identifier: MIT */
/*
 * The command's helpers beside it, and its private ferretd: `ferret
 * analyze` starts a read-only one to read a database directly (`ferret
 * run`'s is chosen by runtime_choose()). Starting it and waiting for it is
 * runtime-daemon.h's, shared with the Python package, the tests and the
 * benchmarks; this file finds the program and says what went wrong.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"

int cli_locate_helper(const char *name, const char *build_subdir, char *buf, size_t size)
{
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n > 0) {
                exe[n] = '\0';
                char *dir = dirname(exe);
                snprintf(buf, size, "%s/%s", dir, name);
                if (access(buf, R_OK) == 0)
                        return 0;
                /* Running from the build tree: cli/ferret beside ferretd/ferretd. */
                snprintf(buf, size, "%s/../%s/%s", dir, build_subdir, name);
                if (access(buf, R_OK) == 0)
                        return 0;
                /* Installed by pip: bin/ferret, and the package beside the library. */
                snprintf(buf, size, "%s/../lib/python%s/site-packages/ferret/%s", dir, FERRET_PYTHON_VERSION,
                         name);
                if (access(buf, R_OK) == 0)
                        return 0;
        }
        snprintf(buf, size, "%s/%s", strstr(name, ".so") ? FERRET_LIBDIR : FERRET_BINDIR, name);
        return access(buf, R_OK) == 0 ? 0 : -ENOENT;
}

int cli_find_helper(const char *name, const char *build_subdir, char *buf, size_t size)
{
        if (cli_locate_helper(name, build_subdir, buf, size) == 0)
                return 0;
        return cli_error(ENOENT, "cannot find %s (looked beside this program and in the install directories)", name);
}

int private_daemon_start(const char *db, struct runtime_daemon *ret)
{
        static const char *const args[] = { "--log-level", "warning", "--read-only", NULL };
        char daemon[PATH_MAX], why[PATH_MAX + 256];
        int r = cli_find_helper("ferretd", "ferretd", daemon, sizeof(daemon));
        if (r < 0)
                return r;
        struct runtime_start s = { .ferretd = daemon, .db = db, .args = args, .exit_with_parent = true };
        r = runtime_daemon_start(&s, ret, why, sizeof(why));
        return r < 0 ? cli_error(r, "%s", why) : 0;
}

int private_daemon_stop(struct runtime_daemon *d)
{
        int status = runtime_daemon_stop(d);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return cli_error(EIO, "ferretd for this run did not stop cleanly");
        return 0;
}
