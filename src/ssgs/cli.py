"""The ``ssgs`` command: train, generate, info, verify, report.

    ssgs train --folders music/ --n-states 34        (= python -m ssgs.train)
    ssgs generate CKPT -o out.wav --duration 5       (= python -m ssgs.generate)
    ssgs info CKPT [--json]
    ssgs verify CKPT [CKPT ...]
    ssgs report CKPT -o report.png                   (needs ssgs[plot]: matplotlib)

Exit codes: 0 success; 1 a checkpoint that fails verification (or an
unexpected error); 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

__all__ = ["main"]

PROG = "ssgs"


def _size(path):
    from ssgs import checkpoint

    if checkpoint.is_remote(path):
        fs, rpath = checkpoint.filesystem(path)
        return int(fs.size(rpath))
    return os.path.getsize(checkpoint.local_path(path))


def checkpoint_info(path) -> dict:
    """What a checkpoint holds, read from its header only (no tensor data)."""
    from ssgs import checkpoint

    metadata, tensors = checkpoint.read_header(path)
    name = str(path)
    config = checkpoint.json_field(metadata, "config", name, default={})
    state = checkpoint.json_field(metadata, "training_state", name, default={})
    sources = checkpoint.json_field(metadata, "sources", name, default=[])
    history = [r for r in state.get("history", []) if "log_likelihood" in r]
    groups = {"parameters": 0, "training artifacts": 0, "excitation model": 0, "adaptive statistics": 0}
    itemsize = {"F64": 8, "F32": 4, "F16": 2, "I64": 8, "I32": 4, "U8": 1, "BOOL": 1}
    for tname, info in tensors.items():
        nbytes = itemsize.get(info["dtype"], 8)
        for dim in info["shape"]:
            nbytes *= dim
        if tname.startswith("adaptive__"):
            groups["adaptive statistics"] += nbytes
        elif tname in checkpoint.REQUIRED_TENSORS:
            groups["parameters"] += nbytes
        elif tname.startswith(("state_", "observation_", "excitation_", "voice_")):  # synthesis statistics
            groups["excitation model"] += nbytes
        else:
            groups["training artifacts"] += nbytes
    sample_rate = config.get("sample_rate") or 16000
    seconds = sum(s.get("n_samples", 0) for s in sources) / sample_rate
    return {
        "path": name,
        "file_bytes": _size(path),
        "format": metadata.get("format"),
        "ssgs_format_version": metadata.get("ssgs_format_version"),
        "ssgs_version": metadata.get("ssgs_version"),
        "created": metadata.get("created"),
        "config": config,
        "training": {
            "iteration": state.get("iteration"),
            "converged": state.get("converged"),
            "log_likelihood_per_frame": [r["log_likelihood"] for r in history],
            "seconds": sum(r.get("seconds", 0.0) for r in history),
        },
        "sources": {"count": len(sources), "seconds_of_audio": seconds, "files": sources},
        "has_training_artifacts": "residual_signals" in tensors,
        "has_adaptive_statistics": any(t.startswith("adaptive__") for t in tensors),
        "tensor_bytes": groups,
        "tensors": tensors,
    }


def _human(nbytes):
    for unit in ("B", "KB", "MB", "GB"):
        if nbytes < 1000 or unit == "GB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000.0
    return f"{nbytes:.1f} GB"


def cmd_info(args):
    info = checkpoint_info(args.checkpoint)
    if args.json:
        print(json.dumps(info, indent=1, sort_keys=True))
        return 0
    c, t, s = info["config"], info["training"], info["sources"]
    ll = t["log_likelihood_per_frame"]
    print(f"{info['path']}  ({_human(info['file_bytes'])}, ssgs {info['ssgs_version']}, "
          f"format {info['ssgs_format_version']}, created {info['created']})")
    print(f"  model      {c.get('n_states')} states, LPC order {c.get('lpc_order')}, "
          f"{c.get('n_features')} features, frame {c.get('frame_size')} / hop {c.get('hop_size')} "
          f"at {c.get('sample_rate')} Hz, seed {c.get('seed')}")
    trend = f", log-likelihood per frame {ll[0]:.4f} -> {ll[-1]:.4f}" if ll else ""
    print(f"  training   {t['iteration']} EM iteration(s){trend}, "
          f"{'converged' if t['converged'] else 'not converged'}, {t['seconds']:.1f} s of EM")
    print(f"  sources    {s['count']} sequence(s), {s['seconds_of_audio']:.1f} s of audio")
    for src in s["files"][: args.max_sources]:
        print(f"             {src.get('path')}  ({src.get('n_frames')} frames)")
    if s["count"] > args.max_sources:
        print(f"             ... and {s['count'] - args.max_sources} more (--json lists them all)")
    print(f"  artifacts  {'yes' if info['has_training_artifacts'] else 'no'}"
          f"   adaptive statistics {'yes' if info['has_adaptive_statistics'] else 'no'}")
    print("  sizes      " + ", ".join(f"{k} {_human(v)}" for k, v in info["tensor_bytes"].items() if v))
    return 0


def cmd_verify(args):
    from ssgs.errors import SSGSError
    from ssgs.model import SpectralStateGuidedSynthesis

    failed = 0
    for path in args.checkpoints:
        try:
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
    verify = sub.add_parser("verify", help="check checkpoints' integrity (exit 1 if any is not whole)")
    verify.add_argument("checkpoints", nargs="+")
    report = sub.add_parser("report", help="a PNG report of a model (needs ssgs[plot])")
    report.add_argument("checkpoint")
    report.add_argument("-o", "--output", required=True, help="output PNG")
    report.add_argument("--seconds", type=float, default=6.0, help="length of the spectrograms (default: 6)")
    report.add_argument("--seed", type=int, default=0, help="seed of the generated example (default: 0)")
    for parser in (info, verify, report):
        parser.add_argument("-v", "--verbose", action="store_true", help="tracebacks for unexpected errors")
    return p


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "train":
        from ssgs.train import main as train_main

        return train_main(argv[1:])
    if argv and argv[0] == "generate":
        from ssgs.generate import main as generate_main

        return generate_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from ssgs._cli import run_reporting_errors

    command = {"info": cmd_info, "verify": cmd_verify, "report": cmd_report}[args.command]
    return run_reporting_errors(f"{PROG} {args.command}", lambda: command(args), verbose=args.verbose)


if __name__ == "__main__":
    sys.exit(main())
