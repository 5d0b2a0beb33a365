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
import subprocess
import sys
import tempfile
import unittest

FERRET = os.environ["FERRET_CLI"]
HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures")
# The interpreter itself (meson may have started us through a wrapper script).
PYTHON = sys.executable
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
        return subprocess.run([PYTHON, *args], cwd=self.dir, env=full, capture_output=True, text=True,
                              timeout=timeout)

    def ferret_run(self, *args, env=None):
        """python3 -m ferret run ARGS."""
        return self.python("-m", "ferret", "run", *args, env=env)

    def ferret(self, *args):
        r = subprocess.run([FERRET, *args], cwd=self.dir, env=self.env, capture_output=True, text=True,
                           timeout=120)
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
