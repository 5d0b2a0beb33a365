/* SPDX-License-Identifier: MIT */
/*
 * Stands in for ferretd where tests/test-runtime.c checks how a private
 * daemon is started and waited for. FAKE_FERRETD says what it does:
 *   ready        says STATUS=starting, then READY=1, and waits for SIGTERM;
 *   child-ready  a child of it says READY=1 (not the process started), and
 *                it waits to be killed;
 *   status-ready says STATUS=READY=1 (a status text, not readiness) and waits;
 *   exit         exits with status 3 at once.
 * With FAKE_FERRETD_OUT it first writes there its arguments, one a line,
 * then "--" and the variables LD_PRELOAD, JOURNAL_STREAM and NOTIFY_SOCKET
 * it was given, and where its stdin and stdout lead.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static void notify(const char *msg)
{
        const char *path = getenv("NOTIFY_SOCKET");
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (!path || strlen(path) >= sizeof(sa.sun_path))
                exit(4);
        strcpy(sa.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                exit(5);
        close(fd);
}

static void describe(const char *out, int argc, char **argv)
{
        FILE *f = fopen(out, "w");
        if (!f)
                exit(6);
        for (int i = 1; i < argc; i++)
                fprintf(f, "%s\n", argv[i]);
        fprintf(f, "--\n");
        const char *names[] = { "LD_PRELOAD", "JOURNAL_STREAM", "NOTIFY_SOCKET" };
        for (size_t i = 0; i < 3; i++)
                fprintf(f, "%s=%s\n", names[i], getenv(names[i]) ? "set" : "unset");
        char link[256];
        for (int fd = 0; fd < 2; fd++) {
                char proc[64];
                snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
                ssize_t n = readlink(proc, link, sizeof(link) - 1);
                link[n > 0 ? n : 0] = '\0';
                fprintf(f, "fd%d=%s\n", fd, link);
        }
        fclose(f);
}

int main(int argc, char **argv)
{
        const char *mode = getenv("FAKE_FERRETD"), *out = getenv("FAKE_FERRETD_OUT");
        if (out)
                describe(out, argc, argv);
        if (!mode || strcmp(mode, "exit") == 0)
                return 3;
        if (strcmp(mode, "ready") == 0)
                notify("STATUS=starting\nREADY=1\nMAINPID=1");
        else if (strcmp(mode, "status-ready") == 0)
                notify("STATUS=READY=1");
        else if (strcmp(mode, "child-ready") == 0) {
                pid_t child = fork();
                if (child == 0) {
                        notify("READY=1");
                        _exit(0);
                }
                waitpid(child, NULL, 0);
        }
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigprocmask(SIG_BLOCK, &set, NULL);
        int sig;
        sigwait(&set, &sig);
        return 0;
}
