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
# The exposure score systemd computes from the unit alone; the system test
# checks it again on the installed unit under a booted systemd.
r = subprocess.run(["systemd-analyze", "security", "--offline=true", unit], capture_output=True, text=True)
score = [l for l in r.stdout.splitlines() if "Overall exposure level" in l]
print(score[0] if score else r.stdout + r.stderr)
if not score or float(score[0].split(":")[1].split()[0]) > 0.5:
    print("FAIL: systemd-analyze security scores above 0.5")
    sys.exit(1)
print("unit verified")
