/* SPDX-License-Identifier: MIT */
/**
 * @file ferret.h
 * The Ferret client library: record spans (named, timed pieces of work with a
 * parent, tags and a status) from any thread of any process; ferretd stores
 * them and the `ferret` command shows where the time went.
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
 *
 * @section config Configuration
 *
 * The library configures itself from the environment on first use (the
 * process's first call into it, whichever it is):
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
 * - FERRET_DISABLE=1 (or any value but "0" and "absent"): record nothing;
 *   every call returns at once, every begin returns NULL.
 *   FERRET_DISABLE=absent: the same when no daemon listens as the client
 *   starts (checked once, by the process's first call), else record.
 * - FERRET_BUFFER_SIZE: the per-process memory for bursts (bytes, k/M
 *   suffixes; default 16M). Each thread that traces has a 1 MiB ring of its
 *   own (mapped lazily) and 64 KiB for its open spans; a burst that fills
 *   the ring overflows into this budget before anything is dropped.
 * - FERRET_ON_FULL=block:MS: when the buffer is full, wait up to MS
 *   milliseconds for room instead of dropping (for tests and benchmarks).
 * - FERRET_EXIT_TIMEOUT_MS: how long exit may wait for buffered spans to be
 *   stored (default 2000). What the daemon has not stored by then is given
 *   up, and exit waits up to 200 ms more to tell it how much, so that the
 *   run counts it as dropped.
 *
 * With no daemon listening, tracing stays on (unless FERRET_DISABLE=absent):
 * spans are recorded, then dropped and counted when they cannot be sent.
 *
 * @section costs Costs and guarantees
 *
 * Beginning and ending a span takes no lock, makes no system call and
 * allocates nothing (after a thread's first span); a background thread
 * sends spans to the daemon without ever blocking the program. When the
 * daemon is missing, dead or slow, or the buffer is full, spans are dropped
 * and counted (ferret_get_stats()), never waited for. The library never
 * logs and never aborts the program; all it ever prints is one line on
 * stderr when it refuses a runtime directory, or a daemon on its socket,
 * that it may not trust (see FERRET_RUNTIME_DIR).
 *
 * @section errors Errors
 *
 * Calls that can fail return 0 or a negative errno (ferret_strerror()
 * describes it) and leave their output parameter, named @c ret, untouched
 * on failure. Calls on a span return nothing: a span that cannot be
 * recorded is dropped and counted, and every call that takes a span
 * accepts NULL and does nothing with it, so the result of a begin call is
 * used without checking it.
 *
 * @section threads Threads
 *
 * Calls that take no span may be made from any thread at any time. A span
 * (a ferret_span_t pointer) may be handed to another thread and tagged or
 * ended there; the span's calls (the tag calls, ferret_span_set_status(),
 * ferret_span_set_kind(), ferret_span_set_start_monotonic(),
 * ferret_span_context() and ferret_span_end()) are then the program's to
 * order, as for any object without a lock of its own:
 *
 * - Safe: ending a span on another thread than the one that began it, while
 *   that thread goes on beginning and ending spans of its own; handing a
 *   span over (through a queue, a mutex, pthread_create(), pthread_join())
 *   and tagging it on the other side; ending a span while the thread that
 *   began it exits (it is stored once: ended, or unfinished if the exit
 *   came first).
 * - Not safe: two threads tagging the same span at the same time, or one
 *   tagging (or setting its status, or taking its context) while another
 *   ends it. Nothing detects it: tags are lost or garbled, or land on
 *   another span.
 * - Not safe: any call with a span after ferret_span_end() returned for it:
 *   its memory goes to the next span its thread begins.
 *
 * @code
 * // Wrong: the worker may still be tagging when main() ends the span.
 * ferret_span_t *s = ferret_span_begin("job");
 * pthread_create(&t, NULL, worker, s);      // worker: ferret_span_tag_int(s, ...)
 * ferret_span_end(s);
 * pthread_join(t, NULL);
 *
 * // Right: the join orders the worker's tags before the end.
 * pthread_create(&t, NULL, worker, s);
 * pthread_join(t, NULL);
 * ferret_span_end(s);
 * @endcode
 *
 * Each thread has a current span: the latest span it began that is still
 * open. Spans begun without an explicit parent are children of it.
 *
 * @section signals Signal handlers
 *
 * Signal handlers may begin, tag and end spans of their own, and never wait
 * for the thread they interrupt: a span a handler ends while that thread is
 * inside the library writing its buffer is dropped (and counted) instead.
 * A handler must not tag or end a span that the code it interrupted may be
 * using (the rule above, with the handler as the second thread). And the
 * process's first call starts the client (its thread, its sockets, memory
 * from malloc), which a handler must not do: a program whose handlers
 * trace calls ferret_enabled() once before installing them.
 *
 * @section abi Exported symbols
 *
 * The library exports the functions and the one variable this header
 * declares, and the hooks of `ferret run`'s agent. Those whose names start
 * with `ferret__` (two underscores) are internals that the macros below,
 * or the agent, call: they are not API, belong to the version node
 * FERRET_PRIVATE_0.1 and may change in any release. Call the macros, never
 * them.
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

/**
 * An open span. Owned by the library: it is valid from the begin call that
 * returned it until ferret_span_end(), and never freed by the program.
 */
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

/** A call site's cached number for a literal name or key; 0 until first
 * use. Only the macros below use it. */
typedef uint32_t ferret_name_t;

/**
 * Counters of this process's client since it started (or forked), for
 * ferret_get_stats().
 *
 * The structure grows at its end in later releases. The caller sets @c size
 * to the size it was compiled with, and the library fills what that size
 * covers, so that a program built against an older header keeps working
 * with a newer library and the other way round:
 *
 * @code
 * ferret_stats_t st = { .size = sizeof(st) };
 * if (ferret_get_stats(&st) == 0)
 *         printf("%" PRIu64 " spans dropped\n", st.dropped);
 * @endcode
 *
 * Wrong: `ferret_stats_t st; ferret_get_stats(&st);`: the size is
 * uninitialised, so the call may fail with -EINVAL (with `= { 0 }` it
 * always does).
 */
typedef struct ferret_stats {
        size_t size;            /**< in: sizeof(ferret_stats_t) as the caller knows it;
                                 *   out: the bytes the library filled */
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
 * (or of FERRET_TRACEPARENT's context or ferret_set_default_parent()'s
 * parent, or the first of a new trace) and makes it the thread's current
 * span.
 *
 * @param name the span's name, copied: it may be a temporary. Longer names
 * are cut to 255 bytes (at a UTF-8 character boundary); NULL is an empty
 * name.
 * @return the span, to pass to ferret_span_end() once, from any thread; or
 * NULL when tracing is disabled or shut down, memory is short, the thread
 * has 131,072 spans open, its buffer was just found full, or the call
 * interrupted the library on the same thread (from a signal handler). In
 * the last three cases a drop is counted. A NULL span never becomes
 * current: spans begun next are children of the thread's current span, as
 * if this one did not exist. NULL is a valid argument to every span call.
 *
 * Thread-safe. The span may be tagged and ended on any thread (see
 * @ref threads). Starts the client if no call has yet.
 */
FERRET_EXPORT ferret_span_t *ferret_span_begin(const char *name);

/**
 * ferret_span_begin() with a printf-style name, e.g. "fetch %s".
 *
 * @param fmt a printf format; the formatted name is cut to 255 bytes.
 * @return as ferret_span_begin(); also NULL when @p fmt is NULL.
 *
 * Formatting costs what snprintf() costs, on every call, even when the
 * span is then dropped; a fixed name is cheaper with FERRET_SCOPE or
 * ferret_span_begin_literal().
 */
FERRET_EXPORT ferret_span_t *ferret_span_beginf(const char *fmt, ...)
        __attribute__((format(printf, 1, 2)));

/**
 * Begins a span as a child of @p parent, and makes it the calling thread's
 * current span.
 *
 * @param parent a context from ferret_span_context() or ferret_current()
 * on any thread, or from another process (ferret_ctx_parse()); it may be a
 * span that has already ended. A "none" parent starts a new trace.
 * @param name as for ferret_span_begin(): copied, cut to 255 bytes.
 * @return as ferret_span_begin().
 */
FERRET_EXPORT ferret_span_t *ferret_span_begin_in(ferret_ctx_t parent, const char *name);

/**
 * Ends @p span: records its duration, tags and status and releases it.
 *
 * @param span a span from a begin call, or NULL (ignored).
 *
 * May be called from any thread, once per span; @p span is invalid as soon
 * as the call begins (its memory goes to a later span). Whichever thread
 * ends it, the thread that began it stops seeing it as current: the spans
 * it begins next are children of its latest span still open (usually
 * @p span's parent; a span ended out of order leaves the ones begun after
 * it current). A span still open when the thread that began it exits is
 * recorded then, unfinished, with a warning status; ending it afterwards
 * records nothing more.
 *
 * Not to be called at the same time as another call on the same span (see
 * @ref threads).
 */
FERRET_EXPORT void ferret_span_end(ferret_span_t *span);

/**
 * @name Tags
 * Typed key/value pairs, copied into the span.
 *
 * @param span the span, or NULL (nothing is done).
 * @param key copied; longer keys are cut to 63 bytes (a string literal
 * given to the macros below, which is interned, to 255); NULL is an empty
 * key.
 * @param value copied; a string value is cut to 255 bytes, a NULL string
 * is empty.
 *
 * A span has about 370 bytes for its copied name, tags and status message:
 * what does not fit is left out and counted in the span's int tag
 * `ferret.omitted`. A literal key takes 5 bytes of it (the macros record
 * its number), another key its length plus 3; a value its size (a string:
 * its length plus 3).
 *
 * Not safe to call at the same time as another call on the same span (two
 * threads tagging it, or one tagging while another ends it): see
 * @ref threads.
 *
 * With GCC or Clang these four names are macros (unless
 * FERRET_NO_TAG_MACROS is defined before including this header). Each
 * evaluates @p span, @p key and @p value exactly once, whatever the span,
 * NULL included, like a function call: a side effect in an argument
 * happens whether tracing is on or off. A key that is a string literal is
 * looked up once per call site and then recorded as a number.
 *
 * @code
 * ferret_span_tag_int(s, "bytes", n);
 * ferret_span_tag_str(s, "table", table_name);       // copied: may be freed next
 * ferret_span_tag_int(s, "n", i++);                  // i grows by one, traced or not
 * @endcode
 * @{
 */
FERRET_EXPORT void ferret_span_tag_str(ferret_span_t *span, const char *key, const char *value);
FERRET_EXPORT void ferret_span_tag_int(ferret_span_t *span, const char *key, int64_t value);
FERRET_EXPORT void ferret_span_tag_double(ferret_span_t *span, const char *key, double value);
FERRET_EXPORT void ferret_span_tag_bool(ferret_span_t *span, const char *key, bool value);
/** @} */

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

/**
 * Sets the span's status, replacing an earlier one.
 *
 * @param span the span, or NULL (nothing is done).
 * @param status FERRET_STATUS_OK, _WARNING or _ERROR; other values are
 * ignored.
 * @param message why, or NULL for none; copied, cut to 255 bytes. It takes
 * room among the span's tags, and the last message set is the one kept.
 *
 * Same thread rules as the tags.
 */
FERRET_EXPORT void ferret_span_set_status(ferret_span_t *span, ferret_status_t status, const char *message);

/**
 * Sets the span's kind: FERRET_KIND_ASYNC for work whose time includes
 * suspensions (a coroutine), FERRET_KIND_SUSPENSION for a span covering
 * its parent's suspension; bits may be combined, FERRET_KIND_SYNC clears
 * them. NULL is ignored. Same thread rules as the tags.
 */
FERRET_EXPORT void ferret_span_set_kind(ferret_span_t *span, ferret_kind_t kind);

/**
 * Moves the start of @p span, an open span, back to @p monotonic_ns, a
 * CLOCK_MONOTONIC instant (in nanoseconds) that was taken before it began,
 * in this process or another: a request's arrival as the kernel stamped it,
 * or, as the agent uses it, the moment a parent process asked for this one.
 * Later instants are ignored (a span never starts after it began); with the
 * TSC the instant is converted through the measured ratio, to a few
 * microseconds for an instant milliseconds back. NULL is ignored. Same
 * thread rules as the tags.
 */
FERRET_EXPORT void ferret_span_set_start_monotonic(ferret_span_t *span, uint64_t monotonic_ns);

/**
 * The span's context, to continue it elsewhere: another thread
 * (ferret_span_begin_in()), another process (ferret_ctx_format()).
 *
 * @param span an open span, or NULL.
 * @return its context by value, valid after the span ends; "none" for NULL.
 *
 * Same thread rules as the tags: take the context before the span may be
 * ended, never after.
 */
FERRET_EXPORT ferret_ctx_t ferret_span_context(const ferret_span_t *span);

/**
 * The calling thread's current span's context, else the default parent's
 * (FERRET_TRACEPARENT, ferret_set_default_parent()), else "none" (also when
 * tracing is disabled). Thread-safe; starts the client if no call has yet.
 */
FERRET_EXPORT ferret_ctx_t ferret_current(void);

/**
 * Makes @p parent the parent of root spans: spans begun on a thread with no
 * current span. Replaces FERRET_TRACEPARENT's context; a "none" parent makes
 * root spans start traces of their own. Call it before other threads begin
 * spans (it is not atomic with respect to them); `ferret run`'s agent uses
 * it to put a process's spans under the process's own span. Does nothing
 * when tracing is disabled.
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
 * Renders @p ctx as a W3C traceparent ("00-<trace>-<span>-01").
 *
 * @param ctx the context.
 * @param buf where to write it, NUL-terminated; owned by the caller.
 * @param size @p buf's size: at least FERRET_TRACEPARENT_LEN + 1.
 * @return 0; -EINVAL if @p ctx is "none" or @p buf NULL; -ENOBUFS if
 * @p size is too small (then @p buf is untouched).
 *
 * Thread-safe; needs no client (works with tracing disabled).
 */
FERRET_EXPORT int ferret_ctx_format(ferret_ctx_t ctx, char *buf, size_t size);

/**
 * Parses a W3C traceparent (version 00 or later, lowercase hex, ids not all
 * zero), as found in FERRET_TRACEPARENT or an HTTP header.
 *
 * @param traceparent the text, NUL-terminated; only read during the call.
 * @param ret the context, written only on success.
 * @return 0, or -EINVAL for NULL arguments or malformed text.
 *
 * Thread-safe; needs no client.
 */
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
 *
 * @param ctx the context.
 * @param buf where to write it, NUL-terminated; owned by the caller.
 * @param size @p buf's size: at least FERRET_TRACESTATE_LEN + 1.
 * @return 0; -EINVAL if @p ctx is "none" or @p buf NULL; -ENOBUFS if
 * @p size is too small.
 *
 * Thread-safe.
 */
FERRET_EXPORT int ferret_ctx_tracestate(ferret_ctx_t ctx, char *buf, size_t size);

/**
 * Waits until the daemon has stored every span this process ended before the
 * call, so a query that follows sees them.
 *
 * @param timeout_ms how long to wait at most; a negative value waits
 * forever.
 * @return 0; -ETIMEDOUT after @p timeout_ms; -ECONNREFUSED when no daemon
 * listens; -ECANCELED when tracing is disabled or shut down; -ENODATA when
 * spans were dropped since the previous flush (the rest are stored).
 *
 * Thread-safe. It blocks, on a lock and the background thread: not for
 * code that must not wait. A signal handler may call it only for SIGTERM,
 * SIGINT, SIGHUP or SIGQUIT (to store what it can before the process goes
 * down, as `ferret run`'s agent does), which the library holds off while a
 * thread of the process waits in it.
 */
FERRET_EXPORT int ferret_flush(int timeout_ms);

/**
 * Sends what is buffered (waiting up to FERRET_EXIT_TIMEOUT_MS for the daemon
 * to store it) and stops the background thread. Spans ended later, on any
 * thread, are dropped, and begin calls return NULL. Runs by itself at exit;
 * calling it again does nothing. Thread-safe; it blocks, so not for signal
 * handlers.
 */
FERRET_EXPORT void ferret_shutdown(void);

/**
 * Whether spans are being recorded (not disabled, not shut down). Starts the
 * client if no call has yet: call it at start-up, outside signal handlers,
 * when signal handlers will trace. Thread-safe.
 */
FERRET_EXPORT bool ferret_enabled(void);

/**
 * This process's run id: FERRET_RUN_ID, or the one the client made up; an
 * empty string when tracing is disabled. Owned by the library, valid until
 * exit; a forked child keeps its parent's. Thread-safe; starts the client
 * if no call has yet.
 */
FERRET_EXPORT const char *ferret_run_id(void);

/**
 * Copies the client's counters into @p ret.
 *
 * @param ret a ferret_stats_t whose @c size the caller has set (see
 * ferret_stats_t). The library fills the fields that size covers, up to
 * the ones it knows, and sets @c size to the bytes it filled; fields past
 * that are left as they were (zero, initialised as shown).
 * @return 0; -EINVAL when @p ret is NULL or its @c size is below
 * FERRET_STATS_SIZE_V1 (then @p ret is untouched).
 *
 * Thread-safe; the counters are read one at a time, not as one snapshot.
 */
FERRET_EXPORT int ferret_get_stats(ferret_stats_t *ret);

/**
 * A message for @p error, a negative errno returned by this library (its
 * sign does not matter), never NULL. The library's own errors get fixed
 * texts ("no ferretd is listening" for -ECONNREFUSED); any other value
 * gets strerror()'s, with strerror()'s thread safety.
 */
FERRET_EXPORT const char *ferret_strerror(int error);

/**
 * @name Literal names
 * FERRET_SCOPE and ferret_span_begin_literal() look a literal name up once
 * per call site and then record only its number, which is cheaper than
 * copying the name on every span. The name must be a string literal: a
 * variable does not compile (use ferret_span_begin() for a computed name).
 * @{
 */

/**
 * ferret_span_begin() for a string literal, interned once per call site.
 * With tracing off it costs one load and a branch.
 *
 * @code
 * ferret_span_t *s = ferret_span_begin_literal("parse");
 * ...
 * ferret_span_end(s);
 * @endcode
 */
#define ferret_span_begin_literal(name) \
        __extension__({ static ferret_name_t ferret__name_cache; \
                        __builtin_expect(__atomic_load_n(&ferret__off, __ATOMIC_RELAXED), 0) ? (ferret_span_t *)0 \
                                : ferret__span_begin_named(&ferret__name_cache, "" name ""); })

/* For FERRET_SCOPE's cleanup; not to be called directly. */
static inline void ferret__scope_end(ferret_span_t **span)
{
        if (*span)
                ferret_span_end(*span);
}

/**
 * Runs the following statement or block inside a span named by the literal
 * @p name, bound to @p var (a ferret_span_t *, NULL when not recorded); the
 * span ends however the block is left: its end, return, goto out of it, or
 * break or continue.
 *
 * @code
 * FERRET_SCOPE(s, "parse") {
 *         ferret_span_tag_int(s, "bytes", n);
 *         if (parse(buf, n) < 0)
 *                 return -EINVAL;      // the span ends here too
 * }
 * @endcode
 *
 * FERRET_SCOPE is a `for` statement that runs its body once. So `break`
 * and `continue` inside the body belong to it, not to a loop around it:
 * they leave the scope (ending the span) and the code after the scope
 * runs, where a plain block would have left the loop or gone to its next
 * round.
 *
 * @code
 * // Wrong: meant to stop the loop at the first bad item.
 * for (i = 0; i < n; i++) {
 *         FERRET_SCOPE(s, "item") {
 *                 if (!valid(item[i]))
 *                         break;       // leaves the scope only: the loop goes on
 *                 use(item[i]);
 *         }
 * }
 *
 * // Right: decide inside, act outside.
 * for (i = 0; i < n; i++) {
 *         bool ok = true;
 *         FERRET_SCOPE(s, "item") {
 *                 ok = valid(item[i]);
 *                 if (ok)
 *                         use(item[i]);
 *         }
 *         if (!ok)
 *                 break;
 * }
 * @endcode
 *
 * The same goes for `continue` (it ends the scope, and the rest of the loop
 * body after the scope still runs) and for a `switch` around the scope
 * (a `break` inside leaves the scope, not the switch). Other traps:
 *
 * @code
 * FERRET_SCOPE(s, name) { }            // Wrong: does not compile, name must be a literal
 * FERRET_SCOPE(s, "parse") {
 *         ferret_span_end(s);          // Wrong: the scope ends s again as it is left,
 *         ...                          // or whatever span has taken its place
 * }
 * FERRET_SCOPE(s, "parse") {
 *         ferret_span_end(s);          // Right, to end it early: the scope ends
 *         s = NULL;                    // only what s holds as it is left
 *         ...
 * }
 * @endcode
 */
#define FERRET_SCOPE(var, name) \
        for (ferret_span_t *var __attribute__((cleanup(ferret__scope_end), unused)) = \
                     ferret_span_begin_literal(name), \
             *var##_once_ = (ferret_span_t *)1; \
             var##_once_; var##_once_ = NULL)

/** @} */

/*
 * Internals: not API. The macros above expand to these, so they are
 * exported, in the version node FERRET_PRIVATE_0.1; they may change or go
 * away in any release, and a program that calls them by name may then fail
 * to link or to load. Call the macros.
 */

/* Nonzero once tracing is known to be off: lets ferret_span_begin_literal()
 * skip the call. Another thread may set it at any time, so it is read with a
 * relaxed atomic load (a plain load on x86). */
FERRET_EXPORT extern volatile int ferret__off;

/* ferret_span_begin() with a call site's cache, for
 * ferret_span_begin_literal(). Lifetimes: the library keeps neither pointer
 * after the call (it copies the name when it interns it), but once @cache
 * holds @name's number the number stands for the name, so a cache must
 * start at 0 and be used with one name only. The macro's cache is static
 * (one per call site, for the life of the process) and its name a literal,
 * which lives as long as the program. */
FERRET_EXPORT ferret_span_t *ferret__span_begin_named(ferret_name_t *cache, const char *name);

/* The tags with a literal key's cache, as ferret__span_begin_named(). */
FERRET_EXPORT void ferret__span_tag_str_named(ferret_span_t *span, ferret_name_t *key_cache, const char *key,
                                              const char *value);
FERRET_EXPORT void ferret__span_tag_int_named(ferret_span_t *span, ferret_name_t *key_cache, const char *key,
                                              int64_t value);
FERRET_EXPORT void ferret__span_tag_double_named(ferret_span_t *span, ferret_name_t *key_cache, const char *key,
                                                 double value);
FERRET_EXPORT void ferret__span_tag_bool_named(ferret_span_t *span, ferret_name_t *key_cache, const char *key,
                                               bool value);

#ifdef __cplusplus
}
#endif

#endif /* FERRET_H */
