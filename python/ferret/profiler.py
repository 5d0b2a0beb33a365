# SPDX-License-Identifier: MIT
"""The original tool's API: ``Profiler``, ``Span``, ``SpanModel``.

Spans are libferret-client spans: buffered per thread in C, sent to ferretd
by the client's own thread. Nothing is buffered in Python.

The current span is carried by a :class:`contextvars.ContextVar`, so that
``asyncio`` tasks (which copy the context when they are created) start
under the span that was current where they were created: four coroutines
run with ``asyncio.gather`` inside ``with profiler.measure("batch_job")``
become four children of ``batch_job``.
"""

import atexit
import functools
import inspect
import os
import sys
import threading
import time
import uuid
import warnings

from . import _activate, _daemon, _ferret

_STATUS = {"ok": _ferret.STATUS_OK, "warning": _ferret.STATUS_WARNING, "error": _ferret.STATUS_ERROR}

# How long close() waits for the daemon to store this process's spans.
CLOSE_FLUSH_MS = 10000


class SpanModel:
    """The data of one span, as the original tool exposed it.

    ``status`` ("ok", "warning" or "error") and ``tags`` may be changed until
    the span ends; they are recorded then. Ids are hexadecimal strings.
    """

    __slots__ = ("span_id", "parent_id", "trace_id", "run_id", "name", "start_time", "end_time",
                 "duration", "tags", "status")

    def __init__(self, name, run_id, span_id="", parent_id=None, trace_id="", tags=None):
        self.name = name
        self.run_id = run_id
        self.span_id = span_id
        self.parent_id = parent_id
        self.trace_id = trace_id
        self.start_time = time.time()
        self.end_time = None
        self.duration = None
        self.tags = dict(tags or {})
        self.status = "ok"

    def finish(self, status=None):
        """Sets end time, duration (seconds) and, if given, the status."""
        self.end_time = time.time()
        self.duration = self.end_time - self.start_time
        if status is not None:
            self.status = status

    def model_dump(self):
        """The fields as a dict (as pydantic's ``model_dump``)."""
        return {k: getattr(self, k) for k in self.__slots__}

    def __repr__(self):
        return f"SpanModel(name={self.name!r}, status={self.status!r}, tags={self.tags!r})"


class Span:
    """An open span. ``annotate()`` adds tags, ``end()`` ends it (once)."""

    __slots__ = ("profiler", "model", "_handle")

    def __init__(self, profiler, name, tags=None, is_async=False, parent=None):
        self.profiler = profiler
        self._handle = _ferret.begin(str(name), is_async, parent)
        h = self._handle
        self.model = SpanModel(
            name=str(name), run_id=profiler.run_id, span_id=f"{h.span_id:016x}",
            parent_id=f"{h.parent_id:016x}" if h.parent_id else None, trace_id=h.trace_id, tags=tags)

    @property
    def handle(self):
        """The underlying ``_ferret.SpanHandle``."""
        return self._handle

    @property
    def traceparent(self):
        """This span as a W3C traceparent, to continue it in another process."""
        return self._handle.traceparent

    def annotate(self, **tags):
        """Adds tags: str, int, float and bool keep their type, others become str."""
        self.model.tags.update(tags)

    def end(self, status=None):
        """Ends the span with ``status`` (default: ``model.status``, "ok" unless
        changed). Tags and status go to the client now; later calls do nothing."""
        h = self._handle
        if not h.open:
            return
        self.model.finish(status)
        for k, v in self.model.tags.items():
            h.tag(str(k), v)
        code = _STATUS.get(self.model.status)
        message = None
        if code is None:  # an unknown status is kept as the message of a warning
            code, message = _ferret.STATUS_WARNING, str(self.model.status)
        if code == _ferret.STATUS_ERROR and "error" in self.model.tags:
            message = f"{self.model.tags.get('error_type', 'error')}: {self.model.tags['error']}"
        h.end(code, message)

    def __repr__(self):
        return f"<Span {self.model.name!r} {self.model.span_id}>"


def _in_coroutine(depth):
    """Whether the code ``depth`` frames up is a coroutine's body."""
    try:
        return bool(sys._getframe(depth + 1).f_code.co_flags & inspect.CO_COROUTINE)
    except ValueError:
        return False


class SpanContext:
    """What ``profiler.measure(...)`` returns: a context manager (``with``,
    ``async with``) that yields a :class:`Span`, and a decorator of functions,
    coroutine functions and generators.

    ``name`` is a string, or a callable that gets the decorated function's
    positional arguments as a tuple (``lambda args: f"user:{args[0]}"``) and
    returns the name.
    """

    def __init__(self, profiler, name, tags=None):
        self.profiler = profiler
        self._name_or_func = name
        self.tags = tags
        self._open = []  # (span, token): one per nested use of this object

    def _get_name(self, args=(), kwargs=None):
        n = self._name_or_func
        if n is None:
            return "unnamed_span"
        if not callable(n):
            return str(n)
        try:
            try:
                return str(n(args))
            except TypeError:
                return str(n(args, kwargs or {}))
        except Exception:
            return "unknown_dynamic_span"

    def _enter(self, is_async, name=None):
        span = Span(self.profiler, self._get_name() if name is None else name, self.tags, is_async)
        _ferret.note_current_var()
        token = _ferret.current_var.set(span.handle)
        self._open.append((span, token))
        return span

    def _exit(self, exc_type, exc):
        span, token = self._open.pop()
        try:
            _ferret.current_var.reset(token)
        except ValueError:  # left in another context than it was entered in
            _ferret.current_var.set(None)
        status = None
        if exc_type is not None:
            status = "error"
            span.annotate(error=str(exc), error_type=exc_type.__name__)
        span.end(status)
        return False  # the exception, if any, goes on unchanged

    def __enter__(self):
        return self._enter(_in_coroutine(1))

    def __exit__(self, exc_type, exc, tb):
        return self._exit(exc_type, exc)

    async def __aenter__(self):
        return self._enter(True)

    async def __aexit__(self, exc_type, exc, tb):
        return self._exit(exc_type, exc)

    def _child(self, args, kwargs):
        return SpanContext(self.profiler, self._get_name(args, kwargs), self.tags)

    def __call__(self, func):
        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def async_wrapper(*args, **kwargs):
                ctx = self._child(args, kwargs)
                ctx._enter(True)
                try:
                    result = await func(*args, **kwargs)
                except BaseException as e:
                    ctx._exit(type(e), e)
                    raise
                ctx._exit(None, None)
                return result
            return async_wrapper

        if inspect.isasyncgenfunction(func):
            @functools.wraps(func)
            async def asyncgen_wrapper(*args, **kwargs):
                ctx = self._child(args, kwargs)
                span = ctx._enter(True)
                try:
                    async for item in func(*args, **kwargs):
                        yield item
                except BaseException as e:
                    ctx._exit(type(e), e)
                    raise
                ctx._exit(None, None)
                del span
            return asyncgen_wrapper

        if inspect.isgeneratorfunction(func):
            @functools.wraps(func)
            def gen_wrapper(*args, **kwargs):
                ctx = self._child(args, kwargs)
                ctx._enter(False)
                try:
                    result = yield from func(*args, **kwargs)
                except BaseException as e:
                    ctx._exit(type(e), e)
                    raise
                ctx._exit(None, None)
                return result
            return gen_wrapper

        @functools.wraps(func)
        def sync_wrapper(*args, **kwargs):
            ctx = self._child(args, kwargs)
            ctx._enter(False)
            try:
                result = func(*args, **kwargs)
            except BaseException as e:
                ctx._exit(type(e), e)
                raise
            ctx._exit(None, None)
            return result
        return sync_wrapper


# One client per process: its settings are read once, at the first span.
_client_lock = threading.Lock()
_client_settings = None  # (runtime_dir, run_id) this process records to


class Profiler:
    """Records spans into a Ferret run.

    ``Profiler(db_path="traces.db", run_id="v1")`` records into run ``v1``
    of the database ``traces.db``: through the daemon that serves it, or a
    private ``ferretd`` started for it (as ``ferret run --db`` does) and
    stopped by :meth:`close` (also at exit) once everything is stored.
    Without ``db_path`` (or with ``":memory:"``), spans go to the daemon
    clients find by default (``FERRET_RUNTIME_DIR``, else the user's or the
    system's).

    The C client reads its settings once per process, at the first span:
    a second Profiler with another database or run id cannot re-point it,
    and under ``ferret run`` the run's settings win. Such a Profiler records
    where the first one does, with a warning.

    ``buffer_size`` and ``namespace`` are accepted for compatibility; the
    client's buffer is ``FERRET_BUFFER_SIZE``.
    """

    def __init__(self, db_path=None, buffer_size=100, namespace="_ferret_trace", run_id=None):
        self.db_path = None if db_path in (None, ":memory:") else os.path.abspath(os.fspath(db_path))
        self.buffer_size = buffer_size
        self.namespace = namespace
        self._daemon = None
        self._closed = False
        self.run_id = self._configure(run_id)
        _activate.install_process_hooks()
        atexit.register(self.close)

    def _configure(self, run_id):
        global _client_settings
        with _client_lock:
            managed = _activate._profiling or "ferret-agent" in os.environ.get("LD_PRELOAD", "")
            if _client_settings is None and not managed and not _ferret.client_used():
                runtime_dir = None
                if self.db_path is not None:
                    runtime_dir, self._daemon = _daemon.choose(self.db_path)
                    os.environ["FERRET_RUNTIME_DIR"] = runtime_dir
                run_id = run_id or os.environ.get("FERRET_RUN_ID") or uuid.uuid4().hex
                os.environ["FERRET_RUN_ID"] = run_id
                _client_settings = (runtime_dir, run_id)
                return _ferret.run_id()
            actual = _ferret.run_id()
            if not managed and ((run_id and run_id != actual) or
                                (self.db_path and _client_settings and _client_settings[0] !=
                                 _daemon.private_runtime_dir(self.db_path))):
                warnings.warn(f"ferret: this process already records to run {actual!r}; "
                              f"Profiler(db_path={self.db_path!r}, run_id={run_id!r}) records there too",
                              RuntimeWarning, stacklevel=3)
            return actual

    def measure(self, name=None, tags=None):
        """A span for a block (``with``/``async with``, yields a :class:`Span`)
        or for each call of a decorated function; ``name`` may be a callable
        of the positional arguments. An exception sets status "error" and
        tags ``error`` and ``error_type``, and propagates unchanged."""
        return SpanContext(self, name, tags)

    def start(self, name, tags=None):
        """Begins a span under the current one without making it current;
        end it with :meth:`Span.end`. For callbacks and work that crosses
        functions."""
        return Span(self, name, tags, _in_coroutine(1))

    def flush(self, timeout_ms=CLOSE_FLUSH_MS):
        """Waits until the daemon has stored every span ended so far in this
        process. Returns True when it has (False: no daemon, timeout, or
        spans were dropped)."""
        return _ferret.flush(int(timeout_ms)) == 0

    def close(self):
        """Flushes, then stops the private daemon this Profiler started, if
        any. Runs at exit too; a second call does nothing."""
        if self._closed:
            return
        self._closed = True
        self.flush()
        if self._daemon is not None:
            daemon, self._daemon = self._daemon, None
            daemon.stop()
