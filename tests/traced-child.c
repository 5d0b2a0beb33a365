/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <ferret.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "traced-child.h"

pid_t fork_in_run(const char *run, unsigned watchdog_seconds)
{
        pid_t child = fork();
        CHECK(child >= 0);
        if (child == 0) {
                if (run)
                        setenv("FERRET_RUN_ID", run, 1);
                /* A forked child has no alarm pending: 0 leaves it so.
                 * Sanitizers make the child several times slower (TSan
                 * about ten on a busy 2-core machine): the watchdog is
                 * there for a child that hangs, not one that is slow. */
                const char *sanitized = getenv("FERRET_SANITIZED");
                alarm(watchdog_seconds * (sanitized && strcmp(sanitized, "1") == 0 ? 5 : 1));
        }
        return child;
}

noreturn void exit_when_all_stored(void)
{
        ferret_stats_t st = { .size = sizeof(st) };
        ferret_get_stats(&st);
        _exit(ferret_flush(30000) == 0 && st.dropped == 0 ? 0 : 1);
}

noreturn void exit_when_flushed(void)
{
        int r = ferret_flush(30000);
        if (r != 0 && r != -ENODATA)
                fprintf(stderr, "flush: %s\n", ferret_strerror(r));
        _exit(r == 0 || r == -ENODATA ? 0 : 1);
}

int start_profiling_timer(void (*handler)(int), long interval_us, timer_t *ret)
{
        struct sigaction sa = { .sa_handler = handler, .sa_flags = SA_RESTART };
        struct sigevent ev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGPROF };
        struct itimerspec every = { { 0, interval_us * 1000 }, { 0, interval_us * 1000 } };
        timer_t timer;
        if (sigaction(SIGPROF, &sa, NULL) < 0 || timer_create(CLOCK_MONOTONIC, &ev, &timer) < 0)
                return -1;
        if (timer_settime(timer, 0, &every, NULL) < 0) {
                int saved = errno;
                timer_delete(timer);
                errno = saved;
                return -1;
        }
        *ret = timer;
        return 0;
}

pid_t fork_reporting(const char *run, unsigned watchdog_seconds, struct child_report *ret)
{
        CHECK(pipe(ret->fds) == 0);
        return fork_in_run(run, watchdog_seconds);
}

void child_report_send(struct child_report *r, int a, int b)
{
        int sent[2] = { a, b };
        if (write(r->fds[1], sent, sizeof(sent)) != sizeof(sent))
                _exit(4);
}

void child_report_receive(struct child_report *r, int ret[2])
{
        CHECK_EQ(read(r->fds[0], ret, 2 * sizeof(int)), 2 * sizeof(int));
}
