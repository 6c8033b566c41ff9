"""What scripts written against the reference implementation rely on
(issue 21): frame queries' keywords, ``auto_n_states`` on the step-by-step
path, a clip too short for the states asked for, and the seed document's
snippets run as written."""

import shutil
import subprocess
import sys
import types
import warnings

import numpy as np
import pytest
import soundfile as sf
from signals import music_like

from ssgs import SpectralStateGuidedSynthesis, StateCountWarning
from ssgs.errors import AudioError
from ssgs.retrieval import frame_features


@pytest.fixture(scope="module")
def model():
    m = SpectralStateGuidedSynthesis(n_states=4, seed=3)
    m.train(music_like(np.random.default_rng(5), 4.0), 16000, n_em_iterations=2)
    return m


def brute_force_nearest(features, vector, k, normalize):
    """The k nearest rows of ``features`` to ``vector`` (numpy, by sorting)."""
    mean = features.mean(axis=0) if normalize else 0.0
    std = features.std(axis=0) if normalize else 1.0
    std = np.where(np.asarray(std) > 0, std, 1.0)
    d = np.linalg.norm((features - mean) / std - (vector - mean) / std, axis=1)
    order = np.argsort(d, kind="stable")[:k]
    return order, d[order]


@pytest.mark.parametrize("normalize", [True, False])
def test_query_frames_by_features_matches_a_brute_force_search(model, normalize):
    lpc = np.asarray(model.lpc_coefficients, dtype=np.float64)
    vector = lpc[17] + 0.01
    found = model.query_frames_by_features(vector, k=6, feature_space="lpc", normalize=normalize)
    want, dist = brute_force_nearest(lpc, vector, 6, normalize)
    np.testing.assert_array_equal(found.indices, want)
    np.testing.assert_allclose(found.distances, dist, rtol=1e-9)


def test_include_metadata_false_gives_the_same_frames_without_metadata(model):
    vector = np.asarray(model.lpc_coefficients[40], dtype=np.float64)
    with_meta = model.query_frames_by_features(vector, k=5, include_metadata=True)
    without = model.query_frames_by_features(vector, k=5, include_metadata=False)
    np.testing.assert_array_equal(with_meta.indices, without.indices)
    assert without.metadata == {}
    expected = model.get_frame_metadata(indices=with_meta.indices)
    assert set(with_meta.metadata) == set(expected) and "spectral_centroid" in expected
    for key, values in expected.items():
        np.testing.assert_array_equal(with_meta.metadata[key], values)
    similar = model.query_similar_frames(40, k=5, include_metadata=False)
    assert similar.metadata == {} and 40 not in similar.indices
    np.testing.assert_array_equal(similar.indices, model.query_similar_frames(40, k=5).indices)


def test_an_index_is_kept_until_another_is_asked_for(model):
    extended = frame_features(model.corpus, "extended")
    raw = model.query_similar_frames(3, k=4, feature_space="extended", normalize=False)
    np.testing.assert_array_equal(raw.indices, brute_force_nearest(extended, extended[3], 5, False)[0][1:])
    again = model.query_similar_frames(3, k=4)  # neither given: the same index
    np.testing.assert_array_equal(again.indices, raw.indices)
    scaled = model.query_similar_frames(3, k=4, normalize=True)
    np.testing.assert_array_equal(scaled.indices, brute_force_nearest(extended, extended[3], 5, True)[0][1:])
    assert scaled.feature_space == "extended"


def bic(log_likelihood_per_frame, n_states, n_features, n_frames):
    D = n_features
    free = (n_states - 1) + n_states * (n_states - 1) + n_states * D + n_states * D * (D + 1) / 2
    return -2.0 * log_likelihood_per_frame * n_frames + free * np.log(n_frames)


def test_auto_n_states_is_honoured_on_the_step_by_step_path():
    audio = music_like(np.random.default_rng(8), 6.0)
    steps = SpectralStateGuidedSynthesis(auto_n_states=True, auto_n_states_candidates=(2, 4, 8), seed=11)
    steps.extract_features(audio, 16000)
    steps.initialize_hmm_parameters()
    scores = [r for r in steps.training_history if "n_states_selection" in r][0]["n_states_selection"]
    assert [s["n_states"] for s in scores] == [2, 4, 8]
    T, D = steps.observations.shape
    for s in scores:
        assert s["bic"] == pytest.approx(bic(s["log_likelihood"], s["n_states"], D, T), rel=1e-9)
    assert steps.n_states == min(scores, key=lambda s: s["bic"])["n_states"]
    assert steps.params.means.shape == (steps.n_states, D)
    whole = SpectralStateGuidedSynthesis(auto_n_states=True, auto_n_states_candidates=(2, 4, 8), seed=11)
    whole.train(audio, 16000, n_em_iterations=0)
    assert whole.n_states == steps.n_states
    np.testing.assert_array_equal(whole.params.means, steps.params.means)
    np.testing.assert_array_equal(whole.params.transmat, steps.params.transmat)


def test_auto_n_states_candidates_beyond_the_data_are_cut_to_what_it_supports():
    clip = music_like(np.random.default_rng(2), 1.0)  # 59 frames: 3 states of 15 frames
    m = SpectralStateGuidedSynthesis(auto_n_states=True, auto_n_states_candidates=(2, 8, 16), seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", StateCountWarning)  # the user asked for a choice: no warning
        m.train(clip, 16000, n_em_iterations=1)
    frames = m.observations.shape[0]
    tried = [s["n_states"] for s in m.training_history[0]["n_states_selection"]]
    assert tried == [2, frames // (m.n_features + 1)]


@pytest.fixture(scope="module")
def short_clip_model():
    clip = music_like(np.random.default_rng(4), 0.5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = SpectralStateGuidedSynthesis(seed=2).train(clip, 16000, n_em_iterations=3)
    return m, clip, [w for w in caught if issubclass(w.category, StateCountWarning)]


def test_a_half_second_clip_trains_as_many_states_as_it_supports(short_clip_model):
    m, clip, warned = short_clip_model
    frames = m.observations.shape[0]
    assert frames < 34 and m.n_states == max(1, frames // (m.n_features + 1))
    assert len(warned) == 1 and f"34 states asked for, but {frames} frames support only {m.n_states}" in str(
        warned[0].message)
    assert {"requested": 34, "n_states": m.n_states, "n_frames": frames} in [
        r.get("n_states_reduced") for r in m.training_history]
    assert m.params.transmat.shape == (m.n_states, m.n_states)
    out = m.generate(2.0, fidelity=0.0, seed=1)
    assert out.shape == (32000,) and np.isfinite(out).all() and np.abs(out).max() > 0
    replay = m.generate(0.5, fidelity=1.0, seed=1, start=(0, 0.0))
    assert np.array_equal(replay, m.rebuild_sequence(0).astype(np.float32))  # the kept (16-bit) audio exactly
    assert 10 * np.log10(np.sum(clip**2) / np.sum((clip - replay) ** 2)) >= 80


def test_a_reduced_model_round_trips_through_checkpoints_and_export(short_clip_model, tmp_path):
    m = short_clip_model[0]
    m.save_checkpoint(tmp_path / "c.safetensors")
    loaded = SpectralStateGuidedSynthesis.load_checkpoint(tmp_path / "c.safetensors")
    assert loaded.n_states == m.n_states and loaded.training_history == m.training_history
    m.export_model(tmp_path / "m.npz", precision=np.float64, include_training_artifacts=True)
    back = SpectralStateGuidedSynthesis.load_model(tmp_path / "m.npz")
    assert back.n_states == m.n_states
    for name in ("startprob", "transmat", "means", "covars"):
        np.testing.assert_array_equal(getattr(back.params, name), getattr(m.params, name))
    for fidelity in (0.0, 0.5, 1.0):
        np.testing.assert_array_equal(back.generate(1.0, fidelity=fidelity, seed=3),
                                      m.generate(1.0, fidelity=fidelity, seed=3))


def test_no_usable_frame_is_still_one_error():
    with pytest.raises(AudioError, match=r"audio\[0\]: shorter than one frame"):
        SpectralStateGuidedSynthesis(seed=0).train(np.full(500, 0.1), 16000)


# The seed document (shared/seed/TRAINING.md), its Python as written. Only
# ``audio_signal`` is given, and boto3 is a stand-in that copies files.
QUICK_START = """
from ssgs import SpectralStateGuidedSynthesis

# Load a trained checkpoint
model = SpectralStateGuidedSynthesis.load_checkpoint('models/checkpoint_final.safetensors')

# Generate audio
audio = model.generate(
    duration_seconds=5.0,
    sample_rate=16000,
    fidelity=0.0  # 0.0=synthetic, 1.0=reconstruction
)

# Save audio
import soundfile as sf
sf.write('output.wav', audio, 16000)
"""

SAVE = """
from ssgs import SpectralStateGuidedSynthesis

# Train model
ssgs = SpectralStateGuidedSynthesis(n_states=34)
ssgs.train(audio_signal, sample_rate=16000, n_em_iterations=20)

# Save checkpoint
ssgs.save_checkpoint(
    'models/my_checkpoint.safetensors',
    include_training_artifacts=True  # Include for reconstruction ability
)
"""

LOAD = """
# Load from checkpoint
ssgs = SpectralStateGuidedSynthesis.load_checkpoint('models/my_checkpoint.safetensors')

# Model is ready to use
audio = ssgs.generate(duration_seconds=3.0)
"""

UPLOAD = """
import boto3  # AWS S3 example
from pathlib import Path

# Save checkpoint locally
ssgs.save_checkpoint('checkpoint.safetensors')

# Upload to S3
s3 = boto3.client('s3')
s3.upload_file('checkpoint.safetensors', 'my-bucket', 'models/checkpoint.safetensors')

# Download from S3
s3.download_file('my-bucket', 'models/checkpoint.safetensors', 'downloaded.safetensors')

# Load downloaded checkpoint
ssgs = SpectralStateGuidedSynthesis.load_checkpoint('downloaded.safetensors')
"""


def fake_boto3(store):
    """A boto3 module whose S3 client copies files into ``store``."""
    class Client:
        def upload_file(self, filename, bucket, key):
            (store / bucket / key).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(filename, store / bucket / key)

        def download_file(self, bucket, key, filename):
            shutil.copyfile(store / bucket / key, filename)

    return types.SimpleNamespace(client=lambda service: Client())


def test_the_seed_documents_snippets_run_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for n, folder in enumerate(("training_001", "training_002")):
        (tmp_path / folder).mkdir()
        sf.write(tmp_path / folder / "a.wav", music_like(np.random.default_rng(n), 6.0), 16000)
    quick = subprocess.run([sys.executable, "-m", "ssgs.train", "--folders", "training_001", "training_002"],
                           capture_output=True, text=True, timeout=300)
    assert quick.returncode == 0 and "Traceback" not in quick.stderr, quick.stderr

    space = {"audio_signal": music_like(np.random.default_rng(7), 10.0)}
    exec(QUICK_START, space)
    written, rate = sf.read("output.wav")
    assert rate == 16000 and written.shape == (80000,) and np.abs(written).max() > 0.01

    exec(SAVE, space)
    assert space["ssgs"].n_states == 34 and space["ssgs"].iteration >= 1
    exec(LOAD, space)
    assert space["audio"].shape == (48000,) and space["ssgs"].has_training_artifacts
    replay, source = space["ssgs"].generate(1.0, fidelity=1.0, seed=0, start=(0, 0.0)), space["audio_signal"][:16000]
    assert np.array_equal(replay, space["ssgs"].rebuild_sequence(0)[:16000].astype(np.float32))
    assert 10 * np.log10(np.sum(source**2) / np.sum((source - replay) ** 2)) >= 80

    monkeypatch.setitem(sys.modules, "boto3", fake_boto3(tmp_path / "s3"))
    exec(UPLOAD, space)
    assert (tmp_path / "s3" / "my-bucket" / "models" / "checkpoint.safetensors").is_file()
    assert space["ssgs"].n_states == 34
