# SPDX-License-Identifier: MIT
"""Helpers of the Python tests: run Python programs the way users do, then
read the stored spans back through the ferret command.

Every test works in its own temporary directory, with FERRET_RUNTIME_DIR
pointing at an empty directory there, so no daemon of the user's or the
system's is ever used: each database gets its private ferretd (started by
the code under test, which waits for its READY=1), stopped when the program
ends.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

FERRET = os.environ["FERRET_CLI"]
HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures")
# The interpreter itself (meson may have started us through a wrapper script).
PYTHON = sys.executable


def _stacks(session):
    """What the processes of @session are doing: ps, then each one's stacks
    (gdb's, with the kernel's where gdb is missing)."""
    ps = subprocess.run(["ps", "-s", str(session), "-o", "pid,ppid,stat,wchan:24,etime,args"],
                        capture_output=True, text=True).stdout
    out = [f"processes of the command that hung:\n{ps}"]
    for line in ps.splitlines()[1:]:
        pid = line.split()[0]
        if shutil.which("gdb"):
            bt = subprocess.run(["gdb", "-p", pid, "-batch", "-ex", "thread apply all bt"],
                                capture_output=True, text=True, timeout=60).stdout
            out.append(f"--- {pid}: {bt[-6000:]}")
        else:
            for task in sorted(os.listdir(f"/proc/{pid}/task")) if os.path.isdir(f"/proc/{pid}") else []:
                try:
                    with open(f"/proc/{pid}/task/{task}/stack") as f:
                        out.append(f"--- {pid}/{task}:\n{f.read()}")
                except OSError:
                    pass
    return "\n".join(out)


def run(args, timeout=120, **kw):
    """subprocess.run(args, capture_output=True, text=True, ...), except
    that a command still running at its timeout has the stacks of its
    processes printed, and its Python processes' tracebacks (SIGABRT to
    faulthandler), before it is killed: a hang in CI says where it was."""
    env = dict(kw.pop("env", None) or os.environ)
    env.setdefault("PYTHONFAULTHANDLER", "1")
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                          start_new_session=True, **kw) as p:
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            print(f"HANG: {args} still runs after {timeout} s", file=sys.stderr, flush=True)
            print(_stacks(p.pid), file=sys.stderr, flush=True)
            pythons = subprocess.run(["pgrep", "-s", str(p.pid), "python"], capture_output=True, text=True).stdout
            for pid in pythons.split():
                os.kill(int(pid), signal.SIGABRT)
            try:
                out, err = p.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
            print(f"its output:\n{out[-4000:]}\nits errors:\n{err[-8000:]}", file=sys.stderr, flush=True)
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            raise
        return subprocess.CompletedProcess(p.args, p.returncode, out, err)
BUILD_PYTHONPATH = os.environ.get("FERRET_PYTHONPATH") or os.path.join(os.environ["FERRET_BUILD_ROOT"], "python")
if BUILD_PYTHONPATH not in sys.path:
    sys.path.insert(0, BUILD_PYTHONPATH)


class TestCase(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ferret-py-")
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("FERRET_") or k in ("FERRET_CLI", "FERRETD")}
        self.env.update({
            "FERRET_RUNTIME_DIR": os.path.join(self.dir, "no-daemon-here"),
            "PYTHONPATH": BUILD_PYTHONPATH,
            "NO_COLOR": "1",
        })
        if "FERRETD" in os.environ:
            self.env["FERRET_FERRETD"] = os.environ["FERRETD"]
        self.env["FERRET_CLI"] = FERRET

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def fixture(self, name):
        """Copies a fixture into the test's directory; returns its path there."""
        dst = self.path(name)
        shutil.copy(os.path.join(FIXTURES, name), dst)
        return dst

    def write(self, name, text):
        with open(self.path(name), "w") as f:
            f.write(text)
        return self.path(name)

    def python(self, *args, env=None, timeout=120):
        """python3 ARGS in the test's directory; returns the CompletedProcess."""
        full = dict(self.env)
        full.update(env or {})
        return run([PYTHON, *args], cwd=self.dir, env=full, timeout=timeout)

    def ferret_run(self, *args, env=None):
        """python3 -m ferret run ARGS."""
        return self.python("-m", "ferret", "run", *args, env=env)

    def ferret(self, *args):
        r = run([FERRET, *args], cwd=self.dir, env=self.env)
        if r.returncode != 0:
            raise AssertionError(f"ferret {' '.join(args)} failed ({r.returncode}): {r.stderr}")
        return r.stdout

    def tree(self, db, run=None):
        """The run's spans, one node each (query --tree --expand --json)."""
        args = ["analyze", self.path(db), "--tree", "--expand", "--json"] + (["--run", run] if run else [])
        return json.loads(self.ferret(*args))

    def merged(self, db, run=None):
        args = ["analyze", self.path(db), "--tree", "--json"] + (["--run", run] if run else [])
        return json.loads(self.ferret(*args))

    def summary(self, db, run=None):
        args = ["analyze", self.path(db), "--json"] + (["--run", run] if run else [])
        return json.loads(self.ferret(*args))

    def assert_ok(self, r, code=0):
        self.assertEqual(r.returncode, code, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}")


def walk(nodes, parent=None):
    """(node, parent) for every node of a tree, depth first."""
    for n in nodes:
        yield n, parent
        yield from walk(n.get("children", []), n)


def find(tree, name):
    """Every node named ``name`` in a tree (a dict with "roots", or a node list)."""
    nodes = tree["roots"] if isinstance(tree, dict) else tree
    return [n for n, _ in walk(nodes) if n["name"] == name]


def one(tree, name):
    found = find(tree, name)
    if len(found) != 1:
        raise AssertionError(f"expected one span {name!r}, found {len(found)}: "
                             f"{sorted({n['name'] for n, _ in walk(tree['roots'] if isinstance(tree, dict) else tree)})}")
    return found[0]


def parent_of(tree, node):
    for n, p in walk(tree["roots"]):
        if n is node:
            return p
    return None


def child_names(node):
    return [c["name"] for c in node.get("children", [])]


def main():
    unittest.main(verbosity=2)
