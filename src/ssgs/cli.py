"""The ``ssgs`` command: train, generate, info, verify, report.

    ssgs train --folders music/ --n-states 34        (= python -m ssgs.train)
    ssgs generate CKPT -o out.wav --duration 5       (= python -m ssgs.generate)
    ssgs info CKPT [--json] [--force]
    ssgs verify CKPT [CKPT ...]
    ssgs convert REFERENCE.safetensors -o MODEL.safetensors   (a reference implementation's checkpoint)
    ssgs report CKPT -o report.png                   (needs ssgs[plot]: matplotlib)

Exit codes: 0 success; 1 a checkpoint that fails verification (or an
unexpected error); 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["main"]

PROG = "ssgs"


def _entry(metadata, key, default):
    """A JSON metadata entry, or ``default`` when it is missing, unreadable
    or not of ``default``'s type (``info --force`` shows what it can)."""
    try:
        value = json.loads(metadata.get(key, "null"))
    except ValueError:
        return default
    return value if isinstance(value, type(default)) else default


def _number(value):
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def _tensor_bytes(tensors):
    """Bytes of the tensors by group: parameters, training artifacts,
    excitation model, adaptive statistics."""
    from ssgs import checkpoint

    groups = {"parameters": 0, "training artifacts": 0, "excitation model": 0, "adaptive statistics": 0}
    for tname, info in tensors.items():
        if tname.startswith("adaptive__"):
            group = "adaptive statistics"
        elif tname in checkpoint.REQUIRED_TENSORS:
            group = "parameters"
        elif tname.startswith(("state_", "observation_", "excitation_", "voice_")):  # synthesis statistics
            group = "excitation model"
        else:
            group = "training artifacts"
        groups[group] += checkpoint.tensor_nbytes(info)
    return groups


def checkpoint_info(path, whole=True) -> dict:
    """What a checkpoint holds, read from its header only (no tensor data);
    ``whole=False`` reads the header of a file cut short or extended too."""
    from ssgs import checkpoint
    from ssgs.corpus import Corpus

    metadata, tensors = checkpoint.read_header(path, whole=whole)
    form = "coded" if Corpus.is_coded(tensors) else "residuals" if "residual_signals" in tensors else None
    config, state = _entry(metadata, "config", {}), _entry(metadata, "training_state", {})
    sources = [s for s in _entry(metadata, "sources", []) if isinstance(s, dict)]
    records = [r for r in state.get("history", []) if isinstance(r, dict)]
    history = [r for r in records if "log_likelihood" in r]
    reduced = next((r["n_states_reduced"] for r in records if isinstance(r.get("n_states_reduced"), dict)), None)
    sample_rate = _number(config.get("sample_rate")) or 16000
    return {
        "path": str(path),
        "file_bytes": checkpoint.file_size(path),
        "format": metadata.get("format"),
        "ssgs_format_version": metadata.get("ssgs_format_version"),
        "ssgs_version": metadata.get("ssgs_version"),
        "created": metadata.get("created"),
        "config": config,
        "training": {
            "iteration": state.get("iteration"),
            "converged": state.get("converged"),
            "log_likelihood_per_frame": [_number(r["log_likelihood"]) for r in history],
            "seconds": sum(_number(r.get("seconds")) for r in history),
            "n_states_reduced": reduced,
        },
        "sources": {"count": len(sources), "seconds_of_audio": sum(_number(s.get("n_samples")) for s in sources)
                    / sample_rate, "files": sources},
        "has_training_artifacts": form is not None,
        "training_audio": form,
        "has_adaptive_statistics": any(t.startswith("adaptive__") for t in tensors),
        "tensor_bytes": _tensor_bytes(tensors),
        "tensors": tensors,
    }


def _human(nbytes):
    for unit in ("B", "KB", "MB", "GB"):
        if nbytes < 1000 or unit == "GB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000.0
    return f"{nbytes:.1f} GB"


def _damage(path, force):
    """Why the checkpoint at ``path`` is not whole (None when it is): the
    checks ``ssgs verify`` makes. Without ``force`` that is the error."""
    from ssgs.errors import CheckpointError, CheckpointNotFoundError
    from ssgs.model import SpectralStateGuidedSynthesis

    try:
        SpectralStateGuidedSynthesis.load_checkpoint(path, verify=True)
    except CheckpointNotFoundError:
        raise
    except CheckpointError as exc:
        if not force:
            raise CheckpointError(f"{exc} (--force shows what can be read of it)") from None
        return str(exc)
    return None


def _print_info(info, max_sources):
    c, t, s = info["config"], info["training"], info["sources"]
    ll = t["log_likelihood_per_frame"]
    print(f"{info['path']}  ({_human(info['file_bytes'])}, ssgs {info['ssgs_version']}, "
          f"format {info['ssgs_format_version']}, created {info['created']})")
    print(f"  model      {c.get('n_states')} states, LPC order {c.get('lpc_order')}, "
          f"{c.get('n_features')} features, frame {c.get('frame_size')} / hop {c.get('hop_size')} "
          f"at {c.get('sample_rate')} Hz, seed {c.get('seed')}")
    if t.get("n_states_reduced"):
        r = t["n_states_reduced"]
        print(f"             {r.get('requested')} states asked for; {r.get('n_frames')} frames support "
              f"{r.get('n_states')}")
    trend = f", log-likelihood per frame {ll[0]:.4f} -> {ll[-1]:.4f}" if ll else ""
    print(f"  training   {t['iteration']} EM iteration(s){trend}, "
          f"{'converged' if t['converged'] else 'not converged'}, {t['seconds']:.1f} s of EM")
    print(f"  sources    {s['count']} sequence(s), {s['seconds_of_audio']:.1f} s of audio")
    for src in s["files"][:max_sources]:
        print(f"             {src.get('path')}  ({src.get('n_frames')} frames)")
    if s["count"] > max_sources:
        print(f"             ... and {s['count'] - max_sources} more (--json lists them all)")
    bits = c.get("audio_bits") or 16
    kept = {"coded": "yes (the training audio, FLAC: " + ("24-bit)" if bits == 24 else "16-bit, 24 where a file needs it)"),
            "residuals": "yes (float32 residuals, an older checkpoint)", None: "no"}[info["training_audio"]]
    print(f"  artifacts  {kept}"
          f"   adaptive statistics {'yes' if info['has_adaptive_statistics'] else 'no'}")
    print("  sizes      " + ", ".join(f"{k} {_human(v)}" for k, v in info["tensor_bytes"].items() if v))
    if info["damaged"]:
        print(f"  DAMAGED    {info['damaged']}")


def _reference_info(path):
    """What a reference implementation's checkpoint holds (its header), or
    None for any other file."""
    from ssgs import checkpoint, reference
    from ssgs.errors import CheckpointError, CheckpointNotFoundError

    try:
        metadata, tensors = checkpoint.read_header(path)
    except CheckpointNotFoundError:
        raise
    except CheckpointError:  # damaged: the ssgs checks say how
        return None
    if not reference.is_reference(metadata):
        return None
    keys = ("n_states", "lpc_order", "frame_size", "hop_size", "sample_rate", "precision")
    return {"path": str(path), "format": "reference implementation", "file_bytes": checkpoint.file_size(path),
            "config": {k: metadata.get(k) for k in keys}, "has_training_artifacts": "training_frames" in tensors,
            "has_adaptive_statistics": any(t.startswith("adaptive_") for t in tensors), "verified": False,
            "tensors": tensors}


def _print_reference_info(info):
    c = info["config"]
    print(f"{info['path']}  ({_human(info['file_bytes'])}): a checkpoint of the reference implementation, "
          "not an ssgs checkpoint; it has no integrity check")
    print(f"  model      {c['n_states']} states over LPC coefficients, order {c['lpc_order']}, frame "
          f"{c['frame_size']} / hop {c['hop_size']}, "
          + (f"at {c['sample_rate']} Hz" if c["sample_rate"] not in (None, "None") else
             "rate not recorded (16000 Hz assumed)") + f", {c['precision']}")
    print(f"  artifacts  {'yes (training frames)' if info['has_training_artifacts'] else 'no'}"
          f"   adaptive statistics {'yes (not converted)' if info['has_adaptive_statistics'] else 'no'}")
    print(f"  convert    ssgs convert {info['path']} -o MODEL.safetensors  (load_checkpoint converts it too)")


def cmd_info(args):
    """What a checkpoint holds; exit 1 for one that is not whole (with
    --force, after showing what its header holds). A reference
    implementation's checkpoint: what it is and how to convert it."""
    ref = _reference_info(args.checkpoint)
    if ref is not None:
        if args.json:
            print(json.dumps(ref, indent=1, sort_keys=True))
        else:
            _print_reference_info(ref)
        return 0
    damage = _damage(args.checkpoint, args.force)
    info = {**checkpoint_info(args.checkpoint, whole=damage is None), "damaged": damage}
    if args.json:
        print(json.dumps(info, indent=1, sort_keys=True))
    else:
        _print_info(info, args.max_sources)
    return 1 if damage else 0


def cmd_verify(args):
    """Load each checkpoint as a model does (layout, digests, parameters):
    one line each, carrying on past any that fails (every malformed file
    is an SSGSError; nothing else is caught, a closed pipe included)."""
    from ssgs.errors import SSGSError
    from ssgs.model import SpectralStateGuidedSynthesis

    failed = 0
    for path in args.checkpoints:
        try:
            if _reference_info(path) is not None:
                raise SSGSError(f"{path}: a checkpoint of the reference implementation: it has no integrity "
                                "check to verify (ssgs convert writes a verified ssgs checkpoint of it)")
            model = SpectralStateGuidedSynthesis.load_checkpoint(path, verify=True)
        except SSGSError as exc:
            failed += 1
            print(f"FAILED  {exc}")
            continue
        extra = "with artifacts" if model.has_training_artifacts else "parameters only"
        print(f"OK      {path}  ({model.n_states} states, iteration {model.iteration}, {extra})")
    return 1 if failed else 0


def cmd_report(args):
    from ssgs.model import SpectralStateGuidedSynthesis
    from ssgs.report import render_report

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ValueError('ssgs report needs matplotlib: pip install "ssgs[plot]"') from None
    model = SpectralStateGuidedSynthesis.load_checkpoint(args.checkpoint)
    render_report(model, args.output, seconds=args.seconds, seed=args.seed, title=str(args.checkpoint))
    print(f"wrote {args.output}")
    return 0


def cmd_convert(args):
    """A reference implementation's checkpoint converted and written as a
    verified ssgs checkpoint."""
    import warnings

    from ssgs.errors import ReferenceCheckpointWarning, SSGSError
    from ssgs.model import SpectralStateGuidedSynthesis

    if args.n_iterations < 0:
        raise ValueError(f"--n-iterations must be at least 0, got {args.n_iterations}")
    if _reference_info(args.reference) is None:
        raise SSGSError(f"{args.reference}: not a checkpoint of the reference implementation (nothing to convert)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ReferenceCheckpointWarning)
        model = SpectralStateGuidedSynthesis.convert_reference(args.reference, args.n_iterations, args.seed)
    for w in caught:
        print(f"note: {w.message}")
    model.save_checkpoint(args.output)
    extra = "with artifacts: every fidelity" if model.has_training_artifacts else "parameters only: fidelity 0"
    print(f"wrote {args.output}  ({model.n_states} states, {extra})")
    return 0


def build_parser():
    p = argparse.ArgumentParser(prog=PROG, description="Spectral-State Guided Synthesis: train models of "
                                "audio, generate from them, inspect checkpoints.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("train", help="train on folders of audio (python -m ssgs.train)", add_help=False)
    sub.add_parser("generate", help="make audio from a checkpoint (python -m ssgs.generate)", add_help=False)
    info = sub.add_parser("info", help="what a checkpoint holds")
    info.add_argument("checkpoint")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.add_argument("--max-sources", type=int, default=10, help="sources listed (default: 10)")
    info.add_argument("--force", action="store_true",
                      help="show what a damaged checkpoint's header holds (the exit status is still 1)")
    verify = sub.add_parser("verify", help="check checkpoints' integrity (exit 1 if any is not whole)")
    verify.add_argument("checkpoints", nargs="+")
    report = sub.add_parser("report", help="a PNG report of a model (needs ssgs[plot])")
    report.add_argument("checkpoint")
    report.add_argument("-o", "--output", required=True, help="output PNG")
    report.add_argument("--seconds", type=float, default=6.0, help="length of the spectrograms (default: 6)")
    report.add_argument("--seed", type=int, default=0, help="seed of the generated example (default: 0)")
    convert = sub.add_parser("convert", help="a reference implementation's checkpoint as an ssgs checkpoint")
    convert.add_argument("reference", help="the reference implementation's .safetensors file")
    convert.add_argument("-o", "--output", required=True, help="the ssgs checkpoint to write")
    convert.add_argument("--n-iterations", type=int, default=10,
                         help="EM iterations refining a model with training frames (default: 10)")
    convert.add_argument("--seed", type=int, default=0, help="seed of the refit (default: 0)")
    for parser in (info, verify, report, convert):
        parser.add_argument("-v", "--verbose", action="store_true", help="tracebacks for unexpected errors")
    return p


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "train":
        from ssgs.train import main as train_main

        return train_main(argv[1:], prog=f"{PROG} train")
    if argv and argv[0] == "generate":
        from ssgs.generate import main as generate_main

        return generate_main(argv[1:], prog=f"{PROG} generate")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from ssgs._cli import run_reporting_errors

    command = {"info": cmd_info, "verify": cmd_verify, "report": cmd_report, "convert": cmd_convert}[args.command]
    return run_reporting_errors(f"{PROG} {args.command}", lambda: command(args), verbose=args.verbose)


if __name__ == "__main__":
    sys.exit(main())
