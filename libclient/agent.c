/* SPDX-License-Identifier: MIT */
/*
 * The agent `ferret run` preloads (LD_PRELOAD) into the program it runs and,
 * through the inherited environment, into every descendant. It records one
 * span per process image: from start (or fork) to exit (or exec), with the
 * command line, pid and exit status. Exec'd images become siblings of the
 * image they replace; forked children become children of the span open in
 * the thread that forked.
 *
 * The process `ferret run` starts itself is recorded by `ferret run`, which
 * sees its exit status even when a signal kills it; FERRET_AGENT_SKIP_SELF
 * tells the agent in that process not to record it twice. The variable is
 * removed at once, so descendants (and an image the process execs) are
 * recorded as usual.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ferret.h"

#define EXPORT __attribute__((visibility("default")))
#define CMDLINE_MAX 255
#define FLUSH_BEFORE_EXEC_MS 2000

static ferret_span_t *process_span;
static pid_t agent_pid;                   /* the process this agent's state belongs to */
static ferret_ctx_t launched_by;          /* the parent span this image started under */
static char program[64];
static char cmdline[CMDLINE_MAX + 1];

static void join_argv(int argc, char **argv)
{
        size_t len = 0;
        cmdline[0] = '\0';
        for (int i = 0; i < argc && argv && argv[i]; i++) {
                int n = snprintf(cmdline + len, sizeof(cmdline) - len, "%s%s", i ? " " : "", argv[i]);
                if (n < 0 || (size_t)n >= sizeof(cmdline) - len)
                        break;
                len += (size_t)n;
        }
}

static void export_context(ferret_ctx_t ctx)
{
        char tp[FERRET_TRACEPARENT_LEN + 1];
        if (ferret_ctx_format(ctx, tp, sizeof(tp)) == 0)
                setenv("FERRET_TRACEPARENT", tp, 1);
}

static void begin_process_span(bool forked)
{
        process_span = ferret_span_begin(program);
        ferret_span_tag_str(process_span, "cmdline", cmdline);
        ferret_span_tag_int(process_span, "pid", getpid());
        ferret_span_tag_int(process_span, "ppid", getppid());
        if (forked)
                ferret_span_tag_bool(process_span, "forked", true);
        ferret_ctx_t ctx = ferret_span_context(process_span);
        if (ferret_ctx_is_valid(ctx)) {
                ferret_set_default_parent(ctx);
                export_context(ctx);
        }
}

static void end_process_span(int status, const char *how)
{
        if (!process_span)
                return;
        ferret_span_tag_int(process_span, "exit_code", status);
        if (how)
                ferret_span_tag_str(process_span, "ended_by", how);
        if (status != 0) {
                char msg[32];
                snprintf(msg, sizeof(msg), "exit status %d", status);
                ferret_span_set_status(process_span, FERRET_STATUS_ERROR, msg);
        }
        ferret_span_end(process_span);
        process_span = NULL;
}

/* A child of vfork() (or of a clone without fork handlers) shares our
 * memory until it execs: it must not touch the parent's spans or environment.
 * Its exec'd image inherits FERRET_TRACEPARENT, which names our span. */
static bool in_borrowed_memory(void)
{
        return getpid() != agent_pid;
}

static void agent_after_fork_child(void)
{
        agent_pid = getpid();
        /* The parent records its own span; this child gets a new one, under
         * whatever span the forking thread had open. */
        process_span = NULL;
        launched_by = ferret_current();
        begin_process_span(true);
}

__attribute__((constructor)) static void agent_start(int argc, char **argv, char **envp)
{
        (void)envp;
        const char *base = argc > 0 && argv && argv[0] ? strrchr(argv[0], '/') : NULL;
        snprintf(program, sizeof(program), "%s", base ? base + 1 : argc > 0 && argv && argv[0] ? argv[0] : "?");
        join_argv(argc, argv);
        agent_pid = getpid();
        launched_by = ferret_current();

        if (getenv("FERRET_AGENT_SKIP_SELF"))
                unsetenv("FERRET_AGENT_SKIP_SELF");
        else
                begin_process_span(false);
        pthread_atfork(NULL, NULL, agent_after_fork_child);
}

/* Normal exits: return from main() and exit() both run this through
 * atexit-time destructors; the exit status comes from the wrappers below. */
static int exit_status;

__attribute__((destructor)) static void agent_stop(void)
{
        end_process_span(exit_status, NULL);
}

EXPORT void exit(int status)
{
        static void (*real_exit)(int);
        if (!real_exit)
                real_exit = (void (*)(int))dlsym(RTLD_NEXT, "exit");
        if (!in_borrowed_memory()) {
                exit_status = status;
                end_process_span(status, NULL);
        }
        real_exit(status);
        __builtin_unreachable();
}

EXPORT void _exit(int status)
{
        static void (*real)(int);
        if (!real)
                real = (void (*)(int))dlsym(RTLD_NEXT, "_exit");
        if (!in_borrowed_memory()) {
                end_process_span(status, "_exit");
                /* _exit skips destructors: deliver what is buffered now. */
                ferret_shutdown();
        }
        real(status);
        __builtin_unreachable();
}

EXPORT void _Exit(int status)
{
        _exit(status);
}

/* main() returning goes through __libc_start_main's exit(), which is not
 * interposable, so main itself is wrapped to see its return value. */
typedef int (*main_fn)(int, char **, char **);
static main_fn real_main;

static int wrapped_main(int argc, char **argv, char **envp)
{
        int status = real_main(argc, argv, envp);
        exit_status = status & 0xff;
        end_process_span(status & 0xff, NULL);
        return status;
}

int __libc_start_main(main_fn main, int argc, char **argv, void (*init)(void), void (*fini)(void),
                      void (*rtld_fini)(void), void *stack_end);

EXPORT int __libc_start_main(main_fn main, int argc, char **argv, void (*init)(void),
                             void (*fini)(void), void (*rtld_fini)(void), void *stack_end)
{
        typedef int (*start_fn)(main_fn, int, char **, void (*)(void), void (*)(void), void (*)(void), void *);
        start_fn real = (start_fn)dlsym(RTLD_NEXT, "__libc_start_main");
        real_main = main;
        return real(wrapped_main, argc, argv, init, fini, rtld_fini, stack_end);
}

/* exec replaces this image: close its span, make sure it reaches the daemon,
 * and let the new image start under the span this one started under. */
static void before_exec(void)
{
        if (in_borrowed_memory())
                return;
        end_process_span(0, "exec");
        ferret_flush(FLUSH_BEFORE_EXEC_MS);
        if (ferret_ctx_is_valid(launched_by))
                export_context(launched_by);
        else
                unsetenv("FERRET_TRACEPARENT");
}

/* An explicit environment may lack (or carry a stale) FERRET_TRACEPARENT:
 * use ours. Returns a malloc'd array, or envp itself when memory is short. */
static char **with_traceparent(char *const envp[])
{
        if (in_borrowed_memory())
                return (char **)envp;   /* no malloc in a vfork child */
        const char *tp = getenv("FERRET_TRACEPARENT");
        size_t n = 0;
        while (envp && envp[n])
                n++;
        char **env = malloc((n + 2) * sizeof(*env));
        static char entry[32 + FERRET_TRACEPARENT_LEN];
        if (!env)
                return (char **)envp;
        size_t j = 0;
        for (size_t i = 0; i < n; i++)
                if (strncmp(envp[i], "FERRET_TRACEPARENT=", 19) != 0)
                        env[j++] = envp[i];
        if (tp) {
                snprintf(entry, sizeof(entry), "FERRET_TRACEPARENT=%s", tp);
                env[j++] = entry;
        }
        env[j] = NULL;
        return env;
}

#define REAL(name, type) \
        static type real_##name; \
        if (!real_##name) \
                real_##name = (type)dlsym(RTLD_NEXT, #name)

typedef int (*execve_fn)(const char *, char *const[], char *const[]);
typedef int (*execv_fn)(const char *, char *const[]);

EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
        REAL(execve, execve_fn);
        before_exec();
        char **env = with_traceparent(envp);
        int r = real_execve(path, argv, env);
        int saved = errno;
        if (env != envp)
                free(env);
        errno = saved;
        return r;
}

EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
        REAL(execvpe, execve_fn);
        before_exec();
        char **env = with_traceparent(envp);
        int r = real_execvpe(file, argv, env);
        int saved = errno;
        if (env != envp)
                free(env);
        errno = saved;
        return r;
}

EXPORT int execv(const char *path, char *const argv[])
{
        REAL(execv, execv_fn);
        before_exec();
        return real_execv(path, argv);
}

EXPORT int execvp(const char *file, char *const argv[])
{
        REAL(execvp, execv_fn);
        before_exec();
        return real_execvp(file, argv);
}

/* The execl family collects its arguments and goes through the above. */
#define COLLECT_ARGS(arg0, ap, argv) \
        do { \
                size_t n_ = 1; \
                va_list count_; \
                va_copy(count_, ap); \
                while (va_arg(count_, char *)) \
                        n_++; \
                va_end(count_); \
                argv = alloca((n_ + 1) * sizeof(char *)); \
                argv[0] = (char *)(arg0); \
                for (size_t i_ = 1; i_ <= n_; i_++) \
                        argv[i_] = va_arg(ap, char *); \
        } while (0)

EXPORT int execl(const char *path, const char *arg, ...)
{
        char **argv;
        va_list ap;
        va_start(ap, arg);
        COLLECT_ARGS(arg, ap, argv);
        va_end(ap);
        return execv(path, argv);
}

EXPORT int execlp(const char *file, const char *arg, ...)
{
        char **argv;
        va_list ap;
        va_start(ap, arg);
        COLLECT_ARGS(arg, ap, argv);
        va_end(ap);
        return execvp(file, argv);
}

EXPORT int execle(const char *path, const char *arg, ...)
{
        char **argv;
        va_list ap;
        va_start(ap, arg);
        COLLECT_ARGS(arg, ap, argv);
        char *const *envp = va_arg(ap, char *const *);
        va_end(ap);
        return execve(path, argv, envp);
}
