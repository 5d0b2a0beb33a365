/* SPDX-License-Identifier: MIT */
/*
 * Zero-code mode: a span for every call of a function of the user's code.
 *
 * The hook is the interpreter's frame evaluation function (PEP 523): every
 * Python frame that CPython runs or resumes goes through frame_eval(), which
 * begins the frame's span, lets the interpreter's own evaluator run it, and
 * ends the span when it returns. A profile function (PyEval_SetProfile,
 * cProfile's way, and this module's until December 2026) makes CPython 3.11
 * run every instruction of every frame through its tracing path, without its
 * specialised instructions, and make a frame object for every call: that
 * cost the traced program more than recording its spans did. Here the
 * interpreter runs at full speed and each frame pays one indirect call.
 * The frame is the interpreter's own structure (internal/pycore_frame.h),
 * whose layout is CPython 3.11's: the build refuses other versions.
 *
 * Which code is the user's is decided once per code object by a Python
 * function (ferret._activate decides by file name) and cached in the code
 * object's co_extra slot, with the span name interned in the client, so the
 * hot path is a pointer lookup, a begin and an end.
 *
 * Each thread has a stack of the recorded frames that are running; a frame
 * is pushed and popped by the same frame_eval() call, so calls and returns
 * always pair. A plain frame's span ends when the frame returns. A
 * generator or coroutine is one span from its first call to its final
 * return: when it suspends (yield, await) its state waits in a table keyed
 * by its frame (which lives inside the generator object) until it resumes.
 * While it is suspended a child span, "(await)" or "(yield)", covers the
 * time, so that the daemon's self time (duration minus children) leaves the
 * suspension out. The suspension span is marked as one
 * (FERRET_KIND_SUSPENSION), so that the generator's caller, whose own
 * running time the generator's lifetime overlaps (a for loop over it), is
 * charged only with the generator's running time. A coroutine that suspends
 * because the one it awaits did gets a suspension span of its own too, over
 * the same time.
 *
 * A coroutine's span also goes into the context variable while it runs, so
 * that tasks it creates (asyncio.gather, create_task), which copy the
 * context, start their coroutines under it.
 */
#include "_ferret.h"
#include "hooks.h"

#if PY_VERSION_HEX < 0x030B0000 || PY_VERSION_HEX >= 0x030C0000
#error "ferret's Python hook reads CPython 3.11's frames (internal/pycore_frame.h): build with Python 3.11"
#endif
#define Py_BUILD_CORE
#include <internal/pycore_frame.h>
#undef Py_BUILD_CORE
#include <opcode.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define NAME_MAX_BYTES 255

enum code_kind {
        CODE_PLAIN,
        CODE_GENERATOR,
        CODE_COROUTINE,
        CODE_ASYNC_GENERATOR,
};

/* What co_extra holds for a recorded code object. */
struct code_info {
        ferret_name_t name_id;        /* the interned name, 0 until first use */
        uint8_t kind;
        char name[];
};

/* co_extra for code that is not recorded. */
static struct code_info code_skip;
static Py_ssize_t code_index = -1;
static PyObject *decider;             /* decider(code) -> span name, or None */

/* A generator or coroutine that has started and not finished. */
struct gen {
        const void *frame;            /* its _PyInterpreterFrame, identity only: the key */
        ferret_span_t *span;
        ferret_span_t *pause;         /* the suspension span, open while suspended */
        ferret_ctx_t ctx;
        uint64_t seq;
        PyObject *var_prev;           /* coroutines: the context variable's value before */
        uint8_t kind;
        bool var_set;
};

/* A running recorded frame. */
struct entry {
        ferret_span_t *span;          /* NULL when dropped, or inherited over fork() */
        ferret_ctx_t ctx;             /* the parent of spans begun under this frame */
        uint64_t seq;
        struct gen *gen;
        bool thrown;                  /* resumed by throw() or close(): its exception is not its error */
};

/* The hook's state for one thread, made when the thread is first profiled
 * and freed as it exits. */
struct fthread {
        struct entry *stack;
        size_t depth, cap;
        ferret_ctx_t base;            /* parent of the thread's outermost spans */
        bool on;                      /* profile_start()/profile_thread() .. profile_stop() */
        bool deciding;                /* the decider runs: its own frames are not recorded */
};

static __thread struct fthread *thread_state;
static pthread_key_t thread_key;      /* its destructor frees a thread's state */
static _Atomic int threads_on;        /* threads whose calls are recorded */
static _PyFrameEvalFunction next_eval; /* the evaluator frame_eval() wraps */

/* --- code objects ------------------------------------------------------ */

static void code_info_free(void *p)
{
        if (p && p != &code_skip)
                PyMem_RawFree(p);
}

static struct code_info *code_info_new(PyCodeObject *co, PyObject *name)
{
        PyObject *bytes = ftext_bytes(name);
        if (!bytes)
                return NULL;
        const char *text = PyBytes_AS_STRING(bytes);
        Py_ssize_t len = PyBytes_GET_SIZE(bytes);
        if (len > NAME_MAX_BYTES) {
                /* Whole characters only. */
                len = NAME_MAX_BYTES;
                while (len && ((unsigned char)text[len] & 0xC0) == 0x80)
                        len--;
        }
        struct code_info *ci = PyMem_RawMalloc(sizeof(*ci) + (size_t)len + 1);
        if (!ci) {
                Py_DECREF(bytes);
                PyErr_NoMemory();
                return NULL;
        }
        ci->name_id = 0;
        memcpy(ci->name, text, (size_t)len);
        ci->name[len] = '\0';
        Py_DECREF(bytes);
        int flags = co->co_flags;
        ci->kind = flags & CO_COROUTINE ? CODE_COROUTINE
                 : flags & CO_ASYNC_GENERATOR ? CODE_ASYNC_GENERATOR
                 : flags & CO_GENERATOR ? CODE_GENERATOR : CODE_PLAIN;
        return ci;
}

/* Asks the decider about @co once; the answer stays in co_extra. The
 * frame may be about to raise an exception thrown into it, which waits
 * aside while the decider runs. */
static struct code_info *code_classify(PyCodeObject *co)
{
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        struct code_info *ci = &code_skip;
        PyObject *name = decider ? PyObject_CallOneArg(decider, (PyObject *)co) : NULL;
        if (name && PyUnicode_Check(name) && !(ci = code_info_new(co, name)))
                ci = &code_skip;
        Py_XDECREF(name);
        if (PyErr_Occurred())
                PyErr_WriteUnraisable(decider);
        if (_PyCode_SetExtra((PyObject *)co, code_index, ci) < 0) {
                PyErr_Clear();
                code_info_free(ci);
                ci = &code_skip;
        }
        PyErr_Restore(type, value, traceback);
        return ci;
}

static inline struct code_info *code_lookup(struct fthread *t, PyCodeObject *co)
{
        void *extra = NULL;
        if (_PyCode_GetExtra((PyObject *)co, code_index, &extra) < 0)
                PyErr_Clear();
        if (extra)
                return extra;
        t->deciding = true;
        struct code_info *ci = code_classify(co);
        t->deciding = false;
        return ci;
}

/* The instruction @frame last ran: RETURN_GENERATOR before a generator's
 * first step, YIELD_VALUE while it is suspended (neither has a specialised
 * form that would hide it). */
static int frame_opcode(const _PyInterpreterFrame *frame)
{
        int lasti = _PyInterpreterFrame_LASTI(frame);
        return lasti < 0 ? -1 : _Py_OPCODE(_PyCode_CODE(frame->f_code)[lasti]);
}

/* --- the table of started generators ----------------------------------- */

static struct gen **gen_slots;        /* open addressing, linear probing */
static size_t gen_cap, gen_count;

static inline size_t gen_hash(const void *frame)
{
        return (size_t)(((uintptr_t)frame >> 4) * 0x9E3779B97F4A7C15ull);
}

static struct gen **gen_slot(const void *frame)
{
        if (!gen_cap)
                return NULL;
        for (size_t i = gen_hash(frame) & (gen_cap - 1);; i = (i + 1) & (gen_cap - 1))
                if (!gen_slots[i] || gen_slots[i]->frame == frame)
                        return &gen_slots[i];
}

static struct gen *gen_get(const void *frame)
{
        struct gen **slot = gen_slot(frame);
        return slot ? *slot : NULL;
}

static int gen_put(struct gen *g)
{
        if ((gen_count + 1) * 2 > gen_cap) {
                size_t cap = gen_cap ? gen_cap * 2 : 64;
                struct gen **slots = PyMem_RawCalloc(cap, sizeof(*slots));
                if (!slots)
                        return -1;
                struct gen **old = gen_slots;
                size_t old_cap = gen_cap;
                gen_slots = slots;
                gen_cap = cap;
                for (size_t i = 0; i < old_cap; i++)
                        if (old[i])
                                *gen_slot(old[i]->frame) = old[i];
                PyMem_RawFree(old);
        }
        *gen_slot(g->frame) = g;
        gen_count++;
        return 0;
}

/* Removes @g, shifting the entries after it back (no tombstones). */
static void gen_remove(struct gen *g)
{
        struct gen **slot = gen_slot(g->frame);
        if (!slot || *slot != g)
                return;
        size_t i = (size_t)(slot - gen_slots), mask = gen_cap - 1;
        gen_slots[i] = NULL;
        gen_count--;
        for (size_t j = (i + 1) & mask; gen_slots[j]; j = (j + 1) & mask) {
                size_t home = gen_hash(gen_slots[j]->frame) & mask;
                /* Move j back to i unless its home lies cyclically in (i, j]. */
                if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
                        gen_slots[i] = gen_slots[j];
                        gen_slots[j] = NULL;
                        i = j;
                }
        }
}

/* --- spans ------------------------------------------------------------- */

static void parent_of_new(struct fthread *t, struct fparent *p)
{
        if (t->depth) {
                p->ctx = t->stack[t->depth - 1].ctx;
                p->seq = t->stack[t->depth - 1].seq;
        } else {
                p->ctx = t->base;
                p->seq = 0;
        }
        fparent_consider_var(p);
}

/* Begins @ci's span under @p, its name recorded as the number interned for
 * it; @ret_ctx gets its context (@p's when it is dropped). The library
 * checks whether @p is the thread's current span (the common case, plain
 * nested calls: the fast path) or an explicit parent (a coroutine
 * interleaved with others), in one call. */
static ferret_span_t *span_begin(struct code_info *ci, const struct fparent *p, ferret_ctx_t *ret_ctx)
{
        fmod_client_used = true;
        return ferret__span_begin_named_in(p->ctx, &ci->name_id, ci->name, ret_ctx);
}

/* @failure: why the frame failed (the exception that left it), or NULL. */
static void span_finish(ferret_span_t *span, const char *failure)
{
        if (!span)
                return;
        if (failure)
                ferret_span_set_status(span, FERRET_STATUS_ERROR, failure);
        ferret_span_end(span);
}

static int stack_reserve(struct fthread *t)
{
        if (t->depth < t->cap)
                return 0;
        size_t cap = t->cap ? t->cap * 2 : 64;
        struct entry *stack = PyMem_RawRealloc(t->stack, cap * sizeof(*stack));
        if (!stack)
                return -1;
        t->stack = stack;
        t->cap = cap;
        return 0;
}

static void gen_finish(struct gen *g, const char *failure)
{
        gen_remove(g);
        if (g->pause)
                ferret_span_end(g->pause);
        if (g->var_set) {
                PyObject *token = PyContextVar_Set(fmod_current_var, g->var_prev);
                if (token)
                        Py_DECREF(token);
                else
                        PyErr_Clear();
        }
        Py_XDECREF(g->var_prev);
        span_finish(g->span, failure);
        PyMem_RawFree(g);
}

/* A coroutine's span becomes the context variable's value while it runs. */
static void gen_enter_var(struct gen *g)
{
        PyObject *prev = NULL, *handle, *token;
        if (PyContextVar_Get(fmod_current_var, Py_None, &prev) < 0)
                goto fail;
        if (!(handle = fspan_new_context(g->ctx, g->seq)))
                goto fail;
        token = PyContextVar_Set(fmod_current_var, handle);
        Py_DECREF(handle);
        if (!token)
                goto fail;
        Py_DECREF(token);
        fmod_current_var_used = true;
        g->var_prev = prev;
        g->var_set = true;
        return;
fail:
        Py_XDECREF(prev);
        PyErr_Clear();
}

/* @frame of @ci starts or resumes: pushes its entry. False when it is not
 * recorded (a generator that started before the hook did, or no memory). */
static bool frame_enter(struct fthread *t, _PyInterpreterFrame *frame, struct code_info *ci, bool thrown)
{
        struct gen *g = NULL;
        if (stack_reserve(t) < 0)
                return false;
        if (ci->kind != CODE_PLAIN) {
                g = gen_get(frame);
                if (frame_opcode(frame) != RETURN_GENERATOR) {
                        /* Resumed. */
                        if (!g)
                                return false;
                        if (g->pause) {
                                ferret_span_end(g->pause);
                                g->pause = NULL;
                        }
                        t->stack[t->depth++] = (struct entry){ g->span, g->ctx, g->seq, g, thrown };
                        return true;
                }
                /* A first step where a state is left means that the frame's
                 * generator died without finishing (a generator collected
                 * while the hook was off) and its memory now holds a new one. */
                if (g) {
                        g->var_set = false;   /* its context is not this one */
                        gen_finish(g, NULL);
                }
                if (!(g = PyMem_RawCalloc(1, sizeof(*g))))
                        return false;
                g->frame = frame;
                g->kind = ci->kind;
                if (gen_put(g) < 0) {
                        PyMem_RawFree(g);
                        return false;
                }
        }

        struct fparent p;
        ferret_ctx_t ctx;
        parent_of_new(t, &p);
        ferret_span_t *span = span_begin(ci, &p, &ctx);
        /* A generator's or coroutine's span is a parent again after it
         * resumes, maybe on another thread: the library remembers its call
         * path for that. A plain frame's children begin while it runs. */
        if (g && span)
                ctx = ferret_span_context(span);
        struct entry *e = &t->stack[t->depth++];
        *e = (struct entry){ span, ctx, ++fmod_seq, g, thrown };
        if (g) {
                g->span = span;
                g->ctx = e->ctx;
                g->seq = e->seq;
                if (g->kind != CODE_GENERATOR)
                        ferret_span_set_kind(span, FERRET_KIND_ASYNC);
                if (g->kind == CODE_COROUTINE)
                        gen_enter_var(g);
        }
        return true;
}

/* The frame of entry @at returned @result (NULL: it raised, and the
 * exception is set), or suspended. */
static void frame_leave(struct fthread *t, size_t at, _PyInterpreterFrame *frame, PyObject *result)
{
        struct entry e = t->stack[at];
        t->depth = at;
        /* A frame left by an exception failed, unless it was thrown in by
         * throw() or close() (GeneratorExit, a task's cancellation) or is
         * sys.exit()'s SystemExit. */
        char failure[128];
        bool failed = false;
        if (!result && !e.thrown) {
                PyObject *type = PyErr_Occurred();
                if (type && !PyErr_GivenExceptionMatches(type, PyExc_SystemExit)) {
                        snprintf(failure, sizeof(failure), "raised %s",
                                 PyType_Check(type) ? _PyType_Name((PyTypeObject *)type) : "an exception");
                        failed = true;
                }
        }
        if (!e.gen) {
                span_finish(e.span, failed ? failure : NULL);
                return;
        }
        struct gen *g = e.gen;
        if (!result || frame_opcode(frame) != YIELD_VALUE) {
                PyObject *type = NULL, *value = NULL, *traceback = NULL;
                if (!result)
                        PyErr_Fetch(&type, &value, &traceback);   /* aside while the context variable is reset */
                gen_finish(g, failed ? failure : NULL);
                if (!result)
                        PyErr_Restore(type, value, traceback);
                return;
        }
        /* Suspended: a suspension span begins. */
        if (g->span) {
                bool is_yield = g->kind == CODE_GENERATOR;
                g->pause = ferret_span_begin_in(g->ctx, is_yield ? "(yield)" : "(await)");
                ferret_span_set_kind(g->pause, is_yield ? FERRET_KIND_SUSPENSION
                                                        : FERRET_KIND_ASYNC | FERRET_KIND_SUSPENSION);
        }
}

/* The interpreter's evaluator, for every frame it runs or resumes. */
static PyObject *frame_eval(PyThreadState *ts, _PyInterpreterFrame *frame, int throwflag)
{
        struct fthread *t = thread_state;
        if (!t || !t->on || t->deciding)
                return next_eval(ts, frame, throwflag);
        struct code_info *ci = code_lookup(t, frame->f_code);
        /* A generator function's call only makes the generator (its frame
         * runs RETURN_GENERATOR and returns it): the generator's own frame
         * is the one recorded, from its first step. */
        if (ci == &code_skip || (ci->kind != CODE_PLAIN && frame->owner != FRAME_OWNED_BY_GENERATOR))
                return next_eval(ts, frame, throwflag);
        size_t at = t->depth;
        bool entered;
        if (throwflag) {
                /* The exception thrown in waits aside while the span begins. */
                PyObject *type, *value, *traceback;
                PyErr_Fetch(&type, &value, &traceback);
                entered = frame_enter(t, frame, ci, true);
                PyErr_Restore(type, value, traceback);
        } else
                entered = frame_enter(t, frame, ci, false);
        PyObject *result = next_eval(ts, frame, throwflag);
        if (entered)
                frame_leave(t, at, frame, result);
        return result;
}

/* --- per-thread state -------------------------------------------------- */

/* At a thread's exit, without the GIL. Spans still open stay open in the
 * client, which records them as unfinished when their thread exits. */
static void fthread_free(void *p)
{
        struct fthread *t = p;
        if (t->on)
                atomic_fetch_sub(&threads_on, 1);
        PyMem_RawFree(t->stack);
        PyMem_RawFree(t);
}

/* Records calls on the calling thread from now on. The evaluator is the
 * interpreter's, for all threads: it is put in place with the first thread
 * and taken out with the last. */
static PyObject *thread_on(void)
{
        struct fthread *t = thread_state;
        if (!t) {
                if (!(t = PyMem_RawCalloc(1, sizeof(*t))))
                        return PyErr_NoMemory();
                if (pthread_setspecific(thread_key, t) != 0) {
                        PyMem_RawFree(t);
                        return PyErr_NoMemory();
                }
                t->base = fthread_base();
                thread_state = t;
        }
        if (t->on)
                Py_RETURN_NONE;
        t->on = true;
        if (atomic_fetch_add(&threads_on, 1) == 0) {
                PyInterpreterState *interp = PyInterpreterState_Get();
                _PyFrameEvalFunction now = _PyInterpreterState_GetEvalFrameFunc(interp);
                if (now != frame_eval) {
                        next_eval = now;
                        _PyInterpreterState_SetEvalFrameFunc(interp, frame_eval);
                }
        }
        Py_RETURN_NONE;
}

static void thread_off(void)
{
        struct fthread *t = thread_state;
        if (!t || !t->on)
                return;
        t->on = false;
        if (atomic_fetch_sub(&threads_on, 1) == 1) {
                /* Frames running now still return through frame_eval(),
                 * which passes them on: next_eval stays. */
                PyInterpreterState *interp = PyInterpreterState_Get();
                if (_PyInterpreterState_GetEvalFrameFunc(interp) == frame_eval)
                        _PyInterpreterState_SetEvalFrameFunc(interp, next_eval);
        }
}

bool fprofile_top(struct fparent *ret)
{
        struct fthread *t = thread_state;
        if (!t || !t->on)
                return false;
        if (t->depth) {
                ret->ctx = t->stack[t->depth - 1].ctx;
                ret->seq = t->stack[t->depth - 1].seq;
        } else {
                ret->ctx = t->base;
                ret->seq = 0;
        }
        return true;
}

void fprofile_after_fork_child(const ferret_ctx_t *parent)
{
        struct fthread *t = thread_state;
        for (size_t i = 0; t && i < t->depth; i++) {
                t->stack[i].span = NULL;
                if (parent)
                        t->stack[i].ctx = *parent;
        }
        if (t && parent)
                t->base = *parent;
        for (size_t i = 0; i < gen_cap; i++)
                if (gen_slots[i])
                        gen_slots[i]->span = gen_slots[i]->pause = NULL;
}

/* profile_start(decider): records calls on this thread from now on; other
 * threads call profile_thread() as they start. */
static PyObject *mod_profile_start(PyObject *module, PyObject *arg)
{
        if (!PyCallable_Check(arg)) {
                PyErr_SetString(PyExc_TypeError, "profile_start(decider): decider(code) -> name or None");
                return NULL;
        }
        Py_XSETREF(decider, Py_NewRef(arg));
        return thread_on();
}

/* Called from the profile function that threading.setprofile() gives each
 * new thread, which it replaces: the thread's calls are recorded from then
 * on, and the interpreter runs it without a profile function. */
static PyObject *mod_profile_thread(PyObject *module, PyObject *unused)
{
        if (!decider) {
                PyErr_SetString(PyExc_RuntimeError, "profiling has not been started");
                return NULL;
        }
        PyEval_SetProfile(NULL, NULL);
        return thread_on();
}

static PyObject *mod_profile_stop(PyObject *module, PyObject *unused)
{
        thread_off();
        Py_RETURN_NONE;
}

static PyObject *mod_profile_active(PyObject *module, PyObject *unused)
{
        return PyBool_FromLong(thread_state && thread_state->on);
}

static PyMethodDef profile_methods[] = {
        { "profile_start", mod_profile_start, METH_O,
          "profile_start(decider): records the calls of code for which decider(code) gives a name." },
        { "profile_thread", mod_profile_thread, METH_NOARGS, "Records calls on the calling thread too." },
        { "profile_stop", mod_profile_stop, METH_NOARGS, "Stops recording calls on the calling thread." },
        { "profile_active", mod_profile_active, METH_NOARGS, "Whether calls are recorded on the calling thread." },
        { NULL, NULL, 0, NULL },
};

int fprofile_init(PyObject *module)
{
        static bool key_made;
        if (!key_made) {
                if (pthread_key_create(&thread_key, fthread_free) != 0) {
                        PyErr_SetString(PyExc_RuntimeError, "no thread-specific key left");
                        return -1;
                }
                key_made = true;
        }
        if (code_index < 0 && (code_index = _PyEval_RequestCodeExtraIndex(code_info_free)) < 0) {
                PyErr_SetString(PyExc_RuntimeError, "no code extra index left");
                return -1;
        }
        return PyModule_AddFunctions(module, profile_methods);
}
