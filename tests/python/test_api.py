#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The original tool's Python API on the C engine: Profiler, measure (as a
decorator of sync and async functions with fixed and dynamic names, and as
a context manager), annotate, model.status, start/end, close, exceptions,
asyncio.gather and threads. Each program runs in its own python3 process
with Profiler(db_path=...) starting a private ferretd; the spans are read
back with `ferret analyze DB --tree --expand --json`."""

import os
import socket

import ferrettest
from ferrettest import child_names, find, one, parent_of

PRELUDE = """\
import asyncio, sys, threading
from ferret import Profiler
profiler = Profiler(db_path="t.db", run_id="t")
"""


class Api(ferrettest.TestCase):
    def run_program(self, body, code=0):
        self.write("prog.py", PRELUDE + body)
        r = self.python("prog.py")
        self.assert_ok(r, code)
        return r

    def test_readme_example(self):
        """The README's explicit example, unchanged: one span per user with
        its db_fetch beneath, tags as annotated, warning exactly when slow."""
        self.fixture("readme_explicit.py")
        r = self.python("readme_explicit.py")
        self.assert_ok(r)
        t = self.tree("ferret_explicit.db", "semantic_demo_v1")
        self.assertEqual(t["run"], "semantic_demo_v1")
        user = one(t, "process_user:42")
        self.assertIn(user, t["roots"])
        self.assertEqual(user["kind"], "async")
        self.assertEqual(child_names(user), ["db_fetch"])
        fetch = user["children"][0]
        self.assertEqual(fetch["kind"], "async")
        self.assertEqual(fetch["tags"]["table"], "users")
        self.assertEqual(fetch["tags"]["shard_id"], 42 % 5)
        slow = fetch["tags"].get("performance_flag") == "slow_query"
        self.assertEqual(fetch["status"], "warning" if slow else "ok")
        if slow:
            self.assertIs(fetch["tags"]["alert"], True)
            self.assertGreater(fetch["duration_ns"], 40_000_000)
        self.assertGreaterEqual(fetch["duration_ns"], 10_000_000)
        self.assertGreaterEqual(user["duration_ns"], fetch["duration_ns"])
        # close() stopped the private daemon it started.
        from ferret import _daemon
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with self.assertRaises(OSError):
            sock.connect(os.path.join(_daemon.private_runtime_dir(self.path("ferret_explicit.db")), "query.sock"))
        sock.close()

    def test_names_python_cannot_encode_never_raise(self):
        """Lone surrogates (a file name that was not UTF-8), NUL, and an
        exception message with a surrogate: the code runs, nothing raises,
        and the spans keep their text, the original bytes escaped as \\xHH."""
        self.run_program(r"""
ran = []
with profiler.measure("bad\udc80name") as s:
    s.annotate(**{"k\ud800": "v\udce9", "n": "a\0b"})
    ran.append(1)
with profiler.measure("nul\0name"):
    ran.append(2)
try:
    with profiler.measure("err"):
        raise ValueError("boom \udce9")
except ValueError:
    ran.append(3)
profiler.close()
assert ran == [1, 2, 3], ran
""")
        t = self.tree("t.db", "t")
        bad = one(t, "bad\\x80name")
        self.assertEqual(bad["tags"], {"k\\ud800": "v\\xE9", "n": "a\\0b"})
        one(t, "nul\\0name")
        self.assertEqual(one(t, "err")["message"], "ValueError: boom \\xE9")

    def test_gather_batch_job(self):
        """asyncio.gather of four measured coroutines inside batch_job: four
        async children, each from start to completion including its awaits."""
        self.run_program("""
@profiler.measure(lambda args: f"process_user:{args[0]}")
async def process_user_data(user_id):
    with profiler.measure("db_fetch") as span:
        span.annotate(table="users", shard_id=user_id % 5)
        await asyncio.sleep(0.01 * (user_id % 4 + 1))
        if user_id == 999:
            span.annotate(performance_flag="slow_query", alert=True)
            span.model.status = "warning"
    return True

async def main():
    boot = profiler.start("system_boot", tags={"version": "2.0.0"})
    await asyncio.sleep(0.01)
    boot.end()
    with profiler.measure("batch_job", tags={"batch_size": 4}):
        await asyncio.gather(*[process_user_data(u) for u in [101, 102, 103, 999]])
    profiler.close()

asyncio.run(main())
""")
        t = self.tree("t.db", "t")
        boot = one(t, "system_boot")
        self.assertEqual(boot["tags"], {"version": "2.0.0"})
        self.assertGreaterEqual(boot["duration_ns"], 10_000_000)
        batch = one(t, "batch_job")
        self.assertEqual(batch["tags"], {"batch_size": 4})
        self.assertEqual(sorted(child_names(batch)),
                         ["process_user:101", "process_user:102", "process_user:103", "process_user:999"])
        for user in batch["children"]:
            uid = int(user["name"].split(":")[1])
            self.assertEqual(user["kind"], "async")
            self.assertGreaterEqual(user["duration_ns"], 10_000_000 * (uid % 4 + 1))
            self.assertLessEqual(user["start_ns"] + user["duration_ns"], batch["start_ns"] + batch["duration_ns"])
            self.assertEqual(child_names(user), ["db_fetch"])
            fetch = user["children"][0]
            self.assertEqual(fetch["tags"]["shard_id"], uid % 5)
            self.assertEqual(fetch["status"], "warning" if uid == 999 else "ok")
        # The four ran concurrently: the batch took about the longest one.
        self.assertLess(batch["duration_ns"], sum(u["duration_ns"] for u in batch["children"]))

    def test_decorators_dynamic_names(self):
        self.run_program("""
@profiler.measure(lambda args: f"item:{args[0]}")
def handle(i, scale=1):
    return leaf(i * scale)

@profiler.measure("leaf")
def leaf(x):
    return x + 1

@profiler.measure(lambda args: f"fetch:{args[0]}:{len(args)}")
async def fetch(key, *rest):
    await asyncio.sleep(0)
    return key

@profiler.measure()
def unnamed():
    pass

@profiler.measure(lambda args: 1 / 0)
def badly_named():
    pass

assert [handle(i, scale=2) for i in range(3)] == [1, 3, 5]
assert asyncio.run(fetch("k", 1, 2)) == "k"
unnamed(); badly_named()
assert handle.__name__ == "handle" and fetch.__name__ == "fetch"
profiler.close()
""")
        t = self.tree("t.db", "t")
        for i in range(3):
            item = one(t, f"item:{i}")
            self.assertEqual(item["kind"], "sync")
            self.assertEqual(child_names(item), ["leaf"])
        self.assertEqual(one(t, "fetch:k:3")["kind"], "async")
        one(t, "unnamed_span")
        one(t, "unknown_dynamic_span")

    def test_exceptions(self):
        """Status error, type and message as tags, and the exception itself
        reaches the caller unchanged."""
        self.run_program("""
class Boom(Exception):
    pass

err = Boom("bad value 7")

@profiler.measure("sync_fails")
def sync_fails():
    raise err

@profiler.measure("async_fails")
async def async_fails():
    await asyncio.sleep(0)
    raise KeyError("missing")

try:
    sync_fails()
except Boom as e:
    assert e is err
try:
    asyncio.run(async_fails())
except KeyError as e:
    assert e.args == ("missing",)
try:
    with profiler.measure("block_fails") as s:
        s.annotate(step=1)
        raise ValueError("block")
except ValueError as e:
    assert str(e) == "block"
with profiler.measure("fine"):
    pass
profiler.close()
""")
        t = self.tree("t.db", "t")
        cases = {"sync_fails": ("Boom", "bad value 7"), "async_fails": ("KeyError", "'missing'"),
                 "block_fails": ("ValueError", "block")}
        for name, (etype, msg) in cases.items():
            s = one(t, name)
            self.assertEqual(s["status"], "error", name)
            self.assertEqual(s["tags"]["error_type"], etype)
            self.assertEqual(s["tags"]["error"], msg)
            self.assertEqual(s["message"], f"{etype}: {msg}")
        self.assertEqual(one(t, "block_fails")["tags"]["step"], 1)
        self.assertEqual(one(t, "fine")["status"], "ok")

    def test_nesting_start_end_and_threads(self):
        """with-blocks nest; start() makes no span current; a thread started
        inside a block records under it."""
        self.run_program("""
def work():
    with profiler.measure("in_thread"):
        pass

with profiler.measure("outer") as outer:
    manual = profiler.start("manual", tags={"k": "v"})
    with profiler.measure("inner"):
        pass
    manual.end()
    manual.end()            # a second end does nothing
    th = threading.Thread(target=work)
    th.start(); th.join()
    outer.annotate(n=3, ratio=0.5, big=2**70, flag=False, obj=[1])
profiler.close()
profiler.close()            # and so does a second close
""")
        t = self.tree("t.db", "t")
        outer = one(t, "outer")
        self.assertEqual(sorted(child_names(outer)), ["in_thread", "inner", "manual"])
        self.assertEqual(one(t, "manual")["tags"], {"k": "v"})
        self.assertEqual(outer["tags"], {"n": 3, "ratio": 0.5, "big": str(2**70), "flag": False, "obj": "[1]"})
        self.assertNotEqual(one(t, "in_thread")["tid"], outer["tid"])

    def test_spans_flushed_at_exit_without_close(self):
        """Without close(), exit delivers the spans and stops the daemon."""
        self.run_program("""
with profiler.measure("last"):
    pass
""")
        one(self.tree("t.db", "t"), "last")

    def test_report(self):
        """The original Report API reads a run back."""
        self.run_program("""
@profiler.measure("step")
def step(fail):
    if fail:
        raise RuntimeError("x")
with profiler.measure("root"):
    for i in range(4):
        try:
            step(i == 3)
        except RuntimeError:
            pass
profiler.close()
""")
        r = self.python("-c", f"""
from ferret import Report
rep = Report({self.path('t.db')!r})
st = rep.analyze_run("t")["step"]
assert (st.count, st.error_count, st.error_rate) == (4, 1, 0.25), st
roots = rep.build_trees("t")
assert [n.span.name for n in roots] == ["root"], roots
assert [c.span.name for c in roots[0].children] == ["step"] * 4
assert roots[0].self_time >= 0
print("ok")
""")
        self.assert_ok(r)
        self.assertIn("ok", r.stdout)


if __name__ == "__main__":
    ferrettest.main()
