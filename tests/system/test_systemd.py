#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""ferretd under a real systemd: a fresh Debian 12 root where the Quick
start's scripts/demo has built Ferret, booted with systemd-nspawn -b. The
README's "Running the daemon" commands start the installed unit; then the
sandbox's modes and owners, who may trace and query, sockets nobody may
replace, a restart under load that loses nothing uncounted, a stop that
keeps everything flushed, and systemd-analyze's verdicts."""
import json
import os
import queue
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rootfs  # noqa: E402
from rootfs import check, fail, log  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RATE, SECONDS, RESTART_AT = 160000, 6, 2


def sh(c, script, user=None, timeout=120, env=None, input=None, quiet=False):
    """Runs script in the container, shows it and its output, returns (status, output)."""
    who = user or "root"
    rc, out, secs = c.sh(script, user=user, env=env, timeout=timeout, input=input)
    if not quiet:
        log(f"{who}$ {script}  -> exit {rc} ({secs:.1f} s)")
        for line in out.rstrip().splitlines()[-40:]:
            print(f"  | {line}")
    return rc, out


def runs(c, run):
    """The daemon's record of run, as a member sees it in ferret runs --json."""
    rc, out = sh(c, "ferret runs --json", user="member", quiet=True)
    try:
        return next((r for r in json.loads(out) if r["run"] == run), None) if rc == 0 else None
    except ValueError:
        return None


def load_json(out):
    lines = [line for line in out.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else None


def start_daemon(c, readme):
    """The README's "Running the daemon" commands, verbatim, after meson
    install (which the README says comes first) unless they include it."""
    blocks = rootfs.bash_blocks(readme, "Running the daemon")
    if not check(blocks, "no ```bash block in README section 'Running the daemon'"):
        return
    if not any(cmd.startswith("meson install") for block in blocks for cmd in block):
        rc, _ = sh(c, "cd /root/ferret && meson install -C build", timeout=300, quiet=True)
        check(rc == 0, f"meson install -C build exited with {rc}")
    for block in blocks:
        rc, _ = sh(c, "cd /root/ferret && set -e\n" + "\n".join(block), timeout=300)
        check(rc == 0, f"README 'Running the daemon' block {block} exited with {rc}")


def check_unit(c):
    rc, out = sh(c, "systemctl is-active ferretd; systemctl show -p Type ferretd")
    active = check(out.split()[:1] == ["active"], f"ferretd is not active but {out.split()[:1]}")
    check("Type=notify" in out, "ferretd is not Type=notify")
    rc, out = sh(c, "stat -c '%U:%G %a %n' /run/ferret /run/ferret/ingest.sock "
                    "/run/ferret/query.sock /var/lib/ferret /var/lib/ferret/db")
    modes = {f[2]: (f[0], int(f[1], 8)) for f in (line.split() for line in out.splitlines())
             if len(f) == 3 and re.fullmatch(r"[0-7]+", f[1])}
    want = {"/run/ferret": lambda o, m: o == "ferret:ferret" and m == 0o750,
            "/run/ferret/ingest.sock": lambda o, m: o == "ferret:ferret" and m in (0o660, 0o770),
            "/run/ferret/query.sock": lambda o, m: o == "ferret:ferret" and m in (0o660, 0o770),
            "/var/lib/ferret": lambda o, m: o.startswith("ferret:") and m == 0o750,
            "/var/lib/ferret/db": lambda o, m: not m & 0o004}
    rules = {"/run/ferret": "ferret:ferret 750", "/run/ferret/ingest.sock": "ferret:ferret 660 or 770",
             "/run/ferret/query.sock": "ferret:ferret 660 or 770", "/var/lib/ferret": "owner ferret, 750",
             "/var/lib/ferret/db": "not readable by others"}
    for path, ok in want.items():
        if path not in modes:
            fail(f"{path} is missing")
        elif not ok(*modes[path]):
            fail(f"{path} is {modes[path][0]} {modes[path][1]:o}, want {rules[path]}")
    return active


def check_member_and_outsider(c):
    sh(c, "useradd -m -G ferret member && useradd -m outsider && id member && id outsider")
    sh(c, "cat > load.c", user="member", input=open(os.path.join(HERE, "load.c")).read(), quiet=True)
    rc, _ = sh(c, "cc load.c $(pkg-config --cflags --libs ferret-client) -lpthread -o load", user="member")
    if not check(rc == 0, "load.c does not compile against the installed library"):
        return False
    rc, out = sh(c, "./load 1000", user="member", env={"FERRET_RUN_ID": "sys-basic"})
    res = load_json(out)
    check(rc == 0 and res and res["flush"] == 0, f"./load 1000 as member: exit {rc}, {res}")
    rc, out = sh(c, "ferret query --run sys-basic --json", user="member")
    try:
        rows = {r["name"]: r["count"] for r in json.loads(out)["rows"]} if rc == 0 else {}
    except (ValueError, KeyError):
        rows = {}
    check(rows.get("load_span") == 1000, f"ferret query --run sys-basic: load_span count "
                                         f"{rows.get('load_span')}, want 1000")
    r = runs(c, "sys-basic")
    check(r and r["spans"] == 1000, f"ferret runs --json: sys-basic is {r}, want 1000 spans")
    for cmd in ("ferret status", "ferret query"):
        rc, out = sh(c, cmd, user="outsider")
        said = any("permission denied" in line.lower() and "ferret group" in line.lower()
                   for line in out.splitlines())
        check(rc != 0 and said, f"outsider's '{cmd}': exit {rc}, want non-zero and a line "
                                f"with 'permission denied' and 'ferret group'")
    return True


def check_sockets_stay(c):
    """A member may connect, but not move, remove or replace the sockets."""
    broke = False
    for cmd in ("mv /run/ferret/query.sock /run/ferret/x", "rm -f /run/ferret/query.sock"):
        rc, out = sh(c, cmd, user="member")
        if not check(rc != 0 and re.search(r"Permission denied|Operation not permitted", out),
                     f"member's '{cmd}' did not fail with EACCES/EPERM: exit {rc} {out.strip()!r}"):
            broke = True
    # Binding where a socket exists fails with EADDRINUSE in any case; a new
    # name in the directory shows whether a member could put one there.
    bind = ("python3 -c 'import socket,sys,errno\n"
            "s=socket.socket(socket.AF_UNIX)\n"
            "try: s.bind(sys.argv[1]); print(\"bound\")\n"
            "except OSError as e: print(errno.errorcode[e.errno]); sys.exit(1)' ")
    for path, errs in (("/run/ferret/ingest.sock", ("EACCES", "EPERM", "EADDRINUSE")),
                       ("/run/ferret/member.sock", ("EACCES", "EPERM"))):
        rc, out = sh(c, bind + path, user="member")
        if not check(rc == 1 and out.strip() in errs, f"member's bind() at {path}: "
                                                      f"{out.strip()}, want one of {errs}"):
            broke = True
    if broke:
        log("restarting ferretd, whose sockets a member changed")
        sh(c, "systemctl restart ferretd", timeout=120)


def check_stop_keeps(c):
    # A burst as fast as the program can: producers wait for room rather
    # than drop when the machine is busy, since this is about what a stop
    # keeps, not about keeping up.
    rc, out = sh(c, "./load 200000", user="member", env={"FERRET_RUN_ID": "sys-stop",
                                                          "FERRET_ON_FULL": "block:10000"}, timeout=120)
    res = load_json(out)
    if not check(res and res["flush"] == 0, f"./load 200000: flush did not return 0: {res}"):
        return
    sh(c, "systemctl stop ferretd && systemctl start ferretd", timeout=180)
    r = runs(c, "sys-stop")
    log(f"after stop and start: sys-stop is {r}")
    check(r and r["spans"] == res["made"], f"after stop/start sys-stop has {r and r['spans']} "
                                           f"spans, the program made {res['made']}")


def check_restart_under_load(c):
    log(f"load: {RATE} spans/s for {SECONDS} s; systemctl restart ferretd at {RESTART_AT} s")
    t = time.monotonic()
    p = c.popen(f"./load {RATE} {SECONDS}", user="member", env={"FERRET_RUN_ID": "sys-restart"})
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in p.stdout] + [lines.put(None)],
                     daemon=True).start()
    out, restarted, deadline = [], False, time.monotonic() + SECONDS + 90
    try:
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            out.append(line)
            print(f"  load| {line}", end="")
            if line.strip() == f"second {RESTART_AT}" and not restarted:
                rc, _ = sh(c, "systemctl restart ferretd", timeout=120)
                check(rc == 0, f"systemctl restart ferretd under load exited with {rc}")
                restarted = True
        p.wait(max(1, deadline - time.monotonic()))
    finally:
        if p.poll() is None:
            os.killpg(p.pid, 9)
    print("".join("  load stderr| " + x for x in p.stderr.readlines()), end="")
    log(f"the load program ran for {time.monotonic() - t:.1f} s (with its flush)")
    res = load_json("".join(out))
    if not check(restarted and res, f"the load program did not finish: exit {p.returncode}"):
        return
    # The flush has returned, so the run's record should be final; allow the
    # last batches a moment all the same: poll until the sum is right, or has
    # not moved for 3 s.
    deadline, last, since = time.monotonic() + 15, None, time.monotonic()
    while True:
        r = runs(c, "sys-restart") or {"spans": 0, "dropped": 0}
        total = r["spans"] + r["dropped"]
        if total != last:
            last, since = total, time.monotonic()
        if total == res["made"] or time.monotonic() - since > 3 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    sh(c, "ferret status", user="member")   # what the new daemon set aside of the resent batches
    log(f"restart under load: made {res['made']}, flush {res['flush']}, client recorded "
        f"{res['recorded']} dropped {res['dropped']} sent {res['sent']} batches {res['batches']}; "
        f"daemon stored {r['spans']} + dropped {r['dropped']} = {r['spans'] + r['dropped']}; "
        f"unaccounted {res['made'] - r['spans'] - r['dropped']}")
    check(r["spans"] + r["dropped"] == res["made"],
          f"restart under load: stored {r['spans']} + dropped {r['dropped']} != made {res['made']} "
          f"({res['made'] - r['spans'] - r['dropped']} spans vanished uncounted)")
    # The client keeps what the stopping daemon did not store, and sends it
    # to the new one: nothing is even dropped.
    check(r["spans"] == res["made"] and res["flush"] == 0,
          f"restart under load: stored {r['spans']} of {res['made']} (flush {res['flush']}); "
          f"the client should have resent the {r['dropped']} dropped")


def check_analyze(c):
    rc, out = sh(c, "systemd-analyze verify $(systemctl show -P FragmentPath ferretd) 2>&1")
    check(rc == 0 and "ferretd" not in out, "systemd-analyze verify complains about ferretd")
    rc, out = sh(c, "systemd-analyze security ferretd --no-pager | tail -3")
    m = re.search(r"Overall exposure level for ferretd\.service:\s*([\d.]+)", out)
    log(f"systemd-analyze security: exposure {m.group(1) if m else '?'}")
    check(m and float(m.group(1)) <= 0.5, f"exposure level {m and m.group(1)}, want <= 0.5")


def main():
    rootfs.ensure_host()
    with rootfs.Root() as root:
        readme, _ = rootfs.quick_start_demo(root)
        if rootfs.failures:
            rootfs.finish("test_systemd")
        with rootfs.Booted(root) as c:
            t = time.monotonic()
            start_daemon(c, readme)
            # Without a running daemon the rest would only repeat that.
            if check_unit(c) and check_member_and_outsider(c):
                check_sockets_stay(c)
                check_stop_keeps(c)
                check_restart_under_load(c)
            check_analyze(c)
            if rootfs.failures:
                sh(c, "journalctl -u ferretd --no-pager | tail -50")
            log(f"checks in the booted container took {time.monotonic() - t:.0f} s")
    rootfs.finish("test_systemd")


if __name__ == "__main__":
    main()
