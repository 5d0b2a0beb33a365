#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Function tracing against an oracle: generated C programs (random call
graphs with recursion, loops, branches, longjmp out of several frames and
threads) run under `ferret run`, and again with the cyg-counter library
preloaded, which counts every __cyg_profile_func_enter by function and call
site. Each function's call count and each caller -> callee edge must agree
exactly, with nothing dropped. The caller of a call is, for the oracle, the
function whose symbol range (nm) holds the call site.

FERRET_ORACLE_SEED=N repeats a run; FERRET_ORACLE_GRAPHS=N sets how many call
graphs (50 to an executable)."""
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

FERRET = os.environ["FERRET_CLI"]
COUNTER = os.environ["CYG_COUNTER"]
CC = os.environ.get("CC_FOR_ORACLE", "cc")
GRAPHS = int(os.environ.get("FERRET_ORACLE_GRAPHS", "1000"))
PER_EXE = 50
SEED = int(os.environ.get("FERRET_ORACLE_SEED", random.randrange(1 << 32)))
TRACED = re.compile(r"^(main|g\d+_(f\d+|run))$")

PRELUDE = r"""
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#define F __attribute__((noinline, noclone))
#define HELPER __attribute__((no_instrument_function, noinline))
"""


def gen_graph(rng, g):
    """One call graph: its functions, its own random stream, call budget and
    stack of longjmp guards (so that graphs may run in parallel threads)."""
    n = rng.randint(2, 9)
    depth = rng.randint(2, 7)
    out = [f"static unsigned long long g{g}_rng = {rng.randrange(1, 1 << 62)}ULL;",
           f"static long g{g}_budget = {rng.randint(50, 600)};",
           f"static jmp_buf *g{g}_guards[64];",
           f"static int g{g}_nguards;",
           f"HELPER static unsigned g{g}_next(void) {{ g{g}_rng = g{g}_rng * 6364136223846793005ULL + "
           f"1442695040888963407ULL; return (unsigned)(g{g}_rng >> 33); }}"]
    out += [f"F void g{g}_f{k}(int d);" for k in range(n)]
    for k in range(n):
        body = []
        for _ in range(rng.randint(1, 4)):
            j = rng.randrange(n)
            call = f"g{g}_f{j}(d - 1);"
            kind = rng.choice(["call", "call", "loop", "cond", "guard", "throw"])
            if kind == "call":
                body.append(call)
            elif kind == "loop":
                body.append(f"for (int i = 0; i < {rng.randint(2, 4)}; i++) {call}")
            elif kind == "cond":
                body.append(f"if (g{g}_next() % 3 == 0) {call}")
            elif kind == "guard":
                body.append(f"if (g{g}_nguards < 64) {{ jmp_buf env; g{g}_guards[g{g}_nguards++] = &env; "
                            f"if (setjmp(env) == 0) {call} g{g}_nguards--; }}")
            else:
                body.append(f"if (g{g}_nguards && g{g}_next() % 4 == 0) longjmp(*g{g}_guards[g{g}_nguards - 1], 1);")
        out.append(f"F void g{g}_f{k}(int d) {{\n  if (d <= 0 || g{g}_budget-- <= 0) return;\n  "
                   + "\n  ".join(body) + "\n}")
    out.append(f"F void g{g}_run(void) {{ g{g}_f0({depth}); }}")
    out.append(f"HELPER static void *g{g}_thread(void *arg) {{ (void)arg; g{g}_run(); return NULL; }}")
    return "\n".join(out)


def gen_program(rng, first):
    graphs = range(first, first + PER_EXE)
    src = [PRELUDE] + [gen_graph(rng, g) for g in graphs]
    threaded = [g for g in graphs if rng.random() < 0.3]
    main = ["F int main(void) {", f"  pthread_t t[{len(threaded) or 1}];"]
    main += [f"  pthread_create(&t[{i}], NULL, g{g}_thread, NULL);" for i, g in enumerate(threaded)]
    main += [f"  g{g}_run();" for g in graphs if g not in threaded]
    main += [f"  pthread_join(t[{i}], NULL);" for i in range(len(threaded))]
    main += ["  return 0;", "}"]
    return "\n".join(src + main) + "\n"


def symbols(exe):
    """(start, end, name) of the functions of a non-PIE executable."""
    out = subprocess.run(["nm", "-S", "--defined-only", exe], capture_output=True, text=True, check=True).stdout
    syms = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tT":
            start, size = int(parts[0], 16), int(parts[1], 16)
            syms.append((start, start + size, parts[3]))
    return sorted(syms)


def oracle(exe, tmp):
    out = os.path.join(tmp, "counts")
    preload = ":".join(p for p in (os.environ.get("ORACLE_PRELOAD"), COUNTER) if p)
    subprocess.run([exe], env=dict(os.environ, LD_PRELOAD=preload, CYG_COUNTER_OUT=out,
                                   ASAN_OPTIONS="detect_leaks=0"), check=True, stdout=subprocess.DEVNULL)
    syms = symbols(exe)
    by_start = {s: name for s, _, name in syms}

    def containing(addr):
        for s, e, name in syms:
            if s <= addr < e:
                return name
        return None

    calls, edges = Counter(), Counter()
    for line in open(out):
        fn, site, n = line.split()
        name = by_start.get(int(fn, 16), fn)
        caller = containing(int(site, 16))
        calls[name] += int(n)
        edges[(caller if caller and TRACED.match(caller) else ROOT, name)] += int(n)
    return calls, edges


def ferret(exe, tmp, run_id):
    db = os.path.join(tmp, "ferret.db")
    r = subprocess.run([FERRET, "run", "--db", db, "--run-id", run_id, "--json", exe], capture_output=True,
                       text=True)
    if r.returncode != 0:
        sys.exit(f"FAIL: ferret run {exe} exited {r.returncode}: {r.stderr.strip()}")
    summary = json.loads(r.stderr.strip().splitlines()[-1])
    tree = json.loads(subprocess.run([FERRET, "analyze", db, "--run", run_id, "--tree", "--json"],
                                     capture_output=True, text=True, check=True).stdout)
    calls, edges = tree_calls(tree, TRACED)
    return calls, edges, summary


def main():
    print(f"seed {SEED} (FERRET_ORACLE_SEED={SEED} repeats this run), {GRAPHS} call graphs")
    rng = random.Random(SEED)
    tmp = tempfile.mkdtemp(prefix="ferret-oracle-")
    total_calls = 0
    try:
        for first in range(0, GRAPHS, PER_EXE):
            src = os.path.join(tmp, f"prog{first}.c")
            exe = os.path.join(tmp, f"prog{first}")
            with open(src, "w") as f:
                f.write(gen_program(rng, first))
            subprocess.run([CC, "-O1", "-no-pie", "-finstrument-functions", "-pthread", "-o", exe, src],
                           check=True)
            want_calls, want_edges = oracle(exe, tmp)
            got_calls, got_edges, summary = ferret(exe, tmp, f"prog{first}")
            verdict((want_calls, want_edges), (got_calls, got_edges), summary.get("dropped"), src, SEED,
                    f"{first}..{first + PER_EXE - 1}")
            total_calls += sum(want_calls.values())
        print(f"{GRAPHS} call graphs, {total_calls} calls: counts and edges equal to the oracle's, 0 dropped")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
