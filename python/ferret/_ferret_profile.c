/* SPDX-License-Identifier: MIT */
/*
 * Zero-code mode: a C profile hook (PyEval_SetProfile) that records a span
 * for every call of a function of the user's code.
 *
 * Which code is the user's is decided once per code object by a Python
 * function (ferret._activate decides by file name) and cached in the code
 * object's co_extra slot, with the span name interned in the client, so the
 * hot path is a pointer lookup, a begin and an end.
 *
 * Each thread has a stack of the recorded frames that are running. A plain
 * frame's span ends when the frame returns. A generator or coroutine is one
 * span from its first call to its final return: when it suspends (yield,
 * await) its frame leaves the stack and its state waits in a table keyed by
 * the frame until it resumes. While it is suspended a child span, "(await)"
 * or "(yield)", covers the time, so that the daemon's self time (duration
 * minus children) leaves the suspension out. The suspension span is marked
 * as one (FERRET_KIND_SUSPENSION), so that the generator's caller, whose
 * own running time the generator's lifetime overlaps (a for loop over it),
 * is charged only with the generator's running time. A coroutine that
 * suspends because the one it awaits did gets a suspension span of its own
 * too, over the same time.
 *
 * A coroutine's span also goes into the context variable while it runs, so
 * that tasks it creates (asyncio.gather, create_task), which copy the
 * context, start their coroutines under it.
 */
#include "_ferret.h"
#include "hooks.h"

#include <opcode.h>
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
        PyObject *code_bytes;         /* generator-like code: co_code, to see why it stops */
        char name[];
};

/* co_extra for code that is not recorded. */
static struct code_info code_skip;
static Py_ssize_t code_index = -1;
static PyObject *decider;             /* decider(code) -> span name, or None */
static PyObject *sys_exit;            /* sys.exit, whose exception is not an error */

/* A generator or coroutine that has started and not finished. */
struct gen {
        PyFrameObject *frame;         /* identity only: the key */
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
        PyFrameObject *frame;         /* identity only */
        ferret_span_t *span;          /* NULL when dropped, or inherited over fork() */
        ferret_ctx_t ctx;             /* the parent of spans begun under this frame */
        uint64_t seq;
        struct gen *gen;
        bool thrown;                  /* resumed by throw() or close(): its exception is not its error */
};

/* The hook's state for one thread; the object PyEval_SetProfile() passes. */
typedef struct {
        PyObject_HEAD
        struct entry *stack;
        size_t depth, cap;
        ferret_ctx_t base;            /* parent of the thread's outermost spans */
        bool exiting;                 /* sys.exit() is unwinding the stack */
} fthread_object;

static int hook(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg);

/* --- code objects ------------------------------------------------------ */

static void code_info_free(void *p)
{
        struct code_info *ci = p;
        if (!ci || ci == &code_skip)
                return;
        Py_XDECREF(ci->code_bytes);
        PyMem_RawFree(ci);
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
        ci->code_bytes = NULL;
        int flags = co->co_flags;
        ci->kind = flags & CO_COROUTINE ? CODE_COROUTINE
                 : flags & CO_ASYNC_GENERATOR ? CODE_ASYNC_GENERATOR
                 : flags & CO_GENERATOR ? CODE_GENERATOR : CODE_PLAIN;
        if (ci->kind != CODE_PLAIN && !(ci->code_bytes = PyCode_GetCode(co))) {
                PyMem_RawFree(ci);
                return NULL;
        }
        return ci;
}

/* Asks the decider about @co once; the answer stays in co_extra. */
static struct code_info *code_classify(PyCodeObject *co)
{
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
                return &code_skip;
        }
        return ci;
}

static inline struct code_info *code_lookup(PyFrameObject *frame)
{
        PyCodeObject *co = PyFrame_GetCode(frame);
        void *extra = NULL;
        if (_PyCode_GetExtra((PyObject *)co, code_index, &extra) < 0)
                PyErr_Clear();
        struct code_info *ci = extra ? extra : code_classify(co);
        Py_DECREF(co);
        return ci;
}

/* The instruction @frame stopped at: RESUME with oparg 0 on a first call,
 * YIELD_VALUE when it suspends, or when throw()/close() resumes it. */
static void frame_instruction(PyFrameObject *frame, const struct code_info *ci, int *ret_op, int *ret_arg)
{
        int lasti = PyFrame_GetLasti(frame);
        Py_ssize_t n = PyBytes_GET_SIZE(ci->code_bytes);
        const unsigned char *code = (const unsigned char *)PyBytes_AS_STRING(ci->code_bytes);
        if (lasti < 0 || lasti + 1 >= n) {
                *ret_op = *ret_arg = -1;
                return;
        }
        *ret_op = code[lasti];
        *ret_arg = code[lasti + 1];
}

/* --- the table of started generators ----------------------------------- */

static struct gen **gen_slots;        /* open addressing, linear probing */
static size_t gen_cap, gen_count;

static inline size_t gen_hash(const void *frame)
{
        return (size_t)(((uintptr_t)frame >> 4) * 0x9E3779B97F4A7C15ull);
}

static struct gen **gen_slot(PyFrameObject *frame)
{
        if (!gen_cap)
                return NULL;
        for (size_t i = gen_hash(frame) & (gen_cap - 1);; i = (i + 1) & (gen_cap - 1))
                if (!gen_slots[i] || gen_slots[i]->frame == frame)
                        return &gen_slots[i];
}

static struct gen *gen_get(PyFrameObject *frame)
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

static void parent_of_new(fthread_object *t, struct fparent *p)
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

static void span_finish(fthread_object *t, ferret_span_t *span, PyObject *arg, bool thrown)
{
        if (!span)
                return;
        /* A frame left by an exception. Its type is not visible to a profile
         * hook (the interpreter holds it aside while the hook runs). An
         * exception thrown in by throw()/close() (GeneratorExit, a task's
         * cancellation) or sys.exit() is not the frame's failure. */
        if (!arg && !thrown && !t->exiting)
                ferret_span_set_status(span, FERRET_STATUS_ERROR, "raised an exception");
        ferret_span_end(span);
}

static int stack_push(fthread_object *t)
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

static void gen_finish(fthread_object *t, struct gen *g, PyObject *arg, bool thrown)
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
        span_finish(t, g->span, arg, thrown);
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

static int on_call(fthread_object *t, PyFrameObject *frame)
{
        struct code_info *ci = code_lookup(frame);
        struct gen *g = NULL;
        if (ci == &code_skip)
                return 0;
        if (stack_push(t) < 0)
                return 0;

        if (ci->kind != CODE_PLAIN) {
                int op, oparg;
                frame_instruction(frame, ci, &op, &oparg);
                g = gen_get(frame);
                if (!(op == RESUME && oparg == 0)) {
                        /* Resumed. A generator that started before the hook
                         * did is not ours. */
                        if (!g)
                                return 0;
                        if (g->pause) {
                                ferret_span_end(g->pause);
                                g->pause = NULL;
                        }
                        t->stack[t->depth++] = (struct entry){ frame, g->span, g->ctx, g->seq, g, op != RESUME };
                        return 0;
                }
                /* A first call where a state is left means that frame died
                 * without our seeing it (collected inside a hook call, when
                 * events are off) and its memory now holds a new one. */
                if (g) {
                        g->var_set = false;   /* its context is not this one */
                        gen_finish(t, g, Py_None, true);
                        g = NULL;
                }
                if (!(g = PyMem_RawCalloc(1, sizeof(*g))))
                        return 0;
                g->frame = frame;
                g->kind = ci->kind;
                if (gen_put(g) < 0) {
                        PyMem_RawFree(g);
                        return 0;
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
        *e = (struct entry){ frame, span, ctx, ++fmod_seq, g, false };
        if (g) {
                g->span = span;
                g->ctx = e->ctx;
                g->seq = e->seq;
                if (g->kind != CODE_GENERATOR)
                        ferret_span_set_kind(span, FERRET_KIND_ASYNC);
                if (g->kind == CODE_COROUTINE)
                        gen_enter_var(g);
        }
        return 0;
}

/* @frame returns but is not on top: frames above it missed their return
 * (the hook was off for a while). End them, if @frame is ours at all. */
static bool unwind_to(fthread_object *t, PyFrameObject *frame)
{
        size_t i = t->depth;
        if (code_lookup(frame) == &code_skip)
                return false;
        while (i > 0 && t->stack[i - 1].frame != frame)
                i--;
        if (i == 0)
                return false;
        while (t->depth > i) {
                struct entry *e = &t->stack[--t->depth];
                if (!e->gen && e->span) {
                        ferret_span_set_status(e->span, FERRET_STATUS_WARNING, "return not seen");
                        ferret_span_end(e->span);
                }
        }
        return true;
}

static int on_return(fthread_object *t, PyFrameObject *frame, PyObject *arg)
{
        if (!t->depth || (t->stack[t->depth - 1].frame != frame && !unwind_to(t, frame)))
                return 0;
        struct entry e = t->stack[--t->depth];
        if (!e.gen) {
                span_finish(t, e.span, arg, e.thrown);
                return 0;
        }

        struct gen *g = e.gen;
        int op = -1, oparg;
        if (arg) {
                PyCodeObject *co = PyFrame_GetCode(frame);
                void *extra = NULL;
                if (_PyCode_GetExtra((PyObject *)co, code_index, &extra) < 0)
                        PyErr_Clear();
                Py_DECREF(co);
                if (extra && extra != &code_skip)
                        frame_instruction(frame, extra, &op, &oparg);
        }
        if (op != YIELD_VALUE) {
                gen_finish(t, g, arg, e.thrown);
                return 0;
        }
        /* Suspended: a suspension span begins. */
        if (g->span) {
                bool is_yield = g->kind == CODE_GENERATOR;
                g->pause = ferret_span_begin_in(g->ctx, is_yield ? "(yield)" : "(await)");
                ferret_span_set_kind(g->pause, is_yield ? FERRET_KIND_SUSPENSION
                                                        : FERRET_KIND_ASYNC | FERRET_KIND_SUSPENSION);
        }
        return 0;
}

static int hook(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg)
{
        fthread_object *t = (fthread_object *)obj;
        switch (what) {
        case PyTrace_CALL:
                t->exiting = false;
                return on_call(t, frame);
        case PyTrace_RETURN:
                if (arg)
                        t->exiting = false;
                return on_return(t, frame, arg);
        case PyTrace_C_EXCEPTION:
                if (arg == sys_exit) {
                        t->exiting = true;
                        return 0;
                }
                /* fallthrough */
        default:
                t->exiting = false;
                return 0;
        }
}

/* --- per-thread state -------------------------------------------------- */

static void fthread_dealloc(PyObject *self)
{
        /* Spans still open stay open in the client, which records them as
         * unfinished when their thread exits. */
        PyMem_RawFree(((fthread_object *)self)->stack);
        PyObject_Free(self);
}

static PyTypeObject fthread_type = {
        PyVarObject_HEAD_INIT(NULL, 0)
        .tp_name = "ferret._ferret.ProfileState",
        .tp_basicsize = sizeof(fthread_object),
        .tp_dealloc = fthread_dealloc,
        .tp_flags = Py_TPFLAGS_DEFAULT,
        .tp_doc = "The profile hook's state for one thread.",
};

static fthread_object *fthread_current(void)
{
        PyThreadState *ts = PyThreadState_Get();
        if (ts->c_profilefunc != hook || !ts->c_profileobj)
                return NULL;
        return (fthread_object *)ts->c_profileobj;
}

bool fprofile_top(struct fparent *ret)
{
        fthread_object *t = fthread_current();
        if (!t)
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
        fthread_object *t = fthread_current();
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

/* Installs the hook on the calling thread. */
static PyObject *install(void)
{
        if (fthread_current())
                Py_RETURN_NONE;
        fthread_object *t = PyObject_New(fthread_object, &fthread_type);
        if (!t)
                return NULL;
        t->stack = NULL;
        t->depth = t->cap = 0;
        t->base = fthread_base();
        t->exiting = false;
        PyEval_SetProfile(hook, (PyObject *)t);
        Py_DECREF(t);
        Py_RETURN_NONE;
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
        if (!sys_exit) {
                PyObject *f = PySys_GetObject("exit");
                sys_exit = f ? Py_NewRef(f) : NULL;
        }
        return install();
}

static PyObject *mod_profile_thread(PyObject *module, PyObject *unused)
{
        if (!decider) {
                PyErr_SetString(PyExc_RuntimeError, "profiling has not been started");
                return NULL;
        }
        return install();
}

static PyObject *mod_profile_stop(PyObject *module, PyObject *unused)
{
        if (fthread_current())
                PyEval_SetProfile(NULL, NULL);
        Py_RETURN_NONE;
}

static PyObject *mod_profile_active(PyObject *module, PyObject *unused)
{
        return PyBool_FromLong(fthread_current() != NULL);
}

static PyMethodDef profile_methods[] = {
        { "profile_start", mod_profile_start, METH_O,
          "profile_start(decider): records the calls of code for which decider(code) gives a name." },
        { "profile_thread", mod_profile_thread, METH_NOARGS, "Records calls on the calling thread too." },
        { "profile_stop", mod_profile_stop, METH_NOARGS, "Stops recording calls on the calling thread." },
        { "profile_active", mod_profile_active, METH_NOARGS, "Whether the hook runs on the calling thread." },
        { NULL, NULL, 0, NULL },
};

int fprofile_init(PyObject *module)
{
        if (PyType_Ready(&fthread_type) < 0)
                return -1;
        if (code_index < 0 && (code_index = _PyEval_RequestCodeExtraIndex(code_info_free)) < 0) {
                PyErr_SetString(PyExc_RuntimeError, "no code extra index left");
                return -1;
        }
        return PyModule_AddFunctions(module, profile_methods);
}
