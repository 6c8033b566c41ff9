"""python -m ssgs.train: train on folders of audio, with checkpoints.

The checkpoint folder is checked before any audio is read: it must be
writable, and a folder holding another run's files (checkpoints, the npz,
the test generation) is refused unless ``--overwrite`` says to replace that
run; resuming from a checkpoint in the folder continues its own run. Files
a killed write left behind are removed. A resumed run takes its model
options from the checkpoint: one given that contradicts it is an error.
The folder's checks and writes are :mod:`ssgs.run_folder`'s; the options,
their defaults and what a resumed run takes from its checkpoint are
:mod:`ssgs.train_options`'.

Exit codes: 0 success; 2 bad input (missing folder, no usable audio, bad
option, a checkpoint folder that cannot be written or holds another run,
an option that contradicts the resumed checkpoint, an unreadable resume
checkpoint); 1 a checkpoint that fails verification, or an unexpected error
(traceback with -v); 130 interrupted (the message says how to resume);
141 standard output closed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shlex
import sys
import tempfile
import time
import warnings

import numpy as np

from ssgs import run_folder
from ssgs._cli import UsageError
from ssgs.train_options import PROG, build_parser, check_options, fill_defaults, resume_command, take_from_checkpoint

__all__ = ["main"]


def _log_artifact(tracking, path):
    """Log a checkpoint to MLflow (fetched first if it lives at a URL)."""
    from ssgs import checkpoint

    if not checkpoint.is_remote(path):
        tracking.log_artifact(checkpoint.local_path(path))
        return
    with tempfile.TemporaryDirectory() as tmp:
        fs, rpath = checkpoint.filesystem(path)
        local = os.path.join(tmp, os.path.basename(rpath))
        fs.get_file(rpath, local)
        tracking.log_artifact(local)


class Reporter:
    """Progress on stdout and warnings on stderr, both silenced by --quiet."""

    def __init__(self, quiet):
        self.quiet = quiet

    def info(self, message=""):
        if not self.quiet:
            print(message, flush=True)

    def warn(self, message):
        if not self.quiet:
            print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _warnings_as_lines(report):
    """Show each ssgs warning (a truncated file, fewer states than asked
    for, ...) once, as one "warning: ..." line on stderr. The hook is
    process-wide while it is set, so it also catches the warnings of the
    threads that decode."""
    from ssgs.errors import SSGSWarning

    seen = set()
    with warnings.catch_warnings():
        warnings.simplefilter("always", SSGSWarning)
        original = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if not issubclass(category, SSGSWarning):
                return original(message, category, filename, lineno, file, line)
            if str(message) not in seen:
                seen.add(str(message))
                report.warn(f"warning: {message}")

        warnings.showwarning = show
        yield


def _model_from_args(args):
    from ssgs.model import SpectralStateGuidedSynthesis

    auto = args.auto_n_states is not None
    candidates = tuple(args.auto_n_states) if auto and args.auto_n_states else (8, 16, 24, 32)
    try:
        return SpectralStateGuidedSynthesis(
            n_states=args.n_states, lpc_order=args.lpc_order, frame_size=args.frame_size,
            hop_size=args.hop_size, seed=args.seed, n_threads=args.threads, tol=args.tol,
            auto_n_states=auto, auto_n_states_candidates=candidates, audio_bits=args.audio_bits)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _demo_folder(args, report, timings):
    """Write the demo corpus into a temporary folder (removed at the end); returns the folder."""
    from ssgs.demo import write_demo_corpus

    t0 = time.perf_counter()
    demo_dir = tempfile.mkdtemp(prefix="ssgs-demo-")
    args.cleanup.append(demo_dir)
    write_demo_corpus(demo_dir)
    timings["demo corpus"] = time.perf_counter() - t0
    report.info(f"demo corpus written to {demo_dir} (removed at the end; ssgs.demo.write_demo_corpus makes it again)")
    return demo_dir


def _warn_skipped(skipped, report):
    from ssgs.audio import display_path

    for path, reason in skipped:
        report.warn(f"skipped {display_path(path)}: {reason}")


def _cache_dir(args):
    """Where the run keeps its corpus: --cache-dir, else the default where it
    can be written (:func:`ssgs.frame_store.usable_cache_dir`); None (memory)
    with --in-memory."""
    from ssgs.frame_store import usable_cache_dir

    return None if args.in_memory else (args.cache_dir or usable_cache_dir())


def _extract_features(model, files, args, report):
    """Analyse ``files`` into ``model``, warning once about each file skipped
    or truncated."""
    from ssgs.errors import AudioError

    try:
        with _warnings_as_lines(report):
            model.analyse_files(files, args.sample_rate, workers=args.workers,
                                              progress=not args.quiet, augment=args.augment, backend=args.backend,
                                              cache_dir=_cache_dir(args))
    except AudioError as exc:
        _warn_skipped(model.skipped_files, report)
        raise UsageError(str(exc)) from None
    _warn_skipped(model.skipped_files, report)


def _no_audio_message(args, folders, scan):
    from ssgs.audio import display_path

    message = (f"no audio files with endings {' '.join(args.extensions)} in "
               f"{', '.join(display_path(f) for f in folders)}")
    if scan.other_endings:
        counts = [f"{n} {ext}" for ext, n in sorted(scan.other_endings.items(), key=lambda kv: (-kv[1], kv[0]))]
        found = counts[0] if len(counts) == 1 else ", ".join(counts[:-1]) + " and " + counts[-1]
        message += f" (found {found} files: add them with --extensions)"
    return message


def _initialise(model, report, timings):
    """The number of states (by BIC when asked, fewer when the frames are
    fewer) and the initial parameters."""
    t0 = time.perf_counter()
    with _warnings_as_lines(report):
        model.initialize_hmm_parameters()
    for record in model.training_history:
        if "n_states_selection" in record:
            report.info("states by BIC: " + ", ".join(f"{s['n_states']}: {s['bic']:.0f}"
                                                      for s in record["n_states_selection"])
                        + f" -> {model.n_states}")
    timings["initialisation"] = time.perf_counter() - t0


def _fresh_model(args, report, timings):
    from ssgs.scan import scan_folders

    model = _model_from_args(args)
    folders = [_demo_folder(args, report, timings)] if args.demo else args.folders
    t0 = time.perf_counter()
    scan = scan_folders(folders, args.extensions, args.recursive)
    _warn_skipped(scan.skipped, report)
    if not scan.files:
        raise UsageError(_no_audio_message(args, folders, scan))
    report.info(f"decoding and analysing {len(scan.files)} file(s)")
    _extract_features(model, scan.files, args, report)
    timings["analysis"] = time.perf_counter() - t0
    _initialise(model, report, timings)
    skipped = scan.skipped + model.skipped_files
    return model, skipped


def _unchanged_training_files(model, resume):
    """The checkpoint's training files (augmented copies left out), each checked
    to be there with the bytes it had."""
    from ssgs.scan import file_sha256

    sources = model.sources
    if not sources or any(s.get("kind") != "file" for s in sources):
        raise UsageError(f"{resume}: has no training artifacts and its sources are not files; "
                         "cannot resume without the audio")
    paths = []
    for s in sources:
        path = s["path"]
        if s.get("augmentation"):
            continue  # recreated from its file, in the same order
        if not os.path.isfile(path):
            raise UsageError(f"{resume}: training file {path} is gone (the checkpoint has no artifacts)")
        if file_sha256(path) != s.get("sha256"):
            raise UsageError(f"{resume}: training file {path} has changed since the checkpoint "
                             "(sha256 differs); refusing to resume on different audio")
        paths.append(path)
    return paths


def _reread_training_audio(model, args, report):
    """Analyse the training files again for a checkpoint saved without artifacts,
    keeping its parameters."""
    from ssgs.errors import AudioError

    paths = _unchanged_training_files(model, args.resume)
    augmented = any(s.get("augmentation") for s in model.sources)
    params = model.params
    try:
        with _warnings_as_lines(report):
            model.analyse_files(paths, model.sample_rate, workers=args.workers,
                                              progress=not args.quiet, augment=augmented, backend=args.backend,
                                              cache_dir=_cache_dir(args))
    except AudioError as exc:
        raise UsageError(str(exc)) from None
    if model.skipped_files:
        raise UsageError(f"{args.resume}: training file {model.skipped_files[0][0]} can no longer be used "
                         f"({model.skipped_files[0][1]})")
    model.params = params


def _resumed_model(args, report, timings):
    from ssgs.model import SpectralStateGuidedSynthesis

    t0 = time.perf_counter()
    model = SpectralStateGuidedSynthesis.load_checkpoint(args.resume)
    take_from_checkpoint(args, model, report)
    model.n_threads = args.threads
    report.info(f"resuming from {args.resume} at iteration {model.iteration}")
    if not model.has_training_artifacts:
        _reread_training_audio(model, args, report)
    else:
        _place_stored_corpus(model, args)
    timings["loading"] = time.perf_counter() - t0
    return model, []


def _place_stored_corpus(model, args):
    """A resumed checkpoint's corpus where the run keeps it: its coded audio
    analysed into the cache folder (unless --in-memory), and the frames on
    the Dask cluster when there is one."""
    if _cache_dir(args) is not None and model.corpus.needs_analysis:
        from ssgs.frame_store import FrameStore

        model.corpus = model.corpus.into_store(FrameStore(_cache_dir(args)))
    if args.backend is not None:
        args.backend.attach(model.observations, model.sequence_lengths)
        model.backend = args.backend


def _start_backend(args, report):
    args.backend = None
    if not (args.scheduler or args.dask_workers):
        return
    from ssgs.distributed import DaskBackend, connect

    try:
        client = connect(args.scheduler, args.dask_workers)
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot reach the Dask scheduler {args.scheduler}: {exc}") from None
    args.backend = DaskBackend(client)
    args.cleanup_callables.append(args.backend.close)
    workers = len(client.scheduler_info().get("workers", {}))
    report.info(f"Dask: {workers} worker(s) at {client.scheduler.address}")


def _start_mlflow(args):
    if args.mlflow is None:
        return None
    try:
        import mlflow
    except ImportError:
        raise UsageError('--mlflow needs MLflow: pip install "ssgs[mlflow]"') from None
    import logging

    for name in ("mlflow", "alembic"):  # their INFO lines are noise in a command-line run
        logging.getLogger(name).setLevel(logging.WARNING)
    uri = args.mlflow
    artifact_location = None
    if not uri:
        # ./mlruns, holding a SQLite database (MLflow's recommended local
        # store) and the artifacts beside it
        folder = os.path.abspath("mlruns")
        os.makedirs(folder, exist_ok=True)
        uri = "sqlite:///" + os.path.join(folder, "mlflow.db")
        artifact_location = "file://" + os.path.join(folder, "artifacts")
    elif uri.startswith("sqlite:///"):
        # artifacts beside the database, as for the default (MLflow's own
        # default is ./mlruns in whatever folder the run started from)
        folder = os.path.dirname(os.path.abspath(uri[len("sqlite:///"):]))
        artifact_location = "file://" + os.path.join(folder, "artifacts")
    elif uri.startswith("file:") or "://" not in uri:
        # a file store asked for by name: MLflow 3 wants an explicit opt-in
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name("ssgs") is None:
        mlflow.create_experiment("ssgs", artifact_location=artifact_location)
    mlflow.set_experiment("ssgs")
    mlflow.start_run(run_name="ssgs train")
    args.cleanup_callables.append(mlflow.end_run)
    return mlflow


def _saver(model, args, timings, written):
    """A function that saves a checkpoint by name into the checkpoint folder,
    adding its time to ``timings`` and its path to ``written``."""
    include = not args.no_artifacts

    def save(name):
        path = run_folder.join(args.checkpoint_dir, name)
        # a new name that appears is whole (writes are atomic): Ctrl-C between
        # the write and the append below still names it
        args.saving = None if run_folder.exists(path) else path
        t0 = time.perf_counter()
        model.save_checkpoint(path, include_training_artifacts=include)
        timings["checkpoints"] = timings.get("checkpoints", 0.0) + time.perf_counter() - t0
        written.append(path)
        args.saving = None
        if args.replaced:  # the run this one replaces goes once a checkpoint of this one is whole
            run_folder.remove(args.checkpoint_dir, [n for n in args.replaced if n != name])
            args.replaced = []
        return path

    return save


def _log_params(tracking, model, args):
    config = model.config()
    tracking.log_params({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in config.items()})
    tracking.log_params({"files": len(model.sources), "frames": int(np.sum(model.sequence_lengths)),
                         "resumed_from": args.resume or ""})


def _progress_bar(args, remaining):
    if args.quiet or not remaining:
        return None
    from tqdm import tqdm

    return tqdm(total=remaining, desc="EM", unit="it", disable=None, leave=False)


def _after_iteration(args, tracking, bar, save, written):
    """The EM callback: metrics to MLflow, the progress bar, periodic
    checkpoints (the oldest removed beyond --keep-last)."""
    def after_iteration(m, record):
        if tracking is not None:
            tracking.log_metrics({k: float(record[k]) for k in ("log_likelihood", "occupancy_entropy",
                                                                "smoothness_penalty", "seconds")},
                                 step=m.iteration)
        if bar is not None:
            bar.set_postfix(ll=f"{record['log_likelihood']:.4f}")
            bar.update(1)
        if args.checkpoint_interval and m.iteration % args.checkpoint_interval == 0:
            save(f"checkpoint_epoch_{m.iteration}.safetensors")
            if args.keep_last:
                gone = run_folder.keep_last(args.checkpoint_dir, args.keep_last)
                written[:] = [path for path in written if path not in gone]

    return after_iteration


def _run_em(model, args, tracking, save, timings, written):
    """EM up to ``--n-iterations`` in all, counting a resumed checkpoint's,
    then the excitation model fitted to the result."""
    remaining = max(0, args.n_iterations - model.iteration)
    bar = _progress_bar(args, remaining)
    t0 = time.perf_counter()
    model.iterative_refinement(remaining, callback=_after_iteration(args, tracking, bar, save, written))
    if bar is not None:
        bar.close()
    timings["em"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    model.fit_excitation_model()  # stored in the final checkpoint: loading and generating fit nothing
    timings["excitation"] = time.perf_counter() - t0


def _write_npz(model, args, written):
    buf = io.BytesIO()
    model.export_model(buf, precision=np.float64)
    npz_path = run_folder.join(args.checkpoint_dir, "model_final.npz")
    run_folder.write_bytes(npz_path, buf.getvalue())
    written.append(npz_path)


def _write_test_generation(model, args, written):
    """Three seconds of the model's audio, as float WAV."""
    import soundfile as sf

    audio = model.generate(3.0, sample_rate=model.sample_rate, fidelity=0.0, seed=model.seed)
    wav = io.BytesIO()
    sf.write(wav, audio, model.sample_rate, format="WAV", subtype="FLOAT")
    wav_path = run_folder.join(args.checkpoint_dir, "test_generation.wav")
    run_folder.write_bytes(wav_path, wav.getvalue())
    written.append(wav_path)


def _audio_seconds(model):
    if model.sequence_samples is None:
        return 0
    return float(np.sum(model.sequence_samples)) / model.sample_rate


def _print_summary(model, args, report, timings, written, skipped):
    em_records = [r for r in model.training_history if "log_likelihood" in r]
    report.info("")
    report.info(f"files used: {len(model.sources)}   skipped: {len(skipped)}"
                + (" (reasons above)" if skipped else ""))
    seconds = _audio_seconds(model)
    report.info(f"frames: {int(np.sum(model.sequence_lengths)):,} ({seconds:.1f} s of audio at {model.sample_rate} Hz)")
    if em_records:
        status = "converged" if model.converged else "not converged"
        report.info(f"log-likelihood per frame: {em_records[-1]['log_likelihood']:.4f} after "
                    f"{model.iteration} iteration(s), {status}")
    report.info("time: " + ", ".join(f"{k} {v:.2f} s" for k, v in timings.items()))
    report.info("written:")
    for path in written:
        report.info(f"  {path}")
    if args.backend is not None and args.backend.bytes_per_iteration:
        report.info(f"network: {np.mean(args.backend.bytes_per_iteration) / 1e6:.2f} MB per EM iteration "
                    "(parameters out, statistics back)")


def _write_summary_json(model, args, timings, written, skipped):
    with open(args.summary_json, "w") as f:
        json.dump({"timings": timings, "written": written, "frames": int(np.sum(model.sequence_lengths)),
                   "network_bytes_per_iteration": (list(args.backend.bytes_per_iteration)
                                                   if args.backend is not None else None),
                   "seconds_of_audio": _audio_seconds(model), "iterations": model.iteration,
                   "converged": model.converged,
                   "files": [s["path"] for s in model.sources], "skipped": skipped}, f, indent=1)


def _commands(args):
    """How the user runs generate and report: as ssgs subcommands when this
    command was run as one, as modules otherwise."""
    if args.prog.startswith("ssgs"):
        return "ssgs generate", "ssgs report"
    return "python -m ssgs.generate", "python -m ssgs.cli report"


def _next_steps(args, final, report):
    generate, render = _commands(args)
    report.info(f"next: {generate} {shlex.quote(final)} -o out.wav --duration 10")
    report.info(f"      {render} {shlex.quote(final)} -o report.png")


def _interrupted(args):
    """What Ctrl-C says: the newest checkpoint and the command that resumes from it."""
    checkpoints = [p for p in args.written if p.endswith(".safetensors")]
    if args.saving and run_folder.exists(args.saving):
        checkpoints.append(args.saving)
    if not checkpoints:
        return "interrupted before the first checkpoint was written"
    if checkpoints[-1].endswith("checkpoint_final.safetensors"):
        return f"interrupted after training ended; {checkpoints[-1]} is whole"
    return f"interrupted; resume with: {resume_command(args, checkpoints[-1])}"


def _prepare(args, report):
    """What is checked before any audio or checkpoint is read: the options,
    then the checkpoint folder (``args.replaced``: another run's files, to go
    once this run's first checkpoint is whole); then the Dask backend, if
    asked for."""
    check_options(args)
    if not args.resume:
        fill_defaults(args)
    args.replaced = run_folder.check_destination(args.checkpoint_dir, args.resume, args.overwrite)
    _start_backend(args, report)


def run(args, report):
    """Train as ``args`` say: checkpoints, the final npz and a test generation,
    then a summary and what to run next.

    Returns
    -------
    int
        The exit code, 0.

    Raises
    ------
    UsageError
        For bad options, unusable input or a checkpoint folder that cannot
        take this run.
    """
    timings, written = {}, args.written
    t_start = time.perf_counter()
    _prepare(args, report)
    tracking = _start_mlflow(args)
    model, skipped = (_resumed_model if args.resume else _fresh_model)(args, report, timings)
    save = _saver(model, args, timings, written)
    if not args.resume:
        save("checkpoint_initial.safetensors")
    if tracking is not None:
        _log_params(tracking, model, args)
    _run_em(model, args, tracking, save, timings, written)
    final = save("checkpoint_final.safetensors")
    if tracking is not None:
        tracking.log_metric("converged", float(model.converged), step=model.iteration)
        _log_artifact(tracking, final)
    t0 = time.perf_counter()
    _write_npz(model, args, written)
    _write_test_generation(model, args, written)
    timings["outputs"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_start
    _print_summary(model, args, report, timings, written, skipped)
    _next_steps(args, final, report)
    if args.summary_json:
        _write_summary_json(model, args, timings, written, skipped)
    return 0


def _close(args):
    import shutil

    for close in reversed(args.cleanup_callables):
        try:
            close()
        except Exception:  # closing a cluster must not hide the run's own outcome
            pass
    for folder in args.cleanup:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv=None, prog=None):
    """Run the command on ``argv`` (default: the command line); ``prog`` is its
    name in messages, as the user typed it (default: python -m ssgs.train)."""
    prog = prog or PROG
    args = build_parser(prog).parse_args(argv)
    report = Reporter(args.quiet)
    args.prog, args.written, args.replaced, args.saving = prog, [], [], None
    args.cleanup, args.cleanup_callables = [], []
    from ssgs._cli import run_reporting_errors
    from ssgs.errors import SSGSError

    try:
        return run_reporting_errors(prog, lambda: run(args, report), verbose=args.verbose,
                                    usage_errors=(UsageError, SSGSError), interrupted=lambda: _interrupted(args))
    finally:
        _close(args)


if __name__ == "__main__":
    sys.exit(main())
