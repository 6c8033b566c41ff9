"""EM on a Dask cluster: throughput with 1 and 2 workers, bytes on the network.

    pip install ".[dask]"
    python benchmarks/bench_distributed.py [--minutes 30]

Uses the training benchmark's generated corpus (44.1 kHz stereo MP3 songs,
cached in ~/.cache/ssgs-bench). For a local run (OpenMP threads) and for
local Dask clusters of 1 and 2 worker processes: seconds per EM iteration
(mean of the timed iterations), analysis time, and the bytes that cross the
network per iteration (parameters out, per-sequence statistics back).
Scaling efficiency = time with 1 worker / (2 x time with 2 workers).
Figures, never pass/fail.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from bench_train import ensure_corpus  # noqa: E402

from ssgs import SpectralStateGuidedSynthesis  # noqa: E402
from ssgs.distributed import DaskBackend, connect  # noqa: E402


def run(paths, backend, n_states, iterations, threads):
    model = SpectralStateGuidedSynthesis(n_states=n_states, seed=0, tol=0, n_threads=threads)
    t0 = time.perf_counter()
    model.extract_features_from_files(paths, 16000, backend=backend)
    analysis = time.perf_counter() - t0
    model.initialize_hmm_parameters()
    model.run_em_iteration()  # warm-up: workers import and allocate
    t0 = time.perf_counter()
    model.iterative_refinement(iterations)
    em = (time.perf_counter() - t0) / iterations
    return model, analysis, em


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--n-states", type=int, default=34)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--cache", default=os.path.expanduser("~/.cache/ssgs-bench"))
    args = parser.parse_args(argv)
    folder = os.path.join(args.cache, f"mp3_44k_stereo_{args.minutes:g}min")
    paths = ensure_corpus(folder, args.minutes)
    print(f"corpus: {len(paths)} MP3 files, {args.minutes:g} minutes; {args.n_states} states")

    local, analysis, em = run(paths, None, args.n_states, args.iterations, 0)
    frames = int(local.sequence_lengths.sum())
    print(f"\n{'':28s}{'analysis':>10s}{'s / EM iteration':>18s}{'frames/s':>12s}{'MB / iteration':>16s}")
    print(f"{'local (OpenMP, all cores)':28s}{analysis:9.1f}s{em:17.3f}s{frames / em:12,.0f}{'':>16s}")
    times = {}
    for workers in (1, 2):
        backend = DaskBackend(connect(n_workers=workers))
        try:
            model, analysis, em = run(paths, backend, args.n_states, args.iterations, 1)
        finally:
            backend.close()
        same = all(np.array_equal(getattr(model, n), getattr(local, n))
                   for n in ("state_means", "state_covariances", "transition_matrix"))
        mb = np.mean(backend.bytes_per_iteration[1:]) / 1e6
        times[workers] = em
        print(f"{f'Dask, {workers} worker(s)':28s}{analysis:9.1f}s{em:17.3f}s{frames / em:12,.0f}{mb:16.2f}"
              f"   {'bit-identical to local' if same else 'DIFFERS from local'}")
    print(f"\nscaling efficiency, 1 -> 2 workers: {times[1] / (2 * times[2]):.0%}")


if __name__ == "__main__":
    main()
