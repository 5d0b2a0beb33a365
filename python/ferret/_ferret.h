/* SPDX-License-Identifier: MIT */
/*
 * Internals of the ferret._ferret extension module, shared by its files.
 *
 * Two producers of spans live in one process: the explicit API (Profiler,
 * through fspan objects) and the profile hook of zero-code mode. Both ask
 * fparent_resolve() for the parent of a new span, so that a span of either
 * kind nests under whichever span of the other kind is innermost.
 *
 * Everything here runs with the GIL held, which is what makes the plain
 * counters and tables below safe.
 */
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <ferret.h>

/*
 * A span seen from Python: what Profiler's spans hold, and what the
 * context variable holds (a coroutine's span in zero-code mode, or the span
 * of a `with profiler.measure(...)` block). A handle without a span is a
 * bare context: a parent for spans begun elsewhere (a thread, a child).
 */
typedef struct {
        PyObject_HEAD
        ferret_span_t *span;          /* NULL once ended, or for a bare context */
        ferret_ctx_t ctx;
        ferret_ctx_t parent;
        uint64_t seq;                 /* begin order: the newest candidate parent wins */
        pid_t pid;                    /* the process that began it: a forked child must not end it */
} fspan_object;

extern PyTypeObject fspan_type;

/* Any str as UTF-8 bytes for the client, never failing on what a program
 * may hold: lone surrogates from a file name that was not UTF-8 become its
 * original bytes again (surrogateescape), other surrogates \\udXXX, and NUL
 * the two characters \\0. A new bytes object, or NULL only when out of
 * memory. The tracer must not raise into the program over a name. */
PyObject *ftext_bytes(PyObject *text);

/* contextvars.ContextVar("ferret_span"): an fspan or None. */
extern PyObject *fmod_current_var;
/* Set once any value was put in it: until then the hook need not look. */
extern bool fmod_current_var_used;
/* Begin order of every span begun from Python, under the GIL. */
extern uint64_t fmod_seq;
/* This process (updated in a forked child). */
extern pid_t fmod_pid;
/* Whether this process has begun a span through us (so the client has
 * read its configuration from the environment). */
extern bool fmod_client_used;

struct fparent {
        ferret_ctx_t ctx;
        uint64_t seq;                 /* 0: the thread's base, older than any span */
};

/* The parent for a span begun now on this thread: the newest of the context
 * variable's span and the profile hook's innermost frame, else the thread's
 * base (the span that started the thread, or the process's parent). */
void fparent_resolve(struct fparent *ret);
/* Replaces @p by the context variable's span when that one is newer. */
void fparent_consider_var(struct fparent *p);

/* The thread's base parent, fixed on first use. */
ferret_ctx_t fthread_base(void);

/* A bare-context fspan for @ctx; a new reference, or NULL with an exception. */
PyObject *fspan_new_context(ferret_ctx_t ctx, uint64_t seq);

/* _ferret_profile.c: the zero-code profile hook. */
int fprofile_init(PyObject *module);
/* The hook's innermost recorded frame on this thread, if the hook runs here. */
bool fprofile_top(struct fparent *ret);
/* In a forked child: forget the parent's spans (it records them itself);
 * with @parent, new spans go under it instead of under the frames that
 * were running at fork(). */
void fprofile_after_fork_child(const ferret_ctx_t *parent);

/* _ferret_runtime.c: where a daemon's sockets are, and starting one, as
 * proto/runtime-dir.h and proto/runtime-daemon.h decide. */
int fruntime_init(PyObject *module);
