/* SPDX-License-Identifier: MIT */
/*
 * The probes of the ferret_bench provider, linked into the benchmark itself
 * (rather than preloaded) so the tracepoint is ready when main() starts.
 */
#define LTTNG_UST_TRACEPOINT_CREATE_PROBES
#define LTTNG_UST_TRACEPOINT_DEFINE
#include "lttng-tp.h"
