/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "lttng-session.h"

/* Runs an lttng command; on failure, puts its first error line in @why.
 * Returns 0, -ENOENT when the program is missing, or -EIO. */
static int lttng_cmd(char *const argv[], char **ret_out, char *why, size_t size)
{
        char *out = NULL, *err = NULL;
        int status = bench_run(argv, &out, &err);
        int r = 0;
        if (status < 0)
                r = status;
        else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                const char *msg = err && *err ? err : out && *out ? out : "no message\n";
                if (why)
                        snprintf(why, size, "%s %s: %.*s", argv[0], argv[1], (int)strcspn(msg, "\n"), msg);
                r = -EIO;
        }
        if (ret_out && r == 0)
                *ret_out = out;
        else
                free(out);
        free(err);
        return r;
}

/* Where lttng-sessiond --daemonize records its pid: the root daemon in
 * /var/run/lttng, a user's in $LTTNG_HOME/.lttng (default $HOME). */
static pid_t sessiond_pid(void)
{
        char path[512];
        if (geteuid() == 0)
                snprintf(path, sizeof(path), "/var/run/lttng/lttng-sessiond.pid");
        else {
                const char *home = getenv("LTTNG_HOME");
                if (!home || !*home)
                        home = getenv("HOME");
                snprintf(path, sizeof(path), "%s/.lttng/lttng-sessiond.pid", home ? home : "");
        }
        FILE *f = fopen(path, "re");
        if (!f)
                return 0;
        int pid = 0;
        if (fscanf(f, "%d", &pid) != 1)
                pid = 0;
        fclose(f);
        return pid;
}

int bench_lttng_start(struct bench_lttng *l, char *why, size_t size)
{
        memset(l, 0, sizeof(*l));
        why[0] = '\0';

        /* `lttng list` fails when no session daemon answers. */
        char *list[] = { "lttng", "list", NULL };
        int r = lttng_cmd(list, NULL, NULL, 0);
        if (r == -ENOENT) {
                snprintf(why, size, "lttng-tools is not installed");
                return r;
        }
        if (r < 0) {
                /* --daemonize returns once the daemon accepts commands, so
                 * nothing needs to wait for it afterwards. */
                char *start[] = { "lttng-sessiond", "--daemonize", NULL };
                r = lttng_cmd(start, NULL, why, size);
                if (r == -ENOENT)
                        snprintf(why, size, "lttng-sessiond is not installed");
                if (r < 0)
                        return r;
                l->sessiond = sessiond_pid();
                if (l->sessiond <= 0)
                        fprintf(stderr, "Started lttng-sessiond but found no pid file: it will keep running\n");
        }

        r = bench_mkdtemp("ferret-bench-lttng", l->dir, sizeof(l->dir));
        if (r < 0) {
                snprintf(why, size, "cannot create a temporary directory: %s", strerror(-r));
                return r;
        }
        snprintf(l->name, sizeof(l->name), "ferret-bench-%d", (int)getpid());
        char output[200];
        snprintf(output, sizeof(output), "--output=%s/trace", l->dir);
        char *create[] = { "lttng", "create", l->name, output, NULL };
        r = lttng_cmd(create, NULL, why, size);
        if (r < 0)
                return r;
        l->created = true;

        char session[100];
        snprintf(session, sizeof(session), "--session=%s", l->name);
        char *enable[] = { "lttng", "enable-event", "--userspace", "ferret_bench:*", session, NULL };
        r = lttng_cmd(enable, NULL, why, size);
        if (r < 0)
                return r;
        char *begin[] = { "lttng", "start", l->name, NULL };
        return lttng_cmd(begin, NULL, why, size);
}

int bench_lttng_stop(struct bench_lttng *l, uint64_t *ret_discarded)
{
        char why[256];
        char *stop[] = { "lttng", "stop", l->name, NULL };
        int r = lttng_cmd(stop, NULL, why, sizeof(why));
        if (r < 0) {
                fprintf(stderr, "%s\n", why);
                return r;
        }
        /* `lttng list SESSION` shows "Discarded events: N" per channel. */
        char *out = NULL;
        char *list[] = { "lttng", "list", l->name, NULL };
        r = lttng_cmd(list, &out, why, sizeof(why));
        if (r < 0) {
                fprintf(stderr, "%s\n", why);
                return r;
        }
        uint64_t total = 0;
        bool found = false;
        for (const char *p = strstr(out, "Discarded events:"); p; p = strstr(p + 1, "Discarded events:")) {
                total += strtoull(p + strlen("Discarded events:"), NULL, 10);
                found = true;
        }
        free(out);
        if (!found)
                return -EINVAL;
        *ret_discarded = total;
        return 0;
}

/* Waits for a process that is not our child to exit: its pidfd becomes
 * readable then. The timeout only bounds a hang. */
static void wait_exit(pid_t pid)
{
        int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0)
                return;
        struct pollfd p = { .fd = pidfd, .events = POLLIN };
        while (poll(&p, 1, 10000) < 0 && errno == EINTR)
                ;
        close(pidfd);
}

void bench_lttng_cleanup(struct bench_lttng *l)
{
        if (l->created) {
                char *destroy[] = { "lttng", "destroy", l->name, NULL };
                char why[256];
                if (lttng_cmd(destroy, NULL, why, sizeof(why)) < 0)
                        fprintf(stderr, "%s, ignoring\n", why);
                l->created = false;
        }
        if (l->sessiond > 0) {
                /* It stops its consumer daemons itself. */
                if (kill(l->sessiond, SIGTERM) == 0)
                        wait_exit(l->sessiond);
                l->sessiond = 0;
        }
        bench_rmtree(l->dir);
        l->dir[0] = '\0';
}
