#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""libferret-client exports exactly the symbols its version script lists."""
import os
import re
import subprocess
import sys

sym = open(os.environ["FERRET_CLIENT_SYM"]).read()
listed = set(re.findall(r"^\s*(ferret_\w+);", sym, re.M))
out = subprocess.run(["nm", "-D", "--defined-only", os.environ["FERRET_CLIENT_LIB"]],
                     check=True, capture_output=True, text=True).stdout
exported = {line.split()[-1].split("@")[0] for line in out.splitlines() if line.split()[1] in "TtWwDdBbRr"}
exported.discard("FERRET_0.1")
header = open(os.path.join(os.path.dirname(os.environ["FERRET_CLIENT_SYM"]), "ferret.h")).read()
declared = set(re.findall(r"FERRET_EXPORT [^;(]*?\b(ferret_\w+)\(", header))
declared |= set(re.findall(r"FERRET_EXPORT extern [^;(]*?\b(ferret_\w+);", header))

ok = True
for name, a, b in (("exported but not in the version script", exported, listed),
                   ("in the version script but not exported", listed, exported),
                   ("exported but not declared in ferret.h", exported, declared),
                   ("declared in ferret.h but not exported", declared, exported)):
    if a - b:
        print(f"FAIL: {name}: {sorted(a - b)}")
        ok = False
print(f"{len(exported)} symbols checked")
sys.exit(0 if ok else 1)
