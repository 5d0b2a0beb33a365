#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Process spans against strace: generated process trees (fork, fork + exec,
vfork + exec, posix_spawn, system(), shell pipelines, exec in place, exit
statuses; see proc-tree.c) run under `ferret run`, itself under
`strace -f`. For every process strace saw, Ferret must have recorded what
strace says it ran: a span for the forked image when the child ran code of
its own before exec (a fork without CLONE_VM), one span per image it
exec'd, with its command line, in order, the exit status on the last, each
under a span of the process that created it (exec'd images beside the image
they replace), and nothing for processes strace did not see.

FERRET_ORACLE_SEED=N repeats a run; FERRET_ORACLE_GRAPHS=N sets how many
programs (each a process tree, run one after the other by one driver)."""
import glob
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

FERRET = os.environ["FERRET_CLI"]
PROC_TREE = os.environ["PROC_TREE"]
GRAPHS = int(os.environ.get("FERRET_ORACLE_GRAPHS", "1000"))
PER_RUN = 100
SEED = int(os.environ.get("FERRET_ORACLE_SEED", random.randrange(1 << 32)))
MAX_PROCESSES = 7


def gen_plan(rng, depth, budget):
    """A plan for proc-tree and the processes it costs, at most @budget[0]."""
    steps = []
    for _ in range(rng.randint(0 if depth else 1, 3)):
        kind = rng.choice("FfEVSY|WcX" if depth else "FfEVSY|")
        cost = {"|": 3, "Y": 2}.get(kind, 1)
        if kind in "Wc":
            steps.append("W" if kind == "W" else f"c{rng.randint(0, 3)}")
            continue
        if budget[0] < cost or depth >= 3:
            break
        budget[0] -= cost
        if kind == "|":
            steps.append("|{" + gen_plan(rng, depth + 1, budget) + "}{" + gen_plan(rng, depth + 1, budget) + "}")
        else:
            steps.append(kind + "{" + gen_plan(rng, depth + 1, budget) + "}")
        if kind == "X":
            break
    return "".join(steps)


# strace -ff: one file per process, so that no call is split in two.
CLONE = re.compile(r"^(clone3?|fork|vfork)\((.*)\)\s+= (\d+)$")
EXECVE = re.compile(r'^execve\("((?:[^"\\]|\\.)*)", \[(.*?)\](?:\.\.\.)?, .*\)\s+= 0$')
EXITED = re.compile(r"^\+\+\+ exited with (\d+) \+\+\+$")
CSTRING = re.compile(r'"((?:[^"\\]|\\.)*)"')


def unescape(s):
    return s.encode("latin-1").decode("unicode_escape").encode("latin-1").decode("utf-8", "replace")


def read_strace(prefix):
    """{pid: facts}: who created it, whether as a fork (its own memory), the
    command lines it exec'd, its exit status; and the pids the kernel gave
    out twice while the batch ran (strace -ff keeps one file per pid, and
    Ferret's spans are told apart by pid: neither can say which process
    such a pid was)."""
    procs = defaultdict(lambda: {"parent": None, "forked": False, "execs": [], "exit": None, "children": []})
    created = defaultdict(int)
    for path in glob.glob(prefix + ".*"):
        pid = int(path.rsplit(".", 1)[1])
        me = procs[pid]
        for line in open(path, encoding="latin-1"):
            line = line.rstrip("\n")
            m = CLONE.match(line)
            if m:
                call, args, child = m.group(1), m.group(2), int(m.group(3))
                if "CLONE_THREAD" in args:
                    continue
                created[child] += 1
                procs[child]["parent"] = pid
                procs[child]["forked"] = call == "fork" or (call.startswith("clone") and "CLONE_VM" not in args)
                me["children"].append(child)
                continue
            m = EXECVE.match(line)
            if m:
                argv = [unescape(a) for a in CSTRING.findall(m.group(2))]
                me["execs"].append(" ".join(argv))
                continue
            m = EXITED.match(line)
            if m:
                me["exit"] = int(m.group(1))
    return procs, sorted(pid for pid, n in created.items() if n > 1)


def read_ferret(tree):
    """{pid: [span]} of every process span, each with its tree parent's
    pid, in order of start. Iterative: trees are deep."""
    spans = defaultdict(list)
    stack = [(root, None) for root in tree["roots"]]
    while stack:
        node, parent = stack.pop()
        tags = node.get("tags", {})
        if "pid" in tags:
            spans[tags["pid"]].append(dict(node, parent_pid=parent))
        stack += [(child, tags.get("pid", parent)) for child in node.get("children", [])]
    for pid in spans:
        spans[pid].sort(key=lambda s: s["start_ns"])
    return spans


def span_parents(tree):
    """{span id: tree parent's span id}."""
    parents, stack = {}, [(root, None) for root in tree["roots"]]
    while stack:
        node, parent = stack.pop()
        parents[node["span_id"]] = parent
        stack += [(child, node["span_id"]) for child in node.get("children", [])]
    return parents


def subtree(procs, pid):
    out, stack = [], [pid]
    while stack:
        p = stack.pop()
        out.append(p)
        stack += procs[p]["children"]
    return out


def compare(procs, spans, parents, root_pid, plan):
    """The differences between strace and Ferret for one program."""
    diff = []
    for pid in subtree(procs, root_pid):
        want, got = procs[pid], spans.get(pid, [])
        forked = [s for s in got if s["tags"].get("forked")]
        images = [s for s in got if not s["tags"].get("forked")]
        if len(forked) != (1 if want["forked"] else 0):
            diff.append(f"pid {pid}: {len(forked)} forked spans, strace: {'a fork' if want['forked'] else 'no fork'}")
        cmdlines = [s["tags"].get("cmdline") for s in images]
        if cmdlines != want["execs"]:
            diff.append(f"pid {pid}: images {cmdlines}, strace: {want['execs']}")
        for s in got[:-1]:
            if s["tags"].get("ended_by") != "exec":
                diff.append(f"pid {pid}: span {s['name']} before the last not ended by exec: {s['tags']}")
        if got and got[-1]["tags"].get("exit_code") != want["exit"]:
            diff.append(f"pid {pid}: exit code {got[-1]['tags'].get('exit_code')}, strace: {want['exit']}")
        for s in got:
            if s["tags"].get("ppid") != want["parent"]:
                diff.append(f"pid {pid}: ppid tag {s['tags'].get('ppid')}, strace: {want['parent']}")
            if s["parent_pid"] != want["parent"]:
                diff.append(f"pid {pid}: {s['name']} is under pid {s['parent_pid']}, strace: {want['parent']}")
        if len({parents[s["span_id"]] for s in got}) > 1:
            diff.append(f"pid {pid}: its images are not siblings")
    return [f"  program {plan!r}: {d}" for d in diff]


class Reused:
    """A batch during which the kernel gave a pid out twice (pid_max
    wrapped while the machine forked a lot): it says nothing either way."""

    def __init__(self, pids):
        self.pids = pids


def run_batch_until_told_apart(tmp, plans, index, attempts=3):
    """run_batch(), again (in a fresh directory and database) while pids were reused."""
    for attempt in range(attempts):
        result = run_batch(tmp, plans, f"{index}-{attempt}")
        if not isinstance(result, Reused):
            return result
        print(f"batch {index}: pids {result.pids[:5]} were given out twice while it ran; running it again")
    return f"FAIL (seed {SEED}): batch {index}: pids were reused in each of {attempts} attempts"


def run_batch(tmp, plans, index):
    plan_file = os.path.join(tmp, f"plans{index}")
    with open(plan_file, "w") as f:
        f.write("".join(p + "\n" for p in plans))
    # Each batch has its database: `ferret run` starts a private ferretd
    # for it (strace sees it too, outside the programs' trees) and stops it.
    db, out = os.path.join(tmp, f"ferret{index}.db"), os.path.join(tmp, f"strace{index}", "t")
    os.makedirs(os.path.dirname(out))
    run_id = f"procs{index}"
    r = subprocess.run(["strace", "-f", "-ff", "-q", "--seccomp-bpf", "-e", "trace=process", "-e", "signal=none",
                        "-s", "4096", "-o", out, FERRET, "run", "--db", db, "--run-id", run_id, "--json",
                        PROC_TREE, "@" + plan_file], capture_output=True, text=True)
    if r.returncode != 0:
        return f"FAIL (seed {SEED}): ferret run exited {r.returncode}: {r.stderr.strip()[-2000:]}"
    last = r.stderr.strip().splitlines()[-1:]
    if not last or not last[0].startswith("{"):
        return f"FAIL (seed {SEED}): batch {index}: no summary from ferret run --json: {r.stderr.strip()[-2000:]}"
    summary = json.loads(last[0])
    tree = json.loads(subprocess.run([FERRET, "analyze", db, "--run", run_id, "--tree", "--expand", "--json"],
                                     capture_output=True, text=True, check=True).stdout)
    procs, reused = read_strace(out)
    if reused:
        return Reused(reused)
    spans = read_ferret(tree)
    parents = span_parents(tree)
    driver = [pid for pid, p in procs.items() if p["execs"] == [f"{PROC_TREE} @{plan_file}"]]
    if len(driver) != 1:
        return f"FAIL (seed {SEED}): strace saw {len(driver)} drivers"
    programs = procs[driver[0]]["children"]
    if len(programs) != len(plans):
        return f"FAIL (seed {SEED}): {len(programs)} programs started, {len(plans)} planned"
    diff = []
    for pid, plan in zip(programs, plans):
        diff += compare(procs, spans, parents, pid, plan)
    seen = {p for pid in programs for p in subtree(procs, pid)} | {driver[0]}
    extra = sorted(set(spans) - seen)
    if extra:
        diff.append(f"  spans of processes strace did not see: {extra[:10]}")
    if summary.get("dropped"):
        diff.append(f"  {summary['dropped']} spans dropped")
    if diff:
        return f"FAIL (seed {SEED}, FERRET_ORACLE_SEED={SEED} repeats it): batch {index}:\n" + "\n".join(diff[:40])
    return len(seen) - 1


def main():
    print(f"seed {SEED} (FERRET_ORACLE_SEED={SEED} repeats this run), {GRAPHS} programs")
    rng = random.Random(SEED)
    plans = [gen_plan(rng, 0, [rng.randint(1, MAX_PROCESSES)]) for _ in range(GRAPHS)]
    tmp = tempfile.mkdtemp(prefix="ferret-oracle-procs-")
    try:
        # Two batches at a time: most of a batch is waiting on ptrace stops.
        batches = [plans[first:first + PER_RUN] for first in range(0, GRAPHS, PER_RUN)]
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(lambda b: run_batch_until_told_apart(tmp, *b),
                                    [(p, i) for i, p in enumerate(batches)]))
        failures = [r for r in results if isinstance(r, str)]
        if failures:
            sys.exit("\n".join(failures))
        print(f"{GRAPHS} programs, {sum(results)} processes: images, command lines, parents and exit statuses "
              "equal to strace's, 0 dropped")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
