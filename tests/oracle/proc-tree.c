/* SPDX-License-Identifier: MIT */
/*
 * A process tree from a plan, for the process oracle (test_processes.py):
 * `proc-tree PLAN` starts the children PLAN names, in order, then waits for
 * them all and exits. A plan is a sequence of steps:
 *
 *   F{p}     fork; the child runs p, then exit()
 *   f{p}     fork; the child runs p, then _exit()
 *   E{p}     fork, then exec `proc-tree p` in the child
 *   V{p}     vfork, then exec `proc-tree p` in the child
 *   S{p}     posix_spawn `proc-tree p`
 *   Y{p}     system("proc-tree p"): a shell starts it
 *   |{p}{q}  system("proc-tree p | proc-tree q"): a pipeline
 *   X{p}     exec `proc-tree p` in place of this image (no step after it runs)
 *   W        wait for the children started so far
 *   c<digit> the exit status of this process (default 0)
 *
 * `proc-tree @FILE` runs each line of FILE as a program of its own: it
 * posix_spawns `proc-tree LINE` and waits for it, one after the other.
 * Plans hold only letters, digits, braces and '|', so that they pass through
 * a shell in single quotes.
 */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define PLAN_MAX 4096

static const char *self;
static int exit_status;

static void fail(const char *what)
{
        perror(what);
        _exit(120);
}

/* The end of the braced group that starts at @p (at its '{'). */
static const char *group_end(const char *p)
{
        if (*p != '{') {
                fprintf(stderr, "proc-tree: '{' expected at \"%s\"\n", p);
                _exit(121);
        }
        int depth = 0;
        for (; *p; p++) {
                depth += *p == '{';
                depth -= *p == '}';
                if (depth == 0)
                        return p;
        }
        fprintf(stderr, "proc-tree: unbalanced braces\n");
        _exit(121);
}

/* The group at @p, without its braces, in @out. Returns what follows it. */
static const char *take_group(const char *p, char *out)
{
        const char *end = group_end(p);
        size_t len = (size_t)(end - p - 1);
        if (len >= PLAN_MAX)
                _exit(121);
        memcpy(out, p + 1, len);
        out[len] = '\0';
        return end + 1;
}

static void exec_plan(const char *plan)
{
        char *argv[] = { (char *)self, (char *)plan, NULL };
        execv(self, argv);
        fail("execv");
}

static void run_plan(const char *plan);

static void shell(const char *a, const char *b)
{
        char cmd[3 * PLAN_MAX];
        if (b)
                snprintf(cmd, sizeof(cmd), "'%s' '%s' | '%s' '%s'", self, a, self, b);
        else
                snprintf(cmd, sizeof(cmd), "'%s' '%s'", self, a);
        if (system(cmd) < 0)
                fail("system");
}

static void wait_all(void)
{
        while (wait(NULL) > 0)
                ;
}

static void run_plan(const char *plan)
{
        char sub[PLAN_MAX], sub2[PLAN_MAX];
        for (const char *p = plan; *p;) {
                char step = *p++;
                pid_t pid;
                switch (step) {
                case 'F':
                case 'f':
                        p = take_group(p, sub);
                        pid = fork();
                        if (pid < 0)
                                fail("fork");
                        if (pid == 0) {
                                exit_status = 0;
                                run_plan(sub);
                                wait_all();
                                if (step == 'F')
                                        exit(exit_status);
                                _exit(exit_status);
                        }
                        break;
                case 'E':
                        p = take_group(p, sub);
                        pid = fork();
                        if (pid < 0)
                                fail("fork");
                        if (pid == 0)
                                exec_plan(sub);
                        break;
                case 'V': {
                        p = take_group(p, sub);
                        char *argv[] = { (char *)self, sub, NULL };
                        pid = vfork();
                        if (pid < 0)
                                fail("vfork");
                        if (pid == 0) {
                                execv(self, argv);
                                _exit(127);
                        }
                        break;
                }
                case 'S': {
                        p = take_group(p, sub);
                        char *argv[] = { (char *)self, sub, NULL };
                        if (posix_spawn(&pid, self, NULL, NULL, argv, environ) != 0)
                                fail("posix_spawn");
                        break;
                }
                case 'Y':
                        p = take_group(p, sub);
                        shell(sub, NULL);
                        break;
                case '|':
                        p = take_group(p, sub);
                        p = take_group(p, sub2);
                        shell(sub, sub2);
                        break;
                case 'X':
                        p = take_group(p, sub);
                        wait_all();
                        exec_plan(sub);
                        break;
                case 'W':
                        wait_all();
                        break;
                case 'c':
                        exit_status = *p ? *p++ - '0' : 0;
                        break;
                default:
                        fprintf(stderr, "proc-tree: unknown step '%c'\n", step);
                        _exit(121);
                }
        }
}

static int run_programs(const char *file)
{
        FILE *f = fopen(file, "re");
        if (!f)
                fail(file);
        char line[PLAN_MAX];
        while (fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\n")] = '\0';
                char *argv[] = { (char *)self, line, NULL };
                pid_t pid;
                if (posix_spawn(&pid, self, NULL, NULL, argv, environ) != 0)
                        fail("posix_spawn");
                if (waitpid(pid, NULL, 0) != pid)
                        fail("waitpid");
        }
        fclose(f);
        return 0;
}

int main(int argc, char **argv)
{
        self = argv[0];
        if (argc != 2) {
                fprintf(stderr, "usage: proc-tree PLAN | proc-tree @FILE\n");
                return 2;
        }
        if (argv[1][0] == '@')
                return run_programs(argv[1] + 1);
        run_plan(argv[1]);
        wait_all();
        return exit_status;
}
