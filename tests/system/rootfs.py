# SPDX-License-Identifier: MIT
"""Shared code of the system tests: a cached pristine Debian 12 root, a
throwaway overlay copy of it holding a clone of the repository, and ways to
run commands inside that copy (systemd-nspawn --pipe) or inside it booted
(systemd-nspawn -b, entered with nsenter)."""
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

CACHE = os.environ.get("FERRET_TEST_CACHE", "/var/cache/ferret-test")
SOURCE = os.environ.get("FERRET_SOURCE_ROOT",
                        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
CI = os.environ.get("CI") == "true"
# Changing the recipe (or its version, for a change debootstrap's command
# line does not show) changes the key, and so builds a new pristine root.
RECIPE = ["debootstrap", "--variant=minbase", "bookworm", "{dir}", "http://deb.debian.org/debian"]
RECIPE_VERSION = 1
KEY = hashlib.sha256(f"{RECIPE_VERSION} {' '.join(RECIPE)}".encode()).hexdigest()[:12]
HOST_PACKAGES = ["debootstrap", "systemd-container", "git"]
# A clean environment for commands inside, so the host's leaks nothing in.
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_start = time.monotonic()
failures = []


def log(msg):
    print(f"[{time.monotonic() - _start:7.1f}s] {msg}", flush=True)


def fail(what):
    """Records a failed check; the test goes on, and exits 1 at the end."""
    failures.append(what)
    print(f"FAIL: {what}", flush=True)


def check(ok, what):
    if not ok:
        fail(what)
    return ok


def skip_or_fail(why):
    """A prerequisite is impossible: skip (77), except under CI, which fails."""
    if CI:
        print(f"FAIL: {why}", flush=True)
        sys.exit(1)
    print(f"SKIP: {why}", flush=True)
    sys.exit(77)


def finish(name):
    log(f"{name}: {'FAILED' if failures else 'passed'} in {time.monotonic() - _start:.0f} s")
    for f in failures:
        print(f"FAIL: {f}")
    sys.exit(1 if failures else 0)


def run_host(cmd, timeout, **kw):
    return subprocess.run(cmd, timeout=timeout, text=True, **kw)


def ensure_host():
    """Checks what the host must give, and installs the Debian packages it lacks."""
    # SIGTERM (a test runner's timeout) unwinds like an error, so the
    # container is stopped and the copy unmounted.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    if os.geteuid() != 0:
        skip_or_fail("the system tests need root")
    if "overlay" not in open("/proc/filesystems").read():
        run_host(["modprobe", "overlay"], 60)
        if "overlay" not in open("/proc/filesystems").read():
            skip_or_fail("no overlayfs in this kernel")
    missing = [p for p in HOST_PACKAGES
               if "install ok installed" not in run_host(
                   ["dpkg-query", "-W", "-f=${Status}", p], 60, capture_output=True).stdout]
    if missing:
        log(f"installing on the host: {' '.join(missing)}")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        ok = run_host(["apt-get", "update", "-q"], 600, env=env).returncode == 0 and \
            run_host(["apt-get", "install", "-y", "-q", *missing], 900, env=env).returncode == 0
        if not ok:
            skip_or_fail(f"cannot install {' '.join(missing)}")


def pristine_root():
    """Returns the cached pristine root, building it first if it is missing.
    It is built in a temporary directory and renamed when complete, under a
    lock, so a run never sees half a root and two runs never build twice."""
    root = os.path.join(CACHE, f"root-{KEY}")
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(os.path.join(root, "ferret-test-key")):
            log(f"pristine root: {root} (cached)")
            return root
        for old in os.listdir(CACHE):
            # Roots of an older recipe, and builds that died, go.
            if re.fullmatch(r"(root|tmp)-\w+", old):
                log(f"removing stale {old}")
                _remove_tree(os.path.join(CACHE, old))
        tmp = os.path.join(CACHE, f"tmp-{KEY}")
        log(f"debootstrap into {tmp} (about a minute)")
        t = time.monotonic()
        cmd = [a.format(dir=tmp) for a in RECIPE]
        r = run_host(cmd, 1800, capture_output=True)
        if r.returncode != 0:
            print(r.stdout[-3000:] + r.stderr[-3000:])
            skip_or_fail(f"debootstrap failed ({r.returncode}): no network to deb.debian.org?")
        with open(os.path.join(tmp, "ferret-test-key"), "w") as f:
            f.write(f"{RECIPE_VERSION} {' '.join(RECIPE)}\n")
        os.rename(tmp, root)
        log(f"debootstrap took {time.monotonic() - t:.0f} s")
        return root


def _mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p == path or p.startswith(path + "/")]


def _remove_tree(path):
    """Removes path, but never through a mount point left inside it (a
    killed debootstrap leaves /proc mounted in its target, a killed test its
    overlay): removing there would reach the host or the cache."""
    for point in sorted(_mounts_under(path), reverse=True):
        run_host(["umount", "-l", point], 60)
    left = _mounts_under(path)
    if left:
        fail(f"still mounted, not removing {path}: {left}")
        return
    shutil.rmtree(path, ignore_errors=True)


class Root:
    """A throwaway overlay copy of the pristine root, with the repository
    cloned into /root/ferret. Use it in a with statement: leaving it kills
    whatever still runs in the copy, unmounts it and removes it."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="ferret-root-")
        self.dir = os.path.join(self.tmp, "root")
        self.name = f"ferret-test-{os.getpid()}"
        self.archives = os.path.join(CACHE, "apt-archives")

    def __enter__(self):
        try:
            self._setup()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(self, *exc):
        self.cleanup()

    def _setup(self):
        lower = pristine_root()
        for d in ("upper", "work", "root"):
            os.mkdir(os.path.join(self.tmp, d))
        opts = f"lowerdir={lower},upperdir={self.tmp}/upper,workdir={self.tmp}/work"
        r = run_host(["mount", "-t", "overlay", "overlay", "-o", opts, self.dir], 60,
                     capture_output=True)
        if r.returncode != 0:
            skip_or_fail(f"cannot mount an overlay: {r.stderr.strip()}")
        # Downloaded packages are kept between runs; apt's sandbox user
        # downloads into partial/, so it owns that.
        os.makedirs(os.path.join(self.archives, "partial"), exist_ok=True)
        for line in open(os.path.join(self.dir, "etc/passwd")):
            if line.startswith("_apt:"):
                os.chown(os.path.join(self.archives, "partial"), int(line.split(":")[2]), 0)
        self._clone()

    def _clone(self):
        dest = os.path.join(self.dir, "root/ferret")
        r = run_host(["git", "clone", "-q", "--no-hardlinks", SOURCE, dest], 300,
                     capture_output=True)
        if r.returncode != 0:
            raise RuntimeError(f"git clone {SOURCE}: {r.stderr.strip()}")
        head = run_host(["git", "-C", SOURCE, "rev-parse", "--short", "HEAD"], 60,
                        capture_output=True).stdout.strip()
        diff = run_host(["git", "-C", SOURCE, "diff", "HEAD", "--binary"], 60,
                        capture_output=True).stdout
        if diff:
            changed = run_host(["git", "-C", SOURCE, "diff", "HEAD", "--name-only"], 60,
                               capture_output=True).stdout.split()
            log(f"note: the source tree has uncommitted changes; applying git diff HEAD "
                f"on top of {head} ({len(changed)} files: {' '.join(changed[:8])}"
                f"{' ...' if len(changed) > 8 else ''})")
            r = run_host(["git", "-C", dest, "apply", "--binary", "-"], 60, input=diff,
                         capture_output=True)
            if r.returncode != 0:
                raise RuntimeError(f"git apply: {r.stderr.strip()}")
        # New files not yet added (nor ignored) come too: a script the
        # working tree already calls would otherwise be missing.
        new = run_host(["git", "-C", SOURCE, "ls-files", "--others", "--exclude-standard", "-z"],
                       60, capture_output=True).stdout.split("\0")
        new = [f for f in new if f]
        if new:
            log(f"note: copying {len(new)} untracked files too: {' '.join(new[:8])}"
                f"{' ...' if len(new) > 8 else ''}")
            for f in new:
                os.makedirs(os.path.dirname(os.path.join(dest, f)), exist_ok=True)
                shutil.copy2(os.path.join(SOURCE, f), os.path.join(dest, f))
        log(f"cloned {SOURCE} at {head} into /root/ferret")

    def nspawn_args(self):
        return ["systemd-nspawn", "-D", self.dir, f"--machine={self.name}", "--register=no",
                "--keep-unit", "-q", f"--bind={self.archives}:/var/cache/apt/archives"]

    def run(self, script, timeout, env=None, label=None):
        """Runs a bash script in the (not booted) copy, in /root/ferret, with
        its output shown as it comes and returned. On timeout nspawn gets
        SIGTERM, which makes it kill the container."""
        cmd = self.nspawn_args() + ["--pipe", "--resolv-conf=copy-host", "--chdir=/root/ferret"]
        for k, v in dict({"PATH": PATH, "HOME": "/root", "LANG": "C.UTF-8"}, **(env or {})).items():
            cmd.append(f"--setenv={k}={v}")
        return _stream(cmd + ["/bin/bash", "-c", script], timeout, label)

    def processes(self):
        """The host's processes whose root directory is this copy."""
        me = os.stat(self.dir)
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            with contextlib.suppress(OSError):
                st = os.stat(f"/proc/{pid}/root")
                if (st.st_dev, st.st_ino) == (me.st_dev, me.st_ino) and int(pid) != os.getpid():
                    found.append(int(pid))
        return found

    def cleanup(self):
        # A second SIGTERM must not stop the cleanup halfway; it is bounded
        # by its own timeouts.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if os.path.ismount(self.dir):
            for pid in self.processes():
                log(f"killing {pid} ({_comm(pid)}), still running in the copy")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 30
            while self.processes() and time.monotonic() < deadline:
                time.sleep(0.1)
            run_host(["umount", "-R", self.dir], 60)
        _remove_tree(self.tmp)


def _comm(pid):
    with contextlib.suppress(OSError):
        return open(f"/proc/{pid}/comm").read().strip()
    return "?"


def _stream(cmd, timeout, label=None, input=None):
    """Runs cmd with stdout and stderr merged, printing each line (prefixed by
    label) as it comes; returns (exit status, output, seconds). Exit status
    None means it timed out and was stopped."""
    t = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE if input else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         errors="replace", start_new_session=True)
    if input:
        p.stdin.write(input)
        p.stdin.close()
    out = []
    # The timer stops the command at its deadline, which ends its output.
    stopped = threading.Event()
    timer = threading.Timer(timeout, _stop, [p, stopped])
    timer.start()
    try:
        for line in p.stdout:
            # nspawn's complaint that the host's /run is no tmpfs is noise.
            if line.startswith("Attempted to remove disk file system under"):
                continue
            out.append(line)
            if label is not None:
                print(f"  {label}| {line}", end="", flush=True)
        p.wait()
    finally:
        timer.cancel()
    rc = None if stopped.is_set() else p.returncode
    return rc, "".join(out), time.monotonic() - t


def _stop(p, stopped):
    stopped.set()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(p.pid, signal.SIGTERM)
    try:
        p.wait(15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)


def bash_blocks(markdown, section):
    """The ```bash blocks of a "## " section (its own, and its subsections'),
    as lists of commands, with trailing "# comments" stripped."""
    m = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## |\Z)", markdown, re.M | re.S)
    if not m:
        return []
    blocks = re.findall(r"^```bash\n(.*?)^```", m.group(1), re.M | re.S)
    return [[re.sub(r"\s+#\s.*$", "", line).rstrip() for line in b.splitlines() if line.strip()]
            for b in blocks]


def c_blocks(markdown, section):
    m = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## |\Z)", markdown, re.M | re.S)
    return re.findall(r"^```c\n(.*?)^```", m.group(1), re.M | re.S) if m else []


def quick_start_demo(root):
    """Runs the Quick start's first command (scripts/demo) verbatim and checks
    its output. Returns the cloned README's text."""
    readme = open(os.path.join(root.dir, "root/ferret/README.md")).read()
    blocks = bash_blocks(readme, "Quick start")
    if not check(blocks and blocks[0], "no ```bash block under '## Quick start' in the README"):
        return readme, []
    cmds = blocks[0]
    log(f"Quick start [1/{len(cmds)}]: {cmds[0]}")
    rc, out, secs = root.run(f"set -e\n{cmds[0]}", 1800, label="demo")
    log(f"Quick start: '{cmds[0]}' took {secs:.0f} s wall time (exit {rc})")
    if check(rc == 0, f"'{cmds[0]}' exited with {rc} after {secs:.0f} s"):
        for want in ("Run ferret-demo", "process_batch", "fetch_user:3", "user 3 not found",
                     "heavy_computation", "worker"):
            check(want in out, f"'{cmds[0]}' output lacks {want!r}")
        # The summary table's header names its columns.
        check(re.search(r"^\s*name\b.*\bcount\b.*\bp95\b", out, re.M | re.I),
              f"'{cmds[0]}' output lacks the summary table (a 'name ... count ... p95' header)")
    return readme, cmds


class Booted:
    """The copy booted with systemd-nspawn -b, in the background; commands
    enter it with nsenter through its systemd's PID. Use in a with
    statement: leaving it powers the container off."""

    def __init__(self, root):
        self.root = root
        self.log_path = os.path.join(root.tmp, "boot.log")
        self.nspawn = None
        self.pid = None

    def __enter__(self):
        log("booting the copy with systemd-nspawn -b")
        t = time.monotonic()
        # --resolv-conf=off: the booted copy needs no network.
        cmd = self.root.nspawn_args() + ["-b", "--resolv-conf=off"]
        self.nspawn = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=open(self.log_path, "w"),
                                       stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._find_systemd(60)
            # Until systemd listens on its private socket systemctl cannot
            # ask it; then --wait waits for the boot to finish.
            deadline = time.monotonic() + 120
            while True:
                rc, out, _ = self.sh("systemctl is-system-running --wait", timeout=120)
                state = (out.strip().splitlines() or ["?"])[-1]
                if "Failed to connect" not in state or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            if state not in ("running", "degraded"):
                raise RuntimeError(f"the container's systemd is {state!r}, not running:\n"
                                   + self.sh("systemctl --failed --no-pager", timeout=30)[1])
        except BaseException:
            print(open(self.log_path, errors="replace").read()[-3000:])
            self.poweroff()
            raise
        log(f"booted in {time.monotonic() - t:.1f} s: systemd is PID {self.pid} on the host, "
            f"state {state}")
        return self

    def __exit__(self, *exc):
        self.poweroff()

    def _find_systemd(self, timeout):
        """The container's PID 1 is the child of nspawn named systemd."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.nspawn.poll() is not None:
                raise RuntimeError(f"systemd-nspawn -b exited with {self.nspawn.returncode}")
            with contextlib.suppress(OSError):
                for child in open(f"/proc/{self.nspawn.pid}/task/{self.nspawn.pid}/children").read().split():
                    if _comm(int(child)) == "systemd":
                        self.pid = int(child)
                        return
            time.sleep(0.05)
        raise RuntimeError("no systemd under systemd-nspawn -b")

    def _cmd(self, script, user=None, env=None):
        home = "/root" if user is None else f"/home/{user}"
        e = dict({"PATH": PATH, "HOME": home, "LANG": "C.UTF-8"}, **(env or {}))
        if user:
            e["USER"] = e["LOGNAME"] = user
        cmd = ["nsenter", f"--target={self.pid}", "--all"]
        # runuser sets the user's groups (initgroups), so a member of ferret is one here.
        if user:
            cmd += ["runuser", "-u", user, "--"]
        return cmd + ["env", "-i", *(f"{k}={v}" for k, v in e.items()),
                      "/bin/bash", "-c", f"cd {home} && {script}"]

    def sh(self, script, user=None, env=None, timeout=60, label=None, input=None):
        """Runs a bash script inside, as root or as user; returns (status, output, seconds)."""
        return _stream(self._cmd(script, user, env), timeout, label, input)

    def popen(self, script, user=None, env=None):
        return subprocess.Popen(self._cmd(script, user, env), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)

    def poweroff(self):
        if self.nspawn is None or self.nspawn.poll() is not None:
            return
        t = time.monotonic()
        # systemctl poweroff, else SIGTERM, which nspawn -b turns into an
        # orderly shutdown (SIGRTMIN+3 to the container's systemd), else SIGKILL.
        asked = self.pid and self.sh("systemctl poweroff", timeout=30)[0] == 0
        for sig, wait in ((None, 60 if asked else 0), (signal.SIGTERM, 30), (signal.SIGKILL, 10)):
            if sig:
                log(f"container still up: sending {sig.name} to systemd-nspawn")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.nspawn.pid, sig)
            try:
                self.nspawn.wait(wait)
                break
            except subprocess.TimeoutExpired:
                pass
        log(f"container powered off in {time.monotonic() - t:.1f} s "
            f"(systemd-nspawn exit {self.nspawn.returncode})")
