/* SPDX-License-Identifier: MIT */
/*
 * The agent `ferret run` preloads (LD_PRELOAD) into the program it runs and,
 * through the inherited environment, into every descendant. It records one
 * span per process image: from start (or fork) to exit (or exec), with the
 * command line, pid and exit status. Exec'd images become siblings of the
 * image they replace; forked children become children of the span open in
 * the thread that forked.
 *
 * A process span covers the process's life as its parent sees it, as
 * closely as the process itself can say: it starts when the parent asked
 * for the process (the fork, posix_spawn or exec call, timed by the
 * parent's agent and handed over in FERRET_SPAWNED_NS, a CLOCK_MONOTONIC
 * instant), and ends when the program is done and its other spans are
 * delivered: after exit(), _exit(), the return from main or the exec of
 * another image, or at a fatal signal. What follows until the parent reaps
 * the process is Ferret delivering that last span (until ferretd says it
 * is stored) and the kernel's teardown. Children
 * that glibc starts behind our back (system(), popen()) start when their
 * agent does, before the program's own code.
 *
 * The process `ferret run` starts itself is recorded by `ferret run`, which
 * sees its exit status even when a signal kills it; FERRET_AGENT_SKIP_SELF
 * tells the agent in that process not to record it twice. The variable is
 * removed at once, so descendants (and an image the process execs) are
 * recorded as usual.
 */
#include <alloca.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <pthread.h>
#include <stdbool.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ferret.h"
#include "hooks.h"

#define EXPORT __attribute__((visibility("default")))
#define CMDLINE_MAX 255
#define FLUSH_BEFORE_EXEC_MS 2000
/* The wait for the other spans' delivery before a process span ends: a
 * daemon that does not answer (its disk full) costs an exit no more. */
#define FLUSH_BEFORE_END_MS 500
/* An instant handed over in the environment is the parent's only if it is
 * this recent; anything else is a stale or a made-up value. */
#define SPAWN_MAX_AGE_NS 60000000000ull
#define ENV_ENTRIES_MAX 4096           /* beyond, an environment is passed as it is */
#define SPAWNED_VAR "FERRET_SPAWNED_NS"

/* The functions the agent wraps, called through these. */
typedef int (*execve_fn)(const char *, char *const[], char *const[]);
typedef int (*spawn_fn)(pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *,
                        char *const[], char *const[]);
typedef pid_t (*wait4_fn)(pid_t, int *, int, struct rusage *);
typedef int (*waitid_fn)(idtype_t, id_t, siginfo_t *, int);
static execve_fn real_execve, real_execvpe;
static spawn_fn real_posix_spawn, real_posix_spawnp;
static wait4_fn real_wait4;
static waitid_fn real_waitid;

static ferret_span_t *process_span;
static pid_t agent_pid;                   /* the process this agent's state belongs to */
static ferret_ctx_t launched_by;          /* the parent span this image started under */
static char program[64];
static char cmdline[CMDLINE_MAX + 1];
static uint64_t fork_called_ns;           /* set in the parent just before fork() */

static uint64_t mono_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* When the parent asked for this image, from the environment ("NS:PID",
 * PID the process that asked: this one when it exec'd, else its parent);
 * 0 when it did not say. The variable is removed, so that children glibc
 * starts without our wrappers (system(), popen()) do not take it for
 * theirs, and the PID keeps one that a program we cannot enter (a static
 * binary) passes on from being taken by its own children. */
static uint64_t take_spawned_ns(void)
{
        const char *v = getenv(SPAWNED_VAR);
        uint64_t ns = 0, now = mono_ns();
        if (v) {
                char *end;
                errno = 0;
                unsigned long long n = strtoull(v, &end, 10);
                long pid = !errno && *end == ':' ? strtol(end + 1, &end, 10) : -1;
                if (!errno && !*end && (pid == getpid() || pid == getppid()) && n > 0 && n <= now &&
                    now - n < SPAWN_MAX_AGE_NS)
                        ns = n;
                unsetenv(SPAWNED_VAR);
        }
        return ns;
}

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
        char ts[FERRET_TRACESTATE_LEN + 1];
        if (ferret_ctx_format(ctx, tp, sizeof(tp)) == 0) {
                setenv("FERRET_TRACEPARENT", tp, 1);
                if (ferret_ctx_tracestate(ctx, ts, sizeof(ts)) == 0)
                        setenv("FERRET_TRACESTATE", ts, 1);
        }
}

static void begin_process_span(bool forked, uint64_t spawned_ns)
{
        process_span = ferret_span_begin(program);
        if (spawned_ns)
                ferret_span_set_start_monotonic(process_span, spawned_ns);
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

/* What the process's parent sees when it reaps it (wait4), for every
 * process alike, `ferret run`'s own child included: CPU time of the process
 * and of the descendants it waited for, and the largest resident set among
 * them. */
static void tag_usage(ferret_span_t *s)
{
        struct rusage self, children = { 0 };
        if (getrusage(RUSAGE_SELF, &self) < 0)
                return;
        getrusage(RUSAGE_CHILDREN, &children);
        int64_t user = (int64_t)(self.ru_utime.tv_sec + children.ru_utime.tv_sec) * 1000000000 +
                       (int64_t)(self.ru_utime.tv_usec + children.ru_utime.tv_usec) * 1000;
        int64_t sys = (int64_t)(self.ru_stime.tv_sec + children.ru_stime.tv_sec) * 1000000000 +
                      (int64_t)(self.ru_stime.tv_usec + children.ru_stime.tv_usec) * 1000;
        ferret_span_tag_int(s, "user_cpu_ns", user);
        ferret_span_tag_int(s, "sys_cpu_ns", sys);
        ferret_span_tag_int(s, "max_rss_kb", self.ru_maxrss > children.ru_maxrss ? self.ru_maxrss : children.ru_maxrss);
}

static void end_process_span(int status, const char *how)
{
        if (!process_span)
                return;
        /* The process's other spans are delivered first, so that its span
         * covers their delivery too (its parent waits for that): only the
         * delivery of this last one lies between its end and the reap. */
        ferret_flush(FLUSH_BEFORE_END_MS);
        tag_usage(process_span);
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

/* Fatal signals the program leaves at their default: record the process's
 * end with the signal (`ferret run` records it for the process it started),
 * deliver what is buffered, then die of it as the program would have. A
 * program that installs its own handler replaces ours. SIGKILL cannot be
 * seen; `ferret run` reports it for the process it started. */
static const int fatal_signals[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL };

static void on_fatal_signal(int sig)
{
        if (!in_borrowed_memory()) {
                if (process_span) {
                        char msg[48];
                        tag_usage(process_span);
                        ferret_span_tag_str(process_span, "signal", sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
                        snprintf(msg, sizeof(msg), "killed by SIG%s", sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
                        ferret_span_set_status(process_span, FERRET_STATUS_ERROR, msg);
                        ferret_span_end(process_span);
                        process_span = NULL;
                }
                /* Not async-signal-safe in general, but the process is
                 * going down. Waits FERRET_EXIT_TIMEOUT_MS at most, then
                 * tells the daemon what it did not store, as exit() does. */
                ferret_shutdown();
        }
        signal(sig, SIG_DFL);
        raise(sig);
}

/* The program sees the signals the agent watches as it left them, at their
 * default: a runtime that takes a signal only while it is at its default
 * (Python raises KeyboardInterrupt only then) still takes it, and so
 * replaces ours, as any handler of the program's does. */
typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
typedef sighandler_t (*signal_fn)(int, sighandler_t);
static sigaction_fn real_sigaction;
static signal_fn real_signal;

EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
        if (!real_sigaction)
                real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
        int r = real_sigaction(sig, act, old);
        if (r == 0 && old && old->sa_handler == on_fatal_signal && !(old->sa_flags & SA_SIGINFO)) {
                old->sa_handler = SIG_DFL;
                old->sa_flags = 0;
                sigemptyset(&old->sa_mask);
        }
        return r;
}

EXPORT sighandler_t signal(int sig, sighandler_t handler)
{
        if (!real_signal)
                real_signal = (signal_fn)dlsym(RTLD_NEXT, "signal");
        sighandler_t old = real_signal(sig, handler);
        return old == on_fatal_signal ? SIG_DFL : old;
}

/* The process is on its way out and delivers its spans: a fatal signal
 * now (multiprocessing.Pool terminates workers that are already exiting)
 * would kill the delivery, so they wait; the exit comes first. */
static void hold_fatal_signals(void)
{
        sigset_t set;
        sigemptyset(&set);
        for (size_t i = 0; i < sizeof(fatal_signals) / sizeof(fatal_signals[0]); i++)
                if (fatal_signals[i] != SIGSEGV && fatal_signals[i] != SIGBUS && fatal_signals[i] != SIGFPE &&
                    fatal_signals[i] != SIGILL)
                        sigaddset(&set, fatal_signals[i]);
        sigprocmask(SIG_BLOCK, &set, NULL);
}

static void watch_fatal_signals(void)
{
        for (size_t i = 0; i < sizeof(fatal_signals) / sizeof(fatal_signals[0]); i++) {
                struct sigaction old;
                if (sigaction(fatal_signals[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL &&
                    !(old.sa_flags & SA_SIGINFO)) {
                        struct sigaction sa = { .sa_handler = on_fatal_signal, .sa_flags = SA_RESETHAND };
                        sigemptyset(&sa.sa_mask);
                        sigaction(fatal_signals[i], &sa, NULL);
                }
        }
}

static void agent_after_fork_child(void)
{
        agent_pid = getpid();
        /* The parent records its own span; this child gets a new one, under
         * whatever span the forking thread had open. */
        process_span = NULL;
        launched_by = ferret_current();
        begin_process_span(true, fork_called_ns);
        /* A child of the process `ferret run` started (which records that
         * one itself) has a span of its own to end when a signal kills it:
         * multiprocessing.Pool terminates its workers with SIGTERM. */
        watch_fatal_signals();
}

static void agent_before_fork(void)
{
        fork_called_ns = mono_ns();
}

static void resolve_jumps(void);
static void resolve_real(void);
static void agent_quick_exit(void);

__attribute__((constructor)) static void agent_start(int argc, char **argv, char **envp)
{
        (void)envp;
        const char *base = argc > 0 && argv && argv[0] ? strrchr(argv[0], '/') : NULL;
        snprintf(program, sizeof(program), "%s", base ? base + 1 : argc > 0 && argv && argv[0] ? argv[0] : "?");
        join_argv(argc, argv);
        agent_pid = getpid();
        uint64_t spawned_ns = take_spawned_ns();
        launched_by = ferret_current();
        resolve_real();

        if (getenv("FERRET_AGENT_SKIP_SELF"))
                unsetenv("FERRET_AGENT_SKIP_SELF");
        else
                begin_process_span(false, spawned_ns);
        watch_fatal_signals();
        at_quick_exit(agent_quick_exit);
        pthread_atfork(agent_before_fork, NULL, agent_after_fork_child);
}

/* Normal exits: return from main() and exit() both run this through
 * atexit-time destructors; the exit status comes from the wrappers below. */
static int exit_status;

__attribute__((destructor)) static void agent_stop(void)
{
        /* A vfork child that calls exit() runs the destructors in its
         * parent's memory: the span is the parent's. */
        if (in_borrowed_memory())
                return;
        hold_fatal_signals();
        end_process_span(exit_status, NULL);
}

EXPORT void exit(int status)
{
        static void (*real_exit)(int);
        if (!real_exit)
                real_exit = (void (*)(int))dlsym(RTLD_NEXT, "exit");
        if (!in_borrowed_memory()) {
                exit_status = status;
                hold_fatal_signals();
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
                hold_fatal_signals();
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

/* quick_exit() skips destructors too, after its own handlers: ours, made
 * first, runs last of them, and knows the status from the wrapper. */
static void agent_quick_exit(void)
{
        if (in_borrowed_memory())
                return;
        hold_fatal_signals();
        end_process_span(exit_status, "quick_exit");
        ferret_shutdown();
}

EXPORT void quick_exit(int status)
{
        static void (*real)(int);
        if (!real)
                real = (void (*)(int))dlsym(RTLD_NEXT, "quick_exit");
        exit_status = status;
        real(status);
        __builtin_unreachable();
}

/* main() returning goes through __libc_start_main's exit(), which is not
 * interposable, so main itself is wrapped to see its return value. */
typedef int (*main_fn)(int, char **, char **);
static main_fn real_main;

static int wrapped_main(int argc, char **argv, char **envp)
{
        int status = real_main(argc, argv, envp);
        exit_status = status & 0xff;
        hold_fatal_signals();
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

/* Programs the agent cannot follow: the loader ignores LD_PRELOAD for
 * static binaries and for setuid/setgid programs that change identity, and
 * an explicit environment may have dropped it. They are reported (a span
 * that says so) rather than lost without a word. */
static bool is_static_elf(const char *path)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        Elf64_Ehdr eh;
        bool is_static = false;
        if (read(fd, &eh, sizeof(eh)) == sizeof(eh) && memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 &&
            eh.e_ident[EI_CLASS] == ELFCLASS64 && eh.e_phentsize == sizeof(Elf64_Phdr)) {
                is_static = true;
                for (unsigned i = 0; i < eh.e_phnum; i++) {
                        Elf64_Phdr ph;
                        if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph))) != sizeof(ph))
                                break;
                        if (ph.p_type == PT_INTERP) {
                                is_static = false;
                                break;
                        }
                }
        }
        close(fd);
        return is_static;
}

static bool env_preloads_agent(char *const envp[])
{
        for (size_t i = 0; envp && envp[i]; i++)
                if (strncmp(envp[i], "LD_PRELOAD=", 11) == 0 && strstr(envp[i], "libferret-agent"))
                        return true;
        return false;
}

/* The file execvp() would run: @file itself if it has a slash, else the
 * first executable match on PATH. */
static const char *search_path(const char *file, char *buf, size_t size)
{
        if (strchr(file, '/'))
                return file;
        const char *path = getenv("PATH");
        if (!path || !*path)
                path = "/bin:/usr/bin";
        for (const char *p = path; *p;) {
                size_t len = strcspn(p, ":");
                snprintf(buf, size, "%.*s/%s", (int)len, p, file);
                if (access(buf, X_OK) == 0)
                        return buf;
                p += len + (p[len] == ':');
        }
        return file;
}

static const char *untraceable(const char *path, char *const envp[])
{
        struct stat st;
        if (stat(path, &st) < 0)
                return NULL;          /* the exec will fail and say why */
        if (((st.st_mode & S_ISUID) && st.st_uid != geteuid()) || ((st.st_mode & S_ISGID) && st.st_gid != getegid()))
                return "setuid or setgid program";
        if (is_static_elf(path))
                return "static binary";
        if (envp && !env_preloads_agent(envp))
                return "its environment leaves out the agent";
        return NULL;
}

static void report_untraced(ferret_ctx_t parent, const char *path, char *const argv[], const char *reason)
{
        char args[CMDLINE_MAX + 1], msg[96];
        int n = 0;
        const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        args[0] = '\0';
        for (size_t i = 0; argv && argv[i] && n >= 0 && (size_t)n < sizeof(args); i++)
                n += snprintf(args + n, sizeof(args) - (size_t)n, "%s%s", i ? " " : "", argv[i]);
        ferret_span_t *s = ferret_span_begin_in(parent, base);
        ferret_span_tag_str(s, "cmdline", args);
        ferret_span_tag_str(s, "untraced", reason);
        snprintf(msg, sizeof(msg), "not traced: %s", reason);
        ferret_span_set_status(s, FERRET_STATUS_WARNING, msg);
        ferret_span_end(s);
}

/* exec replaces this image: close its span, make sure it reaches the daemon,
 * and let the new image start under the span this one started under, at
 * the instant returned (where this image's span ends). */
static uint64_t before_exec(const char *path, char *const argv[], char *const envp[])
{
        const char *reason = untraceable(path, envp);
        if (in_borrowed_memory()) {
                /* A vfork child: the parent's thread is suspended until this
                 * exec, so its span slots and ring are ours for a moment.
                 * Reporting needs no allocation; nothing else is touched. */
                if (reason)
                        report_untraced(ferret_current(), path, argv, reason);
                return mono_ns();
        }
        if (reason)
                report_untraced(launched_by, path, argv, reason);
        end_process_span(0, "exec");
        uint64_t at = mono_ns();
        ferret_flush(FLUSH_BEFORE_EXEC_MS);
        if (ferret_ctx_is_valid(launched_by)) {
                export_context(launched_by);
        } else {
                unsetenv("FERRET_TRACEPARENT");
                unsetenv("FERRET_TRACESTATE");
        }
        return at;
}

/* The environment a new image gets: @src with our FERRET_TRACEPARENT (an
 * explicit environment may lack it or carry a stale one) and the instant it
 * was asked for, in @vars (room for @n + 4 entries) and @extra, which the
 * caller keeps on its stack: a vfork child must not allocate. */
struct env_extra {
        char traceparent[32 + FERRET_TRACEPARENT_LEN];
        char tracestate[32 + FERRET_TRACESTATE_LEN];
        char spawned[48];
};

static size_t env_count(char *const src[])
{
        size_t n = 0;
        while (src && src[n])
                n++;
        return n;
}

static bool env_is(const char *entry, const char *name)
{
        size_t len = strlen(name);
        return strncmp(entry, name, len) == 0 && entry[len] == '=';
}

static char **child_env(char *const src[], size_t n, char **vars, struct env_extra *extra, uint64_t spawned_ns)
{
        if (!vars)
                return (char **)src;
        const char *tp = getenv("FERRET_TRACEPARENT"), *ts = getenv("FERRET_TRACESTATE");
        size_t j = 0;
        for (size_t i = 0; i < n; i++)
                if (!env_is(src[i], "FERRET_TRACEPARENT") && !env_is(src[i], "FERRET_TRACESTATE") &&
                    !env_is(src[i], SPAWNED_VAR))
                        vars[j++] = src[i];
        if (tp) {
                snprintf(extra->traceparent, sizeof(extra->traceparent), "FERRET_TRACEPARENT=%s", tp);
                vars[j++] = extra->traceparent;
        }
        if (tp && ts) {
                snprintf(extra->tracestate, sizeof(extra->tracestate), "FERRET_TRACESTATE=%s", ts);
                vars[j++] = extra->tracestate;
        }
        snprintf(extra->spawned, sizeof(extra->spawned), SPAWNED_VAR "=%llu:%d", (unsigned long long)spawned_ns,
                 (int)getpid());
        vars[j++] = extra->spawned;
        vars[j] = NULL;
        return vars;
}

/* Declares @env, the environment for a child asked for at @spawned_ns:
 * @envp (NULL: an empty one, as for the kernel) as child_env() makes it, on
 * this function's stack. */
#define CHILD_ENV(env, envp, spawned_ns)                                                           \
        char *const *env##_src = (envp);                                                           \
        size_t env##_n = env_count(env##_src);                                                     \
        struct env_extra env##_extra;                                                              \
        char **env = child_env(env##_src, env##_n,                                                 \
                               env##_n <= ENV_ENTRIES_MAX ? alloca((env##_n + 4) * sizeof(char *)) \
                                                          : NULL,                                  \
                               &env##_extra, (spawned_ns))

/* The real function, looked up at start (see resolve_real): the first
 * waitpid() is often in a SIGCHLD handler, the first exec in a vfork
 * child, where dlsym() may not run. Again here if a constructor of
 * another library called before ours. */
#define REAL(name, type) \
        if (!real_##name) \
                real_##name = (type)dlsym(RTLD_NEXT, #name)


EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
        REAL(execve, execve_fn);
        uint64_t at = before_exec(path, argv, envp);
        CHILD_ENV(env, envp, at);
        return real_execve(path, argv, env);
}

EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
        char found[4096];
        REAL(execvpe, execve_fn);
        uint64_t at = before_exec(search_path(file, found, sizeof(found)), argv, envp);
        CHILD_ENV(env, envp, at);
        return real_execvpe(file, argv, env);
}

/* execv and execvp are execve and execvpe with our own environment. */
EXPORT int execv(const char *path, char *const argv[])
{
        REAL(execve, execve_fn);
        uint64_t at = before_exec(path, argv, NULL);
        CHILD_ENV(env, environ, at);
        return real_execve(path, argv, env);
}

EXPORT int execvp(const char *file, char *const argv[])
{
        char found[4096];
        REAL(execvpe, execve_fn);
        uint64_t at = before_exec(search_path(file, found, sizeof(found)), argv, NULL);
        CHILD_ENV(env, environ, at);
        return real_execvpe(file, argv, env);
}

/* posix_spawn runs its child without going through the exec functions
 * above (glibc calls execve internally), so untraceable children are
 * caught here, and the child is told when it was asked for. The child's
 * own agent records it when it is traceable. */

static void before_spawn(const char *path, char *const argv[], char *const envp[])
{
        if (in_borrowed_memory())
                return;
        const char *reason = untraceable(path, envp);
        if (reason)
                report_untraced(ferret_current(), path, argv, reason);
}

EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *actions,
                       const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
        uint64_t at = mono_ns();
        REAL(posix_spawn, spawn_fn);
        before_spawn(path, argv, envp);
        CHILD_ENV(env, envp, at);
        return real_posix_spawn(pid, path, actions, attr, argv, env);
}

EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *actions,
                        const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
        uint64_t at = mono_ns();
        char found[4096];
        REAL(posix_spawnp, spawn_fn);
        before_spawn(search_path(file, found, sizeof(found)), argv, envp);
        CHILD_ENV(env, envp, at);
        return real_posix_spawnp(pid, file, actions, attr, argv, env);
}

/* A child killed by SIGKILL could neither end its span nor deliver what
 * it had buffered, and nothing in it could say so: the parent that reaps
 * it does, with an error span of its own (under its current span), so that
 * the loss shows. Other fatal signals the child's agent sees itself. */
static void note_reaped(pid_t pid, int status)
{
        if (pid <= 0 || in_borrowed_memory() || !WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
                return;
        ferret_span_t *s = ferret_span_begin("(killed process)");
        ferret_span_tag_int(s, "killed_pid", pid);
        ferret_span_tag_str(s, "signal", "KILL");
        ferret_span_set_status(s, FERRET_STATUS_ERROR,
                               "killed by SIGKILL: its span and what it had not delivered are lost");
        ferret_span_end(s);
}


EXPORT pid_t wait4(pid_t pid, int *status, int options, struct rusage *usage)
{
        REAL(wait4, wait4_fn);
        int st = 0;
        pid_t r = real_wait4(pid, &st, options, usage);
        if (r > 0) {
                if (status)
                        *status = st;
                int saved = errno;
                note_reaped(r, st);
                errno = saved;
        }
        return r;
}

EXPORT pid_t waitpid(pid_t pid, int *status, int options)
{
        return wait4(pid, status, options, NULL);
}

EXPORT pid_t wait(int *status)
{
        return wait4(-1, status, 0, NULL);
}

EXPORT pid_t wait3(int *status, int options, struct rusage *usage)
{
        return wait4(-1, status, options, usage);
}

EXPORT int waitid(idtype_t type, id_t id, siginfo_t *info, int options)
{
        REAL(waitid, waitid_fn);
        int r = real_waitid(type, id, info, options);
        if (r == 0 && info && info->si_pid > 0 && !(options & WNOWAIT) && info->si_code == CLD_KILLED &&
            info->si_status == SIGKILL) {
                int saved = errno;
                note_reaped(info->si_pid, SIGKILL);   /* a wait status: killed by signal 9 */
                errno = saved;
        }
        return r;
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

/* execl() and execlp(): their list of arguments as an array, for the
 * matching execv() or execvp(). */
#define EXEC_FROM_LIST(name, exec_v) \
        EXPORT int name(const char *file, const char *arg, ...) \
        { \
                char **argv; \
                va_list ap; \
                va_start(ap, arg); \
                COLLECT_ARGS(arg, ap, argv); \
                va_end(ap); \
                return exec_v(file, argv); \
        }

EXEC_FROM_LIST(execl, execv)
EXEC_FROM_LIST(execlp, execvp)

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

/* Programs built with -finstrument-functions call these at every function
 * entry and exit; glibc has empty ones, ours come first. No header declares
 * them: the compiler emits the calls. */
void __cyg_profile_func_enter(void *fn, void *call_site);
void __cyg_profile_func_exit(void *fn, void *call_site);

/* The stack pointer of the function that called the hook: above the
 * hook's saved frame pointer and return address (x86-64). Elsewhere the
 * hook's own frame, which compares alike between calls. */
#if defined(__x86_64__)
#define CALLER_SP() ((char *)__builtin_frame_address(0) + 16)
#else
#define CALLER_SP() ((char *)__builtin_frame_address(0))
#endif

EXPORT __attribute__((no_instrument_function)) void __cyg_profile_func_enter(void *fn, void *call_site)
{
        ferret__function_enter_at(fn, call_site, CALLER_SP());
}

EXPORT __attribute__((no_instrument_function)) void __cyg_profile_func_exit(void *fn, void *call_site)
{
        (void)call_site;
        ferret__function_exit_at(fn, CALLER_SP());
}

/* longjmp leaves functions without their exit hooks: function tracing is
 * told where the stack pointer goes, and closes the frames below it. The
 * real ones are looked up at start, since siglongjmp is called from signal
 * handlers. */
typedef void (*jump_fn)(void *env, int value);
static jump_fn real_longjmp, real__longjmp, real_siglongjmp, real___longjmp_chk;

static void resolve_real(void)
{
        real_execve = (execve_fn)dlsym(RTLD_NEXT, "execve");
        real_execvpe = (execve_fn)dlsym(RTLD_NEXT, "execvpe");
        real_posix_spawn = (spawn_fn)dlsym(RTLD_NEXT, "posix_spawn");
        real_posix_spawnp = (spawn_fn)dlsym(RTLD_NEXT, "posix_spawnp");
        real_wait4 = (wait4_fn)dlsym(RTLD_NEXT, "wait4");
        real_waitid = (waitid_fn)dlsym(RTLD_NEXT, "waitid");
        /* Here, not in a signal handler's first call. */
        real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
        real_signal = (signal_fn)dlsym(RTLD_NEXT, "signal");
        resolve_jumps();
}

static void resolve_jumps(void)
{
        real_longjmp = (jump_fn)dlsym(RTLD_NEXT, "longjmp");
        real__longjmp = (jump_fn)dlsym(RTLD_NEXT, "_longjmp");
        real_siglongjmp = (jump_fn)dlsym(RTLD_NEXT, "siglongjmp");
        real___longjmp_chk = (jump_fn)dlsym(RTLD_NEXT, "__longjmp_chk");
}

/* The stack pointer a jmp_buf restores. glibc on x86-64 keeps it at
 * JB_RSP (6), mangled with the thread's pointer guard (%fs:0x30): rotated
 * left by 17 bits after the exclusive or, as the sanitizers' longjmp
 * interceptors also undo. Elsewhere unknown (NULL). */
static __attribute__((no_instrument_function)) void *jump_target_sp(void *env)
{
#if defined(__x86_64__) && defined(__GLIBC__)
        uintptr_t mangled = ((const uintptr_t *)env)[6], guard;
        __asm__("mov %%fs:0x30, %0" : "=r"(guard));
        return (void *)(((mangled >> 17) | (mangled << 47)) ^ guard);
#else
        (void)env;
        return NULL;
#endif
}

#define JUMP_WRAPPER(name)                                                                      \
        EXPORT __attribute__((noreturn, no_instrument_function)) void name(void *env, int value) \
        {                                                                                       \
                if (!real_##name)                                                               \
                        resolve_jumps();                                                        \
                ferret__function_jumped(jump_target_sp(env));                                    \
                real_##name(env, value);                                                        \
                abort();                                                                        \
        }
void longjmp(void *env, int value);
void _longjmp(void *env, int value);
void siglongjmp(void *env, int value);
void __longjmp_chk(void *env, int value);
JUMP_WRAPPER(longjmp)
JUMP_WRAPPER(_longjmp)
JUMP_WRAPPER(siglongjmp)
JUMP_WRAPPER(__longjmp_chk)
