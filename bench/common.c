/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench-config.h"
#include "common.h"

extern char **environ;

uint64_t bench_now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

double bench_percentile(double *v, size_t n, double p)
{
        if (n == 0)
                return 0;
        qsort(v, n, sizeof(*v), cmp_double);
        /* Nearest rank: the smallest value with at least p% of them at or
         * below it. No interpolation, so the result is a measured value. */
        size_t rank = (size_t)((p / 100.0) * (double)n + 0.999999);
        if (rank < 1)
                rank = 1;
        if (rank > n)
                rank = n;
        return v[rank - 1];
}

int bench_mkdtemp(const char *prefix, char *ret, size_t size)
{
        const char *tmp = getenv("TMPDIR");
        int n = snprintf(ret, size, "%s/%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix);
        if (n < 0 || (size_t)n >= size)
                return -ENAMETOOLONG;
        return mkdtemp(ret) ? 0 : -errno;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        remove(path);
        return 0;
}

void bench_rmtree(const char *path)
{
        if (path && *path)
                nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Reads a whole file that a child wrote, then removes it. */
static char *slurp_and_unlink(int fd, const char *path)
{
        size_t cap = 4096, len = 0;
        char *buf = malloc(cap);
        if (!buf)
                return NULL;
        lseek(fd, 0, SEEK_SET);
        for (;;) {
                if (len + 1 >= cap) {
                        char *b = realloc(buf, cap *= 2);
                        if (!b)
                                break;
                        buf = b;
                }
                ssize_t n = read(fd, buf + len, cap - len - 1);
                if (n <= 0)
                        break;
                len += (size_t)n;
        }
        buf[len] = '\0';
        close(fd);
        unlink(path);
        return buf;
}

int bench_run(char *const argv[], char **ret_out, char **ret_err)
{
        return bench_run_usage(argv, ret_out, ret_err, NULL);
}

int bench_run_usage(char *const argv[], char **ret_out, char **ret_err, struct rusage *ret_usage)
{
        /* Files rather than pipes: nothing can deadlock on a full pipe, and
         * the child's output can be as long as it likes. */
        char out_path[] = "/tmp/ferret-bench-out-XXXXXX", err_path[] = "/tmp/ferret-bench-err-XXXXXX";
        int out = -1, err = -1, r;
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        if (ret_out) {
                out = mkstemp(out_path);
                if (out < 0)
                        goto fail;
                posix_spawn_file_actions_adddup2(&fa, out, STDOUT_FILENO);
        } else
                posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
        if (ret_err) {
                err = mkstemp(err_path);
                if (err < 0)
                        goto fail;
                posix_spawn_file_actions_adddup2(&fa, err, STDERR_FILENO);
        }

        pid_t pid;
        r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (r) {
                if (out >= 0) {
                        close(out);
                        unlink(out_path);
                }
                if (err >= 0) {
                        close(err);
                        unlink(err_path);
                }
                return -r;
        }
        int status = 0;
        struct rusage usage;
        while (wait4(pid, &status, 0, &usage) < 0 && errno == EINTR)
                ;
        if (ret_usage)
                *ret_usage = usage;
        if (ret_out)
                *ret_out = slurp_and_unlink(out, out_path);
        if (ret_err)
                *ret_err = slurp_and_unlink(err, err_path);
        return status;

fail:
        r = -errno;
        posix_spawn_file_actions_destroy(&fa);
        if (out >= 0) {
                close(out);
                unlink(out_path);
        }
        return r;
}

const char *bench_ferretd_path(void)
{
        const char *p = getenv("FERRETD");
        return p && *p ? p : BENCH_FERRETD;
}

const char *bench_ferret_cli_path(void)
{
        const char *p = getenv("FERRET_CLI");
        return p && *p ? p : BENCH_FERRET_CLI;
}

/* The first line of a small file, without its newline, or "". */
static void read_line(const char *path, char *ret, size_t size)
{
        ret[0] = '\0';
        FILE *f = fopen(path, "re");
        if (!f)
                return;
        if (fgets(ret, (int)size, f))
                ret[strcspn(ret, "\n")] = '\0';
        fclose(f);
}

void bench_machine_get(struct bench_machine *ret)
{
        memset(ret, 0, sizeof(*ret));
        snprintf(ret->cpu, sizeof(ret->cpu), "unknown CPU");
        FILE *f = fopen("/proc/cpuinfo", "re");
        if (f) {
                char line[512];
                while (fgets(line, sizeof(line), f))
                        if (strncmp(line, "model name", 10) == 0) {
                                const char *v = strchr(line, ':');
                                if (v) {
                                        v += 1 + strspn(v + 1, " \t");
                                        snprintf(ret->cpu, sizeof(ret->cpu), "%.*s",
                                                 (int)strcspn(v, "\n"), v);
                                }
                                break;
                        }
                fclose(f);
        }
        read_line("/sys/devices/system/clocksource/clocksource0/current_clocksource",
                  ret->clocksource, sizeof(ret->clocksource));
        if (!ret->clocksource[0])
                snprintf(ret->clocksource, sizeof(ret->clocksource), "unknown");
        struct utsname u;
        if (uname(&u) == 0)
                snprintf(ret->kernel, sizeof(ret->kernel), "%s %s", u.sysname, u.release);
        ret->cpus = sysconf(_SC_NPROCESSORS_ONLN);
}

int bench_pin_services(void)
{
        cpu_set_t set;
        if (sched_getaffinity(0, sizeof(set), &set) < 0 || CPU_COUNT(&set) < 2)
                return -1;
        int recorder = 0;
        while (!CPU_ISSET(recorder, &set))
                recorder++;
        CPU_CLR(recorder, &set);
        return sched_setaffinity(0, sizeof(set), &set) == 0 ? recorder : -1;
}

bool bench_pin_recorder(int cpu)
{
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        return cpu >= 0 && cpu < CPU_SETSIZE && sched_setaffinity(0, sizeof(one), &one) == 0;
}

const char *bench_build_description(void)
{
        return BENCH_BUILDTYPE " (-O" BENCH_OPTIMIZATION ", sanitize=" BENCH_SANITIZE ")";
}

const char *bench_build_warning(void)
{
        /* The benchmark is built in the same meson project, with the same
         * options, as the library it measures; so its options are the
         * library's. */
        if (strcmp(BENCH_OPTIMIZATION, "0") == 0 || strcmp(BENCH_OPTIMIZATION, "g") == 0 ||
            strcmp(BENCH_BUILDTYPE, "plain") == 0)
                return "WARNING: libferret-client was built without optimisation (buildtype=" BENCH_BUILDTYPE
                       ", -O" BENCH_OPTIMIZATION "): these numbers do not describe a real build; "
                       "use meson setup --buildtype=release";
        if (strcmp(BENCH_SANITIZE, "none") != 0)
                return "WARNING: libferret-client was built with sanitizers (" BENCH_SANITIZE
                       "): these numbers do not describe a real build";
        return NULL;
}

void bench_json_string(FILE *f, const char *s)
{
        fputc('"', f);
        for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
                if (*p == '"' || *p == '\\')
                        fprintf(f, "\\%c", *p);
                else if (*p < 0x20)
                        fprintf(f, "\\u%04x", *p);
                else
                        fputc(*p, f);
        }
        fputc('"', f);
}

int bench_json_get_u64(const char *json, const char *key, uint64_t *ret)
{
        /* Enough for the flat top-level numbers of `ferret query --json`:
         * the first occurrence of "key" followed by a colon. */
        char quoted[128];
        snprintf(quoted, sizeof(quoted), "\"%s\"", key);
        for (const char *p = json ? strstr(json, quoted) : NULL; p; p = strstr(p + 1, quoted)) {
                const char *q = p + strlen(quoted);
                q += strspn(q, " \t\r\n");
                if (*q != ':')
                        continue;
                q++;
                q += strspn(q, " \t\r\n");
                char *end;
                errno = 0;
                unsigned long long v = strtoull(q, &end, 10);
                if (end == q || errno)
                        return -EINVAL;
                *ret = v;
                return 0;
        }
        return -EINVAL;
}

int bench_stored_spans(const char *runtime_dir, const char *run_id, uint64_t *ret)
{
        char *argv[] = { (char *)bench_ferret_cli_path(), "query", "--run", (char *)run_id, "--json",
                         "--runtime-dir", (char *)runtime_dir, NULL };
        char *out = NULL, *err = NULL;
        int status = bench_run(argv, &out, &err);
        int r;
        if (status < 0)
                r = status;
        else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "ferret query --run %s failed: %s", run_id, err ? err : "\n");
                r = -EIO;
        } else
                r = bench_json_get_u64(out, "spans", ret);
        free(out);
        free(err);
        return r;
}
