"""What the three commands share: turning an outcome into one stderr line and an exit code.

Exit codes: 2 a mistake in the command (bad option, missing checkpoint,
unusable audio); 1 a checkpoint that fails verification, or an unexpected
error (the traceback with -v); 130 interrupted.
"""

from __future__ import annotations

import sys

from ssgs.errors import CheckpointError, CheckpointNotFoundError, SSGSError


def run_reporting_errors(prog, run, *, verbose=False, usage_errors=(SSGSError, ValueError),
                         interrupted="interrupted"):
    """Call ``run()`` and return its exit code, reporting any failure as one line prefixed with `prog`.

    `usage_errors` are the exception types that mean bad input (exit 2); a
    missing checkpoint is always bad input, any other checkpoint fault is 1.
    """
    try:
        return run()
    except CheckpointNotFoundError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except CheckpointError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except usage_errors as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: {interrupted}", file=sys.stderr)
        return 130
    except Exception as exc:  # an ssgs bug or an environment failure
        if verbose:
            raise
        print(f"{prog}: error: {type(exc).__name__}: {exc} (run with -v for the traceback)", file=sys.stderr)
        return 1
