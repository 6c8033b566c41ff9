"""Speed of the ssgs kernels beside the alternatives, measured in one run.

    pip install ".[bench]"
    python benchmarks/bench_kernels.py            # the figures of the README
    python benchmarks/bench_kernels.py --quick    # smaller sizes, a smoke run
    python benchmarks/bench_kernels.py --only music --previous /tmp/old/src
        # generate(60 s) on models of a real piece at 16 and 44.1 kHz, beside
        # the previous release (`git worktree add /tmp/old 7d5be08`, its
        # extensions built in place) in the same run

(The synthesis lines run on one thread: the kernels are serial.)

Figures, never pass/fail: each line gives a rate and the ratio against the
alternative timed right next to it (best of --repeat runs each), so a busy
machine slows both sides alike.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.linalg
import scipy.signal

from ssgs import kernels


def best_time(fn, repeat):
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def hmm_data(rng, n_states, n_features, n_frames):
    """Frames drawn from a random full-covariance Gaussian HMM with sticky states."""
    means = rng.normal(0, 1.5, (n_states, n_features))
    A = rng.normal(size=(n_states, n_features, n_features))
    covars = A @ A.transpose(0, 2, 1) / n_features + 0.3 * np.eye(n_features)
    startprob = np.full(n_states, 1.0 / n_states)
    transmat = 0.2 * rng.dirichlet(np.full(n_states, 0.5), size=n_states) + 0.8 * np.eye(n_states)
    states = kernels.sample_states(startprob, transmat, n_frames, seed=1)
    chol = np.linalg.cholesky(covars)
    X = means[states] + np.einsum("tij,tj->ti", chol[states], rng.standard_normal((n_frames, n_features)))
    return X, startprob, transmat, means, covars


def m_step(stats, means, n_sequences):
    occ = stats.occupancy
    delta = stats.moment1 / occ[:, None]
    covars = stats.moment2 / occ[:, None, None] - delta[:, :, None] * delta[:, None, :]
    return (stats.start_occupancy / n_sequences, stats.xi_sum / stats.xi_sum.sum(1, keepdims=True),
            means + delta, covars)


def numpy_estep(X, lengths, startprob, transmat, means, covars):
    """A straightforward numpy E-step: Cholesky emissions, scaled forward-backward
    with a Python loop over frames, moments by einsum."""
    N, D = means.shape
    logp = np.empty((len(X), N))
    for j in range(N):
        L = np.linalg.cholesky(covars[j])
        z = scipy.linalg.solve_triangular(L, (X - means[j]).T, lower=True)
        logp[:, j] = -0.5 * (D * np.log(2 * np.pi) + (z * z).sum(0)) - np.log(np.diag(L)).sum()
    occ, xi, m1, m2, ll = np.zeros(N), np.zeros((N, N)), np.zeros((N, D)), np.zeros((N, D, D)), 0.0
    start = 0
    for n in lengths:
        lp = logp[start:start + n]
        shift = lp.max(1, keepdims=True)
        b = np.exp(lp - shift)
        alpha = np.empty((n, N))
        c = np.empty(n)
        a = startprob * b[0]
        for t in range(n):
            if t:
                a = (alpha[t - 1] @ transmat) * b[t]
            c[t] = a.sum()
            alpha[t] = a / c[t]
        beta = np.ones(N)
        gamma = np.empty((n, N))
        gamma[-1] = alpha[-1]
        for t in range(n - 2, -1, -1):
            w = b[t + 1] * beta / c[t + 1]
            xi += np.outer(alpha[t], w)
            beta = transmat @ w
            gamma[t] = alpha[t] * beta
        ll += np.log(c).sum() + shift.sum()
        x = X[start:start + n]
        occ += gamma.sum(0)
        d = x[:, None, :] - means[None]
        m1 += np.einsum("tj,tjd->jd", gamma, d)
        m2 += np.einsum("tj,tjd,tje->jde", gamma, d, d)
        start += n
    return ll, occ, xi * transmat, m1, m2


def bench_estep(args, rng):
    N, D, T, S = 34, 13, args.frames, 20
    X, startprob, transmat, means, covars = hmm_data(rng, N, D, T)
    lengths = [T // S] * (S - 1) + [T - (T // S) * (S - 1)]
    print(f"\nE-step: N={N} states, D={D}, {T:,} frames in {S} sequences "
          f"({os.cpu_count()} cores, OpenMP {'on' if kernels.have_openmp() else 'off'})")

    def ssgs_iteration(nt):
        stats = kernels.estep(X, lengths, startprob, transmat, means, covars, n_threads=nt)
        m_step(stats, means, S)

    rows = {}
    for nt in (1, 0):
        rows[f"ssgs estep + M-step, {'all cores' if nt == 0 else '1 thread'}"] = best_time(
            lambda: ssgs_iteration(nt), args.repeat)
    try:
        from hmmlearn.hmm import GaussianHMM

        def hmmlearn_iteration():
            model = GaussianHMM(n_components=N, covariance_type="full", n_iter=1, tol=0,
                                init_params="", params="stmc", implementation="scaling")
            model.startprob_, model.transmat_ = startprob, transmat
            model.means_, model.covars_ = means, covars
            model.fit(X, lengths)

        rows["hmmlearn GaussianHMM full/scaling, 1 EM iteration"] = best_time(hmmlearn_iteration, args.repeat)
    except ImportError:
        print("  (hmmlearn not installed: pip install '.[bench]')")
    if not args.quick:
        rows["numpy reference E-step"] = best_time(
            lambda: numpy_estep(X, lengths, startprob, transmat, means, covars), 1)
    fastest = rows["ssgs estep + M-step, all cores"]
    for name, sec in rows.items():
        print(f"  {name:<52s} {sec:8.3f} s  {T / sec / 1e6:7.3f} M frames/s  x{sec / fastest:6.1f}")
    return rows


def numpy_lpc(frames, order):
    """Vectorised numpy: autocorrelation by FFT, Levinson-Durbin across all frames at once."""
    n = frames.shape[1]
    spec = np.fft.rfft(frames, 2 * n)
    r = np.fft.irfft(spec * spec.conj())[:, : order + 1]
    r[:, 0] *= 1 + 1e-9
    a = np.zeros((len(frames), order + 1))
    a[:, 0] = 1.0
    err = r[:, 0].copy()
    for m in range(1, order + 1):
        k = -(r[:, m] + (a[:, 1:m] * r[:, m - 1:0:-1]).sum(1)) / err
        a[:, 1:m] = a[:, 1:m] + k[:, None] * a[:, m - 1:0:-1]
        a[:, m] = k
        err *= 1 - k * k
    return a, err


def scipy_lpc_per_frame(frames, order):
    out = []
    for f in frames:
        r = np.correlate(f, f, "full")[len(f) - 1 : len(f) + order]
        out.append(scipy.linalg.solve_toeplitz(r[:order], -r[1:]))
    return out


def bench_lpc_analysis(args, rng):
    F, L, order = args.lpc_frames, 1024, 12
    frames = rng.standard_normal((F, L)) * np.hanning(L)
    frames32 = frames.astype(np.float32)
    print(f"\nlpc_analysis: {F:,} frames of {L} samples, order {order}")
    rows = {
        "ssgs, float64, all cores": best_time(lambda: kernels.lpc_analysis(frames, order), args.repeat),
        "ssgs, float32, all cores": best_time(lambda: kernels.lpc_analysis(frames32, order), args.repeat),
        "ssgs, float64, 1 thread": best_time(lambda: kernels.lpc_analysis(frames, order, n_threads=1), args.repeat),
        "numpy, FFT autocorrelation + batched Levinson": best_time(lambda: numpy_lpc(frames, order), 1),
    }
    sub = frames[:2000]
    per_frame = best_time(lambda: scipy_lpc_per_frame(sub, order), 1) * F / len(sub)
    rows["scipy per frame (np.correlate + solve_toeplitz)"] = per_frame
    fastest = rows["ssgs, float64, all cores"]
    for name, sec in rows.items():
        print(f"  {name:<52s} {F / sec:12,.0f} frames/s  x{sec / fastest:7.1f}")
    return rows


def bench_lpc_synthesis(args, rng):
    n, hop, order = args.samples, 256, 12
    e = rng.standard_normal(n)
    n_frames = -(-n // hop)
    base = np.array([1.0, -1.2, 0.9, -0.4, 0.2, -0.1, 0.05, 0.0, 0.02, 0.0, 0.0, 0.0, 0.01])
    a = np.tile(base, (n_frames, 1))
    print(f"\nlpc_synthesis / lpc_residual: {n:,} samples, order {order}, hop {hop}")

    def lfilter_frames():
        zi = np.zeros(order)
        for f in range(n_frames):
            seg = e[f * hop : (f + 1) * hop]
            _, zi = scipy.signal.lfilter([1.0], a[f], seg, zi=zi)

    rows = {
        "ssgs lpc_synthesis (time-varying)": best_time(lambda: kernels.lpc_synthesis(e, a, hop), args.repeat),
        "ssgs lpc_residual (time-varying)": best_time(lambda: kernels.lpc_residual(e, a, hop), args.repeat),
        "scipy lfilter frame by frame with zi": best_time(lfilter_frames, 1),
        "scipy lfilter, one fixed filter, one call": best_time(
            lambda: scipy.signal.lfilter([1.0], base, e), args.repeat),
    }
    fastest = rows["ssgs lpc_synthesis (time-varying)"]
    for name, sec in rows.items():
        print(f"  {name:<52s} {n / sec / 1e6:9.1f} M samples/s  x{sec / fastest:6.1f}")
    return rows


def bench_generation(args, rng):
    """The synthesis loop (excitation, interpolation, filtering: C) and the
    whole of generate() at fidelity 0, for 60 s at 16 kHz on one thread."""
    import ssgs
    from ssgs.features import reflection_from_lar
    from ssgs.synthesis.excitation import synthetic_excitation

    sr, hop, seconds = 16000, 256, 60.0
    F = int(seconds * sr) // hop
    f0 = np.exp(np.log(220.0) + np.cumsum(rng.normal(0, 0.01, F)))
    voicing = np.full(F, 0.7)
    onset = np.zeros(F, bool)
    onset[::40] = True
    lar = rng.normal(0, 1, (F, 12))
    gain = rng.normal(-3, 1, F)
    k = reflection_from_lar(lar)
    print(f"\nsynthesis: {seconds:g} s at {sr} Hz, order 12, one thread (target: 1000x real time)")
    for kind in ("karplus-strong", "wavelet", "noise"):
        sec = best_time(lambda: kernels.lpc_synthesis_smooth(
            synthetic_excitation(kind, f0, voicing, onset, hop, sr, 1), k, gain, hop), args.repeat)
        print(f"  {'C loop, ' + kind:<52s} {seconds / sec:9.0f}x real time")
    rng2 = np.random.default_rng(1)
    audio = [np.cumsum(rng2.normal(0, 0.01, 8 * sr)) * 0 + np.sin(np.arange(8 * sr) * 2 * np.pi * 220 / sr) * 0.3
             + 0.01 * rng2.normal(size=8 * sr)]
    model = ssgs.SpectralStateGuidedSynthesis(n_states=8, seed=0, n_threads=1).train(audio, sr, 3)
    model.generate(1.0, seed=0)
    sec = best_time(lambda: model.generate(seconds, seed=1), args.repeat)
    print(f"  {'generate(60 s, fidelity=0), everything':<52s} {seconds / sec:9.0f}x real time")


MUSIC = "/usr/share/games/etr/music/spunkyrace-ks.ogg"
MUSIC_TARGETS = {16000: 1000, 44100: 300}  # real time, generate(60 s) on one thread (issue 19)

_GENERATE_IN_A_FRESH_PROCESS = r"""
import sys, time
checkpoint, seconds, repeat, src = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
if src:  # that tree's ssgs, not the editable install's
    sys.meta_path = [f for f in sys.meta_path if "editable" not in type(f).__module__.lower()]
    sys.path.insert(0, src)
import ssgs
assert not src or ssgs.__file__.startswith(src), ssgs.__file__
model = ssgs.SpectralStateGuidedSynthesis.load_checkpoint(checkpoint)
model.n_threads = 1
model.generate(1.0, sample_rate=model.sample_rate, seed=0)
best = float("inf")
for seed in range(repeat):
    t = time.perf_counter()
    model.generate(seconds, sample_rate=model.sample_rate, seed=seed)
    best = min(best, time.perf_counter() - t)
print(seconds / best)
"""


def generate_speed(checkpoint, seconds, repeat, src=None):
    """Real-time factor of ``generate(seconds)`` at fidelity 0 on one thread
    (best of ``repeat``, after a first generation) in a fresh process,
    importing ssgs from ``src`` (a source tree with its extensions built,
    such as a worktree of the previous release) or as installed."""
    run = subprocess.run([sys.executable, "-c", _GENERATE_IN_A_FRESH_PROCESS, str(checkpoint), str(seconds),
                          str(repeat), src or ""], capture_output=True, text=True)
    if run.returncode:
        raise RuntimeError(f"generate in {src or 'this tree'} failed:\n{run.stderr[-2000:]}")
    return float(run.stdout.split()[-1])


def bench_music(args):
    """generate(60 s) on models of a real piece of music, trained here with
    the defaults at 16 and 44.1 kHz; with --previous, the previous release
    generates from the same checkpoints, its processes alternated with
    this tree's."""
    import ssgs

    if not Path(args.music).exists():
        print(f"\ngenerate(60 s) on real music: {args.music} not found, skipped")
        return
    rounds = 1 if args.quick else 3
    print(f"\ngenerate(60 s), fidelity 0, at the model's rate, one thread, on a model of {Path(args.music).name} "
          f"(default model; best of {args.repeat} per process, {rounds} processes each)")
    with tempfile.TemporaryDirectory() as tmp:
        for rate, target in MUSIC_TARGETS.items():
            model = ssgs.SpectralStateGuidedSynthesis(seed=0).train([args.music], rate)
            checkpoint = model.save_checkpoint(Path(tmp) / f"music-{rate}.safetensors")
            ours, previous = [], []
            for _ in range(rounds):
                ours.append(generate_speed(checkpoint, 60.0, args.repeat))
                if args.previous:
                    previous.append(generate_speed(checkpoint, 60.0, args.repeat, args.previous))
            line = (f"  {rate} Hz, hop {model.hop_size}: {min(ours):.0f}-{max(ours):.0f}x real time "
                    f"(target {target}x)")
            if previous:
                ratio = np.median(ours) / np.median(previous)
                line += f"; previous release {min(previous):.0f}-{max(previous):.0f}x; ratio {ratio:.2f}"
            print(line)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement; the best counts")
    parser.add_argument("--only", choices=["estep", "lpc", "synthesis", "music"], nargs="+",
                        help="run only these parts (default: all)")
    parser.add_argument("--music", default=MUSIC, help="the piece the generate(60 s) models are trained on")
    parser.add_argument("--previous", help="src folder of the previous release (its extensions built), "
                        "timed beside this tree on the same models")
    args = parser.parse_args(argv)
    args.frames = 20_000 if args.quick else 200_000
    args.lpc_frames = 5_000 if args.quick else 50_000
    args.samples = 1_000_000 if args.quick else 16_000 * 600
    if args.quick:
        args.repeat = min(args.repeat, 2)
    rng = np.random.default_rng(0)
    parts = args.only or ["estep", "lpc", "synthesis", "music"]
    if "estep" in parts:
        bench_estep(args, rng)
    if "lpc" in parts:
        bench_lpc_analysis(args, rng)
        bench_lpc_synthesis(args, rng)
    if "synthesis" in parts:
        bench_generation(args, rng)
    if "music" in parts:
        bench_music(args)


if __name__ == "__main__":
    main()
