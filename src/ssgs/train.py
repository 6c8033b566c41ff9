"""python -m ssgs.train: train on folders of audio, with checkpoints.

Exit codes: 0 success; 2 bad input (missing folder, no usable audio, bad
option, unreadable resume checkpoint); 1 a checkpoint that fails
verification, or an unexpected error (traceback with -v).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import posixpath
import sys
import tempfile
import time

import numpy as np

__all__ = ["main"]

PROG = "python -m ssgs.train"


class UsageError(Exception):
    """Bad input: exit code 2."""


def build_parser():
    from ssgs.audio import DEFAULT_EXTENSIONS

    p = argparse.ArgumentParser(
        prog=PROG,
        description="Train an ssgs model (a Gaussian HMM over LPC features) on folders of audio, "
                    "saving verified safetensors checkpoints along the way.")
    p.add_argument("--folders", nargs="+", default=["training_001", "training_002"], metavar="FOLDER",
                   help="folders of training audio (default: training_001 training_002)")
    p.add_argument("--demo", action="store_true",
                   help="train on the built-in demo corpus (synthesised into a temporary folder)")
    p.add_argument("--extensions", nargs="+", default=list(DEFAULT_EXTENSIONS), metavar="EXT",
                   help="file endings to take (default: .mp3 .wav .flac .ogg; .m4a/.aac need ssgs[av])")
    p.add_argument("--recursive", action="store_true", help="also take files in sub-folders")
    p.add_argument("--sample-rate", type=int, default=16000, help="model sample rate in Hz (default: 16000)")
    p.add_argument("--n-states", type=int, default=34, help="HMM states (default: 34)")
    p.add_argument("--n-iterations", type=int, default=20,
                   help="EM iterations in total, counting those of a resumed checkpoint (default: 20)")
    p.add_argument("--lpc-order", type=int, default=12, help="LPC order (default: 12)")
    p.add_argument("--frame-size", type=int, default=1024, help="analysis window in samples (default: 1024)")
    p.add_argument("--hop-size", type=int, default=256, help="samples between frames (default: 256)")
    p.add_argument("--tol", type=float, default=1e-4,
                   help="stop when the log-likelihood per frame gains less than this; 0 never stops early (default: 1e-4)")
    p.add_argument("--seed", type=int, default=None, help="seed of every random choice (default: drawn, and recorded)")
    p.add_argument("--checkpoint-dir", default="models/",
                   help="where checkpoints go: a folder or an fsspec URL such as s3://bucket/run (default: models/)")
    p.add_argument("--checkpoint-interval", type=int, default=5,
                   help="save a checkpoint every N iterations; 0 disables (default: 5)")
    p.add_argument("--resume", metavar="CHECKPOINT", help="continue training from this checkpoint (path or URL)")
    p.add_argument("--augment", action="store_true",
                   help="also train on time-stretched (0.92, 1.08) and pitch-shifted (-0.5, +0.5 semitone) "
                        "copies of each file, each its own sequence")
    p.add_argument("--auto-n-states", nargs="*", type=int, metavar="N", default=None,
                   help="choose the number of states by BIC among these candidates (default: 8 16 24 32)")
    p.add_argument("--no-artifacts", action="store_true",
                   help="save checkpoints without training artifacts (small; resuming then re-reads the audio)")
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


def _join(folder, name):
    folder = str(folder)
    return posixpath.join(folder, name) if "://" in folder else os.path.join(folder, name)


def _write_bytes(path, data):
    from ssgs import checkpoint

    if checkpoint.is_remote(path):
        fs, rpath = checkpoint.filesystem(path)
        with tempfile.NamedTemporaryFile() as tmp:
            tmp.write(data)
            tmp.flush()
            fs.put_file(tmp.name, rpath)
    else:
        checkpoint.atomic_write(checkpoint.local_path(path), data)


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
    def __init__(self, quiet):
        self.quiet = quiet

    def info(self, message=""):
        if not self.quiet:
            print(message, flush=True)

    def warn(self, message):
        if not self.quiet:
            print(message, file=sys.stderr, flush=True)


def _check_options(args):
    for name in ("sample_rate", "n_states", "lpc_order", "frame_size", "hop_size"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    for name in ("n_iterations", "checkpoint_interval", "workers", "threads"):
        if getattr(args, name) < 0:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    if args.seed is not None and args.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {args.seed}")
    if not np.isfinite(args.tol) or args.tol < 0:
        raise UsageError(f"--tol must be >= 0, got {args.tol}")
    if args.dask_workers is not None and args.dask_workers < 1:
        raise UsageError(f"--dask-workers must be >= 1, got {args.dask_workers}")
    if args.dask_workers and args.scheduler:
        raise UsageError("--scheduler and --dask-workers exclude each other")


def _model_from_args(args):
    from ssgs.model import SpectralStateGuidedSynthesis

    auto = args.auto_n_states is not None
    candidates = tuple(args.auto_n_states) if auto and args.auto_n_states else (8, 16, 24, 32)
    try:
        return SpectralStateGuidedSynthesis(
            n_states=args.n_states, lpc_order=args.lpc_order, frame_size=args.frame_size,
            hop_size=args.hop_size, seed=args.seed, n_threads=args.threads, tol=args.tol,
            auto_n_states=auto, auto_n_states_candidates=candidates)
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


def _extract_features(model, files, args, report):
    """Analyse ``files`` into ``model``, warning about each file skipped."""
    from ssgs.errors import AudioError

    try:
        model.extract_features_from_files(files, args.sample_rate, workers=args.workers,
                                          progress=not args.quiet, augment=args.augment, backend=args.backend)
    except AudioError as exc:
        for path, reason in model.skipped_files:
            report.warn(f"skipped {path}: {reason}")
        raise UsageError(str(exc)) from None
    for path, reason in model.skipped_files:
        report.warn(f"skipped {path}: {reason}")


def _initialise(model, report, timings):
    """The number of states (by BIC when asked) and the initial parameters."""
    t0 = time.perf_counter()
    selection = model.select_n_states() if model.auto_n_states else None
    model.initialize_hmm_parameters()
    if selection is not None:
        model.training_history.append({"iteration": 0, "n_states_selection": selection})
        report.info("states by BIC: " + ", ".join(f"{s['n_states']}: {s['bic']:.0f}" for s in selection)
                    + f" -> {model.n_states}")
    timings["initialisation"] = time.perf_counter() - t0


def _fresh_model(args, report, timings):
    from ssgs.audio import scan_folders

    model = _model_from_args(args)
    folders = [_demo_folder(args, report, timings)] if args.demo else args.folders
    t0 = time.perf_counter()
    scan = scan_folders(folders, args.extensions, args.recursive)
    for path, reason in scan.skipped:
        report.warn(f"skipped {path}: {reason}")
    if not scan.files:
        raise UsageError(f"no audio files with endings {' '.join(args.extensions)} in {', '.join(map(str, folders))}")
    report.info(f"decoding and analysing {len(scan.files)} file(s)")
    _extract_features(model, scan.files, args, report)
    timings["analysis"] = time.perf_counter() - t0
    if model.observations.shape[0] < model.n_states:
        raise UsageError(f"only {model.observations.shape[0]} frames of audio: too few for {model.n_states} states")
    _initialise(model, report, timings)
    skipped = scan.skipped + model.skipped_files
    return model, skipped


def _unchanged_training_files(model, resume):
    """The checkpoint's training files (augmented copies left out), each checked
    to be there with the bytes it had."""
    from ssgs.audio import file_sha256

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


def _reread_training_audio(model, args):
    """Analyse the training files again for a checkpoint saved without artifacts,
    keeping its parameters."""
    from ssgs.errors import AudioError

    paths = _unchanged_training_files(model, args.resume)
    augmented = any(s.get("augmentation") for s in model.sources)
    params = model.params
    try:
        model.extract_features_from_files(paths, model.sample_rate, workers=args.workers,
                                          progress=not args.quiet, augment=augmented, backend=args.backend)
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
    model.n_threads = args.threads
    report.info(f"resuming from {args.resume} at iteration {model.iteration}")
    if not model.has_training_artifacts:
        _reread_training_audio(model, args)
    elif args.backend is not None:
        args.backend.attach(model.observations, model.sequence_lengths)
        model.backend = args.backend
    timings["loading"] = time.perf_counter() - t0
    return model, []


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
        path = _join(args.checkpoint_dir, name)
        t0 = time.perf_counter()
        model.save_checkpoint(path, include_training_artifacts=include)
        timings["checkpoints"] = timings.get("checkpoints", 0.0) + time.perf_counter() - t0
        written.append(path)
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


def _after_iteration(args, tracking, bar, save):
    """The EM callback: metrics to MLflow, the progress bar, periodic checkpoints."""
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

    return after_iteration


def _run_em(model, args, tracking, save, timings):
    """EM up to ``--n-iterations`` in all, counting a resumed checkpoint's,
    then the excitation model fitted to the result."""
    remaining = max(0, args.n_iterations - model.iteration)
    bar = _progress_bar(args, remaining)
    t0 = time.perf_counter()
    model.iterative_refinement(remaining, callback=_after_iteration(args, tracking, bar, save))
    if bar is not None:
        bar.close()
    timings["em"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    model.fit_excitation_model()  # stored in the final checkpoint: loading and generating fit nothing
    timings["excitation"] = time.perf_counter() - t0


def _write_npz(model, args, written):
    buf = io.BytesIO()
    model.export_model(buf, precision=np.float64)
    npz_path = _join(args.checkpoint_dir, "model_final.npz")
    _write_bytes(npz_path, buf.getvalue())
    written.append(npz_path)


def _write_test_generation(model, args, written):
    """Three seconds of the model's audio, as float WAV."""
    import soundfile as sf

    audio = model.generate(3.0, sample_rate=model.sample_rate, fidelity=0.0, seed=model.seed)
    wav = io.BytesIO()
    sf.write(wav, audio, model.sample_rate, format="WAV", subtype="FLOAT")
    wav_path = _join(args.checkpoint_dir, "test_generation.wav")
    _write_bytes(wav_path, wav.getvalue())
    written.append(wav_path)


def _audio_seconds(model):
    if model.sequence_samples is None:
        return 0
    return float(np.sum(model.sequence_samples)) / model.sample_rate


def _print_summary(model, args, report, timings, written, skipped):
    em_records = [r for r in model.training_history if "log_likelihood" in r]
    report.info("")
    report.info(f"files used: {len(model.sources)}   skipped: {len(skipped)}")
    for path, reason in skipped:
        report.info(f"  skipped {path}: {reason}")
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


def run(args, report):
    """Train as ``args`` say: checkpoints, the final npz and a test generation, then a summary.

    Returns
    -------
    int
        The exit code, 0.

    Raises
    ------
    UsageError
        For bad options or unusable input.
    """
    _check_options(args)
    timings, written = {}, []
    t_start = time.perf_counter()
    _start_backend(args, report)
    tracking = _start_mlflow(args)
    model, skipped = (_resumed_model if args.resume else _fresh_model)(args, report, timings)
    save = _saver(model, args, timings, written)
    if not args.resume:
        save("checkpoint_initial.safetensors")
    if tracking is not None:
        _log_params(tracking, model, args)
    _run_em(model, args, tracking, save, timings)
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
    if args.summary_json:
        _write_summary_json(model, args, timings, written, skipped)
    return 0


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    report = Reporter(args.quiet)
    args.cleanup = []
    args.cleanup_callables = []
    from ssgs._cli import run_reporting_errors
    from ssgs.errors import SSGSError

    try:
        return run_reporting_errors(PROG, lambda: run(args, report), verbose=args.verbose,
                                    usage_errors=(UsageError, SSGSError),
                                    interrupted="interrupted; the last checkpoint written is whole")
    finally:
        import shutil

        for close in reversed(args.cleanup_callables):
            try:
                close()
            except Exception:  # closing a cluster must not hide the run's own outcome
                pass
        for folder in args.cleanup:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
