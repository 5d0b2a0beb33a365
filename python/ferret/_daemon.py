# SPDX-License-Identifier: MIT
"""Finding ferret's programs and the daemon for a database.

Where a daemon's sockets are, whether one listens, the private directory of
a database, starting a private ``ferretd`` and waiting for its ``READY=1``,
and which daemon a run into a database uses: all of it is decided in C
(``proto/runtime-dir.c``, ``proto/runtime-daemon.c``), by the code the
client library and the ``ferret`` command use, reached through the
extension. This module only finds the programs and wraps those calls, so
that Python and C never decide differently.
"""

import errno
import os
import shutil
import sys

from . import _ferret, _paths


def _in_build_tree():
    here = os.path.realpath(os.path.dirname(__file__))
    root = os.path.realpath(_paths.BUILD_ROOT)
    return here == root or here.startswith(root + os.sep)


def find_program(name):
    """The path of ``ferretd`` or ``ferret``, or None.

    Looks at $FERRET_FERRETD / $FERRET_CLI, then (for a package imported
    from its build tree) the build tree, then the install's bin directory,
    the Python prefix's, the interpreter's own directory, the build tree,
    and finally $PATH.
    """
    env = os.environ.get("FERRET_FERRETD" if name == "ferretd" else "FERRET_CLI")
    if env:
        return env
    built = _paths.FERRETD_BUILD if name == "ferretd" else _paths.FERRET_CLI_BUILD
    candidates = []
    if _in_build_tree():
        candidates.append(built)
    candidates += [
        os.path.join(_paths.BINDIR, name),
        os.path.join(sys.prefix, "bin", name),
        os.path.join(os.path.dirname(sys.executable), name),
        built,
    ]
    for c in candidates:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return shutil.which(name)


def program_env(env=None):
    """The environment to run ferret's programs in: with the package's copy
    of the client library on the loader's path, for programs installed by a
    wheel whose run path does not lead to it."""
    env = dict(os.environ if env is None else env)
    here = os.path.dirname(os.path.abspath(__file__))
    if not _in_build_tree() and os.path.exists(os.path.join(here, "libferret-client.so.0")):
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (here, env.get("LD_LIBRARY_PATH")) if p)
    return env


def private_runtime_dir(db):
    """The private runtime directory of the database at ``db`` (by any of
    its names)."""
    return _ferret.private_runtime_dir(_ferret.db_name(db))


class DaemonError(RuntimeError):
    """A private ferretd could not be started."""


def _ferretd():
    return find_program("ferretd")


def _daemon_error(e, ferretd):
    if ferretd is None and e.errno == errno.ENOENT:
        return DaemonError("cannot find ferretd (set FERRET_FERRETD, or install ferret)")
    return DaemonError(e.strerror or str(e))


class PrivateDaemon:
    """A ``ferretd`` started for one database, stopped by :meth:`stop`.

    ``PrivateDaemon(db, runtime_dir)`` starts it (in a new private
    directory when ``runtime_dir`` is None) and returns once it is ready.
    """

    def __init__(self, db, runtime_dir=None, started=None):
        self.db = db
        if started is None:
            ferretd = _ferretd()
            try:
                started = _ferret.start_daemon(ferretd, db, runtime_dir)
            except OSError as e:
                raise _daemon_error(e, ferretd) from None
        self.pid, self.runtime_dir, self._remove_dir = started

    def stop(self):
        """SIGTERM, then wait: ferretd stores everything it received first.
        Returns its exit status (minus the signal that killed it)."""
        if not self.pid:
            return 0
        pid, self.pid = self.pid, 0
        return _ferret.stop_daemon(pid, self.runtime_dir, self._remove_dir)


def choose(db=None):
    """The runtime directory to trace into, and the daemon we started (or None).

    As ``ferret run`` decides (the same C code): without ``db``, a running
    default daemon; else the daemon that serves ``db`` (default
    ``./ferret.db``): the default one if it does, else the database's
    private one, started if need be.
    """
    ferretd = _ferretd()
    try:
        runtime_dir, name, started, notes = _ferret.choose_daemon(db, ferretd)
    except OSError as e:
        raise _daemon_error(e, ferretd) from None
    for note in notes:
        print(f"ferret: note: {note}", file=sys.stderr)
    return runtime_dir, (PrivateDaemon(name, started=started) if started else None)
