/* SPDX-License-Identifier: MIT */
/*
 * The hooks of Ferret's own tracers: what function.c exports to
 * libferret-agent, whose __cyg_profile_func_enter/exit (for programs built
 * with -finstrument-functions) and longjmp wrappers call them across the
 * shared library's boundary, and what span.c exports to the Python
 * extension's profile hook. Not API: not installed, and exported in the
 * version node FERRET_PRIVATE_0.1 only because the agent and the extension
 * are libraries of their own (see libferret-client.sym).
 *
 * Each call becomes a span named after the function (resolved from @fn
 * later, off the hot path), child of the enclosing call or of the thread's
 * current span. Enter and exit must pair up on one thread.
 * FERRET_MIN_DURATION_NS, FERRET_MAX_DEPTH, FERRET_INCLUDE and
 * FERRET_EXCLUDE (comma-separated globs on names) limit what is recorded.
 */
#pragma once

#include "ferret.h"

/* Enter and exit with what a hook knows: the call site (the hook's second
 * argument, the return address of @fn) and @sp, the stack pointer of @fn
 * when it called the hook (NULL: the library uses its own frame's address,
 * which compares alike between calls). Exits are matched to their frames by
 * function and stack pointer. */
FERRET_EXPORT void ferret__function_enter_at(void *fn, void *call_site, void *sp);
FERRET_EXPORT void ferret__function_exit_at(void *fn, void *sp);

/* The same without a call site or a stack pointer. */
FERRET_EXPORT void ferret__function_enter(void *fn);
FERRET_EXPORT void ferret__function_exit(void *fn);

/* The calling thread is about to leave functions without their exit hooks
 * (longjmp, siglongjmp), restoring the stack pointer @target_sp: the frames
 * below it are closed now, marked unwound. With @target_sp NULL (not
 * known), they are closed at the next enter: the jump landed in the
 * function holding that call's call site. */
FERRET_EXPORT void ferret__function_jumped(void *target_sp);

/* The Python extension's profile hook: ferret__span_begin_named() under
 * @parent, the frame's caller's span. When @parent is the thread's current
 * span (plain nested calls) it is as fast; otherwise @parent is explicit,
 * and the name is still recorded as its number. @ret_ctx gets the span's
 * context (@parent when NULL is returned), without what
 * ferret_span_context() does besides: remembering the span's call path for
 * spans that other threads begin under it later. */
FERRET_EXPORT ferret_span_t *ferret__span_begin_named_in(ferret_ctx_t parent, ferret_name_t *cache, const char *name,
                                                         ferret_ctx_t *ret_ctx);
