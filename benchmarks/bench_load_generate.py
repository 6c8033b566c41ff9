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

    python benchmarks/bench_load_generate.py \\
        /usr/share/games/etr/music/calmrace-ks.ogg /usr/share/games/etr/music/spunkyrace-ks.ogg --rates 16000 44100
"""

from __future__ import annotations

import argparse
import statistics
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--rates", type=int, nargs="+", default=[16000, 44100])
    parser.add_argument("--n-states", type=int, default=34)
    parser.add_argument("--n-iterations", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
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


if __name__ == "__main__":
    main()
