# SPDX-License-Identifier: MIT
"""``python3 -m ferret run``: a Python program with every call of its own
code recorded, as ``python3 my_script.py`` would run it.

``ferret run my_script.py`` (the C command) starts the daemon, sets
``FERRET_RUNTIME_DIR``, ``FERRET_RUN_ID`` and ``FERRET_TRACEPARENT`` (its
span for the process) and execs this. Run by hand, with no
``FERRET_TRACEPARENT`` in the environment, this does the C command's part
itself: it picks or starts the daemon for ``--db`` (default
``./ferret.db``), records a span for the process, and says on exit where
the run is stored.
"""

import atexit
import builtins
import importlib.machinery
import io
import os
import runpy
import sys
import time
import traceback
import types
import zipfile

from . import _activate, _daemon, _ferret

USAGE = """\
Usage: ferret run [--db DB] [--run-id ID] [--include GLOB]... [--quiet] [--] SCRIPT [ARGS...]
       ferret run [OPTIONS] [--] -m MODULE [ARGS...]

Runs a Python script (or module) as python3 would, recording a span for
every call of a function defined in your code: the files under the script's
directory and the working directory, not the standard library or installed
packages. --include GLOB also records code whose path matches GLOB (tried on
the absolute path and on the path inside site-packages, e.g. 'requests/*').
Options may also follow SCRIPT (ferret run my_script.py --db traces.db);
arguments for the script go after --.

  --db DB         the database (default ./ferret.db; a daemon serving it is used)
  --run-id ID     the run's name (default: script, time and pid)
  --include GLOB  record more code (repeatable)
  --quiet         no summary line on exit
"""

EXIT_FLUSH_MS = 10000


class UsageError(Exception):
    pass


def parse(argv):
    """Options anywhere before ``--``; the first other word (or ``-m MODULE``)
    is the target, the words after it are the script's."""
    o = {"db": None, "run_id": None, "include": [], "quiet": False, "target": None, "module": False,
         "args": []}
    i = 0
    dashdash = False
    while i < len(argv):
        a = argv[i]
        if dashdash or (o["target"] is not None and not a.startswith("-")):
            if o["target"] is None:
                if a == "-m":
                    if i + 1 >= len(argv):
                        raise UsageError("-m needs a module name")
                    o["target"], o["module"] = argv[i + 1], True
                    i += 2
                    continue
                o["target"] = a
            else:
                o["args"].append(a)
            i += 1
            continue
        if a == "--":
            if o["target"] is not None:
                o["args"].extend(argv[i + 1:])
                break
            dashdash = True
            i += 1
            continue
        key, eq, value = a.partition("=")
        if key in ("--db", "--run-id", "--include"):
            if not eq:
                if i + 1 >= len(argv):
                    raise UsageError(f"{key} needs a value")
                value = argv[i + 1]
                i += 1
            if key == "--include":
                o["include"].append(value)
            else:
                o[key[2:].replace("-", "_")] = value
        elif a == "--quiet":
            o["quiet"] = True
        elif a in ("-h", "--help"):
            o["help"] = True
        elif a == "-m" and o["target"] is None:
            if i + 1 >= len(argv):
                raise UsageError("-m needs a module name")
            o["target"], o["module"] = argv[i + 1], True
            i += 1
        elif o["target"] is None and not a.startswith("-"):
            o["target"] = a
        elif o["target"] is not None:
            o["args"].append(a)   # an option of the script's (original form)
        else:
            raise UsageError(f"unknown option '{a}'")
        i += 1
    return o


def _default_run_id(prog):
    return f"{prog}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"


def _exit_code(e):
    """The status SystemExit(e.code) gives, as the interpreter computes it."""
    code = e.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _ours(filename):
    return filename.startswith(_activate.PACKAGE_DIR) or filename in (runpy.__file__, "<frozen runpy>")


def _print_exception(e):
    """The traceback python3 itself would print: ferret's and runpy's frames left out."""
    tb = e.__traceback__
    while tb is not None and _ours(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    traceback.print_exception(type(e), e, tb)


def _run_script(path, argv0):
    """Runs the file at ``path`` as ``python3 argv0`` does: as module
    __main__, with sys.argv[0] as given (runpy.run_path would make it
    absolute). Directories and zip files go through runpy."""
    if not os.path.isfile(path) or zipfile.is_zipfile(path):
        sys.argv[0] = path
        runpy.run_path(path, run_name="__main__")
        return
    with io.open_code(path) as f:
        code = compile(f.read(), path, "exec")
    main = types.ModuleType("__main__")
    main.__file__ = path
    main.__cached__ = None
    main.__loader__ = importlib.machinery.SourceFileLoader("__main__", path)
    main.__builtins__ = builtins
    sys.modules["__main__"] = main
    sys.argv[0] = argv0
    exec(code, main.__dict__)


class _Standalone:
    """What the C command does around a run, when it is not there."""

    def __init__(self, db, target, argv, quiet):
        self.quiet = quiet
        self.db = os.path.abspath(db or "ferret.db")
        runtime_dir, self.daemon = _daemon.choose(db)
        self.db_shown = db or ("ferret.db" if self.daemon or runtime_dir == _daemon.private_runtime_dir(self.db)
                               else None)
        os.environ["FERRET_RUNTIME_DIR"] = runtime_dir
        self.span = None
        self.target = target
        self.argv = argv

    def begin(self):
        self.span = _ferret.begin(os.path.basename(self.target))
        self.span.tag("cmdline", " ".join(self.argv))
        self.span.tag("pid", os.getpid())
        os.environ["FERRET_TRACEPARENT"] = self.span.traceparent or ""
        os.environ["FERRET_TRACESTATE"] = self.span.tracestate or ""
        _ferret.set_thread_parent(self.span)

    def finish(self, status):
        if self.span is not None:
            self.span.tag("exit_code", status)
            self.span.end(_ferret.STATUS_ERROR if status else _ferret.STATUS_OK,
                          f"exit status {status}" if status else None)
        r = _ferret.flush(EXIT_FLUSH_MS)
        st = _ferret.stats()
        if self.daemon is not None:
            self.daemon.stop()
        if not self.quiet:
            where = f"ferret analyze {self.db_shown}" if self.db_shown else "ferret query"
            run = _ferret.run_id()
            note = "" if r == 0 else f" ({_ferret.strerror(r)})"
            print(f"ferret: run {run}: {st['recorded']} spans recorded, {st['dropped']} dropped{note}; "
                  f"see `{where} --tree --run {run}`", file=sys.stderr)


def main(argv):
    try:
        o = parse(argv)
    except UsageError as e:
        print(f"ferret: {e}", file=sys.stderr)
        return 2
    if o.get("help"):
        print(USAGE, end="")
        return 0
    if o["target"] is None:
        print("ferret: what should I run? (ferret run [--db DB] SCRIPT [ARGS...])", file=sys.stderr)
        return 2

    target = o["target"]
    if not o["module"]:
        target = os.path.abspath(target)
        if not os.path.exists(target):
            print(f"ferret: cannot run {o['target']}: no such file", file=sys.stderr)
            return 2
    prog = os.path.basename(target) if not o["module"] else target

    standalone = None
    if "FERRET_TRACEPARENT" not in os.environ or o["db"] is not None:
        try:
            standalone = _Standalone(o["db"], prog, [prog] + o["args"], o["quiet"])
        except _daemon.DaemonError as e:
            print(f"ferret: {e}", file=sys.stderr)
            return 1
    os.environ["FERRET_RUN_ID"] = o["run_id"] or os.environ.get("FERRET_RUN_ID") or _default_run_id(prog)
    if standalone:
        standalone.begin()

    # The program's view: argv, and sys.path[0] as python3 sets it.
    if o["module"]:
        sys.argv = [target] + o["args"]
        sys.path[0] = os.getcwd()
        roots = [os.getcwd()]
    else:
        sys.argv = [o["target"]] + o["args"]
        sys.path[0] = os.path.dirname(target)
        roots = [os.path.dirname(target), os.getcwd()]

    status = [0]
    # After the interpreter has joined the program's threads (atexit runs
    # after that), so that their spans are in: deliver everything, for the
    # command that waits for us to stop its daemon, or stop ours.
    if standalone:
        atexit.register(lambda: standalone.finish(status[0]))
    else:
        atexit.register(_ferret.flush, EXIT_FLUSH_MS)

    _activate.start_profiling(roots, o["include"])
    try:
        if o["module"]:
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        else:
            _run_script(target, o["target"])
    except SystemExit as e:
        status[0] = _exit_code(e)
    except KeyboardInterrupt:
        status[0] = 130
        raise
    except BaseException as e:
        _print_exception(e)
        status[0] = 1
    finally:
        _ferret.profile_stop()
    return status[0]
