"""Running ssgs's commands the way a user does, in a fresh interpreter."""

import os
import subprocess
import sys
from functools import partial


def run_module(module, *args, env=None, timeout=300):
    """``python -m module args...``: the finished process (stdout and stderr
    as text). A traceback on stderr fails the test there and then: every
    command must end a user's mistake with one line, not a traceback."""
    proc = subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def command(module, timeout=300):
    """A runner for one module: ``command("ssgs.train")(*args, env=...)``."""
    return partial(run_module, module, timeout=timeout)
