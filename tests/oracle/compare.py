# SPDX-License-Identifier: MIT
"""What the oracle tests share: Ferret's calls and caller -> callee edges
from a merged tree, and the verdict on one generated program."""
import os
import shutil
import sys
import tempfile
from collections import Counter

ROOT = "(root)"


def tree_calls(tree, traced):
    """Counts and edges of the functions named like @traced (a compiled
    regex) in `ferret analyze --tree --json` output; other callers are ROOT.
    Iterative: trees are deep."""
    calls, edges = Counter(), Counter()
    stack = [(root, ROOT) for root in tree["roots"]]
    while stack:
        node, parent = stack.pop()
        name = node["name"]
        if traced.match(name):
            calls[name] += node["count"]
            edges[(parent if traced.match(parent) else ROOT, name)] += node["count"]
        stack += [(child, name) for child in node.get("children", [])]
    return calls, edges


def differences(want, got, what):
    return [f"  {what} {key}: oracle {want[key]}, ferret {got[key]}"
            for key in sorted(set(want) | set(got), key=str) if want[key] != got[key]]


def verdict(oracle, ferret, dropped, src, seed, graphs):
    """Exits with the differences, keeping @src for a rerun, unless Ferret's
    (calls, edges) equal the oracle's and nothing was dropped."""
    diff = differences(oracle[0], ferret[0], "calls of") + differences(oracle[1], ferret[1], "edge")
    if dropped:
        diff.append(f"  {dropped} spans dropped")
    if diff:
        keep = os.path.join(tempfile.gettempdir(), f"ferret-oracle-{seed}-{os.path.basename(src)}")
        shutil.copy(src, keep)
        sys.exit(f"FAIL (seed {seed}): graphs {graphs} ({keep}):\n" + "\n".join(diff[:40]))
