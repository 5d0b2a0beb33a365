/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

#define MAX_TESTS 128

static struct {
        const char *name;
        test_fn fn;
} tests[MAX_TESTS];
static size_t n_tests;
static const char *current;

void harness_register(const char *name, test_fn fn)
{
        if (n_tests < MAX_TESTS)
                tests[n_tests++] = (typeof(tests[0])){ name, fn };
}

void harness_fail(const char *file, int line, const char *fmt, ...)
{
        va_list ap;
        fflush(stdout);
        fprintf(stderr, "FAIL %s (%s:%d): ", current ? current : "?", file, line);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        exit(1);
}

void harness_wait_ok(pid_t pid, const char *file, int line)
{
        int status;
        if (waitpid(pid, &status, 0) != pid)
                harness_fail(file, line, "waitpid(%d): %s", (int)pid, strerror(errno));
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                harness_fail(file, line, "child %d failed: status %d", (int)pid, status);
}

int main(int argc, char **argv)
{
        size_t ran = 0;
        setvbuf(stdout, NULL, _IOLBF, 0);
        for (size_t i = 0; i < n_tests; i++) {
                if (argc > 1 && strcmp(argv[1], tests[i].name) != 0)
                        continue;
                current = tests[i].name;
                printf("RUN  %s\n", current);
                tests[i].fn();
                printf("OK   %s\n", current);
                ran++;
        }
        if (!ran) {
                fprintf(stderr, "no test named %s\n", argc > 1 ? argv[1] : "(any)");
                return 1;
        }
        return 0;
}
