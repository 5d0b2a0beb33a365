/* SPDX-License-Identifier: MIT */
/*
 * Where a daemon's sockets are, for the Python package: the decisions of
 * proto/runtime-dir.h and proto/runtime-daemon.h, the ones the client
 * library and the ferret command make, so that the package never makes its
 * own (ferret/_daemon.py only wraps these). Paths go in as str, bytes or
 * path-like objects and come out as str (the file system's encoding).
 */
#include "_ferret.h"

#include <errno.h>
#include <limits.h>
#include <sys/wait.h>

#include "runtime-daemon.h"

#define WHY_MAX (PATH_MAX + 256)

/* PyUnicode_FSConverter, with None for "not given" (NULL). */
static int path_or_none(PyObject *o, void *ret)
{
        if (o == Py_None) {
                *(PyObject **)ret = NULL;
                return 1;
        }
        return PyUnicode_FSConverter(o, ret);
}

static const char *bytes_or_null(PyObject *b)
{
        return b ? PyBytes_AS_STRING(b) : NULL;
}

static PyObject *text(const char *s)
{
        return PyUnicode_DecodeFSDefault(s);
}

/* OSError(errno, why): Python callers tell errors apart by errno. */
static PyObject *raise_os_error(int r, const char *why)
{
        PyObject *args = Py_BuildValue("(iN)", -r, text(why));
        if (args) {
                PyErr_SetObject(PyExc_OSError, args);
                Py_DECREF(args);
        }
        return NULL;
}

static PyObject *daemon_tuple(const struct runtime_daemon *d)
{
        return Py_BuildValue("(iNO)", (int)d->pid, text(d->runtime_dir), d->remove_dir ? Py_True : Py_False);
}

static PyObject *fr_runtime_dir(PyObject *module, PyObject *args)
{
        PyObject *override = NULL;
        char dir[RUNTIME_DIR_MAX], why[WHY_MAX];
        if (!PyArg_ParseTuple(args, "|O&", path_or_none, &override))
                return NULL;
        int r = runtime_find(bytes_or_null(override), dir, sizeof(dir), why, sizeof(why));
        Py_XDECREF(override);
        if (r == -ENAMETOOLONG)
                return raise_os_error(r, why);
        return Py_BuildValue("(NN)", text(dir), r == -EPERM ? text(why) : Py_NewRef(Py_None));
}

static PyObject *fr_daemon_listens(PyObject *module, PyObject *arg)
{
        PyObject *dir;
        char why[WHY_MAX];
        int r;
        if (!PyUnicode_FSConverter(arg, &dir))
                return NULL;
        Py_BEGIN_ALLOW_THREADS
        r = runtime_probe(PyBytes_AS_STRING(dir), RUNTIME_QUERY_SOCKET, why, sizeof(why));
        Py_END_ALLOW_THREADS
        Py_DECREF(dir);
        return PyBool_FromLong(r == 0);
}

static PyObject *fr_untrusted(PyObject *module, PyObject *arg)
{
        PyObject *dir;
        char why[WHY_MAX];
        if (!PyUnicode_FSConverter(arg, &dir))
                return NULL;
        int r = runtime_dir_check(PyBytes_AS_STRING(dir), why, sizeof(why));
        Py_DECREF(dir);
        return r == -EPERM ? text(why) : Py_NewRef(Py_None);
}

static PyObject *fr_db_name(PyObject *module, PyObject *arg)
{
        PyObject *path;
        char name[PATH_MAX];
        if (!PyUnicode_FSConverter(arg, &path))
                return NULL;
        runtime_db_name(PyBytes_AS_STRING(path), name, sizeof(name));
        Py_DECREF(path);
        return text(name);
}

static PyObject *fr_private_runtime_dir(PyObject *module, PyObject *arg)
{
        PyObject *db;
        char dir[RUNTIME_DIR_MAX];
        if (!PyUnicode_FSConverter(arg, &db))
                return NULL;
        runtime_private_dir(PyBytes_AS_STRING(db), dir, sizeof(dir));
        Py_DECREF(db);
        return text(dir);
}

static PyObject *fr_start_daemon(PyObject *module, PyObject *args, PyObject *kwargs)
{
        static char *keywords[] = { "ferretd", "db", "runtime_dir", NULL };
        static const char *const daemon_args[] = { "--log-level", "warning", NULL };
        PyObject *ferretd = NULL, *db = NULL, *dir = NULL;
        struct runtime_daemon d;
        char why[WHY_MAX];
        int r;
        if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&O&|O&", keywords, path_or_none, &ferretd,
                                         PyUnicode_FSConverter, &db, path_or_none, &dir))
                return NULL;
        struct runtime_start s = { .ferretd = bytes_or_null(ferretd), .db = PyBytes_AS_STRING(db),
                                   .runtime_dir = bytes_or_null(dir), .args = daemon_args, .exit_with_parent = true };
        Py_BEGIN_ALLOW_THREADS
        r = runtime_daemon_start(&s, &d, why, sizeof(why));
        Py_END_ALLOW_THREADS
        Py_XDECREF(ferretd);
        Py_DECREF(db);
        Py_XDECREF(dir);
        return r < 0 ? raise_os_error(r, why) : daemon_tuple(&d);
}

static PyObject *fr_stop_daemon(PyObject *module, PyObject *args)
{
        PyObject *dir;
        int pid, remove_dir, status;
        if (!PyArg_ParseTuple(args, "iO&p", &pid, PyUnicode_FSConverter, &dir, &remove_dir))
                return NULL;
        struct runtime_daemon d = { .pid = pid, .remove_dir = remove_dir };
        snprintf(d.runtime_dir, sizeof(d.runtime_dir), "%s", PyBytes_AS_STRING(dir));
        Py_DECREF(dir);
        Py_BEGIN_ALLOW_THREADS
        status = runtime_daemon_stop(&d);
        Py_END_ALLOW_THREADS
        /* As subprocess reports it: the exit status, or minus the signal. */
        return PyLong_FromLong(WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status));
}

static PyObject *fr_choose_daemon(PyObject *module, PyObject *args)
{
        PyObject *db = NULL, *ferretd = NULL, *ret = NULL;
        char why[WHY_MAX];
        int r;
        if (!PyArg_ParseTuple(args, "O&O&", path_or_none, &db, path_or_none, &ferretd))
                return NULL;
        struct runtime_choice *c = PyMem_RawMalloc(sizeof(*c));
        if (!c) {
                PyErr_NoMemory();
                goto out;
        }
        Py_BEGIN_ALLOW_THREADS
        r = runtime_choose(NULL, bytes_or_null(db), bytes_or_null(ferretd), c, why, sizeof(why));
        Py_END_ALLOW_THREADS
        if (r < 0) {
                raise_os_error(r, why);
                goto out;
        }
        PyObject *notes = PyList_New(0);
        for (size_t i = 0; notes && i < c->n_notes; i++) {
                PyObject *n = text(c->notes[i]);
                if (!n || PyList_Append(notes, n) < 0)
                        Py_CLEAR(notes);
                Py_XDECREF(n);
        }
        if (notes)
                ret = Py_BuildValue("(NNNN)", text(c->runtime_dir), text(c->db),
                                    c->daemon.pid > 0 ? daemon_tuple(&c->daemon) : Py_NewRef(Py_None), notes);
        /* A daemon started for a choice Python cannot hold must not run on. */
        if (!ret && c->daemon.pid > 0)
                runtime_daemon_stop(&c->daemon);
out:
        PyMem_RawFree(c);
        Py_XDECREF(db);
        Py_XDECREF(ferretd);
        return ret;
}

static PyMethodDef fruntime_methods[] = {
        { "runtime_dir", fr_runtime_dir, METH_VARARGS,
          "runtime_dir(override=None) -> (dir, why): the runtime directory to use, and why it must not be "
          "used (or None)." },
        { "daemon_listens", fr_daemon_listens, METH_O, "Whether a trusted ferretd listens in the directory." },
        { "untrusted", fr_untrusted, METH_O, "Why the runtime directory is not to be trusted, or None." },
        { "db_name", fr_db_name, METH_O, "A database's one name (its real path)." },
        { "private_runtime_dir", fr_private_runtime_dir, METH_O,
          "The runtime directory of the private ferretd of a database (by its one name)." },
        { "start_daemon", (PyCFunction)(void (*)(void))fr_start_daemon, METH_VARARGS | METH_KEYWORDS,
          "start_daemon(ferretd, db, runtime_dir=None) -> (pid, runtime_dir, remove_dir), once it is ready; "
          "OSError otherwise." },
        { "stop_daemon", fr_stop_daemon, METH_VARARGS,
          "stop_daemon(pid, runtime_dir, remove_dir) -> its exit status (minus the signal that killed it)." },
        { "choose_daemon", fr_choose_daemon, METH_VARARGS,
          "choose_daemon(db, ferretd) -> (runtime_dir, db, started or None, notes): where a run into db "
          "records, as `ferret run` decides." },
        { NULL, NULL, 0, NULL },
};

int fruntime_init(PyObject *module)
{
        return PyModule_AddFunctions(module, fruntime_methods);
}
