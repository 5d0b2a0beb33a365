# SPDX-License-Identifier: MIT
"""Zero-code mode: which code is the user's, and the hooks that follow a
program into its threads and child processes.

The call hook itself is C (``_ferret.profile_start``); this module gives
it the decision it caches per code object, and arranges that

- threads started with :mod:`threading` run the hook too, under the span
  that started them;
- ``os.fork()`` children (``multiprocessing``'s fork method) go on under the
  span that forked, and deliver their spans before ``os._exit()``;
- ``subprocess`` and ``multiprocessing``'s spawn children get
  ``FERRET_TRACEPARENT`` naming the span that started them, and, through a
  ``sitecustomize`` on their ``PYTHONPATH`` (``FERRET_PYTHON_PROFILE=1``),
  the hook as well.
"""

import atexit
import fnmatch
import os
import site
import sys
import sysconfig
import threading

from . import _ferret

PACKAGE_DIR = os.path.dirname(os.path.realpath(__file__))
BOOTSTRAP_DIR = os.path.join(PACKAGE_DIR, "_bootstrap")

# The environment that carries zero-code mode into child processes.
ENV_PROFILE = "FERRET_PYTHON_PROFILE"
ENV_ROOTS = "FERRET_PYTHON_ROOTS"
ENV_INCLUDE = "FERRET_PYTHON_INCLUDE"

EXIT_FLUSH_MS = 5000


def _library_dirs():
    """Where the standard library and installed packages live."""
    dirs = set()
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        if paths.get(key):
            dirs.add(paths[key])
    try:
        dirs.update(site.getsitepackages())
    except AttributeError:
        pass
    try:
        dirs.add(site.getusersitepackages())
    except AttributeError:
        pass
    for p in sys.path:
        if p and ("site-packages" in p or "dist-packages" in p):
            dirs.add(p)
    for prefix in {sys.base_prefix, sys.prefix, sys.exec_prefix}:
        dirs.add(os.path.join(prefix, "lib", f"python{sys.version_info[0]}.{sys.version_info[1]}"))
    return sorted({os.path.realpath(d) for d in dirs if d})


def _under(path, root):
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class Decider:
    """Decides, once per code object, whether its calls become spans.

    User code is code whose file lies under one of ``roots`` (the script's
    directory and the working directory) and not under the standard library,
    an installed-packages directory or ferret itself. An ``--include`` glob
    adds code it matches: the glob is tried on the file's absolute path and
    on its path relative to each library directory (``'requests/*'``,
    ``'json/*'``). Returns the span name (the function's qualified name;
    ``<module NAME>`` for a module's body) or None.
    """

    def __init__(self, roots, includes=()):
        self.roots = [os.path.realpath(r) for r in roots if r]
        self.includes = list(includes)
        self.libs = _library_dirs()
        self._files = {}

    def _file(self, filename):
        """(recorded, display path) for a file name, cached."""
        hit = self._files.get(filename)
        if hit is not None:
            return hit
        result = (False, filename)
        if filename and not filename.startswith("<"):
            path = os.path.realpath(filename)
            lib = next((d for d in self.libs if _under(path, d)), None)
            root = next((r for r in self.roots if _under(path, r)), None)
            if _under(path, PACKAGE_DIR):
                pass
            elif self.includes and self._included(path):
                result = (True, os.path.relpath(path, lib or root) if (lib or root) else path)
            elif root and not lib:
                result = (True, os.path.relpath(path, root))
        self._files[filename] = result
        return result

    def _included(self, path):
        candidates = [path] + [os.path.relpath(path, d) for d in self.libs + self.roots if _under(path, d)]
        return any(fnmatch.fnmatchcase(c, g) for g in self.includes for c in candidates)

    def __call__(self, code):
        recorded, display = self._file(code.co_filename)
        if not recorded:
            return None
        if code.co_name == "<module>":
            return f"<module {display}>"
        return code.co_qualname


# --- process-wide hooks -------------------------------------------------


def _deliver_on_sigterm():
    """A forked child left to die of SIGTERM (multiprocessing.Pool
    terminates its workers so) delivers its spans first, then dies of it.
    The handler is C (_ferret.c says why a Python one can hang)."""
    import signal
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        _ferret.deliver_on_sigterm()

_process_hooks = False


def install_process_hooks():
    """fork, os._exit and subprocess: installed once, by Profiler or run."""
    global _process_hooks
    if _process_hooks:
        return
    _process_hooks = True
    # Under `ferret run` the agent gives a forked child a span of its own.
    agent = "ferret-agent" in os.environ.get("LD_PRELOAD", "")

    def after_in_child():
        _ferret.after_fork_child(agent)
        if not agent:   # the agent's own handler does this for it
            _deliver_on_sigterm()

    os.register_at_fork(after_in_child=after_in_child)
    _patch_fork_exec()
    _patch_threads()
    if agent:
        return  # its _exit() ends the process's span, then delivers everything

    real_exit = os._exit

    def _exit(status):
        # os._exit skips atexit, where the client would deliver its spans.
        _ferret.shutdown()
        real_exit(status)

    _exit.__doc__ = real_exit.__doc__
    os._exit = _exit


def _patch_fork_exec():
    """Children started through _posixsubprocess.fork_exec (subprocess and
    multiprocessing's spawn) get FERRET_TRACEPARENT naming the span that
    starts them."""
    try:
        import _posixsubprocess
        import subprocess
    except ImportError:
        return
    real = _posixsubprocess.fork_exec

    def fork_exec(*args):
        tp = _ferret.traceparent()
        if tp and len(args) > 5:
            ts = _ferret.tracestate()
            env = args[5]
            if env is None:
                env = [k + b"=" + v for k, v in os.environb.items()]
            env = [e for e in env if not e.startswith((b"FERRET_TRACEPARENT=", b"FERRET_TRACESTATE="))]
            env.append(b"FERRET_TRACEPARENT=" + tp.encode())
            if ts:
                env.append(b"FERRET_TRACESTATE=" + ts.encode())
            args = args[:5] + (env,) + args[6:]
        return real(*args)

    _posixsubprocess.fork_exec = fork_exec
    if getattr(subprocess, "_fork_exec", None) is real:
        subprocess._fork_exec = fork_exec


# --- zero-code mode -------------------------------------------------------

_profiling = False


def _thread_bootstrap(frame, event, arg):
    """threading's profile function: runs once in each new thread and puts
    the C hook in its place."""
    _ferret.profile_thread()


def _patch_threads():
    """A thread's spans go under the span that was current where it was
    started (Thread.start), not at the root."""
    real_start = threading.Thread.start
    real_inner = threading.Thread._bootstrap_inner

    def start(self):
        try:
            self._ferret_parent = _ferret.current()
        except Exception:
            pass
        return real_start(self)

    def _bootstrap_inner(self):
        parent = getattr(self, "_ferret_parent", None)
        if parent is not None:
            _ferret.set_thread_parent(parent)
        return real_inner(self)

    start.__doc__ = real_start.__doc__
    threading.Thread.start = start
    threading.Thread._bootstrap_inner = _bootstrap_inner


def _export_environment(roots, includes):
    """What a child process needs to profile itself the same way."""
    os.environ[ENV_PROFILE] = "1"
    os.environ[ENV_ROOTS] = os.pathsep.join(roots)
    if includes:
        os.environ[ENV_INCLUDE] = "\n".join(includes)
    else:
        os.environ.pop(ENV_INCLUDE, None)
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    for d in (os.path.dirname(PACKAGE_DIR), BOOTSTRAP_DIR):
        if d in parts:
            parts.remove(d)
    os.environ["PYTHONPATH"] = os.pathsep.join([BOOTSTRAP_DIR, os.path.dirname(PACKAGE_DIR)] + parts)


def start_profiling(roots, includes=()):
    """Records every call of user code from now on, in this thread, in the
    threads started from now on, and in child processes."""
    global _profiling
    roots = [os.path.abspath(r) for r in roots if r]
    install_process_hooks()
    if not _profiling:
        _profiling = True
        threading.setprofile(_thread_bootstrap)
        atexit.register(stop_profiling)
    _export_environment(roots, includes)
    _ferret.profile_start(Decider(roots, includes))


def stop_profiling():
    """Stops recording calls (in the calling thread and new threads)."""
    threading.setprofile(None)
    _ferret.profile_stop()


def child_start():
    """In a child process that inherited zero-code mode (sitecustomize)."""
    roots = [r for r in os.environ.get(ENV_ROOTS, "").split(os.pathsep) if r]
    includes = [g for g in os.environ.get(ENV_INCLUDE, "").split("\n") if g]
    start_profiling(roots + [os.getcwd()], includes)
