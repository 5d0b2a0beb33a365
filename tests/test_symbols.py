#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""libferret-client exports exactly the symbols its version script lists,
each under the node that lists it: the API (ferret_*, declared in ferret.h)
in the FERRET_x.y nodes; the internals that ferret.h's macros and
libferret-agent call across the library's boundary (ferret__*, declared in
ferret.h's private part or in hooks.h) in a FERRET_PRIVATE_x.y node; and
nothing else: no module's internals (client_*, span_*, ring_*, func_*,
flusher_*, intern_*...), no protobuf-c code (ferret__batch__*), nothing of
the static libraries linked in."""
import os
import re
import subprocess
import sys

sym_path = os.environ["FERRET_CLIENT_SYM"]
libclient = os.path.dirname(sym_path)
sym = re.sub(r"/\*.*?\*/", "", open(sym_path).read(), flags=re.S)

PUBLIC = re.compile(r"ferret_[a-z0-9]+(_[a-z0-9]+)*")
PRIVATE = re.compile(r"ferret__[a-z0-9]+(_[a-z0-9]+)*")

ok = True


def fail(message):
    global ok
    print(f"FAIL: {message}")
    ok = False


# The version script: node -> the symbols its global part lists.
nodes = {}
for m in re.finditer(r"([A-Za-z_][\w.]*)\s*\{(.*?)\}\s*[\w.]*\s*;", sym, re.S):
    name, body = m.group(1), m.group(2)
    global_part = re.split(r"\blocal\s*:", body)[0]
    nodes[name] = set(re.findall(r"([A-Za-z_]\w*)\s*;", global_part))
if not nodes:
    fail("no version node in the version script")
if not re.search(r"\blocal\s*:\s*\*\s*;", sym):
    fail("the version script has no 'local: *;': everything not listed would be exported")
node_of = {}
for node, names in nodes.items():
    private_node = node.startswith("FERRET_PRIVATE_")
    if not private_node and not re.fullmatch(r"FERRET_\d+\.\d+", node):
        fail(f"version node {node} is neither FERRET_x.y nor FERRET_PRIVATE_x.y")
    for name in names:
        if name in node_of:
            fail(f"{name} is listed in both {node_of[name]} and {node}")
        node_of[name] = node
        if private_node and not PRIVATE.fullmatch(name):
            fail(f"{name} is in the private node {node} without the private prefix ferret__")
        if not private_node and (not PUBLIC.fullmatch(name) or name.startswith("ferret__")):
            fail(f"{name} is in the API node {node} but is not an API name (ferret_...)")
listed = set(node_of)

# What the library exports, with the version each symbol is bound to.
out = subprocess.run(["nm", "-D", "--defined-only", os.environ["FERRET_CLIENT_LIB"]],
                     check=True, capture_output=True, text=True).stdout
exported = {}
for line in out.splitlines():
    fields = line.split()
    if len(fields) < 3 or fields[1] == "A":       # A: the version nodes themselves
        continue
    name, _, version = fields[2].partition("@")
    exported[name] = version.lstrip("@")

for name in sorted(exported):
    if not name.startswith("ferret_"):
        fail(f"internal symbol exported: {name}")
    elif not PUBLIC.fullmatch(name) and not PRIVATE.fullmatch(name):
        fail(f"exported symbol {name} is neither API nor a marked internal (protobuf-c code?)")
    elif name in node_of and exported[name] != node_of[name]:
        fail(f"{name} is exported as version {exported[name] or '(none)'}, the script says {node_of[name]}")

# What the headers declare: the API in ferret.h, the internals in ferret.h
# (for its macros) and hooks.h (for the agent).
header = open(os.path.join(libclient, "ferret.h")).read()
hooks = open(os.path.join(libclient, "hooks.h")).read()


def declared_in(text):
    names = set(re.findall(r"FERRET_EXPORT [^;(]*?\b(ferret_\w+)\(", text))
    names |= set(re.findall(r"FERRET_EXPORT extern [^;(]*?\b(ferret_\w+);", text))
    return names


declared = declared_in(header) | declared_in(hooks)
not_private = sorted(n for n in declared_in(hooks) if not PRIVATE.fullmatch(n))
if not_private:
    fail(f"hooks.h declares names without the private prefix: {not_private}")

for what, a, b in (("exported but not in the version script", set(exported), listed),
                   ("in the version script but not exported", listed, set(exported)),
                   ("exported but not declared in ferret.h or hooks.h", set(exported), declared),
                   ("declared in ferret.h or hooks.h but not exported", declared, set(exported))):
    if a - b:
        fail(f"{what}: {sorted(a - b)}")

api = sorted(n for n in exported if not n.startswith("ferret__"))
internals = sorted(n for n in exported if n.startswith("ferret__"))
print(f"{len(exported)} symbols checked: {len(api)} API, {len(internals)} internals "
      f"({', '.join(sorted({node_of.get(n, '?') for n in internals}))})")
sys.exit(0 if ok else 1)
