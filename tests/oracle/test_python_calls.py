#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The Python hook against an oracle: generated Python programs (random call
graphs with recursion, loops, branches, exceptions raised and caught, and
generators consumed by for loops, `yield from`, delegating loops and
partial consumption) run under `python3 -m ferret run`, and again under a
sys.setprofile counter. Each function's number of calls (a generator counts
once, when it starts: the RESUME 0 instruction; one closed before it started
counts none) and each caller -> callee edge (the caller is the calling
frame, f_back) must agree exactly, with nothing dropped.

FERRET_ORACLE_SEED=N repeats a run; FERRET_ORACLE_GRAPHS=N sets how many call
graphs (50 to a program)."""
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter

from compare import ROOT, tree_calls, verdict

PYTHON = sys.executable
GRAPHS = int(os.environ.get("FERRET_ORACLE_GRAPHS", "1000"))
PER_PROGRAM = 50
SEED = int(os.environ.get("FERRET_ORACLE_SEED", random.randrange(1 << 32)))
TRACED = re.compile(r"^g\d+_(f\d+|run)$")
ENV = dict(os.environ, PYTHONPATH=os.environ.get("FERRET_PYTHONPATH", os.environ.get("PYTHONPATH", "")))

ORACLE = r'''
import collections, dis, json, runpy, sys
RESUME = dis.opmap["RESUME"]
calls, edges = collections.Counter(), collections.Counter()
def hook(frame, event, arg):
    if event != "call":
        return
    code = frame.f_code
    if not code.co_filename.endswith("prog.py"):
        return
    raw = code.co_code
    if raw[frame.f_lasti] != RESUME or raw[frame.f_lasti + 1] != 0:
        return   # a generator resumed, or closed before it started
    back = frame.f_back
    caller = back.f_code.co_name if back is not None and back.f_code.co_filename.endswith("prog.py") else "-"
    calls[code.co_name] += 1
    edges[caller + " " + code.co_name] += 1
sys.setprofile(hook)
runpy.run_path(sys.argv[1], run_name="__main__")
sys.setprofile(None)
print(json.dumps({"calls": calls, "edges": edges}))
'''


def gen_graph(rng, g):
    n = rng.randint(2, 8)
    kinds = ["gen" if rng.random() < 0.35 else "plain" for _ in range(n)]
    kinds[0] = "plain"
    out = [f"R{g} = random.Random({rng.randrange(1 << 30)})", f"B{g} = [{rng.randint(40, 400)}]"]
    for k in range(n):
        body = []
        for _ in range(rng.randint(1, 4)):
            j = rng.randrange(n)
            callee = f"g{g}_f{j}(d - 1)"
            if kinds[j] == "plain":
                call = callee
            elif kinds[k] == "gen":
                call = rng.choice([f"yield from {callee}", f"for x in {callee}: yield x",
                                   f"for x in {callee}: pass"])
            else:
                call = rng.choice([f"for x in {callee}: pass", f"list({callee})",
                                   f"it = iter({callee}); next(it, None); it.close()"])
            kind = rng.choice(["call", "call", "loop", "cond", "guard", "throw"])
            if kind == "call":
                body.append(call)
            elif kind == "loop":
                body.append(f"for i in range({rng.randint(2, 3)}):\n        {call}")
            elif kind == "cond":
                body.append(f"if R{g}.random() < 0.5:\n        {call}")
            elif kind == "guard":
                body.append(f"try:\n        {call}\n    except ValueError:\n        pass")
            else:
                body.append(f"if R{g}.random() < 0.15:\n        raise ValueError({k})")
        if kinds[k] == "gen":
            body.append("yield d")
        out.append(f"def g{g}_f{k}(d):\n    B{g}[0] -= 1\n    if d <= 0 or B{g}[0] <= 0:\n        return\n    "
                   + "\n    ".join(body))
    depth = rng.randint(2, 6)
    out.append(f"def g{g}_run():\n    try:\n        g{g}_f0({depth})\n    except ValueError:\n        pass")
    return "\n\n".join(out)


def gen_program(rng, first):
    graphs = range(first, first + PER_PROGRAM)
    src = ["import random"] + [gen_graph(rng, g) for g in graphs]
    src.append("if __name__ == '__main__':\n" + "".join(f"    g{g}_run()\n" for g in graphs))
    return "\n\n".join(src) + "\n"


def oracle(tmp):
    r = subprocess.run([PYTHON, os.path.join(tmp, "oracle.py"), os.path.join(tmp, "prog.py")], cwd=tmp,
                       capture_output=True, text=True, env=ENV)
    if r.returncode != 0:
        sys.exit(f"FAIL: the oracle failed: {r.stderr}")
    d = json.loads(r.stdout)
    edges = Counter()
    for key, n in d["edges"].items():
        caller, callee = key.split()
        if TRACED.match(callee):
            edges[(caller if TRACED.match(caller) else ROOT, callee)] += n
    return Counter({name: n for name, n in d["calls"].items() if TRACED.match(name)}), edges


def ferret(tmp, run_id):
    db = os.path.join(tmp, "ferret.db")
    r = subprocess.run([PYTHON, "-m", "ferret", "run", "prog.py", "--db", db, "--run-id", run_id], cwd=tmp,
                       capture_output=True, text=True, env=ENV)
    if r.returncode != 0:
        sys.exit(f"FAIL: ferret run exited {r.returncode}: {r.stderr}")
    cli = [PYTHON, "-m", "ferret", "analyze", db, "--run", run_id, "--json"]
    summary = json.loads(subprocess.run(cli, capture_output=True, text=True, check=True, env=ENV).stdout)
    tree = json.loads(subprocess.run(cli + ["--tree"], capture_output=True, text=True, check=True, env=ENV).stdout)
    calls, edges = tree_calls(tree, TRACED)
    return calls, edges, summary["dropped"]


def main():
    print(f"seed {SEED} (FERRET_ORACLE_SEED={SEED} repeats this run), {GRAPHS} call graphs")
    rng = random.Random(SEED)
    tmp = tempfile.mkdtemp(prefix="ferret-pyoracle-")
    total = 0
    try:
        with open(os.path.join(tmp, "oracle.py"), "w") as f:
            f.write(ORACLE)
        for first in range(0, GRAPHS, PER_PROGRAM):
            src = os.path.join(tmp, "prog.py")
            with open(src, "w") as f:
                f.write(gen_program(rng, first))
            want_calls, want_edges = oracle(tmp)
            got_calls, got_edges, dropped = ferret(tmp, f"prog{first}")
            verdict((want_calls, want_edges), (got_calls, got_edges), dropped, src, SEED,
                    f"{first}..{first + PER_PROGRAM - 1}")
            total += sum(want_calls.values())
        print(f"{GRAPHS} call graphs, {total} calls: counts and edges equal to the oracle's, 0 dropped")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
