#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The call tree from call-path records against the tree built from the spans
themselves: generated programs (path-program.c: threads, explicit parents,
some known to the library by id only, forked and exec'd children with and
without the tracestate, bursts that make the library drop spans and
parents, names made at run time) record into a ferretd; for every run,
`ferret query --tree --json` (from the path records) must equal
`--tree --from-spans --json` node for node: count, total, self, min, max,
errors, warnings. A second ferretd keeps few paths (--max-paths): its trees
must hold every span, each path past the cap counted in the "(other paths)"
node under the nearest kept ancestor.

FERRET_ORACLE_SEED=N repeats a run; FERRET_ORACLE_PROGRAMS=N sets how many."""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

FERRET = os.environ["FERRET_CLI"]
FERRETD = os.environ["FERRETD"]
PROGRAM = os.environ["PATH_PROGRAM"]
PROGRAMS = int(os.environ.get("FERRET_ORACLE_PROGRAMS", "150"))
SEED = int(os.environ.get("FERRET_ORACLE_SEED", random.randrange(1 << 32)))
SMALL_CAP = 12
OTHER = "(other paths)"
FIELDS = ("count", "total_ns", "self_ns", "min_ns", "max_ns", "errors", "warnings")


class Daemon:
    def __init__(self, root, name, args=()):
        self.runtime_dir = os.path.join(root, name + "-rt")
        db = os.path.join(root, name + ".db")
        self.env = dict(os.environ, FERRET_RUNTIME_DIR=self.runtime_dir)
        self.proc = subprocess.Popen([FERRETD, "--db", db, "--runtime-dir", self.runtime_dir, "--log-level",
                                      "warning", *args], stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while subprocess.run([FERRET, "status"], env=self.env, capture_output=True).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"ferretd did not start: {self.proc.stderr.read().decode()}")
            time.sleep(0.05)    # polling a condition: the socket answers

    def tree(self, run, *extra):
        out = subprocess.run([FERRET, "query", "--run", run, "--tree", "--json", *extra], env=self.env,
                             capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"ferret query --tree {' '.join(extra)} of {run} failed: {out.stderr}")
        return json.loads(out.stdout)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def flatten(tree):
    """{(name, name, ...): node} over the whole tree."""
    flat = {}
    stack = [((n["name"],), n) for n in tree["roots"]]
    while stack:
        path, node = stack.pop()
        if path in flat:
            raise AssertionError(f"two nodes at {path}")
        flat[path] = node
        stack.extend((path + (c["name"],), c) for c in node.get("children", []))
    return flat


def compare_exact(run, by_path, by_span):
    a, b = flatten(by_path), flatten(by_span)
    problems = []
    for path in sorted(set(a) | set(b)):
        if path not in a or path not in b:
            problems.append(f"{' > '.join(path)}: only in the tree {'from paths' if path in a else 'from spans'}")
            continue
        for f in FIELDS:
            if a[path].get(f) != b[path].get(f):
                problems.append(f"{' > '.join(path)}: {f} {a[path].get(f)} from paths, {b[path].get(f)} from spans")
    return problems


def compare_capped(run, by_path, by_span):
    """Paths past the cap are counted in the (other paths) node under their
    nearest kept ancestor: every span is somewhere, once."""
    a, b = flatten(by_path), flatten(by_span)
    problems = []
    for path, node in a.items():
        if OTHER in path or node.get("process"):
            continue
        # Two paths of one name (under parents the tree merges) may fall on
        # either side of the cap: a kept node holds at most what it holds
        # in the tree from spans.
        if path not in b:
            problems.append(f"{' > '.join(path)}: not in the tree from spans")
        elif node["count"] > b[path]["count"]:
            problems.append(f"{' > '.join(path)}: count {node['count']} from paths, {b[path]['count']} from spans")
    # What the kept paths hold, plus the other nodes, is every span.
    kept = sum(n["count"] for p, n in a.items() if p[-1] != OTHER and not n.get("process"))
    other = sum(n["count"] for p, n in a.items() if p[-1] == OTHER)
    total = sum(n["count"] for p, n in b.items() if not n.get("process"))
    if kept + other != total:
        problems.append(f"{kept} spans in kept paths and {other} in {OTHER}, {total} in the tree from spans")
    return problems


def main():
    print(f"FERRET_ORACLE_SEED={SEED} FERRET_ORACLE_PROGRAMS={PROGRAMS}", flush=True)
    rng = random.Random(SEED)
    root = tempfile.mkdtemp(prefix="ferret-paths-")
    exact = Daemon(root, "exact")
    capped = Daemon(root, "capped", ("--max-paths", str(SMALL_CAP)))
    failures = 0
    dropped_runs = foreign_runs = 0
    try:
        for i in range(PROGRAMS):
            seed = rng.randrange(1, 1 << 63)
            small = rng.random() < 0.3
            for d in (exact, capped):
                env = dict(d.env, FERRET_RUN_ID=f"prog{i}")
                if small:
                    env["FERRET_BUFFER_SIZE"] = "64K"   # bursts overflow it: spans and parents dropped
                r = subprocess.run([PROGRAM, str(seed)], env=env, capture_output=True, text=True, timeout=120)
                if r.returncode != 0:
                    sys.exit(f"path-program {seed} failed ({r.returncode}): {r.stderr}")
            for d, compare in ((exact, compare_exact), (capped, compare_capped)):
                by_path = d.tree(f"prog{i}")
                by_span = d.tree(f"prog{i}", "--from-spans")
                if by_path.get("built_from") != "call paths":
                    sys.exit(f"prog{i} (seed {seed}): the tree was built from {by_path.get('built_from')}")
                problems = compare(f"prog{i}", by_path, by_span)
                if problems:
                    failures += 1
                    print(f"prog{i} (seed {seed}, {'small buffer' if small else 'default buffer'}, "
                          f"{'capped' if d is capped else 'exact'}):", file=sys.stderr)
                    for p in problems[:10]:
                        print("  " + p, file=sys.stderr)
            summary = json.loads(subprocess.run([FERRET, "query", "--run", f"prog{i}", "--json"], env=exact.env,
                                                capture_output=True, text=True, check=True).stdout)
            dropped_runs += summary.get("dropped", 0) > 0
            foreign_runs += any("filler" == r.get("name") for r in summary.get("rows", []))
    finally:
        exact.stop()
        capped.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(f"{PROGRAMS} programs, {dropped_runs} with dropped spans, {foreign_runs} with parents known by id; "
          f"{failures} trees differ")
    # The generator must reach the cases it is for.
    if dropped_runs == 0 or foreign_runs == 0:
        sys.exit("the generated programs dropped no spans or passed no parent by id: the oracle tested too little")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
