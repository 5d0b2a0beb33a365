/* SPDX-License-Identifier: MIT */
/*
 * Starts /bin/true, or a copy of itself that exits at once, by each means a
 * process span's start must follow (posix_spawn, fork, fork + exec, vfork +
 * exec), ROUNDS times each, and prints for each child, on stdout:
 * "MEANS PID ASKED REAPED", the CLOCK_REALTIME nanoseconds just before the
 * call that started it and just after waitpid() reaped it. With arguments,
 * `spawn-times PROGRAM ARG...` posix_spawns that command, ROUNDS times
 * (MEANS "program").
 */
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 7

extern char **environ;

static int64_t now_ns(void)
{
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void reaped(const char *means, pid_t pid, int64_t asked)
{
        if (pid < 0 || waitpid(pid, NULL, 0) != pid) {
                perror(means);
                _exit(1);
        }
        printf("%s %d %lld %lld\n", means, (int)pid, (long long)asked, (long long)now_ns());
}

/* Apart, so that nothing of the caller's lives across vfork(). */
static __attribute__((noinline)) pid_t vfork_true(char **argv)
{
        pid_t pid = vfork();
        if (pid == 0) {
                execv("/bin/true", argv);
                _exit(127);
        }
        return pid;
}

int main(int argc, char **argv)
{
        char *true_argv[] = { "true", NULL };
        if (argc > 1) {
                for (int i = 0; i < ROUNDS; i++) {
                        pid_t pid;
                        int64_t asked = now_ns();
                        if (posix_spawn(&pid, argv[1], NULL, NULL, argv + 1, environ) != 0)
                                pid = -1;
                        reaped("program", pid, asked);
                }
                return 0;
        }
        for (int i = 0; i < ROUNDS; i++) {
                pid_t pid;
                int64_t asked = now_ns();
                if (posix_spawn(&pid, "/bin/true", NULL, NULL, true_argv, environ) != 0)
                        pid = -1;
                reaped("posix_spawn", pid, asked);

                asked = now_ns();
                pid = fork();
                if (pid == 0)
                        _exit(0);
                reaped("fork", pid, asked);

                asked = now_ns();
                pid = fork();
                if (pid == 0) {
                        execv("/bin/true", true_argv);
                        _exit(127);
                }
                reaped("fork+exec", pid, asked);

                asked = now_ns();
                reaped("vfork+exec", vfork_true(true_argv), asked);
        }
        return 0;
}
