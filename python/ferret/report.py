# SPDX-License-Identifier: MIT
"""The original tool's ``Report``: statistics and call trees of a run,
read through the ``ferret`` command (``ferret analyze DB --json``)."""

import json
import os
import subprocess
from dataclasses import dataclass, field

from . import _daemon
from .profiler import SpanModel

_STATUS_NAMES = ("ok", "warning", "error")


@dataclass
class AggregatedStats:
    """Summary statistics of one span name in a run (durations in seconds)."""

    name: str
    count: int
    total_duration: float
    avg_duration: float
    min_duration: float
    max_duration: float
    error_count: int
    error_rate: float


@dataclass
class TraceNode:
    """A span and its children."""

    span: SpanModel
    children: list = field(default_factory=list)

    @property
    def total_children_duration(self):
        return sum(c.span.duration or 0.0 for c in self.children)

    @property
    def self_time(self):
        """Time in this span outside its children's."""
        return max(0.0, (self.span.duration or 0.0) - self.total_children_duration)


class Report:
    """Reads a Ferret database (through ``ferret analyze``, read-only)."""

    def __init__(self, db_path, namespace="_ferret_trace"):
        self.db_path = os.path.abspath(os.fspath(db_path))
        self.namespace = namespace
        self._cli = _daemon.find_program("ferret")
        if not self._cli:
            raise RuntimeError("cannot find the ferret command (set FERRET_CLI, or install ferret)")

    def _query(self, *args):
        r = subprocess.run([self._cli, "analyze", self.db_path, "--json", *args], capture_output=True,
                           text=True, timeout=300, env=_daemon.program_env())
        if r.returncode != 0:
            raise RuntimeError(r.stderr.strip() or f"ferret analyze failed ({r.returncode})")
        return json.loads(r.stdout)

    def analyze_run(self, run_id=None):
        """Per span name: count, total, average, min, max and errors."""
        out = self._query(*(["--run", run_id] if run_id else []))
        stats = {}
        for row in out.get("rows", []):
            n = row["count"]
            stats[row["name"]] = AggregatedStats(
                name=row["name"], count=n, total_duration=row["total_ns"] / 1e9,
                avg_duration=row["avg_ns"] / 1e9, min_duration=row["min_ns"] / 1e9,
                max_duration=row["max_ns"] / 1e9, error_count=row["errors"],
                error_rate=row["errors"] / n if n else 0.0)
        return stats

    def build_trees(self, run_id=None):
        """The run's call trees, roots first by start time."""
        out = self._query("--tree", "--expand", *(["--run", run_id] if run_id else []))
        run = out.get("run", run_id)

        def node(d, parent_id):
            m = SpanModel(name=d["name"], run_id=run, span_id=d.get("span_id", ""), parent_id=parent_id,
                          tags=d.get("tags"))
            m.start_time = d["start_ns"] / 1e9
            m.duration = d["duration_ns"] / 1e9
            m.end_time = m.start_time + m.duration
            m.status = d.get("status", "ok")
            return TraceNode(span=m, children=[node(c, m.span_id) for c in d.get("children", [])])

        roots = [node(r, None) for r in out.get("roots", [])]
        roots.sort(key=lambda n: n.span.start_time)
        return roots

    def close(self):
        """Nothing to release: each query is one command."""
