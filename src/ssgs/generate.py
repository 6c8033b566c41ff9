"""python -m ssgs.generate: make audio from a checkpoint.

    python -m ssgs.generate models/checkpoint_final.safetensors -o out.wav \\
        --duration 5 --fidelity 0.0 --excitation karplus-strong --seed 1 [--start 0:12.5]

Exit codes: 0 success; 2 bad input (an option out of range, a missing
checkpoint, fidelity > 0 on a checkpoint without training artifacts); 1 a
checkpoint that fails verification or an unexpected error (traceback with -v).
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]

PROG = "python -m ssgs.generate"


def _start(text):
    try:
        index, seconds = text.split(":", 1)
        return int(index), float(seconds)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FILE_INDEX:SECONDS such as 0:12.5, got {text!r}") from None


def build_parser():
    p = argparse.ArgumentParser(prog=PROG, description="Generate audio from a trained ssgs checkpoint.")
    p.add_argument("checkpoint", help="checkpoint path or fsspec URL")
    p.add_argument("-o", "--output", required=True, help="output audio file (.wav, .flac, .ogg)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds of audio (default: 5)")
    p.add_argument("--fidelity", type=float, default=0.0,
                   help="1 replays the training audio, 0 is fully synthetic; in between, that share "
                        "of the passage is the training audio itself (default: 0)")
    p.add_argument("--excitation", default="karplus-strong",
                   help="karplus-strong, wavelet or noise (default: karplus-strong)")
    p.add_argument("--seed", type=int, default=None, help="seed (default: drawn and printed)")
    p.add_argument("--start", type=_start, default=None, metavar="FILE:SECONDS",
                   help="where in the training audio a fidelity > 0 generation starts, e.g. 0:12.5")
    p.add_argument("--sample-rate", type=int, default=None, help="output rate (default: the model's)")
    p.add_argument("--decoder", default="sample", choices=("sample", "smooth"),
                   help="state paths sampled from the HMM, or smoothed (default: sample)")
    p.add_argument("--subtype", default="PCM_24", help="soundfile subtype (default: PCM_24)")
    p.add_argument("--no-verify", action="store_true", help="skip the checkpoint's integrity check")
    p.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    p.add_argument("-v", "--verbose", action="store_true", help="print tracebacks for unexpected errors")
    return p


def run(args):
    import soundfile as sf

    from ssgs.model import SpectralStateGuidedSynthesis

    model = SpectralStateGuidedSynthesis.load_checkpoint(args.checkpoint, verify=not args.no_verify)
    rate = args.sample_rate or model.sample_rate or 16000
    audio, details = model.generate(args.duration, sample_rate=rate, fidelity=args.fidelity,
                                    excitation_type=args.excitation, seed=args.seed, start=args.start,
                                    decoder=args.decoder, return_details=True)
    try:
        sf.write(args.output, audio, rate, subtype=args.subtype)
    except (sf.LibsndfileError, ValueError, TypeError) as exc:
        raise ValueError(f"cannot write {args.output}: {exc}") from None
    except OSError as exc:
        raise ValueError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    if not args.quiet:
        where = ""
        if details.source_path is not None:
            where = f", from {details.source_path} at {details.start_seconds:.2f} s"
        print(f"wrote {args.output}: {len(audio) / rate:.2f} s at {rate} Hz, fidelity {details.fidelity:g}, "
              f"{details.excitation_type}, seed {details.seed}{where}")
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    from ssgs._cli import run_reporting_errors

    return run_reporting_errors(PROG, lambda: run(args), verbose=args.verbose)


if __name__ == "__main__":
    sys.exit(main())
