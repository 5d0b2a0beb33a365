/* SPDX-License-Identifier: MIT */
/* Random ids and the W3C traceparent format. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "ids.h"

uint64_t ids_random64(void)
{
        uint64_t v;
        if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == sizeof(v) && v)
                return v;
        /* No entropy yet (early boot): mix what differs between processes. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        v = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ ((uint64_t)getpid() << 16) ^ (uintptr_t)&v;
        v ^= v >> 33;
        v *= 0xff51afd7ed558ccdULL;
        v ^= v >> 33;
        return v ? v : 1;
}

int ferret_ctx_format(ferret_ctx_t ctx, char *buf, size_t size)
{
        if (!buf || !ferret_ctx_is_valid(ctx))
                return -EINVAL;
        if (size < FERRET_TRACEPARENT_LEN + 1)
                return -ENOBUFS;
        snprintf(buf, size, "00-%016llx%016llx-%016llx-01", (unsigned long long)ctx.trace_hi,
                 (unsigned long long)ctx.trace_lo, (unsigned long long)ctx.span_id);
        return 0;
}

static int parse_hex(const char *s, size_t n, uint64_t *ret)
{
        uint64_t v = 0;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
                if (d < 0)
                        return -EINVAL;
                v = v << 4 | (uint64_t)d;
        }
        *ret = v;
        return 0;
}

/* version "-" trace-id(32 hex) "-" parent-id(16 hex) "-" flags(2 hex), all
 * lowercase; all-zero ids are invalid, as is version ff. */
int ferret_ctx_parse(const char *tp, ferret_ctx_t *ret)
{
        uint64_t version, hi, lo, span, flags;
        if (!tp || !ret || strlen(tp) < FERRET_TRACEPARENT_LEN || tp[2] != '-' || tp[35] != '-' ||
            tp[52] != '-' || (tp[55] != '\0' && tp[55] != '-'))
                return -EINVAL;
        if (parse_hex(tp, 2, &version) < 0 || version == 0xff || parse_hex(tp + 3, 16, &hi) < 0 ||
            parse_hex(tp + 19, 16, &lo) < 0 || parse_hex(tp + 36, 16, &span) < 0 ||
            parse_hex(tp + 53, 2, &flags) < 0)
                return -EINVAL;
        if ((hi == 0 && lo == 0) || span == 0)
                return -EINVAL;
        *ret = (ferret_ctx_t){ .trace_hi = hi, .trace_lo = lo, .span_id = span };
        return 0;
}

/* W3C tracestate beside FERRET_TRACEPARENT: "ferret=", then in 32 hex
 * digits the parent's span id and its call path, among other vendors'
 * entries or alone. The span id makes a stale tracestate, left beside a
 * traceparent someone else set, harmless. */
int ids_tracestate_format(ferret_ctx_t parent, uint64_t path, char *buf, size_t size)
{
        int n = snprintf(buf, size, "ferret=%016llx%016llx", (unsigned long long)parent.span_id,
                         (unsigned long long)path);
        return n < 0 || (size_t)n >= size ? -ENOBUFS : 0;
}

uint64_t ids_tracestate_path(const char *tracestate, ferret_ctx_t parent)
{
        for (const char *p = tracestate; p && *p;) {
                while (*p == ' ' || *p == '\t' || *p == ',')
                        p++;
                uint64_t span, path;
                if (strncmp(p, "ferret=", 7) == 0 && strnlen(p, 39) == 39 && parse_hex(p + 7, 16, &span) == 0 &&
                    parse_hex(p + 23, 16, &path) == 0 && strchr(",\t ", p[39]) && span == parent.span_id)
                        return path;
                p = strchr(p, ',');
        }
        return 0;
}
