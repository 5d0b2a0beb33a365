/* SPDX-License-Identifier: MIT */
/*
 * ferret-bench-pictures: the pictures and exports of large runs. A private
 * ferretd ingests a run of 10M spans and one of 1M (the store benchmark's
 * workload: real clients, nothing dropped); then, in the same run:
 *
 *  - `ferret flame` of the 10M-span run against `ferret status` (the floor of
 *    any command), median of 5: the flame graph reads call-path records
 *    only, target <= 3x status;
 *  - `ferret export --format chrome|folded|speedscope` of the 10M-span run:
 *    the time, the file's size, the command's peak resident memory (its
 *    ru_maxrss) and ferretd's (VmHWM, reset before each); target < 100 MB
 *    for each of them with chrome and folded. After the ingest the database
 *    is compacted and ferretd started again on it, as a reader of stored
 *    runs finds it (the ingest's memory is the store benchmark's subject);
 *  - the three exports of the 1M-span run handed to speedscope in headless
 *    Chromium (bench/speedscope-load.mjs, when Chromium and the browser
 *    tests' npm packages are there): imported without an error, and how
 *    long it took.
 *
 * A missed target is reported, not an error: the exit status is 0 whenever
 * every command succeeded.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "compact.h"
#include "daemon.h"
#include "workload.h"

#define REPS 5
#define PRODUCERS 2
#define FLAME_TARGET_RATIO 3.0
#define EXPORT_TARGET_MB 100.0

struct options {
        uint64_t spans, small;
        bool no_speedscope;
};

/* "10M", "250k" or the number itself. */
static void short_count(uint64_t n, char *buf, size_t size)
{
        if (n >= 1000000 && n % 1000000 == 0)
                snprintf(buf, size, "%" PRIu64 "M", n / 1000000);
        else if (n >= 1000 && n % 1000 == 0)
                snprintf(buf, size, "%" PRIu64 "k", n / 1000);
        else
                snprintf(buf, size, "%" PRIu64, n);
}

static int ingest(const char *run, uint64_t spans)
{
        struct workload_result w;
        fprintf(stderr, "pictures: emitting %" PRIu64 " spans into run %s...\n", spans, run);
        int r = workload_emit(run, spans, PRODUCERS, NULL, &w);
        if (r < 0)
                return r;
        printf("  %-16s %10" PRIu64 " spans in %.2f s, %" PRIu64 " dropped\n", run, spans, w.seconds, w.dropped);
        fflush(stdout);
        return w.dropped ? -EIO : 0;
}

/* The median wall time of @argv over REPS runs, in ms; -1 when it failed. */
static double median_ms(char *const argv[])
{
        double ms[REPS];
        for (int i = 0; i < REPS; i++) {
                uint64_t t0 = bench_now_ns();
                char *err = NULL;
                int status = bench_run(argv, NULL, &err);
                free(err);
                if (status != 0) {
                        fprintf(stderr, "pictures: ferret %s failed\n", argv[1]);
                        return -1;
                }
                ms[i] = (double)(bench_now_ns() - t0) / 1e6;
        }
        return bench_percentile(ms, REPS, 50);
}

static double file_mib(const char *path)
{
        struct stat st;
        return stat(path, &st) == 0 ? (double)st.st_size / (1024.0 * 1024.0) : 0;
}

/*
 * The peak resident memory of a command. Linux gives a process that execs
 * the high-water mark of the image it replaced, so a command spawned
 * straight from this benchmark (which holds RocksDB's after compacting)
 * would report ours: it is started by a fresh copy of this program instead
 * (--measure-child), which forks it from a small image, waits for it and
 * prints its ru_maxrss on stderr.
 */
static int measure_child(char **argv)
{
        pid_t pid = fork();
        if (pid == 0) {
                execvp(argv[0], argv);
                _exit(127);
        }
        int status;
        struct rusage ru;
        if (pid < 0 || wait4(pid, &status, 0, &ru) < 0)
                return 127;
        fprintf(stderr, "\nmaxrss_kb=%ld\n", ru.ru_maxrss);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int run_measured(char *const argv[], uint64_t *ret_maxrss_kb)
{
        char *full[32] = { "/proc/self/exe", "--measure-child" }, *err = NULL;
        size_t n = 2;
        for (size_t i = 0; argv[i] && n < 31; i++)
                full[n++] = argv[i];
        full[n] = NULL;
        int status = bench_run(full, NULL, &err);
        const char *m = err ? strstr(err, "\nmaxrss_kb=") : NULL;
        *ret_maxrss_kb = m ? strtoull(m + strlen("\nmaxrss_kb="), NULL, 10) : 0;
        if (status != 0 && err)
                fputs(err, stderr);
        free(err);
        return status;
}

/* Exports @run as @format into @path once; prints time, size and memory. */
static int export_once(struct bench_daemon *d, const char *run, const char *format, const char *path, bool target)
{
        char *argv[] = { (char *)bench_ferret_cli_path(), "export", "--run", (char *)run, "--format", (char *)format,
                         "-o", (char *)path, "--runtime-dir", d->runtime_dir, NULL };
        uint64_t before_kb = 0, peak_kb = 0, ferret_kb = 0;
        bench_daemon_reset_peak(d);
        bench_daemon_memory(d, &before_kb, &(uint64_t){ 0 });
        uint64_t t0 = bench_now_ns();
        int status = run_measured(argv, &ferret_kb);
        double s = (double)(bench_now_ns() - t0) / 1e9;
        bench_daemon_memory(d, &peak_kb, &(uint64_t){ 0 });
        if (status != 0) {
                printf("  %-11s FAIL: ferret export exited with status %d\n", format, status);
                return -EIO;
        }
        double ferret_mb = (double)ferret_kb / 1024.0, ferretd_mb = (double)peak_kb / 1024.0;
        printf("  %-11s %7.1f s  %8.1f MiB written  ferret %6.1f MiB  ferretd %6.1f MiB (%.1f before)", format, s,
               file_mib(path), ferret_mb, ferretd_mb, (double)before_kb / 1024.0);
        if (target)
                printf("   target < %.0f MB each: %s", EXPORT_TARGET_MB,
                       ferret_mb * 1.048576 < EXPORT_TARGET_MB && ferretd_mb * 1.048576 < EXPORT_TARGET_MB ? "ok" : "FAIL");
        printf("\n");
        fflush(stdout);
        return 0;
}

/* speedscope in Chromium reads the 1M-span run's exports. */
static int speedscope_load(const char *dir, const char *run, bool *ran)
{
        char script[4096], modules[4096];
        const char *src = getenv("FERRET_SOURCE_ROOT");
        snprintf(script, sizeof(script), "%s/bench/speedscope-load.mjs", src ? src : ".");
        snprintf(modules, sizeof(modules), "%s/tests/browser/node_modules/playwright-core", src ? src : ".");
        *ran = access(script, R_OK) == 0 && access(modules, R_OK) == 0 && access("/usr/bin/chromium", X_OK) == 0;
        if (!*ran) {
                printf("  not measured: needs Chromium and tests/browser's npm packages (bench/run installs them)\n");
                return 0;
        }
        char files[3][64];
        snprintf(files[0], sizeof(files[0]), "%s.trace.json", run);
        snprintf(files[1], sizeof(files[1]), "%s.speedscope.json", run);
        snprintf(files[2], sizeof(files[2]), "%s.folded.txt", run);
        char *argv[] = { "node", script, (char *)dir, files[0], files[1], files[2], NULL };
        fflush(stdout);
        char *out = NULL;
        int status = bench_run(argv, &out, NULL);
        if (out)
                fputs(out, stdout);
        free(out);
        return status == 0 ? 0 : -EIO;
}

int main(int argc, char **argv)
{
        if (argc > 2 && strcmp(argv[1], "--measure-child") == 0)
                return measure_child(argv + 2);
        struct options o = { .spans = 10000000, .small = 1000000 };
        static const struct option longopts[] = {
                { "spans", required_argument, NULL, 'n' },
                { "small", required_argument, NULL, 'm' },
                { "no-speedscope", no_argument, NULL, 'S' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int opt;
        while ((opt = getopt_long(argc, argv, "n:m:Sh", longopts, NULL)) != -1)
                switch (opt) {
                case 'n':
                        o.spans = strtoull(optarg, NULL, 10);
                        break;
                case 'm':
                        o.small = strtoull(optarg, NULL, 10);
                        break;
                case 'S':
                        o.no_speedscope = true;
                        break;
                case 'h':
                        printf("Usage: ferret-bench-pictures [--spans N] [--small N] [--no-speedscope]\n");
                        return 0;
                default:
                        return 2;
                }

        struct bench_machine m;
        bench_machine_get(&m);
        printf("Ferret pictures and exports benchmark\n");
        printf("machine:     %s, %ld CPUs, clocksource %s, %s\n", m.cpu, m.cpus, m.clocksource, m.kernel);
        printf("build:       %s\n", bench_build_description());
        if (bench_build_warning())
                printf("%s\n", bench_build_warning());

        struct bench_daemon d;
        char work[256], path[512], big[32], small[32];
        if (bench_daemon_start(&d) < 0 || bench_mkdtemp("ferret-bench-pictures", work, sizeof(work)) < 0)
                return 1;
        setenv("FERRET_RUNTIME_DIR", d.runtime_dir, 1);
        setenv("FERRET_ON_FULL", "block:60000", 1);
        unsetenv("FERRET_DISABLE");
        unsetenv("FERRET_TRACEPARENT");
        unsetenv("FERRET_RUN_ID");
        char n[24];
        short_count(o.spans, n, sizeof(n));
        snprintf(big, sizeof(big), "pictures-%s", n);
        short_count(o.small, n, sizeof(n));
        snprintf(small, sizeof(small), "pictures-%s", n);
        int r = 0;
        printf("\ningest\n");
        if (ingest(big, o.spans) < 0 || ingest(small, o.small) < 0) {
                r = -EIO;
                goto out;
        }
        /* What a reader of stored runs meets, as in the store benchmark: the
         * database compacted, and a daemon started on it, not one still
         * holding the ingest's memory tables (or rebuilding them from the
         * write-ahead log). */
        struct compact_result c;
        fprintf(stderr, "pictures: stopping ferretd, compacting the database, starting it again...\n");
        if (bench_daemon_stop(&d) != 0 || compact_database(d.db, &c) < 0 || bench_daemon_restart(&d) < 0) {
                r = -EIO;
                goto out;
        }
        printf("  (then the database compacted, and ferretd started again on it)\n");

        char *cli = (char *)bench_ferret_cli_path();
        snprintf(path, sizeof(path), "%s/flame.svg", work);
        char *status[] = { cli, "status", "--runtime-dir", d.runtime_dir, NULL };
        char *flame[] = { cli, "flame", "--run", big, "-o", path, "--runtime-dir", d.runtime_dir, NULL };
        printf("\nlatency, wall clock of the whole command, median of %d\n", REPS);
        double floor_ms = median_ms(status), flame_ms = median_ms(flame);
        if (floor_ms < 0 || flame_ms < 0) {
                r = -EIO;
                goto out;
        }
        printf("  ferret status (the floor)            %7.1f ms\n", floor_ms);
        printf("  ferret flame of the %s-span run     %7.1f ms  %.1fx status (target <= %.0fx)   %s\n",
               big + strlen("pictures-"), flame_ms, flame_ms / floor_ms, FLAME_TARGET_RATIO,
               flame_ms / floor_ms <= FLAME_TARGET_RATIO ? "ok" : "FAIL");

        printf("\nexports of the %s-span run (each once)\n", big + strlen("pictures-"));
        static const char *const formats[] = { "chrome", "folded", "speedscope" };
        static const char *const suffix[] = { "trace.json", "folded.txt", "speedscope.json" };
        for (int i = 0; i < 3; i++) {
                snprintf(path, sizeof(path), "%s/%s.%s", work, big, suffix[i]);
                if ((r = export_once(&d, big, formats[i], path, i < 2)) < 0)
                        goto out;
                unlink(path);
        }
        printf("\nexports of the %s-span run, imported by speedscope in headless Chromium\n", small + strlen("pictures-"));
        for (int i = 0; i < 3; i++) {
                snprintf(path, sizeof(path), "%s/%s.%s", work, small, suffix[i]);
                if ((r = export_once(&d, small, formats[i], path, false)) < 0)
                        goto out;
        }
        bool ran;
        if (!o.no_speedscope)
                r = speedscope_load(work, small, &ran);
out:
        bench_daemon_cleanup(&d);
        bench_rmtree(work);
        return r < 0 ? 1 : 0;
}
