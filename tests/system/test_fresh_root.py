#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The README's Quick start, verbatim, in a fresh Debian 12 root: scripts/demo
works and shows its table and tree, scripts/test passes. Then the README's
other shell examples (ferret run, the C API, Python), each block in a fresh
shell with set -e; the daemon's section needs a booted systemd, which
test_systemd.py gives it."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rootfs  # noqa: E402
from rootfs import check, log  # noqa: E402

# scripts/test without the sanitizer, clang, fuzzing, browser and
# OpenTelemetry passes (the host's run has them) and without these tests,
# which cannot nest in the copy.
TEST_ENV = {"FERRET_TEST_SKIP": "sanitizers,clang,fuzz,system,browser,otel"}
SECTIONS = ["Tracing a program: `ferret run`", "Pictures and exports", "The C API", "Python"]


def main():
    rootfs.ensure_host()
    with rootfs.Root() as root:
        readme, cmds = rootfs.quick_start_demo(root)
        for cmd in cmds[1:]:
            log(f"Quick start: {cmd} (with FERRET_TEST_SKIP={TEST_ENV['FERRET_TEST_SKIP']})")
            rc, out, secs = root.run(f"set -e\n{cmd}", 2400, env=TEST_ENV, label="test")
            log(f"Quick start: '{cmd}' took {secs:.0f} s (exit {rc})")
            check(rc == 0, f"Quick start '{cmd}' exited with {rc}")
            if "scripts/test" in cmd:
                last = (out.strip().splitlines() or [""])[-1]
                check(last.startswith("All tests passed."),
                      f"'{cmd}' does not end with 'All tests passed.' but with {last!r}")
        for section in SECTIONS:
            blocks = rootfs.bash_blocks(readme, section)
            check(blocks, f"no ```bash block in README section '{section}'")
            # The C API's shell block compiles example.c: the section's C
            # example, saved under that name, as a reader would.
            for i, code in enumerate(rootfs.c_blocks(readme, section)):
                name = "example.c" if i == 0 else f"example{i}.c"
                with open(os.path.join(root.dir, "root/ferret", name), "w") as f:
                    f.write(code)
            for i, block in enumerate(blocks, 1):
                label = f"{section} [{i}/{len(blocks)}]"
                log(f"README block {label}:\n" + "\n".join(f"    $ {c}" for c in block))
                rc, out, secs = root.run("set -e\n" + "\n".join(block), 1200, label=f"block {i}")
                log(f"README block {label}: exit {rc} after {secs:.0f} s")
                tail = " / ".join(out.strip().splitlines()[-3:])
                check(rc == 0, f"README block {label} exited with {rc}: {tail}")
    rootfs.finish("test_fresh_root")


if __name__ == "__main__":
    main()
