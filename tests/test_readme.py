#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The README's C example compiles against the built library, through
pkg-config as the README shows, and runs."""
import os
import re
import subprocess
import sys
import tempfile

readme = open(os.path.join(os.environ["FERRET_SOURCE_ROOT"], "README.md")).read()
blocks = re.findall(r"```c\n(.*?)```", readme, re.S)
if not blocks:
    print("FAIL: no C example in the README")
    sys.exit(1)
env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(os.environ["FERRET_BUILD_ROOT"], "meson-uninstalled"))
flags = subprocess.run(["pkg-config", "--cflags", "--libs", "ferret-client"], env=env, check=True,
                       capture_output=True, text=True).stdout.split()
with tempfile.TemporaryDirectory() as d:
    for i, code in enumerate(blocks):
        src, exe = os.path.join(d, f"example{i}.c"), os.path.join(d, f"example{i}")
        open(src, "w").write(code)
        subprocess.run(["cc", "-Wall", "-Wextra", "-Werror", src, *flags, "-lpthread", "-o", exe], check=True)
        # No daemon here: the example must still run and exit normally.
        r = subprocess.run([exe], env=dict(os.environ, FERRET_RUNTIME_DIR=d), timeout=60)
        if r.returncode not in (0, 1):
            print(f"FAIL: example {i} exited with {r.returncode}")
            sys.exit(1)
print(f"{len(blocks)} README example(s) compiled and ran")
