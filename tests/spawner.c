/* SPDX-License-Identifier: MIT */
/*
 * A process tree for the `ferret run` tests: `spawner N` starts `spawner N-1`
 * by a different means at each level (posix_spawn, system, fork + exec),
 * then exits with status 0.
 */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
        int level = argc > 1 ? atoi(argv[1]) : 0;
        char next[16], cmd[4200];
        snprintf(next, sizeof(next), "%d", level - 1);
        if (level <= 0)
                return 0;
        switch (level % 3) {
        case 0: {
                pid_t pid;
                char *args[] = { argv[0], next, NULL };
                if (posix_spawn(&pid, argv[0], NULL, NULL, args, environ) != 0 || waitpid(pid, NULL, 0) != pid)
                        return 1;
                break;
        }
        case 2:
                snprintf(cmd, sizeof(cmd), "'%s' %s", argv[0], next);
                if (system(cmd) != 0)
                        return 1;
                break;
        default: {
                pid_t pid = fork();
                if (pid == 0) {
                        execl(argv[0], argv[0], next, (char *)NULL);
                        _exit(127);
                }
                int status;
                if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        return 1;
        }
        }
        return 0;
}
