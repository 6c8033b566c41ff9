"""Load a checkpoint and generate one second: what a user waits for before
the first sound.

A model is trained on a few minutes of music at each rate asked; its final
checkpoint (which stores the fitted excitation model and what generation
derives from it) is timed side by side with the same checkpoint without
them (what checkpoints
saved before the end of training hold, and what the previous release's
final checkpoints held: generating from them fits the excitation model
first). Each figure is the median of ``--repeats`` runs of
``load_checkpoint(path)`` + ``generate(1.0, seed=...)`` in this process;
the outputs of the two checkpoints are compared byte for byte.

With ``--long 60 3600``, ``ssgs generate --duration D`` is then run in a
fresh process for each duration from the first rate's final checkpoint
(fidelity 0, written to a .wav a block at a time): its peak resident
memory (the child's own ru_maxrss, from os.wait4) and its seconds of wall
time per second of audio, side by side.

    python benchmarks/bench_load_generate.py \\
        /usr/share/games/etr/music/calmrace-ks.ogg /usr/share/games/etr/music/spunkyrace-ks.ogg --rates 16000 44100
    python benchmarks/bench_load_generate.py /usr/share/games/etr/music/calmrace-ks.ogg \\
        --rates 16000 --repeats 1 --long 60 3600
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ssgs import SpectralStateGuidedSynthesis
from ssgs.checkpoint import read_checkpoint, write_checkpoint
from ssgs.excitation_model import ExcitationModel
from ssgs.synthesis.voice import tensor_shapes as voice_tensor_shapes


def without_excitation(path, out):
    """A copy of the checkpoint ``path`` without its excitation tables and
    what generation derives from them."""
    tensors, metadata = read_checkpoint(path)
    names = set(ExcitationModel.TENSORS.values()) | set(voice_tensor_shapes(1))
    write_checkpoint(out, {k: v for k, v in tensors.items() if k not in names}, metadata)
    return out


def timed(path, repeats, fidelity):
    times, audio = [], None
    for i in range(repeats):
        t0 = time.perf_counter()
        model = SpectralStateGuidedSynthesis.load_checkpoint(path)
        y = model.generate(1.0, sample_rate=model.sample_rate, fidelity=fidelity, seed=7, start=(0, 10.0))
        times.append(time.perf_counter() - t0)
        audio = y if audio is None else audio
    return statistics.median(times), audio


def generate_command(checkpoint, duration, out):
    """Run ``ssgs generate`` for ``duration`` seconds in a fresh process:
    (peak RSS in MB, wall seconds)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "ssgs.generate", str(checkpoint), "-o", str(out),
                             "--duration", str(duration), "--seed", "1", "-q"])
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"ssgs generate --duration {duration} failed ({proc.returncode})")
    return usage.ru_maxrss / 1024, seconds


def long_generations(checkpoint, durations, tmp):
    """Peak RSS and seconds per audio-second of ``ssgs generate`` at each duration."""
    print(f"\n{'duration':>9} {'peak RSS':>9} {'wall':>8} {'s per audio-s':>14}")
    for duration in durations:
        rss, seconds = generate_command(checkpoint, duration, Path(tmp) / "long.wav")
        print(f"{duration:>8g}s {rss:>7.0f}MB {seconds:>7.1f}s {seconds / duration:>14.5f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--rates", type=int, nargs="+", default=[16000, 44100])
    parser.add_argument("--n-states", type=int, default=34)
    parser.add_argument("--n-iterations", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--long", type=float, nargs="*", default=[],
                        help="durations (s) to run ssgs generate for, measuring peak RSS and speed")
    args = parser.parse_args(argv)
    print(f"{'rate':>6} {'minutes':>7} {'fidelity':>8} {'with tables':>12} {'without':>9} {'ratio':>6}  same bytes")
    with tempfile.TemporaryDirectory() as tmp:
        for rate in args.rates:
            model = SpectralStateGuidedSynthesis(n_states=args.n_states, seed=0)
            model.train(args.files, rate, n_em_iterations=args.n_iterations)
            minutes = float(np.sum(model.sequence_samples)) / rate / 60
            final = model.save_checkpoint(Path(tmp) / f"final-{rate}.safetensors")
            bare = without_excitation(final, Path(tmp) / f"bare-{rate}.safetensors")
            for fidelity in (0.0, 0.5):
                t_new, y_new = timed(final, args.repeats, fidelity)
                t_old, y_old = timed(bare, 1, fidelity)
                print(f"{rate:>6} {minutes:>7.1f} {fidelity:>8} {t_new:>11.3f}s {t_old:>8.2f}s {t_old / t_new:>5.0f}x  "
                      f"{np.array_equal(y_new, y_old)}")
        if args.long:
            long_generations(Path(tmp) / f"final-{args.rates[0]}.safetensors", args.long, tmp)


if __name__ == "__main__":
    main()
