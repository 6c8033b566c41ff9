"""How generated audio compares with the training audio, at fidelity 0 to 1.

    pip install ".[bench]"
    python benchmarks/bench_quality.py                          # the demo corpus
    python benchmarks/bench_quality.py /usr/share/sounds/alsa   # any folder
    python benchmarks/bench_quality.py DIR --n-states 8 --png out/
    python benchmarks/bench_quality.py DIR --runs 128 --generation-seed 1   # a bigger pool, another set of runs
    python benchmarks/bench_quality.py DIR --runs 128 --sets 4   # four pools: the mean, and how far they differ
    python benchmarks/bench_quality.py /usr/share/games/etr/music/spunkyrace-ks.ogg --seconds 60 --runs 8
    python benchmarks/bench_quality.py --etr --seconds 60 --runs 8 --rate 44100 --png out/

Each file is decoded (mono, 16 kHz, or --rate); its middle 20% is held out (the ends
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
- beat: how pulsed the audio is at the training audio's own tempo. The
  onset envelope is the positive frame-to-frame change of the log-mel
  frames above, summed over the bands, its mean removed (per clip); the
  beat period is the lag between 0.25 and 2 s where the training audio's
  envelope autocorrelation has its highest local maximum, found once, and
  every clip reads its normalised autocorrelation at that lag (mean of
  the lagged products over the mean square). Produced music reads about
  0.3-0.9, unpulsed audio about 0. Clips shorter than two periods have no
  figure ("-"); a clip of a few periods reads a noisy one, so the column
  is the median over clips (all runs'), and in brackets the pooled figure
  (every clip's products and squares summed: loud, busy clips weigh more);
- dropouts: share of the loudness frames (1024 / 256) more than 30 dB
  under the median frame RMS in dB of all the training frames (digital
  silence included, read at -100 dB), pooled;
- SNR against the source at fidelity 1.

The measures run at 16 kHz whatever --rate is: audio at another rate
(training, held-out, copy-synthesis and generated) is resampled to 16 kHz
(soxr, HQ) before it is measured, so the frames keep their durations and
the figures compare across rates. The model's analysis settings are
ssgs's defaults at any rate (printed in the header line). --seconds S
makes every generated clip (fidelity < 1 and passages) S seconds long
instead of the held-out lengths: on music, --seconds 60 compares the
generations with the "training stretches, 60 s" row, random 60-s stretches
of real training audio (as many as --runs, at most one per 10 s of the
files that hold 60 s; each file's training audio is its parts before and
after the held-out middle joined, so a stretch may cross that one splice;
no row, with a message, when no file's training audio is 60 s long). --etr
runs the bench on each piece of extremetuxracer's music
(/usr/share/games/etr/music/*.ogg) over 60 s as its own corpus, then on
all of them together (pieces with different tempi: the per-piece figures
are the ones that mean something; the beat period of the whole is the
strongest one of all the pieces' audio).

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
pools and their mean. With --png DIR, each row's first run is saved as
DIR/<row>.png (DIR/<piece>/<row>.png with --etr): a spectrogram of the
training audio's first 15 s beside the run's clips' first 15 s (joined),
at the corpus's rate.
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

SR = 16000  # the measures' rate: audio at any other rate is resampled to it first
HOP = 256  # the log-mel and loudness frames' hop at SR (16 ms)
FIDELITIES = (0.0, 0.25, 0.5, 0.75, 1.0)
BEAT_PERIODS = (0.25, 2.0)  # seconds: where the training audio's pulse is looked for
BEAT_MIN_PERIODS = 2  # a clip shorter than this many periods has no beat figure
DROPOUT_DB = 30.0
STRETCH_SECONDS = 60.0
ETR_MUSIC = "/usr/share/games/etr/music"


def at_measure_rate(x, rate):
    """``x`` (a signal or a list of clips at ``rate``) resampled to SR
    (soxr, HQ) for measuring; unchanged at SR."""
    import soxr

    if rate == SR:
        return x
    if isinstance(x, (list, tuple)):
        return [at_measure_rate(c, rate) for c in x]
    return soxr.resample(np.asarray(x, dtype=np.float64), rate, SR, quality="HQ")


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


def onset_envelope(mel):
    """Onset strength per frame of one clip's log-mel frames ``mel``
    [n, 64]: the positive frame-to-frame change summed over the bands,
    its mean removed; shape (n - 1,)."""
    e = np.maximum(np.diff(mel, axis=0), 0.0).sum(axis=1)
    return e - e.mean() if len(e) else e


def _lag_products(e, max_lag):
    """Sums of e[t] e[t + k] for k = 0 .. max_lag (by FFT) and how many
    products each sums."""
    ac = np.fft.irfft(np.abs(np.fft.rfft(e, 2 * len(e))) ** 2)[:max_lag + 1]
    return ac, len(e) - np.arange(max_lag + 1)


def beat_lag(train):
    """The training audio's beat period in frames (hop 256 at SR): the lag
    between BEAT_PERIODS whose onset-envelope autocorrelation (products at
    each lag over all training pieces, each piece framed on its own,
    divided by their count and by the mean square) is the highest local
    maximum (the highest value if there is none)."""
    lo, hi = int(np.ceil(BEAT_PERIODS[0] * SR / HOP)), int(BEAT_PERIODS[1] * SR / HOP)
    prod, count, sq, n = np.zeros(hi + 1), np.zeros(hi + 1), 0.0, 0
    for c in _clips(train):
        e = onset_envelope(log_mel(c))
        if len(e) > hi:
            p, k = _lag_products(e, hi)
            prod, count, sq, n = prod + p, count + k, sq + p[0], n + len(e)
    r = prod[lo:hi + 1] / np.maximum(count[lo:hi + 1], 1) / max(sq / max(n, 1), 1e-30)
    peaks = [i for i in range(1, len(r) - 1) if r[i - 1] < r[i] >= r[i + 1]]
    return lo + (max(peaks, key=lambda i: r[i]) if peaks else int(np.argmax(r)))


def _beat_sums(c, lag):
    """One clip's [sum of e[t] e[t + lag], their count, sum of e^2, len(e)]
    of its onset envelope e; all zero when the clip holds fewer than
    BEAT_MIN_PERIODS periods (or no lag is given)."""
    e = onset_envelope(log_mel(c))
    if lag is None or len(e) < BEAT_MIN_PERIODS * lag:
        return np.zeros(4)
    return np.array([np.dot(e[:-lag], e[lag:]), len(e) - lag, np.dot(e, e), len(e)])


def measures(x, lag=None):
    """Per frame, what the loudness spread, the harmonicity, the silent
    share and the dropouts read, of a signal or of each clip of a list
    (framed one by one): (frame RMS in dB [1024 / 256], the normalised
    autocorrelation's lag-0 value and peak [1024 / 512, Hann], digital
    silence [1024 / 256]); and per clip the onset envelope's sums at the
    beat ``lag`` (:func:`_beat_sums`, shape (4, n_clips)). Small beside the
    audio: a bench of many runs keeps these, not the clips."""
    clips = _clips(x)
    rms = np.concatenate([np.sqrt(np.mean(frames(c) ** 2, axis=1)) for c in clips])
    f = np.concatenate([frames(c, 1024, 512) for c in clips]) * np.hanning(1024)
    ac = np.fft.irfft(np.abs(np.fft.rfft(f, 2048, axis=1)) ** 2, axis=1)[:, :1024]
    lo, hi = int(SR / 1000), int(np.ceil(SR / 60))
    with np.errstate(divide="ignore", invalid="ignore"):
        peaks = ac[:, lo:hi + 1].max(axis=1) / ac[:, 0]
    silent = np.concatenate([np.all(frames(c) == 0, axis=1) for c in clips])
    beat = np.stack([_beat_sums(c, lag) for c in clips], axis=1)
    return 20 * np.log10(np.maximum(rms, 1e-5)), np.stack([ac[:, 0], peaks]), silent, beat


def _pooled(m):
    """A list of :func:`measures` (or one) as one."""
    if isinstance(m, list):
        return tuple(np.concatenate([x[i] for x in m], axis=-1) for i in range(4))
    return m


def beat(x, m=None):
    """The onset envelope's normalised autocorrelation at the beat lag
    (mean of the lagged products over the mean square): the median over
    clips long enough, and pooled (every such clip's products and squares
    summed); NaN where no clip is long enough."""
    b = _pooled(m if m is not None else measures(x))[3]
    b = b[:, b[1] > 0]
    if not b.shape[1]:
        return float("nan"), float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        per_clip = (b[0] / b[1]) / (b[2] / b[3])
    return float(np.nanmedian(per_clip)), float((b[0].sum() / b[1].sum()) / (b[2].sum() / b[3].sum()))


def dropout_share(floor_db, x=None, m=None):
    """Share of the loudness frames (1024 / 256) under ``floor_db``."""
    return float(np.mean(_pooled(m if m is not None else measures(x))[0] < floor_db))


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


def spectrogram_png(path, train, generated, title, rate):
    """Spectrograms of ``train`` beside ``generated`` (both at ``rate``;
    1024-point FFT, hop 256), saved as ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(14, 4), sharey=True)
    for ax, x, name in zip(axes, (train, generated), ("training", title)):
        floor = 1e-7 * np.random.default_rng(0).standard_normal(len(x))  # digital silence: -140 dB, not log(0)
        ax.specgram(x + floor, NFFT=1024, Fs=rate, noverlap=768, cmap="magma", vmin=-120, vmax=-20)
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
        e = synthetic_excitation(kind, f0, voicing, onset, hop, model.sample_rate, 5)
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


def training_stretches(by_file, n, runs, rate, rng):
    """Random stretches of ``n`` samples of real training audio, each from
    one file's training audio (its parts before and after the held-out
    middle joined: one splice where the middle was), a file drawn by its
    length among those that hold ``n`` samples. As many as --runs, but no
    more than one per 10 s of those files' audio (overlapping stretches of
    a short piece would repeat one another). Empty when no file holds ``n``."""
    long_enough = [x for x in by_file if len(x) >= n]
    if not long_enough:
        return []
    count = min(runs, max(1, int(sum(len(x) for x in long_enough) / (10 * rate))))
    return [random_excerpts(long_enough, [n], rng)[0] for _ in range(count)]


def _fig(value, fmt, width):
    return f"{value:{width}{fmt}}" if np.isfinite(value) else f"{'-':>{width}s}"


def music_columns(floor_db, m):
    """The beat (median over clips, and pooled in brackets) and dropout
    share columns of one :func:`measures` or of a list of them (pooled)."""
    median, pooled = beat(None, m)
    return (f"{_fig(median, '.2f', 8)} ({_fig(pooled, '.2f', 5)})"
            f"{100 * dropout_share(floor_db, m=m):9.1f}%")


def one(ref, x, m=None):
    """Every column after the FMD's of one set of clips ``x`` (or of its
    :func:`measures` ``m``)."""
    m = measures(x, ref.lag) if m is None else m
    return (f"{loudness_spread(None, m):13.1f} dB{'':7s}{harmonicity(None, m):14.3f}{'':9s}"
            f"{100 * silent_share(None, m):8.1f}%{music_columns(ref.floor_db, m)}")


def pooled_and_runs(ref, runs):
    """Loudness spread and harmonicity of all runs' clips pooled (the
    distribution's own figures, as the training audio's are) and, in
    brackets, the mean of each run's: a run of short clips reads a
    narrower spread than its source does (real clips cut anywhere from
    the alsa words: 12.7 dB against 15.8); then the silent share, beat and
    dropouts, pooled. ``runs``: each run's :func:`measures`."""
    return (f"{loudness_spread(None, runs):13.1f} ({np.mean([loudness_spread(None, m) for m in runs]):4.1f}) dB"
            f"{harmonicity(None, runs):14.3f} ({np.mean([harmonicity(None, m) for m in runs]):.3f})"
            f"{100 * silent_share(None, runs):8.1f}%{music_columns(ref.floor_db, runs)}")


def fmd_columns(ref, mels, sets=1):
    """FMD mean +- std and median over runs (each run's log-mel frames in
    ``mels``), and the pooled FMD per set of len(mels) / sets runs (their
    mean, and each set's figure after the row when there are several)."""
    scores = [frechet(m, ref.mel) for m in mels]
    if len(mels) == 1:
        return f"{scores[0]:9.2f}{'':24s}", ""
    size = len(mels) // sets
    pools = [frechet(np.concatenate(mels[k * size:(k + 1) * size]), ref.mel) for k in range(sets)]
    return (f"{np.mean(scores):9.2f} +-{np.std(scores):<6.0f}{np.median(scores):8.0f}{np.mean(pools):8.1f}",
            "" if sets == 1 else "   sets: " + " ".join(f"{v:.1f}" for v in pools))


def real_row(ref, label, clip_sets):
    """A row of real clips: ``clip_sets`` a list of runs, each a list of
    clips at the measures' rate."""
    fmd, sets = fmd_columns(ref, [log_mel(x) for x in clip_sets])
    print(f"{label:30s}{fmd}{pooled_and_runs(ref, [measures(x, ref.lag) for x in clip_sets])}{sets}")


def load_corpus(files, rate):
    """Each file decoded (mono, ``rate``) and split: its middle 20% held
    out, the parts before and after it training sequences. Returns
    (training sequences, held-out excerpts, each file's training audio
    joined)."""
    train, held, by_file = [], [], []
    for path in files:
        x = load_audio(path, rate).astype(np.float64)
        a, b = int(0.4 * len(x)), int(0.6 * len(x))
        train += [x[:a], x[b:]]
        held.append(x[a:b])
        by_file.append(np.concatenate([x[:a], x[b:]]))
    return train, held, by_file


def reference(train, rate):
    """What every row is measured against: the training audio at the
    measures' rate, its log-mel frames, its beat lag and the dropout floor
    (DROPOUT_DB under the median frame RMS in dB of all training frames,
    digital silence included, read at -100 dB)."""
    train16 = at_measure_rate(train, rate)
    lag = beat_lag(train16)
    rms_db = measures(train16)[0]
    return argparse.Namespace(rate=rate, train=train16, mel=log_mel(train16), lag=lag,
                              floor_db=float(np.median(rms_db)) - DROPOUT_DB)


def generate_clips(model, fidelity, kind, lengths, seed, starts, train):
    """One run's clips at the model's rate: for fidelity 1 the whole
    training audio replayed (with its SNR against the source), else one
    clip per length (passages from ``starts``; blends from ``starts`` too,
    so the fidelities differ by the fidelity alone)."""
    rate = model.sample_rate
    if fidelity == 1.0:
        gen = [model.generate(len(t) / rate, rate, fidelity=1.0, start=(i, 0.0), seed=1).astype(np.float64)
               for i, t in enumerate(train)]
        return gen, snr_db(np.concatenate(train), np.concatenate(gen))
    if fidelity == "passages":
        return [model.generate(n / rate, rate, fidelity=1.0, start=starts[k]).astype(np.float64)
                for k, n in enumerate(lengths)], None
    return [model.generate(n / rate, rate, fidelity=fidelity, excitation_type=kind, seed=seed,
                           start=None if fidelity == 0 else starts[k]).astype(np.float64)
            for k, n in enumerate(lengths)], None


def save_png(png, fidelity, kind, train, gen, rate):
    """The training audio's first 15 s beside the run's clips' (joined)."""
    os.makedirs(png, exist_ok=True)
    gen = np.concatenate(gen)
    train = np.concatenate(train)
    n = min(len(gen), int(15 * rate), len(train))
    name = "passages" if fidelity == "passages" else f"fidelity_{fidelity:g}_{kind.lower()}"
    spectrogram_png(os.path.join(png, f"{name}.png"), train[:n], gen[:n],
                    f"generated, {row_label(fidelity, kind)}", rate)


def generated_rows(model, ref, args, train, lengths, png):
    """The copy-synthesis row and a row per fidelity and excitation type
    (fidelity < 1: --runs x --sets generations, each run one clip per
    entry of ``lengths``, in samples at the model's rate)."""
    rate = model.sample_rate
    copy = at_measure_rate(copy_synthesis(model), rate)
    print(f"{'copy-synthesis (vocoder floor)':30s}{frechet(log_mel(copy), ref.mel):9.2f}{'':24s}{one(ref, copy)}")
    seed = args.seed if args.generation_seed is None else args.generation_seed
    rng = np.random.default_rng(seed)
    # the seeds of every row's first set come from rng in the order --sets 1 draws them, the other sets' from here
    more = np.random.default_rng([seed, 1])
    total = args.runs * args.sets
    # the blends of every fidelity start at the same places (drawn like
    # generate()'s own starts), so their rows differ by the fidelity alone;
    # "passages" is those places' real audio
    place = np.random.default_rng(args.seed + 2)
    sizes = model.sequence_samples
    starts = []
    for _ in range(total):
        index = place.choice(len(sizes), size=len(lengths), p=sizes / sizes.sum())
        starts.append([(int(i), int(place.integers(model.sequence_lengths[i])) * model.hop_size / rate)
                       for i in index])
    rows = [(0.0, kind) for kind in ("Karplus-Strong", "Wavelet", "Noise")]
    rows += [("passages", args.excitation)] + [(f, args.excitation) for f in FIDELITIES[1:]]
    for fidelity, kind in rows:
        runs = 1 if fidelity == 1.0 else total
        mels, clip_sets = [], []  # each run's log-mel frames and measures (not its audio: 1024 runs of speech
        # held as audio took 12 GB)
        for run in range(runs):
            uses_seed = fidelity not in ("passages", 1.0)
            gen, snr = generate_clips(model, fidelity, kind, lengths,
                                      int((rng if run < args.runs else more).integers(2**31)) if uses_seed else None,
                                      starts[run], train)
            if png and run == 0:
                save_png(png, fidelity, kind, train, gen, rate)
            gen = at_measure_rate(gen, rate)
            mels.append(log_mel(gen))
            clip_sets.append(measures(gen, ref.lag))
        fmd, sets = fmd_columns(ref, mels, args.sets if runs > 1 else 1)
        rest = pooled_and_runs(ref, clip_sets) if runs > 1 else one(ref, None, clip_sets[0])
        print(f"{row_label(fidelity, kind):30s}{fmd}{rest}" + (f"{snr:7.1f} dB" if snr is not None else "") + sets)


def bench_corpus(name, files, args, png):
    """The whole table for one corpus (``files`` decoded at --rate)."""
    rate = args.rate
    train, held, by_file = load_corpus(files, rate)
    t0 = time.perf_counter()
    model = ssgs.SpectralStateGuidedSynthesis(n_states=args.n_states, seed=args.seed, audio_bits=args.audio_bits)
    model.train(train, rate, n_em_iterations=args.n_iterations)
    ref = reference(train, rate)
    held16 = at_measure_rate(held, rate)
    lengths = [len(h) for h in held] if args.seconds is None else [round(args.seconds * rate)] * len(held)
    print(f"\ncorpus: {name} ({len(files)} files, {sum(map(len, train)) / rate:.1f} s training, "
          f"{sum(map(len, held)) / rate:.1f} s held out); {model.n_states} states, "
          f"{model.iteration} iterations in {time.perf_counter() - t0:.1f} s; excitation {args.excitation}; "
          f"analysis at {rate} Hz: LPC order {model.lpc_order}, frame {model.frame_size}, hop {model.hop_size} "
          f"({1000 * model.frame_size / rate:.1f} / {1000 * model.hop_size / rate:.1f} ms); measured at {SR} Hz; "
          f"beat period {ref.lag * HOP / SR:.3f} s; dropout floor {ref.floor_db:.1f} dB; generated clips "
          + ("as long as the held-out excerpts" if args.seconds is None else f"{args.seconds:g} s"))
    print(f"\n{'':30s}{'FMD':>9s}{'':8s}{'median':>8s}{'pooled':>8s}{'loudness (per run)':>22s}"
          f"{'harmonicity (per run)':>23s}{'silent':>9s}{'beat (pooled)':>16s}{'dropouts':>10s}{'SNR':>9s}")
    print(f"{'training audio':30s}{'':33s}{one(ref, ref.train)}")
    print(f"{'held-out real excerpts':30s}{frechet(log_mel(held16), ref.mel):9.2f}{'':24s}{one(ref, held16)}")
    cut = np.random.default_rng(args.seed + 1)  # its own stream: the generations' seeds stay as they were
    excerpts = [random_excerpts(train, [len(h) for h in held], cut) for _ in range(args.runs * args.sets)]
    real_row(ref, "training excerpts, anywhere", [at_measure_rate(x, rate) for x in excerpts])
    stretches = training_stretches(by_file, round(STRETCH_SECONDS * rate), args.runs, rate,
                                   np.random.default_rng(args.seed + 3))
    if stretches:
        real_row(ref, f"training stretches, {STRETCH_SECONDS:g} s", [at_measure_rate([x], rate) for x in stretches])
    else:
        print(f"(training stretches, {STRETCH_SECONDS:g} s: no file's training audio is that long)")
    generated_rows(model, ref, args, train, lengths, png)


def etr_corpora():
    """Each piece of extremetuxracer's music longer than STRETCH_SECONDS, as
    (name, [path]), then all of them together as one corpus ("all-pieces");
    none, with a message, when the package is absent."""
    import glob

    import soundfile

    paths = sorted(glob.glob(os.path.join(ETR_MUSIC, "*.ogg")))
    if not paths:
        print(f"--etr: no {ETR_MUSIC}/*.ogg (the extremetuxracer package is not installed); nothing to do")
    long = [p for p in paths if soundfile.info(p).duration > STRETCH_SECONDS]
    for p in sorted(set(paths) - set(long)):
        print(f"--etr: {os.path.basename(p)} skipped ({soundfile.info(p).duration:.1f} s, "
              f"not over {STRETCH_SECONDS:g} s)")
    together = [("all-pieces", long)] if len(long) > 1 else []
    return [(p, [p]) for p in long] + together


def corpora(args, tmp):
    """(name, files) of each corpus the command line asks for."""
    if args.etr:
        return etr_corpora()
    if args.corpus is None:
        folder = os.path.join(tmp, "demo")
        write_demo_corpus(folder)
        return [(folder, scan_folders([folder], DEFAULT_EXTENSIONS, recursive=True).files)]
    if os.path.isfile(args.corpus):
        return [(args.corpus, [args.corpus])]
    return [(args.corpus, scan_folders([args.corpus], DEFAULT_EXTENSIONS, recursive=True).files)]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", nargs="?", help="folder of audio, or one file (default: the demo corpus)")
    parser.add_argument("--n-states", type=int, default=34)
    parser.add_argument("--n-iterations", type=int, default=20)
    parser.add_argument("--excitation", default="Karplus-Strong")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--audio-bits", type=int, choices=(16, 24), default=16,
                        help="bits of the training audio the model keeps (and trains on)")
    parser.add_argument("--runs", type=int, default=32,
                        help="generations per row (mean +- std, median; and their audio pooled)")
    parser.add_argument("--generation-seed", type=int,
                        help="seed of the generations' seeds alone (default: --seed); the model and the "
                             "excerpts stay as --seed makes them, so another set of runs of the same model")
    parser.add_argument("--sets", type=int, default=1,
                        help="repeat each row's --runs in this many sets (the first is the one --sets 1 makes): "
                             "the pooled column is then the mean of the sets' pooled FMD, and each set's follows "
                             "the row")
    parser.add_argument("--seconds", type=float,
                        help="every generated clip this long (default: as long as the held-out excerpts)")
    parser.add_argument("--rate", type=int, default=SR,
                        help="decode, train and generate at this rate (the measures resample to 16 kHz)")
    parser.add_argument("--etr", action="store_true",
                        help=f"each piece of {ETR_MUSIC}/*.ogg over {STRETCH_SECONDS:g} s as its own corpus")
    parser.add_argument("--png", help="folder for spectrogram PNGs (with --etr, a sub-folder per piece)")
    args = parser.parse_args(argv)
    for name in ("runs", "sets", "n_states", "n_iterations", "rate"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.seconds is not None and not args.seconds > 0:
        parser.error(f"--seconds must be over 0, got {args.seconds}")
    if args.etr and args.corpus is not None:
        parser.error("--etr takes no corpus")
    return args


def main(argv=None):
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        for name, files in corpora(args, tmp):
            png = args.png
            if png and args.etr:
                png = os.path.join(png, os.path.splitext(os.path.basename(name))[0])
            bench_corpus(name, files, args, png)


if __name__ == "__main__":
    main()
