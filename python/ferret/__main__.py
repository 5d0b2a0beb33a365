# SPDX-License-Identifier: MIT
"""``python3 -m ferret``: ``run`` is Python's own (zero-code mode); every
other command (``analyze``, ``query``, ``runs``, ``status``, ...) is the C
``ferret`` command's, which this execs."""

import os
import sys

from . import _daemon


def main(argv):
    if argv and argv[0] == "run":
        from . import _run
        return _run.main(argv[1:])
    cli = _daemon.find_program("ferret")
    if not cli:
        print("ferret: cannot find the ferret command (set FERRET_CLI, or install ferret)", file=sys.stderr)
        return 1
    os.execve(cli, [cli] + argv, _daemon.program_env())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
