"""Generation above fidelity 0 (ssgs.synthesis.fidelity): exact replay of
the training audio, blends of the passage with the model's rendering."""

import corpora
import numpy as np
import pytest
import scipy.signal
from numpy.testing import assert_array_equal

from ssgs import SpectralStateGuidedSynthesis, SSGSError
from ssgs.synthesis.fidelity import DecodedPaths, blended_gain_scores, crossfade, passage_stretches
from ssgs.synthesis.render import CEILING, log_spectral_distance
from ssgs.synthesis.trajectory import audible_frames

SR, HOP = 16000, 256


@pytest.fixture(scope="module")
def audio():
    return corpora.music_audio()


@pytest.fixture(scope="module")
def model(audio):
    return corpora.music_model(audio)


def kept(model):
    """The training audio as the model keeps it (16-bit codes times a gain):
    what fidelity 1 must replay bit for bit."""
    return [model.rebuild_sequence(i) for i in range(len(model.sequence_lengths))]


def test_kept_audio_is_within_80_db_of_the_source(model, audio):
    for x, y in zip(audio, kept(model)):
        assert len(y) == len(x) and snr_db(x, y) >= 80


@pytest.fixture(scope="module")
def gapped():
    return corpora.gapped()


def snr_db(ref, est):
    return 10 * np.log10(np.sum(ref**2) / max(np.sum((ref - est) ** 2), 1e-300))


@pytest.mark.parametrize("start", [(0, 0.0), (1, 1.37), (2, 0.5)])
def test_fidelity_one_rebuilds_the_training_audio(model, audio, start):
    index, seconds = start
    y, details = model.generate(2.0, fidelity=1.0, start=start, return_details=True)
    s0 = int(round(seconds * SR))
    assert y.dtype == np.float32 and len(y) == 2 * SR
    assert_array_equal(y, kept(model)[index][s0 : s0 + len(y)].astype(np.float32))
    assert snr_db(audio[index][s0 : s0 + len(y)], y) >= 80
    assert details.source_index == index and details.start_sample == s0
    assert details.source_path == "audio[%d]" % index
    assert len(details.state_path) == -(-(2 * SR + s0 % HOP) // HOP) or len(details.state_path) > 0


def test_fidelity_one_runs_across_file_boundaries(model, audio):
    stored = kept(model)
    y = model.generate(2.5, fidelity=1.0, start=(0, 4.0))
    assert_array_equal(y, np.concatenate([stored[0][4 * SR :], stored[1]])[: len(y)].astype(np.float32))
    tail = model.generate(3.0, fidelity=1.0, start=(2, 5.0))  # past the last file: round to the first
    assert_array_equal(tail, np.concatenate([stored[2][5 * SR :], stored[0]])[: len(tail)].astype(np.float32))


@pytest.fixture(scope="module")
def loud():
    """Two files mastered to full scale (a saturated mix peaking at exactly
    1.0) and a little over it (1.06, as MP3 decoders give back a file
    mastered to 0 dBFS), and a model of them."""
    rng = np.random.default_rng(12)
    files = []
    for peak in (1.0, 1.06):
        x = np.tanh(2.5 * sum(corpora.music_like(rng, 5.0) for _ in range(3)))
        files.append(peak * x / np.abs(x).max())
    return files, SpectralStateGuidedSynthesis(n_states=6, seed=5).train(files, SR, n_em_iterations=4)


def test_fidelity_one_is_exact_at_full_scale_and_over_it(loud):
    files, model = loud
    y = model.generate(9.0, fidelity=1.0, start=(0, 0.5))  # across the boundary into the louder file
    assert_array_equal(y, np.concatenate(kept(model))[SR // 2 : SR // 2 + len(y)].astype(np.float32))
    assert snr_db(np.concatenate(files)[SR // 2 : SR // 2 + len(y)], y) >= 80  # the 16-bit rounding, nothing bent
    assert np.abs(y).max() == pytest.approx(1.06, abs=1e-6)  # the peak kept where it was


def test_blends_never_bend_the_training_audio(loud):
    """At 0 < fidelity < 1 the replayed stretches are the training audio
    exactly, at full scale and over it; the model's share keeps every other
    sample within the ceiling or the training audio's own level."""
    files, model = loud
    ref = np.concatenate(kept(model))[: 10 * SR]
    for seed in range(3):
        y = model.generate(10.0, fidelity=0.5, seed=seed, start=(0, 0.0)).astype(np.float64)
        replayed = np.abs(y - ref) < 1e-6
        assert 0.2 < replayed.mean() < 0.8
        assert np.abs(y[replayed]).max() > 1.0  # the loud file's peaks, replayed as they are
        assert np.all(np.abs(y[~replayed]) <= np.maximum(CEILING, np.abs(ref[~replayed])) + 1e-6)


def test_crossfade_keeps_the_training_audio_exact_and_bounds_the_rest():
    rng = np.random.default_rng(4)
    n = 4000
    real = 1.1 * np.sign(rng.standard_normal(n)) * rng.uniform(0.5, 1.0, n)  # over full scale in places
    model = 0.98 * np.clip(rng.standard_normal(n), -1, 1)
    share = np.clip(np.sin(np.arange(n) / 300.0) + 0.5, 0.0, 1.0)
    y = crossfade(real, model, share, 16)
    assert_array_equal(y[share == 1.0], real[share == 1.0])  # bit for bit
    a = np.sin(0.5 * np.pi * share) * real
    assert np.all(np.abs(y) <= np.maximum(CEILING, np.abs(a)) + 1e-12)
    plain = a + np.cos(0.5 * np.pi * share) * model
    assert np.abs(plain).max() > 1.2  # what the bound prevents
    quiet = crossfade(0.3 * real, 0.3 * model, share, 16)  # nothing near full scale: a plain crossfade
    np.testing.assert_allclose(quiet, np.sin(0.5 * np.pi * share) * 0.3 * real
                               + np.where(share < 1, np.cos(0.5 * np.pi * share), 0) * 0.3 * model)


def test_fidelity_zero_needs_no_training_artifacts(model, tmp_path):
    path = tmp_path / "small.safetensors"
    model.save_checkpoint(path, include_training_artifacts=False)
    light = SpectralStateGuidedSynthesis.load_checkpoint(path)
    assert light.residual_signals is None and light.observations is None
    y_light = light.generate(2.0, fidelity=0.0, seed=9)
    y_full = model.generate(2.0, fidelity=0.0, seed=9)
    # the same samples whether or not training frames and residuals exist: none were used
    assert_array_equal(y_light, y_full)
    with pytest.raises(SSGSError, match="training artifacts"):
        light.generate(1.0, fidelity=0.5)


def test_distance_to_the_training_audio_never_grows_with_fidelity(model, audio):
    for start in [(0, 1.0), (2, 2.0)]:
        s0 = int(start[1] * SR)
        ref = kept(model)[start[0]][s0 : s0 + 2 * SR]
        distances = [log_spectral_distance(ref, model.generate(2.0, fidelity=f, seed=5, start=start))
                     for f in (0.0, 0.25, 0.5, 0.75, 1.0)]
        assert all(b <= a + 1e-9 for a, b in zip(distances, distances[1:])), distances
        assert distances[-1] < 1e-3


def test_passage_stretches_end_at_changes_of_state(rng):
    path = np.repeat(rng.integers(0, 5, 300), rng.integers(1, 12, 300))
    draws = passage_stretches(path, np.random.default_rng(4), 16, 64)
    assert draws.shape == path.shape
    assert_array_equal(draws, passage_stretches(path, np.random.default_rng(4), 16, 64))
    starts = np.flatnonzero(np.diff(draws)) + 1
    lengths = np.diff(np.concatenate([[0], starts, [path.size]]))
    assert lengths[:-1].min() >= 16 and lengths.max() <= 64
    changes = path[starts] != path[starts - 1]
    assert changes.mean() > 0.9  # almost every switch falls where the state changes
    assert np.all(lengths[:-1][~changes] == 64)  # the others after the longest stretch
    long = passage_stretches(np.zeros(1000, int), rng, 16, 64)  # no change at all: cut every 64
    assert np.all(np.diff(np.flatnonzero(np.diff(long)) + 1) == 64)


def test_blends_keep_the_passage_in_a_share_of_stretches(model, audio):
    """Between fidelity 0 and 1 the output is the passage's own audio
    (exactly) in stretches covering about that share of it (stretches last
    0.25-1 s, so 12 s hold some twenty: within 0.2), and the model's
    rendering elsewhere; a higher fidelity keeps every stretch a lower one
    kept (same seed and start)."""
    ref = np.concatenate(kept(model))[: 12 * SR]  # from the start of the first file, on into the others
    hop = model.hop_size
    own = {}
    for f in (0.25, 0.5, 0.75):
        y = model.generate(12.0, fidelity=f, seed=7, start=(0, 0.0)).astype(np.float64)
        error = np.abs(y - ref).reshape(-1, hop).max(axis=1)
        own[f] = error < 1e-6
        assert abs(own[f].mean() - f) < 0.2, (f, own[f].mean())
        assert np.mean(error[~own[f]] > 1e-3) > 0.9  # the rest is the model's
    assert np.all(own[0.5][own[0.25]]) and np.all(own[0.75][own[0.5]])
    assert own[0.25].mean() < own[0.75].mean()


def test_blended_silence_follows_the_passage_more_as_fidelity_rises(gapped, rng):
    """Between fidelity 0 and 1 a frame's silence is decided by the passage's
    gain scores mixed with fresh ones: the share of silent frames stays the
    states' at every fidelity, the agreement with the passage's own silences
    grows with the fidelity, and at fidelity 1 it is exact."""
    _, model = gapped
    exc, params = model.excitation_model, model.params
    decoded = DecodedPaths(model.voice(), model.corpus, "sample")
    path = np.concatenate([decoded(i) for i in range(len(model.sequence_lengths))])
    silent = model.corpus.silent_frames() == 1
    gain = model.corpus.data()[:, model.lpc_order].astype(np.float64)
    expected = exc.silence[path].mean()
    agreement = []
    for f in (0.0, 0.25, 0.5, 0.75, 1.0):
        fresh = scipy.signal.lfilter([np.sqrt(1 - 0.8**2)], [1.0, -0.8], rng.standard_normal(path.size))
        quiet = ~audible_frames(exc, path, blended_gain_scores(params, exc, path, gain, silent, fresh, f))
        assert abs(quiet.mean() - expected) < 0.06, (f, quiet.mean(), expected)
        agreement.append(np.mean(quiet == silent))
    assert agreement[-1] == 1.0
    assert np.all(np.diff(agreement) > 0), agreement
    # and in the audio: at fidelity 0.25 the blend is silent about as often as the training audio
    hop = model.hop_size
    y = model.generate(30.0, fidelity=0.25, seed=5).astype(np.float64)
    share = np.mean(np.all(y[: len(y) // hop * hop].reshape(-1, hop) == 0, axis=1))
    assert abs(share - silent.mean()) < 0.03, (share, silent.mean())
