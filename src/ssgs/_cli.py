"""What the three commands share: turning an outcome into one stderr line and an exit code.

Exit codes: 2 a mistake in the command (bad option, missing checkpoint,
unusable audio); 1 a checkpoint that fails verification, or an unexpected
error (the traceback with -v); 130 interrupted; 141 (128 + SIGPIPE) the
reader of standard output went away, as for any command in a shell
pipeline such as ``ssgs verify *.safetensors | head -1``.
"""

from __future__ import annotations

import os
import select
import sys

from ssgs.errors import CheckpointError, CheckpointNotFoundError, SSGSError

CLOSED_PIPE = 141


class UsageError(Exception):
    """Bad input to a command (an option, a folder, a file it names): one
    line and exit code 2 from a command that lists it in ``usage_errors``."""


def run_reporting_errors(prog, run, *, verbose=False, usage_errors=(SSGSError, ValueError),
                         interrupted="interrupted"):
    """Call ``run()`` and return its exit code, reporting any failure as one line prefixed with `prog`.

    `usage_errors` are the exception types that mean bad input (exit 2); a
    missing checkpoint is always bad input, any other checkpoint fault is 1.
    `interrupted` is the message for Ctrl-C, or a function returning it
    (called then, so it can name what was written by that time). Standard
    output is flushed before returning, so a closed pipe is met here, not
    at interpreter exit.
    """
    try:
        code = run()
        sys.stdout.flush()
        return code
    except CheckpointNotFoundError as exc:
        return _report(prog, exc, 2)
    except CheckpointError as exc:
        return _report(prog, exc, 1)
    except usage_errors as exc:
        return _report(prog, exc, 2)
    except KeyboardInterrupt:
        message = interrupted() if callable(interrupted) else interrupted
        print(f"{prog}: {message}", file=sys.stderr)
        return 130
    except Exception as exc:  # an ssgs bug or an environment failure
        if _stdout_closed(exc):
            return _end_quietly()
        if verbose:
            raise
        print(f"{prog}: error: {describe(exc)} (run with -v for the traceback)", file=sys.stderr)
        return 1


def _report(prog, exc, code):
    print(f"{prog}: error: {exc}", file=sys.stderr)
    return code


def describe(exc) -> str:
    """An exception in words: an OSError as "filename: reason" (its strerror),
    a MemoryError as "out of memory", anything else as its message, the type
    name only when it has none."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename is not None else exc.strerror
    if isinstance(exc, MemoryError):
        return f"out of memory{': ' + str(exc) if str(exc) else ''}"
    return str(exc) or type(exc).__name__


def _stdout_closed(exc) -> bool:
    """Whether ``exc`` is standard output's reader having gone away (and not
    some other broken pipe, such as a network connection's): flushing what
    is buffered fails the same way, or the pipe reports an error to poll."""
    if not isinstance(exc, BrokenPipeError):
        return False
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return True
    except (OSError, ValueError):
        return False
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows) or no descriptor
        return False


def _end_quietly():
    """Point standard output at the null device so the interpreter's closing
    flush of what is still buffered does not fail again (Python's documented
    way to handle SIGPIPE), and return the shell's code for it."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return CLOSED_PIPE
