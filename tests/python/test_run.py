#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Zero-code mode: `python3 -m ferret run` (what `ferret run my_script.py`
execs) records every function of the user's code through the C profile
hook, with the right parents across coroutines, threads, fork, spawn and
subprocess, and passes the script's exit status through."""

import os

import ferrettest
from ferrettest import FERRET, PYTHON, child_names, find, one, parent_of, walk


def names(tree):
    return {n["name"] for n, _ in walk(tree["roots"])}


class Run(ferrettest.TestCase):
    def test_readme_script(self):
        """The README's my_script.py, unchanged, in the original form
        `ferret run my_script.py --db traces.db`: main with
        fetch_database_item (about 20 ms, async) and heavy_computation
        (sync) beneath it; the await is not fetch_database_item's self time."""
        self.fixture("my_script.py")
        r = self.ferret_run("my_script.py", "--db", "traces.db")
        self.assert_ok(r)
        self.assertEqual(r.stdout, "Starting Workload...\nDone!\n")
        self.assertIn("ferret: run my_script.py-", r.stderr)
        t = self.tree("traces.db")
        main = one(t, "main")
        self.assertEqual(main["kind"], "async")
        # main is suspended while fetch_database_item awaits: its own
        # (await) child covers that time, as fetch's does.
        self.assertEqual(child_names(main), ["fetch_database_item", "(await)", "heavy_computation"])
        fetch, _, heavy = main["children"]
        self.assertEqual(fetch["kind"], "async")
        self.assertEqual(heavy["kind"], "sync")
        self.assertGreaterEqual(fetch["duration_ns"], 19_000_000)
        self.assertLess(fetch["duration_ns"], 500_000_000)
        self.assertLessEqual(fetch["start_ns"] + fetch["duration_ns"], heavy["start_ns"])
        # The process, then the script's module, then main.
        self.assertEqual(parent_of(t, main)["name"], "<module my_script.py>")
        self.assertEqual(t["roots"][0]["name"], "my_script.py")
        self.assertEqual(t["roots"][0]["tags"]["exit_code"], 0)
        # Nothing of asyncio or the standard library.
        self.assertEqual(names(t), {"my_script.py", "<module my_script.py>", "main", "fetch_database_item",
                                    "heavy_computation", "(await)"})
        # Self time: the 20 ms sleep is in the suspension, not in the coroutine.
        m = self.merged("traces.db")
        fetch_m = one(m, "fetch_database_item")
        self.assertLess(fetch_m["self_ns"], fetch_m["total_ns"] // 4)
        self.assertLess(one(m, "main")["self_ns"], one(m, "main")["total_ns"] // 2)
        # `ferret analyze traces.db --tree`, through the Python package too.
        r = self.python("-m", "ferret", "analyze", "traces.db", "--tree")
        self.assert_ok(r)
        self.assertRegex(r.stdout, r"main - [0-9.]+ ms \(async\)")
        self.assertRegex(r.stdout, r"fetch_database_item - (19|2[0-9])\.[0-9]+ ms \(async\)")
        self.assertRegex(r.stdout, r"heavy_computation - [0-9.]+ [mµ]s")

    def test_recursion_to_the_limit_against_setprofile(self):
        """Recursion as deep as Python allows (its default limit of 1,000),
        three times, beside ordinary calls: every call stored, as many as a
        sys.setprofile counter of the same script counts, nothing dropped."""
        script = self.write("deep.py", """
import sys

def down(n):
    return 0 if n == 0 else 1 + down(n - 1)

def leaf(i):
    return i * 2

def main():
    depth = sys.getrecursionlimit() - 20
    total = sum(down(depth) for _ in range(3))
    return total + sum(leaf(i) for i in range(500))

if __name__ == "__main__":
    print(main())
""")
        counter = self.write("count.py", """
import collections, runpy, sys
counts = collections.Counter()
def hook(frame, event, arg):
    if event == "call" and frame.f_code.co_filename == sys.argv[1]:
        counts[frame.f_code.co_name] += 1
sys.setprofile(hook)
runpy.run_path(sys.argv[1], run_name="__main__")
sys.setprofile(None)
for name, n in sorted(counts.items()):
    print(name, n)
""")
        r = self.python(counter, script)
        self.assert_ok(r)
        lines = r.stdout.split("\n")
        want = {name: int(n) for name, n in (line.split() for line in lines[1:] if line.strip())}
        self.assertGreaterEqual(want["down"], 2900)
        r = self.ferret_run(script, "--db", "deep.db")
        self.assert_ok(r)
        s = self.summary("deep.db")
        self.assertEqual(s["dropped"], 0)
        got = {row["name"]: row["count"] for row in s["rows"]}
        for name in ("down", "leaf", "main"):
            self.assertEqual(got.get(name), want[name], f"{name}: ferret {got.get(name)}, setprofile {want[name]}")

    def test_delegating_generators_self_time_against_cprofile(self):
        """A generator that consumes another (`for x in inner(): yield x`,
        and `yield from`) is charged with its own work, as cProfile's
        tottime says, not with nothing: the inner generator's lifetime
        overlaps the outer one's work. Shares of main's time, each from its
        own run of the same script."""
        script = self.write("gens.py", """
def work(n):
    x = 0
    for i in range(n):
        x += i
    return x

def inner():
    for i in range(30):
        work(20000)
        yield i

def outer():
    for x in inner():
        y = 0
        for i in range(60000):
            y += i
        yield x

def outer_from():
    y = 0
    for i in range(1500000):
        y += i
    yield from inner()

def main():
    for x in outer():
        work(40000)
    for x in outer_from():
        work(40000)

if __name__ == "__main__":
    main()
""")
        profile = self.write("prof.py", """
import cProfile, pstats, runpy, sys
cProfile.run("runpy.run_path(sys.argv[1], run_name='__main__')", "out.prof")
for (path, line, name), (cc, nc, tt, ct, callers) in pstats.Stats("out.prof").stats.items():
    if path == sys.argv[1]:
        print(name, tt, ct)
""")
        r = self.python(profile, script)
        self.assert_ok(r)
        prof = {name: (float(tt), float(ct)) for name, tt, ct in (line.split() for line in r.stdout.splitlines())}
        r = self.ferret_run(script, "--db", "gens.db")
        self.assert_ok(r)
        rows = {row["name"]: row for row in self.summary("gens.db")["rows"]}
        main_ferret, main_prof = rows["main"]["total_ns"], prof["main"][1]
        for name in ("outer", "outer_from", "inner", "work"):
            ferret_share = rows[name]["self_ns"] / main_ferret
            prof_share = prof[name][0] / main_prof
            print(f"{name}: self {ferret_share:.3f} of main in ferret, tottime {prof_share:.3f} in cProfile")
            # Each side pays its own hook at every resume, so shares agree
            # loosely; the defect this guards against gave outer nothing.
            # A loaded machine (a build beside the test) skews one run's
            # shares against the other's by up to half.
            self.assertGreater(ferret_share, prof_share * 0.3 - 0.01, name)
            self.assertLess(ferret_share, prof_share * 3 + 0.02, name)

    def test_pool_workers_terminated_deliver_their_spans(self):
        """`with multiprocessing.Pool()` terminates its workers (SIGTERM)
        on leaving: their spans are stored all the same, under the C
        command (the agent) and under python3 -m ferret run."""
        script = self.write("pool.py", """
import multiprocessing

def work(i):
    x = 0
    for k in range(20000):
        x += k
    return i

def main():
    with multiprocessing.Pool(4) as pool:
        assert sum(pool.map(work, range(200))) == 199 * 100

if __name__ == "__main__":
    main()
""")
        runs = {
            "agent": ferrettest.run([FERRET, "run", "--db", self.path("pool.db"), "--run-id", "agent", script],
                                    cwd=self.dir, env=self.env),
            "module": self.ferret_run(script, "--db", "pool.db", "--run-id", "module"),
        }
        for run, r in runs.items():
            self.assert_ok(r)
            s = self.summary("pool.db", run)
            counts = {row["name"]: row["count"] for row in s["rows"]}
            self.assertEqual((counts.get("work"), s["dropped"]), (200, 0), run)

    def test_sigterm_while_the_main_thread_sleeps_in_a_lock(self):
        """A forked child whose main thread sleeps in a lock (a Pool worker
        waiting for work) and that gets SIGTERM on another thread dies of it
        and delivers its spans. Python runs its own handlers only when the
        main thread comes back to the interpreter, which it never does:
        with a handler of Python's the child slept for ever (CI: a Pool
        whose terminate() waited on such a worker for 120 s)."""
        script = self.write("sleeper.py", """
import multiprocessing as mp, signal, threading, time

def work():
    return 1

def child(lock):
    work()
    main = threading.get_native_id()

    def signal_me_once_main_sleeps():
        # Waits for the main thread to sleep in the lock's futex.
        while True:
            with open(f"/proc/self/task/{main}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            with open(f"/proc/self/task/{main}/wchan") as f:
                wchan = f.read()
            if state == "S" and "futex" in wchan:
                break
            time.sleep(0.001)
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)

    threading.Thread(target=signal_me_once_main_sleeps).start()
    lock.acquire()   # the parent holds it

def main():
    lock = mp.Lock()
    lock.acquire()
    p = mp.get_context("fork").Process(target=child, args=(lock,))
    p.start()
    p.join(30)
    print("exitcode", p.exitcode)
    if p.exitcode is None:
        p.kill()

if __name__ == "__main__":
    main()
""")
        runs = {
            "agent": ferrettest.run([FERRET, "run", "--db", self.path("s.db"), "--run-id", "agent", script],
                                    cwd=self.dir, env=self.env),
            "module": self.ferret_run(script, "--db", "s.db", "--run-id", "module"),
        }
        for run, r in runs.items():
            self.assert_ok(r)
            self.assertIn("exitcode -15", r.stdout, run)
            s = self.summary("s.db", run)
            counts = {row["name"]: row["count"] for row in s["rows"]}
            self.assertEqual((counts.get("work"), s["dropped"]), (1, 0), run)

    def test_sys_exit_passes_through(self):
        """sys.exit(3): exit status 3, spans stored, the functions sys.exit
        unwound are not errors; the process span says exit status 3."""
        self.write("exits.py", "import sys\n\ndef work():\n    return 1\n\ndef main():\n    work()\n"
                               "    sys.exit(3)\n\nmain()\n")
        r = self.ferret_run("--db", "x.db", "--run-id", "x", "exits.py")
        self.assert_ok(r, 3)
        t = self.tree("x.db", "x")
        root = t["roots"][0]
        self.assertEqual((root["name"], root["status"], root["tags"]["exit_code"]), ("exits.py", "error", 3))
        self.assertEqual(one(t, "main")["status"], "ok")
        self.assertEqual(child_names(one(t, "main")), ["work"])

    def test_uncaught_exception(self):
        """An uncaught exception: python3's traceback (without ferret's frames),
        exit status 1, and the functions it left marked as errors."""
        self.write("fails.py", "def inner():\n    raise ValueError('no good')\n\n"
                               "def outer():\n    try:\n        inner()\n    except KeyError:\n        pass\n\n"
                               "def caught():\n    try:\n        inner()\n    except ValueError:\n        pass\n\n"
                               "caught()\nouter()\n")
        r = self.ferret_run("--db", "x.db", "--run-id", "x", "fails.py")
        self.assert_ok(r, 1)
        self.assertIn("ValueError: no good", r.stderr)
        self.assertIn('fails.py", line 2, in inner', r.stderr)
        self.assertNotIn("runpy", r.stderr)
        self.assertNotIn("_run.py", r.stderr)
        t = self.tree("x.db", "x")
        self.assertEqual(one(t, "outer")["status"], "error")
        self.assertEqual(one(t, "caught")["status"], "ok")
        self.assertEqual([n["status"] for n in find(t, "inner")], ["error", "error"])
        self.assertEqual([n.get("message") for n in find(t, "inner")], ["raised ValueError"] * 2)

    def test_exceptions_thrown_into_generators_are_not_theirs(self):
        """close() and throw() resume a generator with an exception that is
        not its failure; one raised in its own code is, with its type."""
        self.write("gens.py", """
def gen():
    try:
        yield 1
        yield 2
    except KeyError:
        yield 3

def broken():
    yield 1
    raise OSError("disk")

def main():
    a = gen(); next(a); a.close()
    b = gen(); next(b); b.throw(KeyError)
    c = gen(); next(c)
    try:
        c.throw(ValueError)
    except ValueError:
        pass
    try:
        list(broken())
    except OSError:
        pass

main()
""")
        r = self.ferret_run("--db", "g.db", "--run-id", "g", "gens.py")
        self.assert_ok(r)
        t = self.tree("g.db", "g")
        self.assertEqual([n["status"] for n in find(t, "gen")], ["ok"] * 3)
        self.assertEqual((one(t, "broken")["status"], one(t, "broken").get("message")), ("error", "raised OSError"))
        self.assertEqual(one(t, "main")["status"], "ok")

    def test_threads_processes_subprocess(self):
        """Threads, multiprocessing (fork and spawn) and a subprocess running
        Python land in the same run, under the function that started them."""
        self.write("child.py", "def child_main():\n    return 7\n\nchild_main()\n")
        self.write("procs.py", """\
import multiprocessing as mp, os, subprocess, sys, threading

def leaf(tag):
    return tag

def in_thread():
    leaf("thread")

def in_process(method):
    leaf(method)

def use_threads():
    ts = [threading.Thread(target=in_thread) for _ in range(3)]
    for t in ts: t.start()
    for t in ts: t.join()

def use_processes(method):
    p = mp.get_context(method).Process(target=in_process, args=(method,))
    p.start(); p.join()
    assert p.exitcode == 0

def use_subprocess():
    subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "child.py")], check=True)

def main():
    use_threads()
    use_processes("fork")
    use_processes("spawn")
    use_subprocess()

if __name__ == "__main__":
    main()
""")
        r = self.ferret_run("--db", "p.db", "--run-id", "p", "procs.py")
        self.assert_ok(r)
        t = self.tree("p.db", "p")
        me = one(t, "main")["pid"]

        threads = find(t, "in_thread")
        self.assertEqual(len(threads), 3)
        for th in threads:
            self.assertEqual(parent_of(t, th)["name"], "use_threads")
            self.assertEqual(child_names(th), ["leaf"])
        self.assertEqual(len({th["tid"] for th in threads} | {one(t, "main")["tid"]}), 4)

        procs = find(t, "in_process")
        self.assertEqual(len(procs), 2)
        for p in procs:
            self.assertEqual(parent_of(t, p)["name"], "use_processes")
            self.assertNotEqual(p["pid"], me)
            self.assertEqual(child_names(p), ["leaf"])

        child = one(t, "child_main")
        module = parent_of(t, child)
        self.assertEqual(module["name"], "<module child.py>")
        self.assertEqual(parent_of(t, module)["name"], "use_subprocess")
        self.assertNotEqual(child["pid"], me)

    def test_coroutines_and_generators(self):
        """A coroutine or generator is one span from first call to final
        return; tasks gathered in a coroutine are its children."""
        self.write("co.py", """\
import asyncio

def numbers(n):
    for i in range(n):
        yield i

async def job(i):
    await asyncio.sleep(0.01)
    await asyncio.sleep(0.01)
    return i

async def main():
    total = sum(numbers(5))
    results = await asyncio.gather(*(job(i) for i in range(4)))
    return total, results

asyncio.run(main())
""")
        r = self.ferret_run("--db", "c.db", "--run-id", "c", "co.py")
        self.assert_ok(r)
        t = self.tree("c.db", "c")
        gen = one(t, "numbers")
        self.assertEqual(gen["kind"], "sync")
        self.assertEqual(child_names(gen), ["(yield)"] * 5)
        jobs = find(t, "job")
        self.assertEqual(len(jobs), 4)
        for j in jobs:
            self.assertEqual(parent_of(t, j)["name"], "main")
            self.assertEqual(j["kind"], "async")
            self.assertGreaterEqual(j["duration_ns"], 20_000_000)
            self.assertEqual(child_names(j), ["(await)", "(await)"])

    def test_standard_library_only_on_request(self):
        """Installed and standard-library code is not recorded, unless
        --include asks for it."""
        self.write("uses_json.py", "import json\n\ndef encode():\n    return json.dumps({'a': 1})\n\nencode()\n")
        r = self.ferret_run("--db", "j.db", "--run-id", "plain", "uses_json.py")
        self.assert_ok(r)
        self.assertEqual(names(self.tree("j.db", "plain")), {"uses_json.py", "<module uses_json.py>", "encode"})
        r = self.ferret_run("--db", "j.db", "--run-id", "incl", "--include", "json/*", "uses_json.py")
        self.assert_ok(r)
        t = self.tree("j.db", "incl")
        self.assertEqual(parent_of(t, one(t, "dumps"))["name"], "encode")

    def test_module_and_script_arguments(self):
        """-m MODULE, and arguments after -- reach the program untouched."""
        os.mkdir(self.path("pkg"))
        self.write("pkg/__init__.py", "")
        self.write("pkg/tool.py", "import sys\n\ndef show():\n    print(sys.argv[1:])\n\n"
                                  "if __name__ == '__main__':\n    show()\n")
        r = self.ferret_run("--db", "m.db", "--run-id", "m", "-m", "pkg.tool", "--", "--db", "a", "b")
        self.assert_ok(r)
        self.assertEqual(r.stdout, "['--db', 'a', 'b']\n")
        t = self.tree("m.db", "m")
        self.assertEqual(parent_of(t, one(t, "show"))["name"], "<module pkg/tool.py>")

        self.write("args.py", "import sys\nprint(sys.argv)\n")
        r = self.ferret_run("--db", "m.db", "--quiet", "--", "args.py", "-x", "--db", "y")
        self.assert_ok(r)
        self.assertEqual(r.stdout, "['args.py', '-x', '--db', 'y']\n")
        self.assertEqual(r.stderr, "")

    def test_usage_errors(self):
        r = self.ferret_run()
        self.assert_ok(r, 2)
        self.assertIn("what should I run?", r.stderr)
        r = self.ferret_run("missing.py")
        self.assert_ok(r, 2)
        self.assertIn("cannot run missing.py", r.stderr)
        r = self.ferret_run("--bogus", "x.py")
        self.assert_ok(r, 2)
        self.assertIn("unknown option '--bogus'", r.stderr)

    def test_under_the_ferret_command(self):
        """What `ferret run my_script.py` does: the C command starts the
        daemon and runs `python3 -m ferret run -- my_script.py` with the
        agent preloaded; the script's spans go under the process's span."""
        self.fixture("my_script.py")
        env = dict(self.env)
        r = self.run_cli(["run", "--db", self.path("cli.db"), "--run-id", "cli", "--",
                          PYTHON, "-m", "ferret", "run", "--", "my_script.py"], env)
        self.assert_ok(r)
        t = self.tree("cli.db", "cli")
        module = one(t, "<module my_script.py>")
        self.assertEqual(parent_of(t, module)["name"], os.path.basename(PYTHON))
        main = one(t, "main")
        self.assertEqual(child_names(main), ["fetch_database_item", "(await)", "heavy_computation"])

    def test_keyboard_interrupt_under_the_ferret_command(self):
        """Under the agent (which watches SIGINT, to deliver the spans of a
        program a signal kills) Python still raises KeyboardInterrupt on
        SIGINT, as it does untraced: the agent's handler is invisible and
        gives way. The program catches it and goes on; its spans are stored."""
        self.write("ctrl_c.py", "import os, signal\n\ndef work():\n    return 1\n\n"
                                "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)\n"
                                "try:\n    os.kill(os.getpid(), signal.SIGINT)\n    while True:\n        pass\n"
                                "except KeyboardInterrupt:\n    print('caught')\nwork()\n")
        for run, cmd in (("ctrl-c-python", [PYTHON, "-m", "ferret", "run", "--", "ctrl_c.py"]),
                         ("ctrl-c", [PYTHON, "ctrl_c.py"]),
                         ("ctrl-c-shell", ["sh", "-c", f"{PYTHON} ctrl_c.py"])):
            r = self.run_cli(["run", "--db", self.path("c.db"), "--run-id", run, "--", *cmd], dict(self.env))
            self.assert_ok(r)
            self.assertEqual(r.stdout.split(), ["True", "caught"], run)
        counts = {row["name"]: row["count"] for row in self.summary("c.db", "ctrl-c-python")["rows"]}
        self.assertEqual(counts.get("work"), 1)

    def run_cli(self, args, env):
        return ferrettest.run([FERRET, *args], cwd=self.dir, env=env)


if __name__ == "__main__":
    ferrettest.main()
