#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The Python package decides where a daemon's sockets are by asking the C
code the client library and the ferret command use (through the
extension), so all three answer alike: the user's daemon when it listens,
the same refusal of a directory others may write, and one private daemon
for a database whichever of `ferret run --db` and Profiler(db_path=)
started it."""

import json
import os

import ferrettest
from ferrettest import FERRET

from ferret import _ferret  # the build tree's package, which ferrettest puts first

FERRETD = os.environ["FERRETD"]

ASK = """\
import json
from ferret import _daemon, _ferret
print(json.dumps({"found": _ferret.runtime_dir(), "chosen": _daemon.choose(None)[0]}))
"""

RECORD = """\
from ferret import Profiler
p = Profiler(run_id="py")
with p.measure("work"):
    pass
p.close()
"""


class Sockets(ferrettest.TestCase):
    def setUp(self):
        super().setUp()
        # No runtime directory given: the user's own, under XDG_RUNTIME_DIR.
        self.xdg = self.path("xdg")
        os.mkdir(self.xdg, 0o700)
        del self.env["FERRET_RUNTIME_DIR"]
        self.env["XDG_RUNTIME_DIR"] = self.xdg
        self.user = os.path.join(self.xdg, "ferret")
        self.daemon = _ferret.start_daemon(FERRETD, self.path("user.db"), self.user)

    def tearDown(self):
        if self.daemon:
            os.chmod(self.user, 0o700)
            self.assertEqual(_ferret.stop_daemon(*self.daemon), 0)
        super().tearDown()

    def status(self, *args):
        r = ferrettest.run([FERRET, "status", "--json", *args], cwd=self.dir, env=self.env)
        return r, (json.loads(r.stdout) if r.returncode == 0 else None)

    def test_python_finds_the_daemon_the_command_finds(self):
        r = self.python("-c", ASK)
        self.assert_ok(r)
        self.assertEqual(json.loads(r.stdout), {"found": [self.user, None], "chosen": self.user})
        r, st = self.status()
        self.assert_ok(r)
        self.assertEqual(st["runtime_dir"], self.user)
        # The client library in Python records there too.
        self.assert_ok(self.python("-c", RECORD))
        runs = json.loads(self.ferret("runs", "--json"))
        self.assertEqual([run["run"] for run in runs], ["py"], runs)
        # Gone, it is not there: the system's directory, for both.
        self.assertEqual(_ferret.stop_daemon(*self.daemon), 0)
        self.daemon = None
        r = self.python("-c", "from ferret import _ferret; print(_ferret.runtime_dir()[0])")
        self.assertEqual(r.stdout.strip(), "/run/ferret")
        r, st = self.status()
        self.assertIn("/run/ferret", st["runtime_dir"] if st else r.stderr)

    def test_a_directory_others_may_write_is_refused_alike(self):
        os.chmod(self.user, 0o777)
        why = f"{self.user} may be written by others (mode 777)"
        r = self.python("-c", "from ferret import _ferret; import json; print(json.dumps(_ferret.runtime_dir()))")
        self.assertEqual(json.loads(r.stdout), [self.user, why])
        r, _ = self.status()
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stderr, f"ferret: will not use the ferretd in {self.user}: {why}\n")
        r = self.python("-c", RECORD)
        self.assert_ok(r)
        self.assertIn(f"ferret: not sending spans there: {why}", r.stderr)
        os.chmod(self.user, 0o700)
        r, st = self.status()
        self.assert_ok(r)
        self.assertEqual(st["received_spans"], 0, st)

    def test_profiler_and_ferret_run_share_a_private_daemon(self):
        self.write("prog.py", f"""\
import os, subprocess, sys
from ferret import Profiler, _ferret
env = dict(os.environ)
p = Profiler(db_path="x.db", run_id="py")
with p.measure("work"):
    pass
assert os.environ["FERRET_RUNTIME_DIR"] == _ferret.private_runtime_dir(_ferret.db_name("x.db"))
# Not told where Profiler's daemon listens: it finds it by the database's name.
r = subprocess.run([{FERRET!r}, "run", "--db", "./x.db", "--run-id", "c", "--", "true"], env=env,
                   capture_output=True, text=True)
sys.stderr.write(r.stderr)
p.close()
""")
        # The default daemon (the user's) serves another database: not it.
        r = self.python("prog.py")
        self.assert_ok(r)
        self.assertIn("ferret: run c: 1 spans stored, 0 dropped (see: ferret query --run c --tree)", r.stderr)
        self.assertEqual(len(self.tree("x.db", "c")["roots"]), 1)
        self.assertEqual(len(self.tree("x.db", "py")["roots"]), 1)


if __name__ == "__main__":
    ferrettest.main()
