/* SPDX-License-Identifier: MIT */
/*
 * The LTTng-UST tracepoint provider the hot-path benchmark compares Ferret
 * with: one event carrying an int and a short string, about what a Ferret
 * span with a literal name carries. lttng-tp.c instantiates the probes.
 * This header is read several times by the LTTng macros, hence the unusual
 * include guard.
 */
#undef LTTNG_UST_TRACEPOINT_PROVIDER
#define LTTNG_UST_TRACEPOINT_PROVIDER ferret_bench

#undef LTTNG_UST_TRACEPOINT_INCLUDE
#define LTTNG_UST_TRACEPOINT_INCLUDE "./lttng-tp.h"

#if !defined(BENCH_LTTNG_TP_H) || defined(LTTNG_UST_TRACEPOINT_HEADER_MULTI_READ)
#define BENCH_LTTNG_TP_H

#include <lttng/tracepoint.h>

LTTNG_UST_TRACEPOINT_EVENT(
        ferret_bench, work,
        LTTNG_UST_TP_ARGS(int, i, const char *, k),
        LTTNG_UST_TP_FIELDS(
                lttng_ust_field_integer(int, i, i)
                lttng_ust_field_string(k, k)
        )
)

#endif /* BENCH_LTTNG_TP_H */

#include <lttng/tracepoint-event.h>
