# SPDX-License-Identifier: MIT
"""Zero-code mode in child processes.

``ferret run`` puts this directory first on its children's ``PYTHONPATH``
with ``FERRET_PYTHON_PROFILE=1``, so that a Python child (``subprocess``,
``multiprocessing``'s spawn method) records its calls too, under the span
that started it (``FERRET_TRACEPARENT``). Then the ``sitecustomize`` this
one hides, if any, runs as it would have.
"""


def _start():
    import os

    if os.environ.get("FERRET_PYTHON_PROFILE") != "1":
        return
    try:
        from ferret import _activate

        _activate.child_start()
    except Exception as e:  # never stop the child from running
        import sys

        print(f"ferret: cannot profile this process: {e}", file=sys.stderr)


def _chain():
    import importlib
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    mine = sys.modules.pop("sitecustomize", None)
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    try:
        importlib.import_module("sitecustomize")
    except ImportError:
        pass
    finally:
        sys.path[:] = saved
        if "sitecustomize" not in sys.modules and mine is not None:
            sys.modules["sitecustomize"] = mine


_start()
_chain()
