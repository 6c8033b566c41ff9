"""How generated audio compares with the training audio, at fidelity 0 to 1.

    pip install ".[bench]"
    python benchmarks/bench_quality.py                          # the demo corpus
    python benchmarks/bench_quality.py /usr/share/sounds/alsa   # any folder
    python benchmarks/bench_quality.py DIR --n-states 8 --png out/
    python benchmarks/bench_quality.py DIR --runs 128 --generation-seed 1   # a bigger pool, another set of runs
    python benchmarks/bench_quality.py DIR --runs 128 --sets 4   # four pools: the mean, and how far they differ

Each file is decoded (mono, 16 kHz); its middle 20% is held out (the ends
of a recording are often silence) and the model trains on the parts before
and after it, as separate sequences. For fidelity 0 (with each excitation
type) and 0.25, 0.5, 0.75 and 1 it then reports:

- FMD: Frechet distance between Gaussian fits of 64-band log-mel frames
  (1024-point FFT, hop 256) of generated and training audio, beside the FMD
  of the held-out real excerpts, for scale. Generated audio is made the way
  the held-out audio is cut: one clip per file, of the same lengths. Every
  measure frames each clip (and each training piece) on its own: a frame
  spanning two unrelated clips is in no one's audio (on the alsa words, with
  clips of 0.2 s, such frames took 0.07 off real excerpts' harmonicity);
- loudness spread: standard deviation of frame RMS in dB (1024 / 256), of
  all runs' clips pooled (and in brackets the mean over runs);
- harmonicity: median over frames (1024 samples, hop 512, Hann) of the
  normalised autocorrelation peak at lags for 60-1000 Hz, pooled likewise;
- SNR against the source at fidelity 1.

Beside the held-out excerpts, two rows for scale. "Training excerpts,
anywhere": real clips of the held-out lengths cut from random places in the
training audio itself (mean, spread and median over --runs draws, and
pooled): how much the FMD of a few clips swings with what they hold. The
held-out excerpts are one per file, so together they hold every file's
material; a random clip, like a generated one, holds whatever it happens to.
And copy-synthesis: the training frames' own parameters (envelope, level,
F0, voicing, residual shape, silences) rendered the way fidelity 0 renders
the model's frames, with the Karplus-Strong string, over the whole training
audio: the floor of the vocoder.

Targets (issue 4): SNR >= 60 dB at fidelity 1; at fidelity 0 FMD no larger
than the held-out excerpt's, harmonicity within 0.1 of the training audio's,
loudness spread within 15% of it. Figures, never pass/fail. Each fidelity < 1
row is the mean, spread and median over --runs generations with different seeds
(the FMD of a second of generated speech swings with how much of it is silence:
the median is the steadier figure), and the FMD of all runs' audio pooled (more
frames, so less of the small-sample bias; the held-out excerpts have the
advantage that each holds every file's material in proportion, where a
generated clip is whatever the chain wandered into). The "silent" column is
the share of log-mel frames that are digital silence (of the pooled audio):
each sits about 20 nats below any sound, so on speech a point of that share
moves the FMD by about ten, and 32 runs of a few clips still differ by where
long pauses happened to fall: on read speech, 128 runs' pooled FMD moves by
15 or more from one set of seeds to the next, so --sets reports several
pools and their mean. With --png, a spectrogram of training audio
beside a generated clip is saved.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import scipy.linalg

import ssgs
from ssgs.audio import load_audio
from ssgs.demo import write_demo_corpus
from ssgs.scan import DEFAULT_EXTENSIONS, scan_folders

SR = 16000
FIDELITIES = (0.0, 0.25, 0.5, 0.75, 1.0)


def mel_bank(n_mels=64, n_fft=1024, sr=SR):
    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    edges = 700.0 * (10 ** (np.linspace(0, hz_to_mel(sr / 2), n_mels + 2) / 2595.0) - 1.0)
    freqs = np.fft.rfftfreq(n_fft, 1 / sr)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    bank = np.maximum(0, np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)))
    return bank.T


def frames(x, n=1024, hop=256):
    if len(x) < n:
        x = np.pad(x, (0, n - len(x)))
    idx = np.arange(n)[None, :] + hop * np.arange(1 + (len(x) - n) // hop)[:, None]
    return x[idx]


def _clips(x):
    """A signal or a list of clips (framed one by one: no frame spans two)."""
    return [np.asarray(c, dtype=np.float64) for c in x] if isinstance(x, (list, tuple)) else [np.asarray(x)]


def log_mel(x):
    """Log-mel frames [n, 64] of a signal or of each clip of a list, stacked."""
    out = []
    for c in _clips(x):
        spec = np.abs(np.fft.rfft(frames(c) * np.hanning(1024), axis=1)) ** 2
        out.append(np.log(spec @ mel_bank() + 1e-10))
    return np.concatenate(out)


def frechet(a, b):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean))


def measures(x):
    """Per frame, what the loudness spread, the harmonicity and the silent
    share read, of a signal or of each clip of a list (framed one by one):
    (frame RMS in dB [1024 / 256], the normalised autocorrelation's lag-0
    value and peak [1024 / 512, Hann], digital silence [1024 / 256]). Small
    beside the audio: a bench of many runs keeps these, not the clips."""
    clips = _clips(x)
    rms = np.concatenate([np.sqrt(np.mean(frames(c) ** 2, axis=1)) for c in clips])
    f = np.concatenate([frames(c, 1024, 512) for c in clips]) * np.hanning(1024)
    ac = np.fft.irfft(np.abs(np.fft.rfft(f, 2048, axis=1)) ** 2, axis=1)[:, :1024]
    lo, hi = int(SR / 1000), int(np.ceil(SR / 60))
    with np.errstate(divide="ignore", invalid="ignore"):
        peaks = ac[:, lo:hi + 1].max(axis=1) / ac[:, 0]
    silent = np.concatenate([np.all(frames(c) == 0, axis=1) for c in clips])
    return 20 * np.log10(np.maximum(rms, 1e-5)), np.stack([ac[:, 0], peaks]), silent


def _pooled(m):
    """A list of :func:`measures` (or one) as one."""
    if isinstance(m, list):
        return tuple(np.concatenate([x[i] for x in m], axis=-1) for i in range(3))
    return m


def loudness_spread(x, m=None):
    return float(np.std(_pooled(m if m is not None else measures(x))[0]))


def silent_share(x, m=None):
    """Share of the log-mel frames (1024 / 256) that are digital silence:
    each sits at the log floor, about 20 nats below any sound, so on speech
    this share moves the FMD more than anything else."""
    return float(np.mean(_pooled(m if m is not None else measures(x))[2]))


def harmonicity(x, m=None):
    ac0, peaks = _pooled(m if m is not None else measures(x))[1]
    keep = ac0 > 1e-12 * max(ac0.max(), 1e-30)
    return float(np.median(peaks[keep])) if keep.any() else 0.0


def snr_db(ref, est):
    n = min(len(ref), len(est))
    err = np.sum((ref[:n] - est[:n]) ** 2)
    return float(10 * np.log10(np.sum(ref[:n] ** 2) / err)) if err > 0 else float("inf")


def spectrogram_png(path, train, generated, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
    for ax, x, name in zip(axes, (train, generated), ("training", title)):
        floor = 1e-7 * np.random.default_rng(0).standard_normal(len(x))  # digital silence: -140 dB, not log(0)
        ax.specgram(x + floor, NFFT=1024, Fs=SR, noverlap=768, cmap="magma", vmin=-120, vmax=-20)
        ax.set_title(name)
        ax.set_xlabel("s")
    axes[0].set_ylabel("Hz")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def copy_synthesis(model, kind="karplus-strong"):
    """The vocoder's floor: the training frames' own envelopes, levels, F0,
    voicing, residual shapes and silences rendered the way fidelity 0
    renders the model's frames (a synthetic excitation): what the model
    would score if it drew exactly the training frames."""
    from ssgs.synthesis.excitation import shape_excitation, synthetic_excitation
    from ssgs.synthesis.fidelity import DecodedPaths, passage_controls
    from ssgs.synthesis.render import render

    exc, hop, p, corpus = model.excitation_model, model.hop_size, model.lpc_order, model.corpus
    X, bounds = corpus.data(), corpus.sequence_offsets
    voice = model.voice()
    paths = DecodedPaths(voice, corpus)
    out = []
    for i in range(len(model.sequence_lengths)):
        rows = slice(bounds[i], bounds[i + 1])
        path = paths(i)
        f0, voicing, onset = passage_controls(exc, corpus, rows, path, kind)  # as blends sound a passage
        e = synthetic_excitation(kind, f0, voicing, onset, hop, SR, 5)
        if exc.residual_shape is not None:  # each frame's own residual shape (its state's where silent)
            own = corpus.frame_shapes()[rows].astype(np.float64)
            own = np.where(np.isnan(own), exc.residual_shape[path], own)
            e = shape_excitation(e, own, hop, colour=voice.colour(kind))
        y, _ = render(X[rows, :p], X[rows, p], e, hop, audible=corpus.silent_frames(rows) == 0)
        out.append(y[: model.sequence_samples[i]])
    return out


def row_label(fidelity, kind):
    if fidelity == "passages":
        return "passages (fidelity 1)"
    return f"fidelity {fidelity:g}" + (f" {kind}" if fidelity < 1 else "")


def random_excerpts(train, lengths, rng):
    """Real audio cut the way fidelity 0 is measured: one clip per length,
    each from a random place in the training audio (a sequence drawn by its
    length, among those long enough to hold it). Its spread shows how much
    a few clips' FMD depends on what they happen to hold."""
    sizes = np.array([len(t) for t in train])
    clips = []
    for n in lengths:
        fits = sizes >= n
        if not fits.any():
            continue
        i = rng.choice(np.flatnonzero(fits), p=sizes[fits] / sizes[fits].sum())
        s = int(rng.integers(0, sizes[i] - n + 1))
        clips.append(train[i][s:s + n])
    return clips


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", nargs="?", help="folder of audio (default: the demo corpus)")
    parser.add_argument("--n-states", type=int, default=34)
    parser.add_argument("--n-iterations", type=int, default=20)
    parser.add_argument("--excitation", default="Karplus-Strong")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=int, default=32,
                        help="generations per row (mean +- std, median; and their audio pooled)")
    parser.add_argument("--generation-seed", type=int,
                        help="seed of the generations' seeds alone (default: --seed); the model and the "
                             "excerpts stay as --seed makes them, so another set of runs of the same model")
    parser.add_argument("--sets", type=int, default=1,
                        help="repeat each row's --runs in this many sets (the first is the one --sets 1 makes): "
                             "the pooled column is then the mean of the sets' pooled FMD, and each set's follows "
                             "the row")
    parser.add_argument("--png", help="folder for spectrogram PNGs")
    args = parser.parse_args(argv)
    for name in ("runs", "sets", "n_states", "n_iterations"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    total = args.runs * args.sets

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.corpus
        if folder is None:
            folder = os.path.join(tmp, "demo")
            write_demo_corpus(folder)
        files = scan_folders([folder], DEFAULT_EXTENSIONS, recursive=True).files
        signals = [load_audio(p, SR).astype(np.float64) for p in files]
    train, held = [], []
    for x in signals:
        a, b = int(0.4 * len(x)), int(0.6 * len(x))
        train += [x[:a], x[b:]]
        held.append(x[a:b])
    held_audio = np.concatenate(held)
    train_audio = np.concatenate(train)
    t0 = time.perf_counter()
    model = ssgs.SpectralStateGuidedSynthesis(n_states=args.n_states, seed=args.seed)
    model.train(train, SR, n_em_iterations=args.n_iterations)
    print(f"corpus: {folder} ({len(files)} files, {len(train_audio) / SR:.1f} s training, "
          f"{len(held_audio) / SR:.1f} s held out); {model.n_states} states, "
          f"{model.iteration} iterations in {time.perf_counter() - t0:.1f} s; excitation {args.excitation}")

    ref_mel = log_mel(train)
    held_fmd = frechet(log_mel(held), ref_mel)
    print(f"\n{'':30s}{'FMD':>9s}{'':8s}{'median':>8s}{'pooled':>8s}{'loudness (per run)':>22s}"
          f"{'harmonicity (per run)':>23s}{'silent':>9s}{'SNR':>9s}")

    def one(x, m=None):
        m = measures(x) if m is None else m
        return (f"{loudness_spread(None, m):13.1f} dB{'':7s}{harmonicity(None, m):14.3f}{'':9s}"
                f"{100 * silent_share(None, m):8.1f}%")

    def pooled_and_runs(runs):
        """Loudness spread and harmonicity of all runs' clips pooled (the
        distribution's own figures, as the training audio's are) and, in
        brackets, the mean of each run's: a run of short clips reads a
        narrower spread than its source does (real clips cut anywhere from
        the alsa words: 12.7 dB against 15.8). ``runs``: each run's
        :func:`measures`."""
        return (f"{loudness_spread(None, runs):13.1f} ({np.mean([loudness_spread(None, m) for m in runs]):4.1f}) dB"
                f"{harmonicity(None, runs):14.3f} ({np.mean([harmonicity(None, m) for m in runs]):.3f})"
                f"{100 * silent_share(None, runs):8.1f}%")

    print(f"{'training audio':30s}{'':33s}{one(train)}")
    print(f"{'held-out real excerpts':30s}{held_fmd:9.2f}{'':24s}{one(held)}")
    rng = np.random.default_rng(args.seed if args.generation_seed is None else args.generation_seed)
    # the seeds of every row's first set come from rng in the order --sets 1 draws them, the other sets' from here
    more = np.random.default_rng([args.seed if args.generation_seed is None else args.generation_seed, 1])
    cut = np.random.default_rng(args.seed + 1)  # its own stream: the generations' seeds stay as they were
    def pooled_fmd(mels):
        """The FMD of the runs' frames together (each clip framed on its
        own), per set of --runs: their mean, and the sets' figures."""
        sets = [frechet(np.concatenate(mels[k * args.runs:(k + 1) * args.runs]), ref_mel) for k in range(args.sets)]
        return np.mean(sets), ("" if args.sets == 1 else "   sets: " + " ".join(f"{v:.1f}" for v in sets))

    excerpts = [random_excerpts(train, [len(h) for h in held], cut) for _ in range(total)]
    mels = [log_mel(x) for x in excerpts]
    scores = np.array([frechet(m, ref_mel) for m in mels])
    pooled, sets = pooled_fmd(mels)
    print(f"{'training excerpts, anywhere':30s}{scores.mean():9.2f} +-{scores.std():<6.0f}{np.median(scores):8.0f}"
          f"{pooled:8.1f}{pooled_and_runs([measures(x) for x in excerpts])}{sets}")
    copy = copy_synthesis(model)
    print(f"{'copy-synthesis (vocoder floor)':30s}{frechet(log_mel(copy), ref_mel):9.2f}{'':24s}{one(copy)}")
    # the blends of every fidelity start at the same places (drawn like
    # generate()'s own starts), so their rows differ by the fidelity alone;
    # "passages" is those places' real audio
    place = np.random.default_rng(args.seed + 2)
    lengths = model.sequence_samples
    starts = []
    for _ in range(total):
        index = place.choice(len(lengths), size=len(held), p=lengths / lengths.sum())
        starts.append([(int(i), int(place.integers(model.sequence_lengths[i])) * model.hop_size / SR) for i in index])
    rows = [(0.0, kind) for kind in ("Karplus-Strong", "Wavelet", "Noise")]
    rows += [("passages", args.excitation)] + [(f, args.excitation) for f in FIDELITIES[1:]]
    for fidelity, kind in rows:
        runs = 1 if fidelity == 1.0 else total
        mels, clip_sets = [], []  # each run's log-mel frames and measures (not its audio: 1024 runs of speech
        # held as audio took 12 GB)
        for run in range(runs):
            if fidelity == "passages":
                gen = [model.generate(len(h) / SR, fidelity=1.0, start=starts[run][k]).astype(np.float64)
                       for k, h in enumerate(held)]
                snr = None
            elif fidelity == 1.0:
                pieces = [model.generate(len(t) / SR, fidelity=1.0, start=(i, 0.0), seed=1)
                          for i, t in enumerate(train)]
                gen = [piece.astype(np.float64) for piece in pieces]
                snr = snr_db(train_audio, np.concatenate(gen))
            else:
                # as many clips as held-out excerpts, of the same lengths, each a
                # generation of its own (the held-out audio is one excerpt per file)
                gen = [model.generate(len(h) / SR, fidelity=fidelity, excitation_type=kind,
                                      seed=int((rng if run < args.runs else more).integers(2**31)),
                                      start=None if fidelity == 0 else starts[run][k]).astype(np.float64)
                       for k, h in enumerate(held)]
                snr = None
            mels.append(log_mel(gen))
            clip_sets.append(measures(gen))
            if args.png and run == 0:
                os.makedirs(args.png, exist_ok=True)
                gen = np.concatenate(gen)
                n = min(len(gen), 10 * SR, len(train_audio))
                label = row_label(fidelity, kind)
                name = "passages" if fidelity == "passages" else f"fidelity_{fidelity:g}_{kind.lower()}"
                spectrogram_png(os.path.join(args.png, f"{name}.png"),
                                train_audio[:n], gen[:n], f"generated, {label}")
        scores = [frechet(m, ref_mel) for m in mels]
        label = row_label(fidelity, kind)
        spread = f"{np.mean(scores):9.2f}" + (f" +-{np.std(scores):<6.0f}" if runs > 1 else " " * 8)
        spread += f"{np.median(scores):8.0f}" if runs > 1 else " " * 8
        pooled, sets = pooled_fmd(mels) if runs > 1 else (None, "")
        spread += f"{pooled:8.1f}" if runs > 1 else " " * 8
        row = f"{label:30s}{spread}{pooled_and_runs(clip_sets) if runs > 1 else one(None, clip_sets[0])}"
        print(row + (f"{snr:7.1f} dB" if snr is not None else "") + sets)

if __name__ == "__main__":
    main()
