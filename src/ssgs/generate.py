"""python -m ssgs.generate: make audio from a checkpoint.

    python -m ssgs.generate models/checkpoint_final.safetensors -o out.wav \\
        --duration 5 --fidelity 0.0 --excitation karplus-strong --seed 1 [--start 0:12.5]

The output's ending picks its container and, unless ``--subtype`` says
otherwise, its sample format: 24-bit PCM for .wav and .flac, Vorbis for .ogg
and .oga, Opus for .opus, MPEG layer III for .mp3 (the last two when the
installed libsndfile writes them). The audio is made and written a block at
a time (:meth:`ssgs.SpectralStateGuidedSynthesis.generate_stream`), in memory
that does not grow with the duration. The file is written whole or not at
all: an existing file of that name is replaced only once the new one is
complete. ``-o -`` writes a WAV to standard output (for a player:
``... -o - | aplay``), its header carrying the length known up front.

Exit codes: 0 success; 2 bad input (an option out of range, a missing
checkpoint or output folder, an ending or subtype that cannot be written,
fidelity > 0 on a checkpoint without training artifacts, a duration that
does not fit in memory); 1 a checkpoint that fails verification or an
unexpected error (traceback with -v); 141 standard output closed.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

__all__ = ["main"]

PROG = "python -m ssgs.generate"

# ending -> (soundfile format, default subtype); those the installed
# libsndfile cannot write are left out by _containers
CONTAINERS = {".wav": ("WAV", "PCM_24"), ".flac": ("FLAC", "PCM_24"), ".ogg": ("OGG", "VORBIS"),
              ".oga": ("OGG", "VORBIS"), ".opus": ("OGG", "OPUS"), ".mp3": ("MP3", "MPEG_LAYER_III")}
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)


def _containers():
    """The endings this libsndfile can write, with their (format, default subtype)."""
    import soundfile as sf

    return {ext: (fmt, subtype) for ext, (fmt, subtype) in CONTAINERS.items()
            if fmt in sf.available_formats() and subtype in sf.available_subtypes(fmt)}


def _start(text):
    try:
        index, seconds = text.split(":", 1)
        return int(index), float(seconds)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FILE_INDEX:SECONDS such as 0:12.5, got {text!r}") from None


def build_parser(prog=None):
    p = argparse.ArgumentParser(prog=prog or PROG, description="Generate audio from a trained ssgs checkpoint.")
    p.add_argument("checkpoint", help="checkpoint path or fsspec URL")
    p.add_argument("-o", "--output", required=True,
                   help="output audio file: " + " ".join(_containers()) + " (the ending picks the format); "
                        "- writes WAV to standard output")
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
    p.add_argument("--subtype", default=None,
                   help="soundfile subtype such as PCM_16 or FLOAT (default: the container's: PCM_24 for "
                        ".wav and .flac, VORBIS for .ogg and .oga, OPUS for .opus)")
    p.add_argument("--no-verify", action="store_true", help="skip the checkpoint's integrity check")
    p.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    p.add_argument("-v", "--verbose", action="store_true", help="print tracebacks for unexpected errors")
    return p


def _output_format(output, subtype=None):
    """(soundfile format, subtype) for writing ``output``, from its ending;
    ValueError naming the ending or subtype that cannot be written."""
    import soundfile as sf

    ext = os.path.splitext(str(output))[1].lower()
    containers = _containers()
    if ext not in containers:
        problem = f"{ext} is not an audio format ssgs writes" if ext else "the name has no ending to say its format"
        raise ValueError(f"cannot write {output}: {problem} (supported endings: {' '.join(containers)})")
    fmt, default = containers[ext]
    subtype = (subtype or default).upper()
    if not sf.check_format(fmt, subtype):
        raise ValueError(f"cannot write {output}: subtype {subtype} cannot be written to {ext} "
                         f"(it takes {' '.join(sf.available_subtypes(fmt))})")
    return fmt, subtype


def _check_output_folder(output):
    """ValueError unless the folder ``output`` goes into exists."""
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        state = "is not a folder" if os.path.exists(folder) else "does not exist"
        raise ValueError(f"output folder {folder} {state}")


def _check_rate(output, subtype, rate):
    if subtype == "OPUS" and rate not in OPUS_RATES:
        raise ValueError(f"cannot write {output}: .opus needs a sample rate of "
                         f"{', '.join(map(str, OPUS_RATES))} Hz, not {rate} (use --sample-rate)")


def _stream_to(sink, blocks, rate, fmt, subtype):
    """Write ``blocks`` to ``sink`` (a path or binary file) as one sound file;
    returns the peak sample level."""
    import soundfile as sf

    peak = 0.0
    with sf.SoundFile(sink, "w", samplerate=rate, channels=1, format=fmt, subtype=subtype) as out:
        for block in blocks:
            peak = max(peak, float(np.abs(block).max(initial=0.0)))
            out.write(block)
    return peak


def _read_blocks(path, frames=1 << 16):
    """The samples of the sound file ``path``, ``frames`` at a time (float32)."""
    import soundfile as sf

    with sf.SoundFile(path) as f:
        yield from f.blocks(frames, dtype="float32")


def _write_checked(f, output, blocks, rate, subtype):
    """A .wav without --subtype of training audio, which may peak over full
    scale: written as float to a file beside ``output``, then, when it stays
    within full scale, turned into ``subtype`` a block at a time (otherwise
    kept as float). Returns the peak."""
    import shutil
    import tempfile

    folder = os.path.dirname(os.path.abspath(output))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(output) + ".", suffix=".float.wav", dir=folder)
    os.close(fd)
    try:
        peak = _stream_to(tmp, blocks, rate, "WAV", "FLOAT")
        if peak <= 1.0:
            _stream_to(f, _read_blocks(tmp), rate, "WAV", subtype)
        else:
            with open(tmp, "rb") as src:
                shutil.copyfileobj(src, f)
        return peak
    finally:
        os.unlink(tmp)


def _write(args, blocks, rate, fmt, subtype, check_peak):
    """Write the stream to the file whole, then rename it into place (an
    existing file of that name is replaced only by a complete one). Returns
    the peak sample level."""
    import soundfile as sf

    from ssgs.checkpoint import atomic_write

    peak = []
    if check_peak:
        writer = lambda f: peak.append(_write_checked(f, args.output, blocks, rate, subtype))  # noqa: E731
    else:
        writer = lambda f: peak.append(_stream_to(f, blocks, rate, fmt, subtype))  # noqa: E731
    try:
        atomic_write(args.output, writer=writer)
    except (sf.LibsndfileError, ValueError, TypeError) as exc:
        raise ValueError(f"cannot write {args.output}: {exc}") from None
    except OSError as exc:
        raise ValueError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    return peak[0]


def _report_peak(args, peak, fmt, subtype, written):
    """Say what a peak over full scale did: a .wav without --subtype was
    written as 32-bit float to keep it exact (``written`` is FLOAT); any
    other integer format clips it."""
    if peak <= 1.0 or args.quiet:
        return
    over = f"the audio peaks at {peak:.3f} ({20 * np.log10(peak):+.2f} dBFS)"
    if written == "FLOAT" and subtype != "FLOAT":
        print(f"note: {over}, as the training audio does: written as 32-bit float to keep it exact",
              file=sys.stderr)
    elif subtype.startswith("PCM"):
        print(f"warning: {over}, as the training audio does: {subtype} clips it "
              "(a .wav with --subtype FLOAT keeps it exact)", file=sys.stderr)


def _generation(args, model, rate):
    """The model's stream for the command's options (1-second blocks)."""
    return model.generate_stream(args.duration, block_seconds=1.0, sample_rate=rate, fidelity=args.fidelity,
                                 excitation_type=args.excitation, seed=args.seed, start=args.start,
                                 decoder=args.decoder)


def run(args):
    from ssgs.model import SpectralStateGuidedSynthesis
    from ssgs.wav_stream import check_stdout_subtype, write_wav_stream

    to_stdout = args.output == "-"
    if to_stdout:
        fmt, subtype = "WAV", check_stdout_subtype(args.subtype)
    else:
        fmt, subtype = _output_format(args.output, args.subtype)
        _check_output_folder(args.output)
    if args.start is not None and args.fidelity == 0 and not args.quiet:
        print("warning: --start is unused at fidelity 0 (it says where in the training audio "
              "a fidelity > 0 generation starts)", file=sys.stderr)
    model = SpectralStateGuidedSynthesis.load_checkpoint(args.checkpoint, verify=not args.no_verify)
    rate = args.sample_rate or model.sample_rate or 16000
    if not to_stdout:
        _check_rate(args.output, subtype, rate)
    blocks = _generation(args, model, rate)
    details = model.last_generation
    # training audio may peak over full scale: a .wav without --subtype keeps it as float
    check_peak = not to_stdout and args.fidelity > 0 and fmt == "WAV" and args.subtype is None
    if to_stdout:
        n = expected_samples(args.duration, model.sample_rate or rate, rate)
        peak = write_wav_stream(sys.stdout.buffer, blocks, rate, n, subtype)
        written = subtype
    else:
        peak = _write(args, blocks, rate, fmt, subtype, check_peak)
        written = "FLOAT" if check_peak and peak > 1.0 else subtype
    _report_peak(args, peak, fmt, subtype, written)
    if not args.quiet:
        where = ""
        if details.source_path is not None:
            where = f", from {details.source_path} at {details.start_seconds:.2f} s"
        name = "standard output" if to_stdout else args.output
        print(f"wrote {name}: {details.n_samples / rate:.2f} s at {rate} Hz, fidelity {details.fidelity:g}, "
              f"{details.excitation_type}, seed {details.seed}{where}", file=sys.stderr if to_stdout else sys.stdout)
    return 0


def expected_samples(duration, model_rate, rate):
    """The samples a generation of ``duration`` seconds at ``model_rate``
    makes at the output ``rate`` (soxr's stream gives
    ceil(n * rate / model_rate) for n input samples)."""
    n = max(1, int(round(duration * model_rate)))
    return n if rate == model_rate else -(-n * rate // model_rate)


def main(argv=None, prog=None):
    """Run the command on ``argv`` (default: the command line); ``prog`` is its
    name in messages, as the user typed it (default: python -m ssgs.generate)."""
    prog = prog or PROG
    args = build_parser(prog).parse_args(argv)
    from ssgs._cli import run_reporting_errors

    return run_reporting_errors(prog, lambda: run(args), verbose=args.verbose)


if __name__ == "__main__":
    sys.exit(main())
