"""Byte-identity references: models trained on two small corpora with fixed
seeds, what they generate, and the checkpoints they write.

``tests/test_golden.py`` recomputes every hash here and compares it with
``tests/data/golden.json``; ``python tests/golden.py`` rewrites that file
(only on purpose: a change of output is a change of behaviour, to be
explained in its commit). The checkpoints stored beside it were written by
an earlier release and stay as they are (``--stored-files`` writes them
anew, which makes them this release's).

The bytes hold for one numerical platform: numpy picks its vector
routines (exp, log, sin) and OpenBLAS its kernels by the CPU, and their last
bits differ between, say, an AVX-512 machine and an AVX2 one. So the file
keeps one set of hashes per platform it was recorded on, each whole: a
platform passes when everything it computes equals one recorded set. A
platform with no recorded set (a new machine) cannot be held to bytes; it
is held to summaries of the values instead (:func:`summary`, within
SUMMARY_RTOL of a recorded set's), until ``--add-platform`` records it.
``python tests/golden.py`` records this platform's set and drops the
others (a change of output on purpose: the others are stale);
``python tests/golden.py --add-platform`` adds or replaces this platform's
set and keeps the others (same code, a new machine).
"""

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from ssgs import SpectralStateGuidedSynthesis

sys.path.insert(0, str(Path(__file__).resolve().parent))
from signals import music_like, switching_ar_audio  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
REFERENCE = DATA / "golden.json"


def music_corpus():
    rng = np.random.default_rng(0)
    return [music_like(rng, 2.0), music_like(rng, 2.5)]


def gaps_corpus():
    """Segments of AR sources with stretches of digital silence between
    them: silent states, silence lengths and run-length tables get fitted."""
    rng = np.random.default_rng(1)
    files = []
    for _ in range(3):
        pieces = []
        for _ in range(14):
            pieces.append(0.3 * switching_ar_audio(rng, n_segments=2, seg_len=1500))
            pieces.append(np.zeros(int(rng.integers(800, 1100))))
        files.append(np.concatenate(pieces))
    return files


CORPORA = {
    "music": (music_corpus, dict(n_states=6, seed=3), 4),
    "gaps": (gaps_corpus, dict(n_states=8, seed=5), 5),
}

# (name, generate keyword arguments): fidelity 0, 0.5 and 1 with fixed seeds and starts
GENERATIONS = [
    ("f0-string", dict(fidelity=0.0, seed=11)),
    ("f0-wavelet", dict(fidelity=0.0, seed=12, excitation_type="Wavelet")),
    ("f0-noise", dict(fidelity=0.0, seed=13, excitation_type="Noise")),
    ("f0-smooth", dict(fidelity=0.0, seed=14, decoder="smooth")),
    ("f0-22050", dict(fidelity=0.0, seed=17, sample_rate=22050)),
    ("f0.5", dict(fidelity=0.5, seed=15, start=(0, 0.3))),
    ("f0.5-wavelet-smooth", dict(fidelity=0.5, seed=18, start=(1, 0.1), excitation_type="Wavelet",
                                 decoder="smooth")),
    ("f1-across-files", dict(fidelity=1.0, seed=16, start=(0, 1.0))),
]
DURATION = 1.5


def sha(array) -> str:
    a = np.ascontiguousarray(array)
    return hashlib.sha256(a.dtype.str.encode() + str(a.shape).encode() + a.tobytes()).hexdigest()


def summary(array) -> list:
    """A few numbers that follow an array's values smoothly (its size, first
    values and the sums of |x| over 16 blocks): what another platform's
    rounding can be compared on, where the bytes cannot."""
    x = np.asarray(array, dtype=np.float64).ravel()
    blocks = np.array_split(np.abs(x), 16) if x.size else []
    return [float(x.size)] + [float(v) for v in x[:8]] + [float(b.sum()) for b in blocks]


def digest(array) -> dict:
    return {"sha": sha(array), "summary": summary(array)}


DIGESTS = {"tensor voice_key"}  # hashes themselves: no summary follows their values
SUMMARY_RTOL = 1e-6  # another platform's last bits, carried through training and generation


def summaries_agree(expected, got):
    """Whether two sets of digests agree to SUMMARY_RTOL, key by key (the
    hashes in DIGESTS aside); False when a set has no summaries."""
    if set(expected) != set(got):
        return False
    for key in set(expected) - DIGESTS:
        a, b = expected[key].get("summary"), got[key]["summary"]
        if a is None or len(a) != len(b):
            return False
        scale = max([1.0] + [abs(v) for v in a[1:]])
        if not np.allclose(b, a, rtol=SUMMARY_RTOL, atol=1e-9 * scale):
            return False
    return True


def trained(corpus, n_threads=0):
    make, kwargs, iterations = CORPORA[corpus]
    model = SpectralStateGuidedSynthesis(**kwargs, n_threads=n_threads)
    return model.train(make(), 16000, n_em_iterations=iterations)


def generations(model, which=GENERATIONS):
    return {name: digest(model.generate(DURATION, **kwargs)) for name, kwargs in which}


def model_hashes(model):
    """Every generation, a preview, and every tensor the model's checkpoint holds."""
    from ssgs.checkpoint import read_checkpoint
    import tempfile

    out = {f"generate {k}": v for k, v in generations(model).items()}
    out["preview"] = digest(model.render_preview(24))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.safetensors"
        model.save_checkpoint(path)
        tensors, _ = read_checkpoint(path)
    out.update({f"tensor {k}": digest(v) for k, v in sorted(tensors.items())})
    return out


def with_run_quantiles(model, folder):
    """The model as a checkpoint whose tables give two states run lengths
    that are not geometric (the semi-Markov sampler's path), loaded back."""
    from ssgs.checkpoint import read_checkpoint, write_checkpoint

    model.generate(0.1, seed=0)  # (the excitation tables, saved with it)
    model.save_checkpoint(Path(folder) / "m.safetensors")
    tensors, metadata = read_checkpoint(Path(folder) / "m.safetensors")
    q = np.zeros((model.n_states, 33), np.float32)
    q[0], q[model.n_states - 1] = np.linspace(2, 9, 33), np.linspace(4, 30, 33)
    write_checkpoint(Path(folder) / "q.safetensors", dict(tensors, state_run_quantiles=q), metadata)
    return SpectralStateGuidedSynthesis.load_checkpoint(Path(folder) / "q.safetensors")


def run_quantile_hashes():
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        model = with_run_quantiles(trained("gaps"), tmp)
        return generations(model, [g for g in GENERATIONS if g[1]["fidelity"] == 0])


def stored_models():
    """Files written by the release the references were made with: a
    checkpoint with artifacts saved straight after training (no excitation
    tables: they are computed at load), one without artifacts (tables
    required) and an npz export."""
    return {"music.safetensors": SpectralStateGuidedSynthesis.load_checkpoint,
            "gaps-params.safetensors": SpectralStateGuidedSynthesis.load_checkpoint,
            "gaps.npz": SpectralStateGuidedSynthesis.load_model}


def stored_hashes(name):
    model = stored_models()[name](DATA / name)
    which = GENERATIONS if name == "music.safetensors" else [g for g in GENERATIONS if g[1]["fidelity"] == 0]
    return generations(model, which)


def write_stored_models():
    """The files of "an earlier release": written once, by that release.
    Rewriting them with a later one would test nothing."""
    DATA.mkdir(exist_ok=True)
    music = trained("music")
    music.save_checkpoint(DATA / "music.safetensors")
    gaps = trained("gaps")
    gaps.generate(0.1, seed=0)  # (fits the excitation tables a checkpoint without artifacts needs)
    gaps.save_checkpoint(DATA / "gaps-params.safetensors", include_training_artifacts=False)
    gaps.export_model(DATA / "gaps.npz")


def platform():
    """What the last bits of ssgs's output depend on besides its own code:
    the numerical libraries' versions, the CPU features numpy dispatches
    on and the BLAS build."""
    import pywt
    import scipy
    import soxr
    from numpy._core._multiarray_umath import __cpu_features__

    levels = [k for k in ("AVX512F", "AVX512_SKX", "AVX2", "FMA3") if __cpu_features__.get(k)]
    blas = np.__config__.CONFIG["Build Dependencies"]["blas"]
    return (f"numpy {np.__version__} ({' '.join(levels) or 'baseline'}; {blas['name']} {blas['version']}), "
            f"scipy {scipy.__version__}, PyWavelets {pywt.__version__}, soxr {soxr.__version__}")


def platform_sets():
    """The recorded sets of hashes, one per platform."""
    return json.loads(REFERENCE.read_text())["platforms"]


def write_references(keep_others):
    """This platform's hashes of what this ssgs makes (the stored files stay
    as they are); the other platforms' sets kept or dropped."""
    here = platform()
    mine = {"platform": here, "models": {c: model_hashes(trained(c)) for c in CORPORA},
            "run_quantiles": run_quantile_hashes(),
            "stored": {name: stored_hashes(name) for name in stored_models()}}
    others = [p for p in platform_sets() if p["platform"] != here] if keep_others and REFERENCE.exists() else []
    REFERENCE.write_text(json.dumps({"platforms": others + [mine]}, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    if "--stored-files" in sys.argv[1:]:
        write_stored_models()
    write_references(keep_others="--add-platform" in sys.argv[1:])
