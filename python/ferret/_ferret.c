/* SPDX-License-Identifier: MIT */
/*
 * ferret._ferret: the Python binding of libferret-client. Buffering,
 * transport and fork handling stay in the C library; this module only turns
 * Python objects into its calls, and decides which span is the parent of a
 * new one (see _ferret.h).
 */
#include "_ferret.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

PyObject *fmod_current_var;
bool fmod_current_var_used;
uint64_t fmod_seq;
pid_t fmod_pid;
bool fmod_client_used;

/* The base parent of each thread: taken from the client before this module
 * begins anything on the thread (so it is the process's parent, or the span
 * `ferret run`'s agent opened), or given by the code that started the thread. */
static __thread bool thread_base_set;
static __thread ferret_ctx_t thread_base;

ferret_ctx_t fthread_base(void)
{
        if (!thread_base_set) {
                thread_base = ferret_current();
                thread_base_set = true;
        }
        return thread_base;
}

void fparent_consider_var(struct fparent *p)
{
        PyObject *v = NULL;
        if (!fmod_current_var_used)
                return;
        if (PyContextVar_Get(fmod_current_var, NULL, &v) < 0) {
                PyErr_Clear();
                return;
        }
        if (v && Py_IS_TYPE(v, &fspan_type) && ((fspan_object *)v)->seq > p->seq) {
                p->ctx = ((fspan_object *)v)->ctx;
                p->seq = ((fspan_object *)v)->seq;
        }
        Py_XDECREF(v);
}

void fparent_resolve(struct fparent *ret)
{
        struct fparent p;
        if (!fprofile_top(&p)) {
                p.ctx = fthread_base();
                p.seq = 0;
        }
        fparent_consider_var(&p);
        *ret = p;
}

/* --- fspan ------------------------------------------------------------- */

PyObject *fspan_new_context(ferret_ctx_t ctx, uint64_t seq)
{
        fspan_object *s = PyObject_New(fspan_object, &fspan_type);
        if (!s)
                return NULL;
        s->span = NULL;
        s->ctx = ctx;
        s->parent = (ferret_ctx_t){ 0 };
        s->seq = seq;
        s->pid = fmod_pid;
        return (PyObject *)s;
}

static void fspan_dealloc(PyObject *self)
{
        /* A span dropped without end() stays open in the client, which
         * records it as unfinished when its thread exits. */
        PyObject_Free(self);
}

static PyObject *fspan_repr(PyObject *self)
{
        fspan_object *s = (fspan_object *)self;
        return PyUnicode_FromFormat("<ferret span %016llx%s>", (unsigned long long)s->ctx.span_id,
                                    s->span ? "" : " (closed)");
}

/* The span, or NULL when it has ended or belongs to the parent of this
 * (forked) process. */
static ferret_span_t *fspan_live(fspan_object *s)
{
        return s->pid == fmod_pid ? s->span : NULL;
}

static PyObject *fspan_tag_value(ferret_span_t *span, const char *key, PyObject *v);

static PyObject *fspan_tag(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
        fspan_object *s = (fspan_object *)self;
        if (nargs != 2 || !PyUnicode_Check(args[0])) {
                PyErr_SetString(PyExc_TypeError, "tag(key: str, value)");
                return NULL;
        }
        ferret_span_t *span = fspan_live(s);
        if (!span)
                Py_RETURN_NONE;
        PyObject *key_bytes = ftext_bytes(args[0]);
        if (!key_bytes)
                return NULL;
        const char *key = PyBytes_AS_STRING(key_bytes);
        PyObject *r = fspan_tag_value(span, key, args[1]);
        Py_DECREF(key_bytes);
        return r;
}

/* One tag's value: bool, int (as a string past 64 bits), float, else str(). */
static PyObject *fspan_tag_value(ferret_span_t *span, const char *key, PyObject *v)
{
        /* bool first: it is a subclass of int. */
        if (PyBool_Check(v))
                (ferret_span_tag_bool)(span, key, v == Py_True);
        else if (PyLong_Check(v)) {
                int overflow;
                long long n = PyLong_AsLongLongAndOverflow(v, &overflow);
                if (n == -1 && PyErr_Occurred())
                        return NULL;
                if (overflow) {
                        PyObject *str = PyObject_Str(v), *text = str ? ftext_bytes(str) : NULL;
                        Py_XDECREF(str);
                        if (!text)
                                return NULL;
                        (ferret_span_tag_str)(span, key, PyBytes_AS_STRING(text));
                        Py_DECREF(text);
                } else
                        (ferret_span_tag_int)(span, key, n);
        } else if (PyFloat_Check(v))
                (ferret_span_tag_double)(span, key, PyFloat_AS_DOUBLE(v));
        else {
                PyObject *str = PyUnicode_Check(v) ? Py_NewRef(v) : PyObject_Str(v);
                if (!str)
                        return NULL;
                PyObject *text = ftext_bytes(str);
                Py_DECREF(str);
                if (!text)
                        return NULL;
                (ferret_span_tag_str)(span, key, PyBytes_AS_STRING(text));
                Py_DECREF(text);
        }
        Py_RETURN_NONE;
}

static PyObject *fspan_set_async(PyObject *self, PyObject *unused)
{
        ferret_span_set_kind(fspan_live((fspan_object *)self), FERRET_KIND_ASYNC);
        Py_RETURN_NONE;
}

/* end(status=0, message=None): 0 ok, 1 warning, 2 error. */
static PyObject *fspan_end(PyObject *self, PyObject *args, PyObject *kwargs)
{
        static char *keywords[] = { "status", "message", NULL };
        fspan_object *s = (fspan_object *)self;
        int status = 0;
        PyObject *message_obj = Py_None;
        if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|iO:end", keywords, &status, &message_obj))
                return NULL;
        if (status < FERRET_STATUS_OK || status > FERRET_STATUS_ERROR) {
                PyErr_SetString(PyExc_ValueError, "status must be 0 (ok), 1 (warning) or 2 (error)");
                return NULL;
        }
        PyObject *message = NULL;
        if (message_obj != Py_None) {
                PyObject *str = PyUnicode_Check(message_obj) ? Py_NewRef(message_obj) : PyObject_Str(message_obj);
                message = str ? ftext_bytes(str) : NULL;
                Py_XDECREF(str);
                if (!message)
                        return NULL;
        }
        ferret_span_t *span = fspan_live(s);
        s->span = NULL;
        if (span) {
                if (status != FERRET_STATUS_OK || message)
                        ferret_span_set_status(span, (ferret_status_t)status, message ? PyBytes_AS_STRING(message) : NULL);
                ferret_span_end(span);
        }
        Py_XDECREF(message);
        Py_RETURN_NONE;
}

static PyObject *ctx_traceparent(ferret_ctx_t ctx)
{
        char buf[FERRET_TRACEPARENT_LEN + 1];
        if (ferret_ctx_format(ctx, buf, sizeof(buf)) < 0)
                Py_RETURN_NONE;
        return PyUnicode_FromString(buf);
}

/* The tracestate entry that carries the span's call path to a child. */
static PyObject *ctx_tracestate(ferret_ctx_t ctx)
{
        char buf[FERRET_TRACESTATE_LEN + 1];
        if (ferret_ctx_tracestate(ctx, buf, sizeof(buf)) < 0)
                Py_RETURN_NONE;
        return PyUnicode_FromString(buf);
}

static PyObject *fspan_get_span_id(PyObject *self, void *closure)
{
        return PyLong_FromUnsignedLongLong(((fspan_object *)self)->ctx.span_id);
}

static PyObject *fspan_get_parent_id(PyObject *self, void *closure)
{
        return PyLong_FromUnsignedLongLong(((fspan_object *)self)->parent.span_id);
}

static PyObject *fspan_get_trace_id(PyObject *self, void *closure)
{
        fspan_object *s = (fspan_object *)self;
        return PyUnicode_FromFormat("%016llx%016llx", (unsigned long long)s->ctx.trace_hi,
                                    (unsigned long long)s->ctx.trace_lo);
}

static PyObject *fspan_get_traceparent(PyObject *self, void *closure)
{
        return ctx_traceparent(((fspan_object *)self)->ctx);
}

static PyObject *fspan_get_tracestate(PyObject *self, void *closure)
{
        return ctx_tracestate(((fspan_object *)self)->ctx);
}

static PyObject *fspan_get_open(PyObject *self, void *closure)
{
        return PyBool_FromLong(fspan_live((fspan_object *)self) != NULL);
}

static PyMethodDef fspan_methods[] = {
        { "tag", (PyCFunction)(void (*)(void))fspan_tag, METH_FASTCALL,
          "tag(key, value): a typed tag (bool, int, float; anything else as its str())" },
        { "set_async", fspan_set_async, METH_NOARGS, "Marks the span async." },
        { "end", (PyCFunction)(void (*)(void))fspan_end, METH_VARARGS | METH_KEYWORDS,
          "end(status=0, message=None): ends the span; later calls do nothing." },
        { NULL, NULL, 0, NULL },
};

static PyGetSetDef fspan_getset[] = {
        { "span_id", fspan_get_span_id, NULL, "the span's 64-bit id (0: none)", NULL },
        { "parent_id", fspan_get_parent_id, NULL, "the parent's span id (0: none)", NULL },
        { "trace_id", fspan_get_trace_id, NULL, "the trace id, 32 hex digits", NULL },
        { "traceparent", fspan_get_traceparent, NULL, "the W3C traceparent, or None", NULL },
        { "tracestate", fspan_get_tracestate, NULL, "the W3C tracestate entry with its call path, or None", NULL },
        { "open", fspan_get_open, NULL, "whether end() is still to come in this process", NULL },
        { NULL, NULL, NULL, NULL, NULL },
};

PyTypeObject fspan_type = {
        PyVarObject_HEAD_INIT(NULL, 0)
        .tp_name = "ferret._ferret.SpanHandle",
        .tp_basicsize = sizeof(fspan_object),
        .tp_dealloc = fspan_dealloc,
        .tp_repr = fspan_repr,
        .tp_flags = Py_TPFLAGS_DEFAULT,
        .tp_doc = "A span of libferret-client, or a bare span context.",
        .tp_methods = fspan_methods,
        .tp_getset = fspan_getset,
};

/* --- module functions -------------------------------------------------- */

PyObject *ftext_bytes(PyObject *text)
{
        PyObject *b = PyUnicode_AsEncodedString(text, "utf-8", "surrogateescape");
        if (!b) {
                PyErr_Clear();
                b = PyUnicode_AsEncodedString(text, "utf-8", "backslashreplace");
        }
        if (b && memchr(PyBytes_AS_STRING(b), '\0', (size_t)PyBytes_GET_SIZE(b))) {
                PyObject *nul = PyBytes_FromStringAndSize("\0", 1), *shown = PyBytes_FromString("\\0");
                PyObject *r = nul && shown ? PyObject_CallMethod(b, "replace", "OO", nul, shown) : NULL;
                Py_XDECREF(nul);
                Py_XDECREF(shown);
                Py_DECREF(b);
                b = r;
        }
        return b;
}

/* begin(name, is_async=False, parent=None): a span under @parent, or under
 * the current span (fparent_resolve()). */
static PyObject *mod_begin(PyObject *module, PyObject *args, PyObject *kwargs)
{
        static char *keywords[] = { "name", "is_async", "parent", NULL };
        PyObject *name_obj;
        int is_async = 0;
        PyObject *parent = Py_None;
        if (!PyArg_ParseTupleAndKeywords(args, kwargs, "U|pO:begin", keywords, &name_obj, &is_async, &parent))
                return NULL;
        struct fparent p;
        if (parent == Py_None)
                fparent_resolve(&p);
        else if (Py_IS_TYPE(parent, &fspan_type))
                p = (struct fparent){ ((fspan_object *)parent)->ctx, ((fspan_object *)parent)->seq };
        else {
                PyErr_SetString(PyExc_TypeError, "parent must be a SpanHandle or None");
                return NULL;
        }
        fspan_object *s = PyObject_New(fspan_object, &fspan_type);
        if (!s)
                return NULL;
        fmod_client_used = true;
        /* Always an explicit parent: the thread's current span in the
         * client may be a suspended coroutine's. "None" (a new trace) only
         * comes from a thread base without FERRET_TRACEPARENT. */
        PyObject *name = ftext_bytes(name_obj);
        if (!name) {
                Py_DECREF(s);
                return NULL;
        }
        s->span = ferret_span_begin_in(p.ctx, PyBytes_AS_STRING(name));
        Py_DECREF(name);
        if (is_async)
                ferret_span_set_kind(s->span, FERRET_KIND_ASYNC);
        s->ctx = s->span ? ferret_span_context(s->span) : p.ctx;
        s->parent = p.ctx;
        s->seq = ++fmod_seq;
        s->pid = fmod_pid;
        return (PyObject *)s;
}

static PyObject *mod_current(PyObject *module, PyObject *unused)
{
        struct fparent p;
        fparent_resolve(&p);
        if (!p.ctx.span_id)
                Py_RETURN_NONE;
        return fspan_new_context(p.ctx, p.seq);
}

static PyObject *mod_traceparent(PyObject *module, PyObject *unused)
{
        struct fparent p;
        fparent_resolve(&p);
        return ctx_traceparent(p.ctx);
}

static PyObject *mod_tracestate(PyObject *module, PyObject *unused)
{
        struct fparent p;
        fparent_resolve(&p);
        return ctx_tracestate(p.ctx);
}

/* set_thread_parent(handle): the base parent of the calling thread. */
static PyObject *mod_set_thread_parent(PyObject *module, PyObject *arg)
{
        if (arg == Py_None)
                thread_base = (ferret_ctx_t){ 0 };
        else if (Py_IS_TYPE(arg, &fspan_type))
                thread_base = ((fspan_object *)arg)->ctx;
        else {
                PyErr_SetString(PyExc_TypeError, "set_thread_parent(SpanHandle or None)");
                return NULL;
        }
        thread_base_set = true;
        Py_RETURN_NONE;
}

static PyObject *mod_flush(PyObject *module, PyObject *arg)
{
        int timeout = PyLong_AsLong(arg);
        if (timeout == -1 && PyErr_Occurred())
                return NULL;
        if (!fmod_client_used)
                return PyLong_FromLong(0);
        int r;
        /* Waiting for the daemon must not hold up the program's other threads. */
        Py_BEGIN_ALLOW_THREADS
        r = ferret_flush(timeout);
        Py_END_ALLOW_THREADS
        return PyLong_FromLong(r);
}

static PyObject *mod_shutdown(PyObject *module, PyObject *unused)
{
        if (fmod_client_used) {
                Py_BEGIN_ALLOW_THREADS
                ferret_shutdown();
                Py_END_ALLOW_THREADS
        }
        Py_RETURN_NONE;
}

static PyObject *mod_stats(PyObject *module, PyObject *unused)
{
        ferret_stats_t st = { .size = sizeof(st) };
        if (fmod_client_used)
                ferret_get_stats(&st);
        return Py_BuildValue("{s:K,s:K,s:K,s:K}", "recorded", (unsigned long long)st.recorded, "dropped",
                             (unsigned long long)st.dropped, "sent", (unsigned long long)st.sent, "batches",
                             (unsigned long long)st.batches);
}

static PyObject *mod_run_id(PyObject *module, PyObject *unused)
{
        fmod_client_used = true;
        const char *id = ferret_run_id();
        return PyUnicode_FromString(id ? id : "");
}

static PyObject *mod_enabled(PyObject *module, PyObject *unused)
{
        fmod_client_used = true;
        return PyBool_FromLong(ferret_enabled());
}

static PyObject *mod_client_used(PyObject *module, PyObject *unused)
{
        return PyBool_FromLong(fmod_client_used);
}

static PyObject *mod_strerror(PyObject *module, PyObject *arg)
{
        int e = PyLong_AsLong(arg);
        if (e == -1 && PyErr_Occurred())
                return NULL;
        return PyUnicode_FromString(ferret_strerror(e));
}

static PyObject *mod_note_current_var(PyObject *module, PyObject *unused)
{
        fmod_current_var_used = true;
        Py_RETURN_NONE;
}

/* os.register_at_fork(after_in_child=...): the client makes itself new in
 * the child (pthread_atfork); this side forgets the parent's open spans,
 * which the parent records, and keeps their contexts as parents. Under
 * `ferret run`, the agent has opened a span for the child process by now
 * (the client's current span): with reparent=True the child's spans go
 * under it. */
static PyObject *mod_after_fork_child(PyObject *module, PyObject *arg)
{
        fmod_pid = getpid();
        if (PyObject_IsTrue(arg)) {
                ferret_ctx_t ctx = ferret_current();
                thread_base = ctx;
                thread_base_set = true;
                fprofile_after_fork_child(ferret_ctx_is_valid(ctx) ? &ctx : NULL);
        } else
                fprofile_after_fork_child(NULL);
        Py_RETURN_NONE;
}

/* SIGTERM in a forked child that left it at its default (multiprocessing.Pool
 * terminates its workers so): deliver the spans, then die of the signal.
 * A C handler, not a Python one: Python runs its handlers between bytecodes
 * of the main thread, and a SIGTERM that lands after the last such check
 * but before the thread blocks in a lock (a Pool worker waiting for its
 * next task, where the call hook's work at each call widens the window)
 * is never handled: the worker sleeps for ever and Pool.terminate() with
 * it. ferret_flush() waits a bounded time, and request_flush() holds these
 * signals while it holds its lock, so the handler cannot wait on itself. */
#define DELIVER_BEFORE_DEATH_MS 2000

static void deliver_then_die(int sig)
{
        if (fmod_client_used)
                ferret_flush(DELIVER_BEFORE_DEATH_MS);
        signal(sig, SIG_DFL);
        raise(sig);
}

static PyObject *mod_deliver_on_sigterm(PyObject *module, PyObject *unused)
{
        struct sigaction old;
        if (sigaction(SIGTERM, NULL, &old) == 0 && old.sa_handler == SIG_DFL && !(old.sa_flags & SA_SIGINFO)) {
                struct sigaction sa = { .sa_handler = deliver_then_die, .sa_flags = SA_RESETHAND };
                sigemptyset(&sa.sa_mask);
                sigaction(SIGTERM, &sa, NULL);
        }
        Py_RETURN_NONE;
}

static PyMethodDef mod_methods[] = {
        { "begin", (PyCFunction)(void (*)(void))mod_begin, METH_VARARGS | METH_KEYWORDS,
          "begin(name, is_async=False, parent=None) -> SpanHandle" },
        { "current", mod_current, METH_NOARGS, "The current span's context (a SpanHandle), or None." },
        { "traceparent", mod_traceparent, METH_NOARGS, "The current span's W3C traceparent, or None." },
        { "tracestate", mod_tracestate, METH_NOARGS, "The current span's W3C tracestate entry, or None." },
        { "set_thread_parent", mod_set_thread_parent, METH_O, "Sets the calling thread's base parent." },
        { "flush", mod_flush, METH_O, "flush(timeout_ms) -> 0 or a negative errno (see ferret_flush)." },
        { "shutdown", mod_shutdown, METH_NOARGS, "Sends what is buffered and stops the client." },
        { "stats", mod_stats, METH_NOARGS, "The client's counters: recorded, dropped, sent, batches." },
        { "run_id", mod_run_id, METH_NOARGS, "This process's run id." },
        { "enabled", mod_enabled, METH_NOARGS, "Whether spans are recorded." },
        { "client_used", mod_client_used, METH_NOARGS, "Whether this process has begun spans through us." },
        { "strerror", mod_strerror, METH_O, "A message for a negative errno of the client." },
        { "note_current_var", mod_note_current_var, METH_NOARGS,
          "Tells the hook that current_var holds spans from now on." },
        { "after_fork_child", mod_after_fork_child, METH_O,
          "after_fork_child(reparent): for os.register_at_fork(after_in_child=)." },
        { "deliver_on_sigterm", mod_deliver_on_sigterm, METH_NOARGS,
          "Left at its default, SIGTERM delivers the spans first, then ends the process." },
        { NULL, NULL, 0, NULL },
};

static struct PyModuleDef mod_def = {
        PyModuleDef_HEAD_INIT,
        .m_name = "ferret._ferret",
        .m_doc = "The C engine of ferret: libferret-client's spans and a call hook.",
        .m_size = -1,
        .m_methods = mod_methods,
};

PyMODINIT_FUNC PyInit__ferret(void);

PyMODINIT_FUNC PyInit__ferret(void)
{
        if (PyType_Ready(&fspan_type) < 0)
                return NULL;
        PyObject *m = PyModule_Create(&mod_def);
        if (!m)
                return NULL;
        fmod_pid = getpid();
        if (!fmod_current_var && !(fmod_current_var = PyContextVar_New("ferret_span", NULL)))
                goto fail;
        if (PyModule_AddObjectRef(m, "current_var", fmod_current_var) < 0 ||
            PyModule_AddObjectRef(m, "SpanHandle", (PyObject *)&fspan_type) < 0 ||
            PyModule_AddIntConstant(m, "STATUS_OK", FERRET_STATUS_OK) < 0 ||
            PyModule_AddIntConstant(m, "STATUS_WARNING", FERRET_STATUS_WARNING) < 0 ||
            PyModule_AddIntConstant(m, "STATUS_ERROR", FERRET_STATUS_ERROR) < 0 ||
            fprofile_init(m) < 0 || fruntime_init(m) < 0)
                goto fail;
        return m;
fail:
        Py_DECREF(m);
        return NULL;
}
