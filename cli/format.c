/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <langinfo.h>
#include <locale.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "text.h"

static const struct glyphs unicode_glyphs = {
        .branch = "├── ", .last_branch = "└── ", .pipe = "│   ",
        .times = "×", .delta = "Δ", .micro = "µ", .dot = " · ",
};
static const struct glyphs ascii_glyphs = {
        .branch = "|-- ", .last_branch = "`-- ", .pipe = "|   ",
        .times = "x", .delta = "chg", .micro = "u", .dot = ", ",
};
/* format_duration() has no struct cli to ask. */
static const struct glyphs *glyphs_g = &unicode_glyphs;

void cli_setup_output(struct cli *cli)
{
        setlocale(LC_ALL, "");
        glyphs_g = strcmp(nl_langinfo(CODESET), "UTF-8") == 0 ? &unicode_glyphs : &ascii_glyphs;
        cli->glyphs = glyphs_g;
        const char *no_color = getenv("NO_COLOR"), *term = getenv("TERM");
        /* https://no-color.org: any non-empty NO_COLOR turns colour off. */
        cli->color = isatty(STDOUT_FILENO) && !(no_color && *no_color) && !(term && strcmp(term, "dumb") == 0);
}

const char *format_duration(uint64_t ns, char *buf, size_t size)
{
        if (ns < 1000)
                snprintf(buf, size, "%llu ns", (unsigned long long)ns);
        else if (ns < 1000000)
                snprintf(buf, size, "%.2f %ss", ns / 1e3, glyphs_g->micro);
        else if (ns < 1000000000)
                snprintf(buf, size, "%.2f ms", ns / 1e6);
        else
                snprintf(buf, size, "%.2f s", ns / 1e9);
        return buf;
}

void print_status(const struct cli *cli, unsigned status, const char *message)
{
        static const char *const names[] = { "ok", "warning", "error" };
        if (status == 0 || status > 2)
                return;
        bool has = message && *message;
        printf(" %s[%s%s", color(cli, status == 2 ? C_RED : C_YELLOW), names[status], has ? ": " : "");
        term_put(stdout, has ? message : "");
        printf("]%s", color(cli, C_RESET));
}

int parse_count(const char *s, unsigned long max, unsigned long *ret)
{
        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        char *end;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (errno || *end || v == 0 || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

int parse_duration(const char *s, uint64_t *ret)
{
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (errno || end == s || v < 0)
                return -EINVAL;
        static const struct {
                const char *unit;
                double ns;
        } units[] = { { "", 1 }, { "ns", 1 }, { "us", 1e3 }, { "µs", 1e3 }, { "ms", 1e6 }, { "s", 1e9 }, { "m", 60e9 } };
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
                if (strcmp(end, units[i].unit) == 0) {
                        *ret = (uint64_t)(v * units[i].ns);
                        return 0;
                }
        return -EINVAL;
}

int parse_time_bound(const char *s, uint64_t now_ns, uint64_t *ret)
{
        char *end;
        if (s[0] == '@') {
                /* Exactly, to the nanosecond: a double would round it. */
                if (s[1] < '0' || s[1] > '9')
                        return -EINVAL;
                errno = 0;
                unsigned long long secs = strtoull(s + 1, &end, 10);
                uint64_t frac = 0;
                int digits = 0;
                if (*end == '.')
                        for (end++; *end >= '0' && *end <= '9' && digits < 9; end++, digits++)
                                frac = frac * 10 + (uint64_t)(*end - '0');
                for (; digits < 9; digits++)
                        frac *= 10;
                if (errno || *end || secs > 10000000000ull)
                        return -EINVAL;
                *ret = (uint64_t)secs * 1000000000u + frac;
                return 0;
        }
        /* A duration back from now: a number and a unit of time. */
        errno = 0;
        double v = strtod(s, &end);
        static const struct {
                const char *unit;
                double ns;
        } back[] = { { "s", 1e9 }, { "m", 60e9 }, { "min", 60e9 }, { "h", 3600e9 }, { "d", 86400e9 } };
        if (!errno && end != s && v >= 0 && *end && !strchr(s, ':') && !strchr(s, '-'))
                for (size_t i = 0; i < sizeof(back) / sizeof(back[0]); i++)
                        if (strcmp(end, back[i].unit) == 0) {
                                double d = v * back[i].ns;
                                if (d > (double)now_ns)
                                        return -EINVAL;
                                *ret = now_ns - (uint64_t)d;
                                return 1;
                        }
        /* A local date and time. */
        static const char *const formats[] = { "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M",
                                               "%Y-%m-%dT%H:%M", "%Y-%m-%d", "%H:%M:%S", "%H:%M" };
        for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
                time_t now = (time_t)(now_ns / 1000000000u);
                struct tm tm;
                localtime_r(&now, &tm);
                tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
                end = strptime(s, formats[i], &tm);
                if (!end || *end)
                        continue;
                tm.tm_isdst = -1;
                time_t t = mktime(&tm);
                if (t < 0)
                        return -EINVAL;
                *ret = (uint64_t)t * 1000000000u;
                return 0;
        }
        return -EINVAL;
}

const char *format_time(uint64_t wall_ns, char *buf, size_t size)
{
        time_t t = (time_t)(wall_ns / 1000000000u);
        struct tm tm;
        if (!wall_ns || !localtime_r(&t, &tm)) {
                snprintf(buf, size, "-");
                return buf;
        }
        strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
        return buf;
}

const char *format_bytes(uint64_t bytes, char *buf, size_t size)
{
        static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
        double v = (double)bytes;
        int u = 0;
        while (v >= 1024 && u < 4) {
                v /= 1024;
                u++;
        }
        if (u == 0)
                snprintf(buf, size, "%llu B", (unsigned long long)bytes);
        else
                snprintf(buf, size, "%.1f %s", v, units[u]);
        return buf;
}

const char *color(const struct cli *cli, const char *escape)
{
        return cli->color ? escape : "";
}

int parse_window_bound(const char *name, const char *s, uint64_t now_ns, uint64_t *ret, bool *whole_buckets)
{
        int relative = parse_time_bound(s, now_ns, ret);
        if (relative < 0)
                return cli_error(EINVAL, "--%s takes a time such as 5m, 2h, \"2026-12-04 10:30\" or @1764800000, not '%s'",
                                 name, s);
        *whole_buckets = *whole_buckets || relative == 1;
        return 0;
}

uint64_t wall_now_ns(void)
{
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}
