# SPDX-License-Identifier: MIT
"""Finding ferret's programs and the daemon for a database.

This is the Python side of what the C command does in ``cli/cmd-run.c``
(``choose_daemon``) and ``cli/spawn-daemon.c``: use a daemon that already
serves the database, else start a private ``ferretd`` whose runtime
directory is derived from the database's absolute path (the same name the C
command uses, so the two find each other's daemons), and wait for its
``READY=1`` on a notify socket of ours rather than for a fixed time.
"""

import json
import os
import pwd
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading

from . import _paths

READY_TIMEOUT_S = 30


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


def fnv1a64(data):
    """FNV-1a, 64 bits: how the C command names a database's private directory."""
    h = 1469598103934665603
    for b in data:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def private_runtime_dir(db):
    """The private runtime directory of the database at absolute path ``db``."""
    h = fnv1a64(os.fsencode(db))
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base:
        return f"{base}/ferret-db-{h:016x}"
    return f"/tmp/ferret-{os.getuid()}-db-{h:016x}"


def untrusted(runtime_dir):
    """Why ``runtime_dir`` may not be trusted with spans, or None (absent or
    fine). The rule of proto/runtime-dir.c: a directory, not a symbolic
    link, owned by this user, root or the system daemon's user, that no one
    else may write."""
    try:
        st = os.lstat(runtime_dir)
    except FileNotFoundError:
        return None
    except OSError:
        return f"cannot examine {runtime_dir}"
    if stat.S_ISLNK(st.st_mode):
        return f"{runtime_dir} is a symbolic link"
    if not stat.S_ISDIR(st.st_mode):
        return f"{runtime_dir} is not a directory"
    try:
        system_uid = pwd.getpwnam("ferret").pw_uid
    except KeyError:
        system_uid = None
    if st.st_uid not in (os.geteuid(), 0, system_uid):
        return f"{runtime_dir} belongs to uid {st.st_uid}, not to you"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{runtime_dir} may be written by others (mode {st.st_mode & 0o777:03o})"
    return None


def shared_runtime_dir():
    """The runtime directory clients use by default (as the C command finds it)."""
    env = os.environ.get("FERRET_RUNTIME_DIR")
    if env:
        return env
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    d = f"{xdg}/ferret" if xdg else f"/tmp/ferret-{os.getuid()}"
    return d if alive(d) else "/run/ferret"


def alive(runtime_dir):
    """Whether a trusted daemon accepts connections in ``runtime_dir``."""
    if untrusted(runtime_dir):
        return False
    path = os.path.join(runtime_dir, "query.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def serves(runtime_dir, db):
    """Whether the daemon in ``runtime_dir`` writes the database ``db``."""
    cli = find_program("ferret")
    if not cli or not alive(runtime_dir):
        return False
    try:
        r = subprocess.run([cli, "status", "--json", "--runtime-dir", runtime_dir],
                           capture_output=True, text=True, timeout=10, env=program_env())
        st = json.loads(r.stdout) if r.returncode == 0 else {}
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return False
    return st.get("db_path") == db and not st.get("read_only")


class DaemonError(RuntimeError):
    """A private ferretd could not be started."""


class PrivateDaemon:
    """A ``ferretd`` started for one database, stopped by :meth:`stop`."""

    def __init__(self, db, runtime_dir):
        self.db = db
        self.runtime_dir = runtime_dir
        self.proc = None
        ferretd = find_program("ferretd")
        if not ferretd:
            raise DaemonError("cannot find ferretd (set FERRET_FERRETD, or install ferret)")
        os.makedirs(os.path.dirname(runtime_dir) or ".", exist_ok=True)
        notify_dir = tempfile.mkdtemp(prefix="ferret-notify-")
        notify = os.path.join(notify_dir, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(notify)
            env = {k: v for k, v in os.environ.items()
                   if k not in ("NOTIFY_SOCKET", "LD_PRELOAD", "JOURNAL_STREAM")}
            env["NOTIFY_SOCKET"] = notify
            args = [ferretd, "--db", db, "--runtime-dir", runtime_dir, "--log-level", "warning"]
            # It stops if we die without stopping it. The kernel ties this to
            # the starting thread, so only the main thread asks for it.
            if threading.current_thread() is threading.main_thread():
                args.append("--exit-with-parent")
            self.proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, close_fds=True)
            self._wait_ready(sock)
        finally:
            sock.close()
            shutil.rmtree(notify_dir, ignore_errors=True)

    def _wait_ready(self, sock):
        """Waits for READY=1, or for the daemon's exit: never a fixed sleep."""
        try:
            pidfd = os.pidfd_open(self.proc.pid)
        except (AttributeError, OSError):
            pidfd = None
        try:
            waits = [sock] + ([pidfd] if pidfd is not None else [])
            while True:
                ready, _, _ = select.select(waits, [], [], READY_TIMEOUT_S if pidfd is not None else 0.1)
                if sock in ready:
                    if b"READY=1" in sock.recv(4096):
                        return
                    continue
                code = self.proc.poll()
                if code is not None:
                    raise DaemonError(f"ferretd did not start (exit status {code})")
                if pidfd is not None and not ready:
                    self.proc.kill()
                    self.proc.wait()
                    raise DaemonError(f"ferretd did not become ready within {READY_TIMEOUT_S} s")
        finally:
            if pidfd is not None:
                os.close(pidfd)

    def stop(self):
        """SIGTERM, then wait: ferretd stores everything it received first."""
        if self.proc is None:
            return 0
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        return proc.wait()


def choose(db=None):
    """The runtime directory to trace into, and the daemon we started (or None).

    As ``ferret run``: without ``db``, a running default daemon; else the
    daemon that serves ``db`` (default ``./ferret.db``): the default one if
    it does, else the database's private one, started if need be.
    """
    shared = shared_runtime_dir()
    if db is None and alive(shared):
        return shared, None
    db = canonical_db(db if db is not None else "ferret.db")
    if serves(shared, db):
        return shared, None
    private = private_runtime_dir(db)
    why = untrusted(private)
    if why:
        # Someone else's: a directory of our own for this run.
        print(f"ferret: note: not using {why}; recording with a private ferretd elsewhere", file=sys.stderr)
        private = tempfile.mkdtemp(prefix=f"ferret-{os.getuid()}-private-")
    if alive(private):
        return private, None
    daemon = PrivateDaemon(db, private)
    return private, daemon


def canonical_db(db):
    """The database's one name, as the C command makes it: `dbs/../x.db`, a
    symbolic link to it and `./x.db` name one database."""
    if os.path.exists(db):
        return os.path.realpath(db)
    head, tail = os.path.split(os.path.abspath(db))
    return os.path.join(os.path.realpath(head), tail)
