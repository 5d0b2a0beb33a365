/* SPDX-License-Identifier: MIT */
/*
 * ferret run: runs a program with the agent preloaded into it and every
 * process it starts, records the program's own span (it sees its exit status,
 * even a fatal signal, and its resource use), and stores everything in the
 * chosen database: through the daemon that serves it, or a private ferretd
 * started for the run and stopped once everything is stored.
 */
#include <dlfcn.h>
#include <jansson.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "json-text.h"
#include "config.h"
#include "ferret.h"
#include "options.h"
#include "text.h"
#include "runtime-daemon.h"

#define FLUSH_TIMEOUT_MS 10000

extern char **environ;

static const char usage[] =
        "Usage: ferret run [--db DB] [--run-id ID] [OPTION]... [--] PROG [ARGS...]\n"
        "       ferret run [OPTION]... SCRIPT.py [OPTION]... [-- ARGS...]\n"
        "       ferret run [OPTION]... -m MODULE [OPTION]... [-- ARGS...]\n"
        "Run PROG traced: a span for every process it starts (fork and exec followed),\n"
        "and for every function call of programs built with -finstrument-functions,\n"
        "stored in DB. A Python script or module gets a span for every call of a\n"
        "function of its own code. PROG's exit status becomes ferret run's.\n\n"
        "  -d, --db DB             database directory (default: the running daemon's,\n"
        "                          else ./ferret.db through a private daemon)\n"
        "  -i, --run-id ID         name of the run (default: PROG-DATE-TIME-PID)\n"
        "      --min-duration D    function calls shorter than D (e.g. 1us, 50ns) are\n"
        "                          counted in the statistics, not recorded one by one\n"
        "      --depth N           record function calls up to N deep\n"
        "      --include GLOB      record only functions whose name matches (repeatable);\n"
        "                          for Python, also record code whose path matches\n"
        "      --exclude GLOB      do not record functions whose name matches (repeatable)\n"
        "  -q, --quiet             no summary line at the end\n" COMMON_OPTIONS_HELP;

#define MAX_GLOBS 32

struct run_options {
        const char *db;
        const char *run_id;
        bool quiet;
        uint64_t min_duration_ns;
        const char *module;            /* -m MODULE: a Python module */
        char **python_args;            /* a Python script's own arguments */
        unsigned long depth;
        const char *include[MAX_GLOBS], *exclude[MAX_GLOBS];
        size_t n_include, n_exclude;
        char **prog;                   /* PROG and its arguments */
};

static int parse(struct cli *cli, int argc, char **argv, struct run_options *o)
{
        enum { OPT_DEPTH = 0x400, OPT_INCLUDE, OPT_EXCLUDE, OPT_MIN_DURATION };
        static const struct option opts[] = {
                { "db", required_argument, NULL, 'd' },
                { "run-id", required_argument, NULL, 'i' },
                { "quiet", no_argument, NULL, 'q' },
                { "min-duration", required_argument, NULL, OPT_MIN_DURATION },
                { "depth", required_argument, NULL, OPT_DEPTH },
                { "include", required_argument, NULL, OPT_INCLUDE },
                { "exclude", required_argument, NULL, OPT_EXCLUDE },
                COMMON_OPTIONS,
                {},
        };
        int c, r;
        cli_getopt_reset();
        /* "+": options end at PROG; what follows is PROG's. */
        while ((c = getopt_long(argc, argv, "+:d:i:m:qhj", opts, NULL)) >= 0) {
                switch (c) {
                case 'm':
                        /* python3 -m's meaning: the rest is the module's. */
                        o->module = optarg;
                        goto done;
                case OPT_MIN_DURATION:
                        if (parse_duration(optarg, &o->min_duration_ns) < 0)
                                return cli_error(EINVAL, "--min-duration takes a duration such as 1us or 50ns, not '%s'",
                                                 optarg);
                        break;
                case OPT_DEPTH:
                        if (parse_count(optarg, UINT32_MAX, &o->depth) < 0)
                                return cli_error(EINVAL, "--depth takes a number of levels, 1 or more, not '%s'", optarg);
                        break;
                case OPT_INCLUDE:
                case OPT_EXCLUDE: {
                        const char **list = c == OPT_INCLUDE ? o->include : o->exclude;
                        size_t *n = c == OPT_INCLUDE ? &o->n_include : &o->n_exclude;
                        if (*n == MAX_GLOBS || strchr(optarg, ','))
                                return cli_error(EINVAL, "--include/--exclude: at most %d patterns, without commas",
                                                 MAX_GLOBS);
                        list[(*n)++] = optarg;
                        break;
                }
                case 'd':
                        o->db = optarg;
                        break;
                case 'i':
                        o->run_id = optarg;
                        break;
                case 'q':
                        o->quiet = true;
                        break;
                default:
                        r = cli_common_option(cli, c, argv, usage);
                        if (r <= 0)
                                return r;
                }
        }
done:
        if (!o->module && optind >= argc)
                return cli_error(EINVAL, "what should I run? (usage: ferret run [--db DB] PROG [ARGS...])");
        o->prog = argv + optind;
        return 1;
}

static bool ends_with(const char *s, const char *suffix)
{
        size_t n = strlen(s), m = strlen(suffix);
        return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The original tool's form, `ferret run my_script.py --db traces.db`: after a
 * Python script (or -m MODULE), ferret's own options may follow; the
 * script's arguments come after "--". Moves the options into @o and leaves
 * o->prog at the script's arguments. */
static int parse_python_tail(struct cli *cli, int argc, char **argv, struct run_options *o)
{
        char **rest = o->prog + (o->module ? 0 : 1);
        int n = (int)(argv + argc - rest), i = 0;
        while (i < n) {
                const char *a = rest[i];
                const char *value = i + 1 < n ? rest[i + 1] : NULL;
                if (strcmp(a, "--") == 0) {
                        i++;
                        break;
                }
                if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
                        o->quiet = true;
                        i++;
                        continue;
                }
                const char **slot = NULL;
                if (strcmp(a, "--db") == 0 || strcmp(a, "-d") == 0)
                        slot = &o->db;
                else if (strcmp(a, "--run-id") == 0 || strcmp(a, "-i") == 0)
                        slot = &o->run_id;
                else if (strcmp(a, "--include") == 0) {
                        if (o->n_include == MAX_GLOBS)
                                return cli_error(EINVAL, "--include: at most %d patterns", MAX_GLOBS);
                        slot = &o->include[o->n_include++];
                } else if (strcmp(a, "--runtime-dir") == 0)
                        slot = &cli->runtime_dir;
                else
                        return cli_error(EINVAL, "unknown option '%s' after the script (its arguments go after --)", a);
                if (!value)
                        return cli_error(EINVAL, "option '%s' needs a value", a);
                *slot = value;
                i += 2;
        }
        o->python_args = rest + i;
        return 1;
}

/* Picks the daemon for this run, as runtime_choose() decides for the
 * command and the Python package alike, and says what the user should
 * know. Returns its runtime directory in @dir, the database's one name in
 * @db ("" for the default daemon's own), and fills @own when we started it. */
static int choose_daemon(const struct cli *cli, const struct run_options *o, char *dir, size_t size, char *db,
                         size_t db_size, struct runtime_daemon *own)
{
        char ferretd[PATH_MAX], why[PATH_MAX + 256];
        struct runtime_choice *c = malloc(sizeof(*c));
        if (!c)
                return cli_error(ENOMEM, "out of memory");
        /* Needed only when no daemon serves the database. */
        bool found = cli_locate_helper("ferretd", "ferretd", ferretd, sizeof(ferretd)) == 0;
        int r = runtime_choose(cli->runtime_dir, o->db, found ? ferretd : NULL, c, why, sizeof(why));
        if (r < 0) {
                free(c);
                return found || r != -ENOENT ? cli_error(r, "%s", why)
                                             : cli_error(r, "cannot find ferretd (looked beside this program and in "
                                                            "the install directories)");
        }
        for (size_t i = 0; i < c->n_notes; i++)
                fprintf(stderr, "ferret: note: %s\n", c->notes[i]);
        snprintf(dir, size, "%s", c->runtime_dir);
        snprintf(db, db_size, "%s", c->db);
        *own = c->daemon;
        free(c);
        return 0;
}

/* A build with AddressSanitizer (the test suite's second pass) has an agent
 * that needs the ASan runtime loaded first in programs that were built
 * without it. Their own leaks and allocator quirks are not ours to report
 * (libzmq frees with free() what it got from operator new), and their
 * fatal signals are the agent's to record, not ASan's. */
extern void __asan_init(void) __attribute__((weak));

static const char *sanitizer_runtime(void)
{
        Dl_info info;
        if (!__asan_init || !dladdr((void *)__asan_init, &info) || !info.dli_fname)
                return NULL;
        const char *opts = getenv("ASAN_OPTIONS");
        char value[1024];
        snprintf(value, sizeof(value),
                 "%s%sdetect_leaks=0:verify_asan_link_order=0:alloc_dealloc_mismatch=0:"
                 "handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_abort=0",
                 opts ? opts : "", opts && *opts ? ":" : "");
        setenv("ASAN_OPTIONS", value, 1);
        return info.dli_fname;
}

/* What the function-call options become: the environment every traced
 * process reads when it starts. */
static int export_function_options(const struct run_options *o)
{
        char buf[4096];
        if (o->min_duration_ns) {
                snprintf(buf, sizeof(buf), "%llu", (unsigned long long)o->min_duration_ns);
                setenv("FERRET_MIN_DURATION_NS", buf, 1);
        }
        if (o->depth) {
                snprintf(buf, sizeof(buf), "%lu", o->depth);
                setenv("FERRET_MAX_DEPTH", buf, 1);
        }
        for (int k = 0; k < 2; k++) {
                const char *const *list = k ? o->exclude : o->include;
                size_t n = k ? o->n_exclude : o->n_include, len = 0;
                buf[0] = '\0';
                for (size_t i = 0; i < n; i++) {
                        int w = snprintf(buf + len, sizeof(buf) - len, "%s%s", i ? "," : "", list[i]);
                        if (w < 0 || (size_t)w >= sizeof(buf) - len)
                                return cli_error(E2BIG, "--include and --exclude patterns take at most %zu bytes "
                                                        "together", sizeof(buf) - 1);
                        len += (size_t)w;
                }
                if (n)
                        setenv(k ? "FERRET_EXCLUDE" : "FERRET_INCLUDE", buf, 1);
        }
        return 0;
}

/* Whether posix_spawnp() can run @file (found on PATH when it has no
 * slash): 0, or -ENOENT, -EACCES. Checked before a run is created, so that
 * a mistyped command leaves no run behind. */
static int check_runnable(const char *file)
{
        struct stat st;
        if (strchr(file, '/'))
                return stat(file, &st) < 0 ? -errno : S_ISDIR(st.st_mode) ? -EACCES : access(file, X_OK) < 0 ? -errno : 0;
        const char *path = getenv("PATH");
        int r = -ENOENT;
        for (const char *p = path && *path ? path : "/bin:/usr/bin"; *p;) {
                size_t len = strcspn(p, ":");
                char candidate[PATH_MAX];
                if (snprintf(candidate, sizeof(candidate), "%.*s%s%s", (int)len, p, len ? "/" : "", file) <
                            (int)sizeof(candidate) &&
                    stat(candidate, &st) == 0 && !S_ISDIR(st.st_mode)) {
                        if (access(candidate, X_OK) == 0)
                                return 0;
                        r = -EACCES;
                }
                p += len + (p[len] == ':');
        }
        return r;
}

static void set_preload(const char *agent)
{
        const char *old = getenv("LD_PRELOAD"), *asan = sanitizer_runtime();
        char value[PATH_MAX * 3];
        snprintf(value, sizeof(value), "%s%s%s%s%s", asan ? asan : "", asan ? ":" : "", agent,
                 old && *old ? ":" : "", old && *old ? old : "");
        setenv("LD_PRELOAD", value, 1);
}

static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT, SIGTSTP };

/* Waits for @child, passing on the signals sent to us. A signal from the
 * terminal already reached the child (same process group): it is not sent
 * twice. */
static int wait_child(pid_t child, const sigset_t *set, int *ret_status, struct rusage *ret_usage)
{
        for (;;) {
                siginfo_t info;
                int sig = sigwaitinfo(set, &info);
                if (sig < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (sig == SIGCHLD) {
                        pid_t p = wait4(child, ret_status, WNOHANG | WUNTRACED, ret_usage);
                        if (p == child && (WIFEXITED(*ret_status) || WIFSIGNALED(*ret_status)))
                                return 0;
                        if (p == child && WIFSTOPPED(*ret_status)) {
                                /* The child stopped (^Z): stop with it, like a shell's job. */
                                raise(SIGSTOP);
                                kill(child, SIGCONT);
                        }
                        continue;
                }
                if (info.si_code != SI_KERNEL)
                        kill(child, sig);
        }
}

static void tag_outcome(ferret_span_t *span, pid_t child, int status, const struct rusage *ru)
{
        char msg[64];
        ferret_span_tag_int(span, "pid", child);
        ferret_span_tag_int(span, "user_cpu_ns", (int64_t)ru->ru_utime.tv_sec * 1000000000 + ru->ru_utime.tv_usec * 1000);
        ferret_span_tag_int(span, "sys_cpu_ns", (int64_t)ru->ru_stime.tv_sec * 1000000000 + ru->ru_stime.tv_usec * 1000);
        ferret_span_tag_int(span, "max_rss_kb", ru->ru_maxrss);
        if (WIFEXITED(status)) {
                ferret_span_tag_int(span, "exit_code", WEXITSTATUS(status));
                if (WEXITSTATUS(status)) {
                        snprintf(msg, sizeof(msg), "exit status %d", WEXITSTATUS(status));
                        ferret_span_set_status(span, FERRET_STATUS_ERROR, msg);
                }
        } else {
                ferret_span_tag_str(span, "signal", sigabbrev_np(WTERMSIG(status)) ? sigabbrev_np(WTERMSIG(status)) : "?");
                snprintf(msg, sizeof(msg), "killed by SIG%s", sigabbrev_np(WTERMSIG(status)) ? sigabbrev_np(WTERMSIG(status)) : "?");
                ferret_span_set_status(span, FERRET_STATUS_ERROR, msg);
        }
}

/* Appends @argv to @buf, each word after a space unless @buf is empty. */
static void append_args(char *buf, size_t size, char *const *argv)
{
        size_t len = strlen(buf);
        for (int i = 0; argv[i] && len + 1 < size; i++) {
                int n = snprintf(buf + len, size - len, "%s%s", len ? " " : "", argv[i]);
                if (n < 0)
                        break;
                len += (size_t)n;
        }
}

/* The command the run traces, as the user wrote it without ferret's own
 * options: PROG ARGS, SCRIPT.py ARGS, or -m MODULE ARGS. */
static void traced_command(const struct run_options *o, bool python, char *buf, size_t size)
{
        buf[0] = '\0';
        if (!python) {
                append_args(buf, size, o->prog);
                return;
        }
        char *head[] = { o->module ? "-m" : o->prog[0], o->module ? (char *)o->module : NULL, NULL };
        append_args(buf, size, head);
        append_args(buf, size, o->python_args);
}

/* The last line on stderr (stdout is the program's): a sentence, or with
 * --json one JSON object. */
static void print_summary(const struct cli *cli, const char *dir, const char *run_id, const char *db,
                          const struct runtime_daemon *own)
{
        Ferret__Request req = FERRET__REQUEST__INIT;
        Ferret__SummaryRequest s = FERRET__SUMMARY_REQUEST__INIT;
        Ferret__Response *resp;
        s.run = (char *)run_id;
        req.body_case = FERRET__REQUEST__BODY_SUMMARY;
        req.summary = &s;
        if (cli_request(dir, &req, 10000, &resp) < 0)
                return;
        if (resp->summary->run && cli->json) {
                const Ferret__RunInfo *ri = resp->summary->run;
                json_t *notes = json_array();
                for (size_t i = 0; i < ri->n_notes; i++)
                        json_array_append_new(notes, json_string(ri->notes[i]));
                json_t *o = json_pack("{s:s, s:o, s:o, s:s?, s:o}", "run", run_id, "spans", json_uint(ri->spans),
                                      "dropped", json_uint(ri->dropped), "db", *db ? db : NULL, "notes", notes);
                char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
                if (line)
                        fprintf(stderr, "%s\n", line);
                free(line);
                json_decref(o);
        } else if (resp->summary->run) {
                const Ferret__RunInfo *ri = resp->summary->run;
                fputs("ferret: run ", stderr);
                term_put(stderr, run_id);
                fprintf(stderr, ": %llu spans stored, %llu dropped", (unsigned long long)ri->spans,
                        (unsigned long long)ri->dropped);
                if (*db && own->pid > 0)
                        fprintf(stderr, ", in %s (see: ferret analyze %s --tree)\n", db, db);
                else {
                        fputs(" (see: ferret query --run ", stderr);
                        term_put(stderr, run_id);
                        fputs(" --tree)\n", stderr);
                }
                for (size_t i = 0; i < ri->n_notes; i++) {
                        fputs("ferret: note: ", stderr);
                        term_put(stderr, ri->notes[i]);
                        fputc('\n', stderr);
                }
        }
        ferret__response__free_unpacked(resp, NULL);
}

/* A Python program runs under `python3 -m ferret run`, the package's
 * zero-code mode; this command has chosen the daemon and recorded the
 * process, which FERRET_TRACEPARENT tells the package. From the build
 * tree the package sits beside this program's directory. */
static char **python_command(const struct run_options *o, char *const *exe_argv)
{
        size_t n = 0;
        while (o->python_args[n])
                n++;
        char **argv = calloc(8 + 2 * o->n_include + n, sizeof(*argv));
        if (!argv)
                return NULL;
        /* The package and interpreter: those built beside this program
         * (build/python/ferret), else a venv's that pip installed it into
         * (bin/ferret beside bin/python3), else those of the install. */
        /* The interpreter's path outlives this call, in argv. */
        static char interpreter[PATH_MAX];
        char package[PATH_MAX], exe[PATH_MAX];
        ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        exe[len > 0 ? len : 0] = '\0';
        const char *bin = len > 0 ? dirname(exe) : ".";
        snprintf(interpreter, sizeof(interpreter), "%s", FERRET_PYTHON);
        snprintf(package, sizeof(package), "%s/../python/ferret/__init__.py", bin);
        if (access(package, R_OK) != 0) {
                snprintf(package, sizeof(package), "%s/../lib/python%s/site-packages/ferret/__init__.py", bin,
                         FERRET_PYTHON_VERSION);
                if (access(package, R_OK) == 0)
                        snprintf(interpreter, sizeof(interpreter), "%s/python3", bin);
                else
                        snprintf(package, sizeof(package), "%s/ferret/__init__.py", FERRET_PYTHON_DIR);
        }
        *strstr(package, "/ferret/__init__.py") = '\0';

        size_t k = 0;
        const char *python = getenv("FERRET_PYTHON");
        argv[k++] = (char *)(python && *python ? python : interpreter);
        argv[k++] = "-m";
        argv[k++] = "ferret";
        argv[k++] = "run";
        for (size_t i = 0; i < o->n_include; i++) {
                argv[k++] = "--include";
                argv[k++] = (char *)o->include[i];
        }
        argv[k++] = "--";
        if (o->module) {
                argv[k++] = "-m";
                argv[k++] = (char *)o->module;
        } else
                argv[k++] = exe_argv[0];
        for (size_t i = 0; i < n; i++)
                argv[k++] = o->python_args[i];
        {
                const char *old = getenv("PYTHONPATH");
                char value[PATH_MAX * 2];
                snprintf(value, sizeof(value), "%s%s%s", package, old && *old ? ":" : "", old && *old ? old : "");
                setenv("PYTHONPATH", value, 1);
        }
        return argv;
}

int cmd_run(struct cli *cli, int argc, char **argv)
{
        struct run_options o = { 0 };
        struct runtime_daemon own = { .pid = 0 };
        char dir[PATH_MAX], db[PATH_MAX], agent[PATH_MAX], run_id[256], cmdline[1024], tp[FERRET_TRACEPARENT_LEN + 1],
             ts[FERRET_TRACESTATE_LEN + 1];
        char **spawn_argv, **python_argv = NULL;
        int r = parse(cli, argc, argv, &o);
        if (r <= 0)
                return r;
        bool python = o.module || ends_with(o.prog[0], ".py");
        if (python) {
                r = parse_python_tail(cli, argc, argv, &o);
                if (r <= 0)
                        return r;
        }

        r = python ? (o.module || access(o.prog[0], R_OK) == 0 ? 0 : -errno) : check_runnable(o.prog[0]);
        if (r < 0) {
                cli_error(r, "cannot run %s: %s", o.prog[0], strerror(-r));
                return r == -ENOENT ? 127 : 126;
        }
        /* Read by the agent in the program, once it runs. */
        r = export_function_options(&o);
        if (r < 0)
                return r;
        r = cli_find_helper("libferret-agent.so", "libclient", agent, sizeof(agent));
        if (r < 0)
                return r;
        r = choose_daemon(cli, &o, dir, sizeof(dir), db, sizeof(db), &own);
        if (r < 0)
                return r;

        const char *prog = o.module ? o.module
                         : strrchr(o.prog[0], '/') ? strrchr(o.prog[0], '/') + 1 : o.prog[0];
        if (o.run_id)
                snprintf(run_id, sizeof(run_id), "%s", o.run_id);
        else if (getenv("FERRET_RUN_ID") && *getenv("FERRET_RUN_ID"))
                snprintf(run_id, sizeof(run_id), "%s", getenv("FERRET_RUN_ID"));
        else {
                char stamp[32];
                time_t now = time(NULL);
                struct tm tm;
                localtime_r(&now, &tm);
                strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
                snprintf(run_id, sizeof(run_id), "%s-%s-%d", prog, stamp, (int)getpid());
        }

        /* Our own client and the child's read these on first use. */
        setenv("FERRET_RUNTIME_DIR", dir, 1);
        setenv("FERRET_RUN_ID", run_id, 1);
        unsetenv("FERRET_DISABLE");

        /* This command's client records the program's process span, but
         * is not a process of the run; the client reads this once, now. */
        setenv("FERRET_OBSERVER", "1", 1);
        ferret_span_t *span = ferret_span_begin(prog);
        unsetenv("FERRET_OBSERVER");
        traced_command(&o, python, cmdline, sizeof(cmdline));
        ferret_span_tag_str(span, "cmdline", cmdline);
        if (ferret_ctx_format(ferret_span_context(span), tp, sizeof(tp)) == 0)
                setenv("FERRET_TRACEPARENT", tp, 1);
        if (ferret_ctx_tracestate(ferret_span_context(span), ts, sizeof(ts)) == 0)
                setenv("FERRET_TRACESTATE", ts, 1);
        set_preload(agent);
        setenv("FERRET_AGENT_SKIP_SELF", "1", 1);
        spawn_argv = o.prog;
        if (python && !(spawn_argv = python_argv = python_command(&o, o.prog)))
                return cli_error(ENOMEM, "out of memory");

        sigset_t set, old;
        sigemptyset(&set);
        for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
                sigaddset(&set, forwarded[i]);
        sigaddset(&set, SIGCHLD);
        sigprocmask(SIG_BLOCK, &set, &old);

        posix_spawnattr_t attr;
        posix_spawnattr_init(&attr);
        posix_spawnattr_setsigmask(&attr, &old);
        posix_spawnattr_setsigdefault(&attr, &set);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        pid_t child;
        int spawn_error = posix_spawnp(&child, spawn_argv[0], NULL, &attr, spawn_argv, environ);
        posix_spawnattr_destroy(&attr);
        unsetenv("LD_PRELOAD");

        int exit_code;
        if (spawn_error) {
                cli_error(spawn_error, "cannot run %s: %s", spawn_argv[0], strerror(spawn_error));
                ferret_span_set_status(span, FERRET_STATUS_ERROR, strerror(spawn_error));
                exit_code = spawn_error == ENOENT ? 127 : 126;
        } else {
                int status = 0;
                struct rusage ru = { 0 };
                r = wait_child(child, &set, &status, &ru);
                tag_outcome(span, child, status, &ru);
                exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        sigprocmask(SIG_SETMASK, &old, NULL);
        ferret_span_end(span);

        r = ferret_flush(FLUSH_TIMEOUT_MS);
        if (r < 0 && r != -ENODATA)
                cli_error(r, "not every span reached ferretd: %s", ferret_strerror(r));
        if (!o.quiet)
                print_summary(cli, dir, run_id, db, &own);
        ferret_shutdown();
        if (own.pid > 0)
                private_daemon_stop(&own);
        free(python_argv);
        return exit_code;
}
