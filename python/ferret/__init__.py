# SPDX-License-Identifier: MIT
"""Ferret for Python: the original tool's API on the C engine.

    from ferret import Profiler

    profiler = Profiler(db_path="traces.db", run_id="v1")

    @profiler.measure(lambda args: f"process_user:{args[0]}")
    async def process_user(user_id): ...

    with profiler.measure("db_fetch") as span:
        span.annotate(table="users")
        span.model.status = "warning"

Or with no code change: ``ferret run my_script.py --db traces.db``, then
``ferret analyze traces.db --tree``.
"""

from ._paths import VERSION as __version__
from .profiler import Profiler, Span, SpanContext, SpanModel
from .report import AggregatedStats, Report, TraceNode

__all__ = ["Profiler", "Report", "Span", "SpanContext", "SpanModel", "AggregatedStats", "TraceNode"]
