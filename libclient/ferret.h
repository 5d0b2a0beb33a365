/* SPDX-License-Identifier: MIT */
/**
 * @file ferret.h
 * The Ferret client library: record spans (named, timed pieces of work with a
 * parent, tags and a status) from any thread of any process; ferretd stores
 * them and the `ferret` command shows where the time went.
 *
 * The library configures itself from the environment on first use:
 *
 * - FERRET_RUNTIME_DIR: the directory holding the daemon's sockets. Without
 *   it: the user's own ($XDG_RUNTIME_DIR/ferret, or /tmp/ferret-UID without
 *   XDG_RUNTIME_DIR) when a daemon listens there, else /run/ferret. A
 *   directory is used only if it is one (not a symbolic link), belongs to
 *   the user, root or the system's ferret user, and nobody else may write
 *   it; otherwise nothing is recorded, and stderr says why, once.
 * - FERRET_RUN_ID: the run the spans belong to (default: program name, start
 *   time and pid).
 * - FERRET_TRACEPARENT: a W3C traceparent; root spans become its children.
 * - FERRET_DISABLE=1: record nothing; every call returns at once.
 *   FERRET_DISABLE=absent: the same when no daemon listens as the client
 *   starts (checked once, by the process's first call), else record.
 * - FERRET_BUFFER_SIZE: the per-process memory for bursts (bytes, k/M
 *   suffixes; default 16M). Each thread that traces has a 1 MiB ring of its
 *   own (mapped lazily) and 64 KiB for its open spans; a burst that fills
 *   the ring overflows into this budget before anything is dropped.
 * - FERRET_ON_FULL=block:MS: when the buffer is full, wait up to MS
 *   milliseconds for room instead of dropping (for tests and benchmarks).
 * - FERRET_EXIT_TIMEOUT_MS: how long exit may wait for buffered spans to be
 *   stored (default 2000).
 *
 * Costs and guarantees: beginning and ending a span takes no lock, makes no
 * system call and allocates nothing (after a thread's first span); a
 * background thread sends spans to the daemon without ever blocking the
 * program. When the daemon is missing, dead or slow, or the buffer is full,
 * spans are dropped and counted (ferret_get_stats()), never waited for.
 * The library never prints, never logs and never aborts the program.
 *
 * Every function is thread-safe and accepts a NULL span, so the result of a
 * begin call can be used without checking it.
 *
 * Signal handlers may begin, tag and end spans, and never wait for the
 * thread they interrupt: a span a handler ends while that thread is inside
 * the library writing its buffer is dropped (and counted) instead.
 * But the process's first call starts the client (its thread, its sockets,
 * memory from malloc), which a handler must not do: a program whose
 * handlers trace calls ferret_enabled() once before installing them.
 *
 * @code
 * #include <ferret.h>
 *
 * void handle(int user)
 * {
 *         ferret_span_t *s = ferret_span_beginf("handle user %d", user);
 *         ferret_span_tag_int(s, "user", user);
 *         if (load(user) < 0)
 *                 ferret_span_set_status(s, FERRET_STATUS_ERROR, "load failed");
 *         ferret_span_end(s);
 * }
 * @endcode
 */
#ifndef FERRET_H
#define FERRET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FERRET_EXPORT __attribute__((visibility("default")))

/** An open span. Owned by the library; valid until ferret_span_end(). */
typedef struct ferret_span ferret_span_t;

/**
 * A span's identity, by value: safe to copy, to hand to another thread or to
 * keep after the span has ended. A context whose span_id is 0 is "none".
 */
typedef struct ferret_ctx {
        uint64_t trace_hi;
        uint64_t trace_lo;
        uint64_t span_id;
} ferret_ctx_t;

typedef enum ferret_status {
        FERRET_STATUS_OK = 0,
        FERRET_STATUS_WARNING = 1,
        FERRET_STATUS_ERROR = 2,
} ferret_status_t;

/** Bits: ASYNC, and SUSPENSION for a span that covers a time its parent
 * was suspended (a generator's yield, a coroutine's await), which is
 * neither its parent's own time nor its parent's parent's: the parent's
 * lifetime overlaps whatever ran meanwhile, its caller's included. */
typedef enum ferret_kind {
        FERRET_KIND_SYNC = 0,
        FERRET_KIND_ASYNC = 1,
        FERRET_KIND_SUSPENSION = 2,
} ferret_kind_t;

/** A call site's cached number for a literal name or key; 0 until first use. */
typedef uint32_t ferret_name_t;

/**
 * Counters of this process's client since it started (or forked), for
 * ferret_get_stats(). The structure may grow at its end in later releases:
 * the caller sets @c size to the size it was compiled with, and the library
 * fills what that covers.
 *
 * @code
 * ferret_stats_t st = { .size = sizeof(st) };
 * if (ferret_get_stats(&st) == 0)
 *         printf("%" PRIu64 " spans dropped\n", st.dropped);
 * @endcode
 */
typedef struct ferret_stats {
        size_t size;            /**< in: sizeof(ferret_stats_t); out: the bytes filled */
        uint64_t recorded;      /**< spans ended and buffered */
        uint64_t dropped;       /**< spans lost: buffer full, no daemon, too deep */
        uint64_t sent;          /**< spans handed to the daemon's socket */
        uint64_t batches;       /**< batches sent */
} ferret_stats_t;

/** The size of the first ferret_stats_t (up to @c batches), the least
 * ferret_get_stats() takes. */
#define FERRET_STATS_SIZE_V1 (offsetof(ferret_stats_t, batches) + sizeof(uint64_t))

/**
 * Begins a span named @p name as a child of the calling thread's current span
 * (or of FERRET_TRACEPARENT, or a new trace) and makes it the current span.
 * The name is copied (up to 255 bytes), so it may be a temporary.
 *
 * @return the span, or NULL when tracing is disabled, the thread has too
 * many open spans, or its buffer was just found full (in the last two cases
 * a drop is counted, and spans begun inside become children of this one's
 * parent). Pass it to ferret_span_end().
 */
FERRET_EXPORT ferret_span_t *ferret_span_begin(const char *name);

/** ferret_span_begin() with a printf-style name, e.g. "fetch %s". */
FERRET_EXPORT ferret_span_t *ferret_span_beginf(const char *fmt, ...)
        __attribute__((format(printf, 1, 2)));

/**
 * Begins a span as a child of @p parent, which may come from another thread,
 * a callback or another process (ferret_ctx_parse()). A "none" parent starts
 * a new trace. The span becomes the calling thread's current span.
 */
FERRET_EXPORT ferret_span_t *ferret_span_begin_in(ferret_ctx_t parent, const char *name);

/**
 * Ends @p span: records its duration and releases it. May be called from any
 * thread, once. The calling thread's current span goes back to the span's
 * parent if @p span was current. NULL is ignored.
 */
FERRET_EXPORT void ferret_span_end(ferret_span_t *span);

/**
 * Tags: typed key/value pairs, copied into the span. Keys up to 63 bytes and
 * string values up to 255 bytes are kept whole, longer ones are truncated. A
 * span has about 400 bytes for its copied name, tags and status message;
 * what does not fit is left out.
 *
 * With GCC or Clang these are macros (unless FERRET_NO_TAG_MACROS is
 * defined) that evaluate @p span, @p key and @p value exactly once, like a
 * function call, whether tracing is on or off:
 * `ferret_span_tag_int(s, "n", i++)` adds one to i either way.
 */
FERRET_EXPORT void ferret_span_tag_str(ferret_span_t *span, const char *key, const char *value);
FERRET_EXPORT void ferret_span_tag_int(ferret_span_t *span, const char *key, int64_t value);
FERRET_EXPORT void ferret_span_tag_double(ferret_span_t *span, const char *key, double value);
FERRET_EXPORT void ferret_span_tag_bool(ferret_span_t *span, const char *key, bool value);

/*
 * Not API (version node FERRET_PRIVATE_0.1, may change in any release):
 * with a literal key, the macros below intern the key once per call site
 * and record its number through these, like FERRET_SCOPE does for names;
 * with any other key they call the functions above.
 */
FERRET_EXPORT void ferret__span_tag_str_named(ferret_span_t *span, ferret_name_t *key_cache, const char *key,
                                             const char *value);
FERRET_EXPORT void ferret__span_tag_int_named(ferret_span_t *span, ferret_name_t *key_cache, const char *key,
                                             int64_t value);
FERRET_EXPORT void ferret__span_tag_double_named(ferret_span_t *span, ferret_name_t *key_cache, const char *key,
                                                double value);
FERRET_EXPORT void ferret__span_tag_bool_named(ferret_span_t *span, ferret_name_t *key_cache, const char *key,
                                              bool value);

#if defined(__GNUC__) && !defined(FERRET_NO_TAG_MACROS)
/* Like a function call, the macros evaluate each argument once, whatever
 * the span (NULL included): a side effect in an argument must not depend
 * on whether tracing is on. So all three are evaluated into variables
 * first; __builtin_constant_p() evaluates nothing, it only chooses the path
 * (a literal key's number cached per call site, or the key copied). */
#define FERRET__TAG(kind, type, span, key, value) \
        __extension__({ \
                ferret_span_t *ferret__tag_span = (span); \
                const char *ferret__tag_key = (key); \
                type ferret__tag_value = (value); \
                static ferret_name_t ferret__tag_key_id; \
                if (ferret__tag_span) { \
                        if (__builtin_constant_p(key)) \
                                ferret__span_tag_##kind##_named(ferret__tag_span, &ferret__tag_key_id, \
                                                                ferret__tag_key, ferret__tag_value); \
                        else \
                                (ferret_span_tag_##kind)(ferret__tag_span, ferret__tag_key, ferret__tag_value); \
                } \
        })
#define ferret_span_tag_str(span, key, value) FERRET__TAG(str, const char *, span, key, value)
#define ferret_span_tag_int(span, key, value) FERRET__TAG(int, int64_t, span, key, value)
#define ferret_span_tag_double(span, key, value) FERRET__TAG(double, double, span, key, value)
#define ferret_span_tag_bool(span, key, value) FERRET__TAG(bool, bool, span, key, value)
#endif

/** Sets the status; @p message (may be NULL) is copied, up to 255 bytes. */
FERRET_EXPORT void ferret_span_set_status(ferret_span_t *span, ferret_status_t status, const char *message);

/** Marks the span async (e.g. a coroutine: its time includes suspensions). */
FERRET_EXPORT void ferret_span_set_kind(ferret_span_t *span, ferret_kind_t kind);
/**
 * Moves the start of @p span, open and begun on this thread, back to
 * @p monotonic_ns, a CLOCK_MONOTONIC instant (in nanoseconds) that was
 * taken before it began, in this process or another: a request's arrival
 * as the kernel stamped it, or, as the agent uses it, the moment a parent
 * process asked for this one. Later instants are ignored (a span never
 * starts after it began); with the TSC the instant is converted through the
 * measured ratio, to a few microseconds for an instant milliseconds back.
 */
FERRET_EXPORT void ferret_span_set_start_monotonic(ferret_span_t *span, uint64_t monotonic_ns);

/** The span's context, to continue it elsewhere. NULL gives "none". */
FERRET_EXPORT ferret_ctx_t ferret_span_context(const ferret_span_t *span);

/** The calling thread's current span's context, or FERRET_TRACEPARENT's, or "none". */
FERRET_EXPORT ferret_ctx_t ferret_current(void);

/**
 * Makes @p parent the parent of root spans: spans begun on a thread with no
 * current span. Replaces FERRET_TRACEPARENT's context. Call it before other
 * threads begin spans (it is not atomic with respect to them); `ferret run`'s
 * agent uses it to put a process's spans under the process's own span.
 */
FERRET_EXPORT void ferret_set_default_parent(ferret_ctx_t parent);

/** Whether @p ctx names a span. */
static inline bool ferret_ctx_is_valid(ferret_ctx_t ctx)
{
        return ctx.span_id != 0;
}

/** Length of a W3C traceparent string, without its NUL. */
#define FERRET_TRACEPARENT_LEN 55

/**
 * Renders @p ctx as a W3C traceparent ("00-<trace>-<span>-01") into @p buf.
 * @return 0, -EINVAL if @p ctx is "none", -ENOBUFS if @p size is below
 * FERRET_TRACEPARENT_LEN + 1.
 */
FERRET_EXPORT int ferret_ctx_format(ferret_ctx_t ctx, char *buf, size_t size);

/** Parses a W3C traceparent. @return 0, or -EINVAL (ret untouched). */
FERRET_EXPORT int ferret_ctx_parse(const char *traceparent, ferret_ctx_t *ret);

/** Length of ferret_ctx_tracestate()'s entry, without its NUL. */
#define FERRET_TRACESTATE_LEN 39

/**
 * Renders the W3C tracestate entry ("ferret=" and 32 hex digits) that goes
 * beside @p ctx's traceparent: it carries the span's call path, so that the
 * spans of a process started under @p ctx (FERRET_TRACEPARENT and
 * FERRET_TRACESTATE in its environment) join the call tree under it rather
 * than waiting for the daemon to link them. Call it in the process that
 * holds the span, while the span is open or soon after.
 * @return 0, -EINVAL if @p ctx is "none", -ENOBUFS if @p size is below
 * FERRET_TRACESTATE_LEN + 1.
 */
FERRET_EXPORT int ferret_ctx_tracestate(ferret_ctx_t ctx, char *buf, size_t size);

/**
 * Waits until the daemon has stored every span this process ended before the
 * call, so a query that follows sees them.
 *
 * @return 0; -ETIMEDOUT after @p timeout_ms (a negative value waits forever);
 * -ECONNREFUSED when no daemon listens; -ECANCELED when tracing is disabled
 * or shut down; -ENODATA when spans were dropped since the previous flush
 * (the rest are stored).
 */
FERRET_EXPORT int ferret_flush(int timeout_ms);

/**
 * Sends what is buffered (waiting up to FERRET_EXIT_TIMEOUT_MS for the daemon
 * to store it) and stops the background thread. Later spans are dropped.
 * Runs by itself at exit; calling it again does nothing.
 */
FERRET_EXPORT void ferret_shutdown(void);

/**
 * Whether spans are being recorded (not disabled, not shut down). Starts the
 * client if no call has yet: call it at start-up, outside signal handlers,
 * when signal handlers will trace.
 */
FERRET_EXPORT bool ferret_enabled(void);

/** This process's run id (valid until exit). */
FERRET_EXPORT const char *ferret_run_id(void);

/**
 * Copies the client's counters into @p ret, as far as @p ret->size (set by
 * the caller) covers, and sets @p ret->size to the bytes it filled.
 * @return 0, or -EINVAL when @p ret is NULL or its size is below
 * FERRET_STATS_SIZE_V1 (then @p ret is untouched).
 */
FERRET_EXPORT int ferret_get_stats(ferret_stats_t *ret);

/** A message for a negative errno returned by this library. */
FERRET_EXPORT const char *ferret_strerror(int error);

/*
 * Names known at compile time. FERRET_SCOPE and ferret_span_begin_literal()
 * look a literal name up once per call site and then record only its number,
 * which is cheaper than copying the name on every span.
 */


/* Not API (FERRET_PRIVATE_0.1): what ferret_span_begin_literal() calls. */
FERRET_EXPORT ferret_span_t *ferret__span_begin_named(ferret_name_t *cache, const char *name);

/* Not API (FERRET_PRIVATE_0.1). Nonzero once tracing is known to be off:
 * lets the macros below skip the calls. Another thread may set it at any time, so it is
 * read with a relaxed atomic load (a plain load on x86 and ARM). */
FERRET_EXPORT extern volatile int ferret__off;

/** ferret_span_begin() for a string literal, interned once per call site.
 * With tracing off it costs one load and a branch. */
#define ferret_span_begin_literal(name) \
        __extension__({ static ferret_name_t ferret_name_cache_; \
                        __builtin_expect(__atomic_load_n(&ferret__off, __ATOMIC_RELAXED), 0) ? (ferret_span_t *)0 \
                                : ferret__span_begin_named(&ferret_name_cache_, "" name ""); })

/** For FERRET_SCOPE's cleanup; not to be called directly. */
static inline void ferret_scope_end_(ferret_span_t **span)
{
        if (*span)
                ferret_span_end(*span);
}

/**
 * Runs the following block inside a span named by the literal @p name, bound
 * to @p var; the span ends however the block is left (end of block, break,
 * return, goto out of it).
 *
 * @code
 * FERRET_SCOPE(s, "parse") {
 *         ferret_span_tag_int(s, "bytes", n);
 *         if (parse(buf, n) < 0)
 *                 return -EINVAL;      // the span ends here too
 * }
 * @endcode
 *
 * Wrong: `FERRET_SCOPE(s, name_variable)`: the name must be a literal; use
 * ferret_span_begin() for a computed name.
 */
#define FERRET_SCOPE(var, name) \
        for (ferret_span_t *var __attribute__((cleanup(ferret_scope_end_), unused)) = \
                     ferret_span_begin_literal(name), \
             *var##_once_ = (ferret_span_t *)1; \
             var##_once_; var##_once_ = NULL)

#ifdef __cplusplus
}
#endif

#endif /* FERRET_H */
