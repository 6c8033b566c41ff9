"""The options of ``python -m ssgs.train``: the parser, their defaults and
ranges, what a resumed run takes from its checkpoint, and the command line
that resumes a run.

The model options are None when not given (argparse's default here), so a
value given can be told from a default: a fresh run fills in
:data:`DEFAULTS`; a resumed run takes them from its checkpoint, and one given
that contradicts it is an error. Problems are :class:`ssgs._cli.UsageError`
naming the option.
"""

from __future__ import annotations

import argparse
import shlex

import numpy as np

from ssgs._cli import UsageError

__all__ = ["AUDIO_OPTIONS", "CHECKPOINT_DIR", "CHECKPOINT_INTERVAL", "DEFAULTS", "FROM_CHECKPOINT", "PROG",
           "build_parser", "check_options", "fill_defaults", "resume_command", "take_from_checkpoint"]

PROG = "python -m ssgs.train"
CHECKPOINT_DIR = "models/"
CHECKPOINT_INTERVAL = 5
# defaults of the options a resumed run takes from its checkpoint instead
# (argparse leaves them None, so a value given can be told from a default)
DEFAULTS = {"folders": ["training_001", "training_002"], "sample_rate": 16000, "n_states": 34,
            "n_iterations": 20, "tol": 1e-4, "audio_bits": 16}  # LPC order, frame and hop follow the rate (features.analysis_defaults)
# option -> the checkpoint's value in words, for a resumed run's contradictions
FROM_CHECKPOINT = {"n_states": "{} states", "lpc_order": "LPC order {}", "frame_size": "frame size {}",
                   "hop_size": "hop size {}", "sample_rate": "sample rate {}", "seed": "seed {}", "tol": "tol {}",
                   "audio_bits": "{}-bit training audio"}
# options that pick the training audio, which a resumed run takes from its checkpoint
AUDIO_OPTIONS = ("folders", "demo", "extensions", "recursive", "auto_n_states")


def build_parser(prog=None):
    """The command-line parser, named ``prog`` in its messages (default:
    python -m ssgs.train); model options not given parse as None."""
    from ssgs.scan import DEFAULT_EXTENSIONS

    p = argparse.ArgumentParser(
        prog=prog or PROG,
        description="Train an ssgs model (a Gaussian HMM over LPC features) on folders of audio, "
                    "saving verified safetensors checkpoints along the way.")
    p.add_argument("--folders", nargs="+", default=None, metavar="FOLDER",
                   help="folders of training audio (default: training_001 training_002)")
    p.add_argument("--demo", action="store_true",
                   help="train on the built-in demo corpus (synthesised into a temporary folder)")
    p.add_argument("--extensions", nargs="+", default=None, metavar="EXT",
                   help=f"file endings to take (default: {' '.join(DEFAULT_EXTENSIONS)}; .m4a/.aac need ssgs[av])")
    p.add_argument("--recursive", action="store_true", help="also take files in sub-folders")
    p.add_argument("--sample-rate", type=int, default=None, help="model sample rate in Hz (default: 16000)")
    p.add_argument("--n-states", type=int, default=None, help="HMM states (default: 34)")
    p.add_argument("--n-iterations", type=int, default=None,
                   help="EM iterations in total, counting those of a resumed checkpoint (default: 20)")
    p.add_argument("--lpc-order", type=int, default=None,
                   help="LPC order (default: 12 up to 24 kHz, 24 at 44.1 and 48 kHz)")
    p.add_argument("--frame-size", type=int, default=None,
                   help="analysis window in samples (default: 1024 up to 24 kHz, 4096 at 44.1 and 48 kHz)")
    p.add_argument("--hop-size", type=int, default=None,
                   help="samples between frames (default: 256 up to 24 kHz, 1024 at 44.1 and 48 kHz)")
    p.add_argument("--tol", type=float, default=None,
                   help="stop when the log-likelihood per frame gains less than this; 0 never stops early (default: 1e-4)")
    p.add_argument("--audio-bits", type=int, choices=(16, 24), default=None,
                   help="bits of the training audio kept and stored in checkpoints, after a gain to the full "
                        "range (default: 16; a file 16 bits would keep under 80 dB from its source, or with over 5%% of "
                        "it near the 16-bit floor, gets 24)")
    p.add_argument("--seed", type=int, default=None, help="seed of every random choice (default: drawn, and recorded)")
    p.add_argument("--checkpoint-dir", default=CHECKPOINT_DIR,
                   help="where checkpoints go: a folder or an fsspec URL such as s3://bucket/run (default: models/)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace another run's files in the checkpoint folder (refused without it)")
    p.add_argument("--checkpoint-interval", type=int, default=CHECKPOINT_INTERVAL,
                   help="save a checkpoint every N iterations; 0 disables (default: 5)")
    p.add_argument("--keep-last", type=int, default=None, metavar="N",
                   help="keep only the newest N periodic checkpoints (the initial and final ones are always kept)")
    p.add_argument("--resume", metavar="CHECKPOINT",
                   help="continue training from this checkpoint (path or URL), with its audio and model options")
    p.add_argument("--augment", action="store_true",
                   help="also train on time-stretched (0.92, 1.08) and pitch-shifted (-0.5, +0.5 semitone) "
                        "copies of each file, each its own sequence")
    p.add_argument("--auto-n-states", nargs="*", type=int, metavar="N", default=None,
                   help="choose the number of states by BIC among these candidates (default: 8 16 24 32)")
    p.add_argument("--no-artifacts", action="store_true",
                   help="save checkpoints without training artifacts (small; resuming then re-reads the audio)")
    p.add_argument("--cache-dir", metavar="FOLDER", default=None,
                   help="where the analysed corpus is kept while training, read from disk at each iteration so "
                        "memory does not grow with the corpus (default: $SSGS_CACHE_DIR, else "
                        "$XDG_CACHE_HOME/ssgs or ~/.cache/ssgs, or the system's temporary folder where that cannot be "
                        "written; this run's folder there goes at the end)")
    p.add_argument("--in-memory", action="store_true",
                   help="hold the analysed corpus in memory instead of --cache-dir (faster for small corpora "
                        "that fit)")
    p.add_argument("--workers", type=int, default=0, help="files decoded at once (default: 0 = one per core)")
    p.add_argument("--threads", type=int, default=0, help="threads for the compiled kernels (default: 0 = all cores)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run feature extraction and E-steps on a Dask cluster (e.g. tcp://host:8786); "
                        'needs ssgs[dask]')
    p.add_argument("--dask-workers", type=int, metavar="N",
                   help="the same on a local Dask cluster of N worker processes")
    p.add_argument("--mlflow", nargs="?", const="", metavar="TRACKING_URI",
                   help="log configuration, per-iteration metrics and the final checkpoint to MLflow "
                        "(default: ./mlruns, a SQLite store with the artifacts beside it); needs ssgs[mlflow]")
    p.add_argument("--summary-json", metavar="PATH", help="also write the closing summary as JSON to PATH")
    p.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    p.add_argument("-v", "--verbose", action="store_true", help="print tracebacks for unexpected errors")
    return p


def _option(name):
    return "--" + name.replace("_", "-")


def check_options(args):
    """Each option of ``args`` (the parsed command line) given within its
    range (those left out are None here); UsageError otherwise."""
    minimum = {"sample_rate": 1, "n_states": 1, "lpc_order": 1, "frame_size": 1, "hop_size": 1, "keep_last": 1,
               "n_iterations": 0, "checkpoint_interval": 0, "workers": 0, "threads": 0, "seed": 0}
    for name, low in minimum.items():
        value = getattr(args, name)
        if value is not None and value < low:
            raise UsageError(f"{_option(name)} must be >= {low}, got {value}")
    if args.tol is not None and (not np.isfinite(args.tol) or args.tol < 0):
        raise UsageError(f"--tol must be >= 0, got {args.tol}")
    if args.dask_workers is not None and args.dask_workers < 1:
        raise UsageError(f"--dask-workers must be >= 1, got {args.dask_workers}")
    if args.dask_workers and args.scheduler:
        raise UsageError("--scheduler and --dask-workers exclude each other")
    if args.in_memory and args.cache_dir is not None:
        raise UsageError("--cache-dir and --in-memory exclude each other")


def fill_defaults(args):
    """Set in ``args`` the defaults of the options a fresh run was not given
    (:data:`DEFAULTS`, and the scan's default file endings)."""
    from ssgs.scan import DEFAULT_EXTENSIONS

    for name, value in DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.extensions is None:
        args.extensions = list(DEFAULT_EXTENSIONS)


def take_from_checkpoint(args, model, report):
    """Set a resumed run's options in ``args`` from its checkpoint's
    ``model``: UsageError for a model option given that contradicts it, or
    for --n-iterations the checkpoint has already reached; a warning through
    ``report.warn`` for each option given that picks audio (unused)."""
    for name, words in FROM_CHECKPOINT.items():
        given, stored = getattr(args, name), getattr(model, name)
        if given is not None and given != stored:
            raise UsageError(f"{_option(name)} {given} contradicts {args.resume}, a model with "
                             f"{words.format(stored)}: leave {_option(name)} out to resume it")
        setattr(args, name, stored)
    for name in AUDIO_OPTIONS:
        if getattr(args, name) not in (None, False):
            report.warn(f"warning: {_option(name)} is not used with --resume (the run goes on with the "
                        "checkpoint's audio)")
    given = args.n_iterations is not None
    args.n_iterations = args.n_iterations if given else DEFAULTS["n_iterations"]
    if args.n_iterations <= model.iteration:
        said = f"--n-iterations {args.n_iterations}" if given else f"--n-iterations (default {args.n_iterations})"
        raise UsageError(f"{args.resume} is already at iteration {model.iteration}: {said} counts every "
                         f"iteration, so give more than {model.iteration} to train further")


def resume_command(args, checkpoint) -> str:
    """The command that continues the run of ``args`` from ``checkpoint``,
    as it was set to end: its name, --resume, --n-iterations and the
    checkpoint options that differ from their defaults, shell-quoted."""
    parts = ["--resume", checkpoint, "--n-iterations", args.n_iterations]
    if args.checkpoint_dir != CHECKPOINT_DIR:
        parts += ["--checkpoint-dir", args.checkpoint_dir]
    if args.checkpoint_interval != CHECKPOINT_INTERVAL:
        parts += ["--checkpoint-interval", args.checkpoint_interval]
    if args.keep_last:
        parts += ["--keep-last", args.keep_last]
    if args.no_artifacts:
        parts.append("--no-artifacts")
    if args.cache_dir is not None:
        parts += ["--cache-dir", args.cache_dir]
    if args.in_memory:
        parts.append("--in-memory")
    return " ".join([args.prog] + [shlex.quote(str(p)) for p in parts])

