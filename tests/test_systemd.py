#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The unit passes systemd-analyze verify and keeps its hardening."""
import os
import subprocess
import sys

unit = os.environ["FERRET_TEST_UNIT"]
r = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True)
print(r.stdout + r.stderr)
if r.returncode != 0 or "ferretd" in r.stderr:
    print("FAIL: systemd-analyze verify")
    sys.exit(1)
text = open(unit).read()
for line in ("Type=notify", "User=ferret", "RuntimeDirectory=ferret", "StateDirectory=ferret",
             "NoNewPrivileges=yes", "ProtectSystem=strict", "SystemCallFilter=@system-service",
             "RestrictAddressFamilies=AF_UNIX", "UMask=0007"):
    if line not in text:
        print(f"FAIL: {line} missing")
        sys.exit(1)
print("unit verified")
