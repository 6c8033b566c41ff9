"""Checkpoints of the reference implementation: recognised, checked and
converted (load_checkpoint, ssgs convert, ssgs info / verify). The files
are written here as the reference writes them (safetensors.numpy.save_file,
its tensor names and string metadata)."""

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

import ssgs
from ssgs import cli
from ssgs.errors import CheckpointError, ReferenceCheckpointWarning, SSGSError
from ssgs.hmm import parameters_from_labels
from ssgs.reference import observation_gaussians, sequences_from_frames

SR, N, P, L, HOP = 16000, 4, 8, 512, 128


def _signal(seconds=2.0, seed=0, gap=None):
    """Two alternating tones in noise; ``gap`` (start, stop) seconds of noise
    at 1e-7 (frames in it fall under the reference's energy floor)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f = np.where((t * 2).astype(int) % 2 == 0, 220.0, 330.0)
    x = 0.3 * np.sin(2 * np.pi * np.cumsum(f) / SR) + 0.02 * rng.standard_normal(len(t))
    if gap is not None:
        a, b = int(gap[0] * SR), int(gap[1] * SR)
        x[a:b] = 1e-7 * rng.standard_normal(b - a)
    return x.astype(np.float32)


def _frames(x):
    """The reference's training frames: one every HOP samples, those with
    energy under 1e-10 dropped."""
    frames = np.stack([x[i * HOP:i * HOP + L] for i in range((len(x) - L) // HOP + 1)])
    return frames[np.sum(frames.astype(np.float64) ** 2, axis=1) >= 1e-10]


def _write(path, artifacts=None, adaptive=False, drop=None, **changes):
    rng = np.random.default_rng(1)
    a = np.zeros((N, P))
    a[:, 0] = np.linspace(-0.9, 0.5, N)  # stable one-pole-ish envelopes
    a[:, 1] = 0.2
    tensors = {"transition_matrix": np.full((N, N), 1.0 / N, np.float32),
               "initial_probabilities": np.full(N, 1.0 / N, np.float32),
               "state_means": a.astype(np.float32),
               "state_covariances": np.tile(1e-3 * np.eye(P, dtype=np.float32), (N, 1, 1))}
    meta = {"format": "safetensors", "version": "1", "n_states": str(N), "lpc_order": str(P), "frame_size": str(L),
            "hop_size": str(HOP), "smoothness_weight": "0.5", "precision": "float32",
            "includes_training_artifacts": str(artifacts is not None), "includes_adaptive_statistics": str(adaptive),
            "sample_rate": str(SR) if artifacts is not None else "None",
            "frame_metadata_keys": json.dumps(["energy"]), "adaptive_memory_limit": "6000"}
    if artifacts is not None:
        frames = _frames(artifacts)
        F = len(frames)
        tensors.update(training_frames=frames, lpc_coefficients=np.zeros((F, P), np.float32),
                       residual_signals=np.zeros((F, HOP), np.float32),
                       perceptual_features=np.zeros((F, 4), np.float32), spectral_flux=np.zeros(F, np.float32),
                       frame_metadata__energy=np.ones(F, np.float32))
    if adaptive:
        tensors.update(adaptive_state_frame_counts=rng.random(N), adaptive_transition_counts=rng.random((N, N)),
                       adaptive_total_frames=np.array([10.0]))
    tensors.update(changes)
    for name in drop or ():
        del tensors[name]
    save_file(tensors, str(path), metadata=meta)
    return path


def _load(path):
    with pytest.warns(ReferenceCheckpointWarning, match="could not be verified"):
        return ssgs.SpectralStateGuidedSynthesis.load_checkpoint(path)


def _lar_reference(a):
    """LARs log((1 - k) / (1 + k)) of a_1..a_p, k by the step-down recursion, written out here."""
    a = list(a)
    k = []
    while a:
        km = a[-1]
        k.append(km)
        prev = a[:-1]
        a = [(prev[i] - km * prev[len(prev) - 1 - i]) / (1 - km * km) for i in range(len(prev))]
    k = np.array(k[::-1])
    return np.log((1 - k) / (1 + k))


def test_a_reference_checkpoint_without_artifacts_generates_at_fidelity_0(tmp_path):
    model = _load(_write(tmp_path / "ref.safetensors"))
    assert model.n_states == N and model.lpc_order == P and model.sample_rate == SR
    y = model.generate(1.0, fidelity=0.0, seed=3)
    assert y.shape == (SR,) and np.all(np.isfinite(y)) and np.std(y) > 1e-3
    assert np.array_equal(y, model.generate(1.0, fidelity=0.0, seed=3))
    with pytest.raises(SSGSError, match="no training artifacts"):
        model.generate(1.0, fidelity=0.5)
    assert model.training_history[0]["converted_from_reference"] == str(tmp_path / "ref.safetensors")


def test_the_lpc_states_map_to_lars_and_their_covariance_through_the_jacobian():
    rng = np.random.default_rng(0)
    a = np.array([[-0.8, 0.3, -0.1, 0.05]])
    S = 1e-5 * np.array([[2.0, 0.5, 0, 0], [0.5, 1.0, 0, 0], [0, 0, 1.0, 0.2], [0, 0, 0.2, 1.0]])
    means, covars = observation_gaussians(a, S[None])
    assert np.allclose(means[0, :4], _lar_reference(a[0]), atol=1e-12)
    draws = rng.multivariate_normal(a[0], S, size=20000)
    lars = np.array([_lar_reference(d) for d in draws])
    sampled = np.cov(lars, rowvar=False)
    scale = np.sqrt(np.outer(np.diag(sampled), np.diag(sampled)))
    assert np.all(np.abs(covars[0, :4, :4] - sampled) <= 0.05 * scale)  # sampling error about 0.01 of it
    assert covars[0, 4, 4] > 0 and covars[0, 5, 5] > 0 and np.all(covars[0, :4, 4:] == 0)


def test_training_frames_rebuild_the_audio_split_where_frames_were_dropped():
    x = _signal(gap=(0.8, 1.0))
    sequences = sequences_from_frames(_frames(x), HOP)
    assert len(sequences) == 2
    first = sequences[0]
    assert np.array_equal(first, x[:len(first)].astype(np.float64))
    start = int(np.flatnonzero(np.all(np.lib.stride_tricks.sliding_window_view(x, L)[::HOP] == _frames(x)[len(
        first) // HOP - (L // HOP) + 1], axis=1))[0]) * HOP
    assert np.array_equal(sequences[1], x[start:start + len(sequences[1])].astype(np.float64))


def test_a_reference_checkpoint_with_artifacts_replays_its_training_audio(tmp_path):
    x = _signal(gap=(0.8, 1.0))
    model = _load(_write(tmp_path / "ref.safetensors", artifacts=x, adaptive=True))
    assert model.has_training_artifacts and len(model.sequence_lengths) == 2
    n = len(sequences_from_frames(_frames(x), HOP)[0])
    y = model.generate(n / SR, fidelity=1.0, start=(0, 0.0)).astype(np.float64)
    ref = x[:n].astype(np.float64)
    assert 10 * np.log10(np.sum(ref ** 2) / np.sum((ref - y) ** 2)) >= 60.0
    for fidelity in (0.0, 0.5):
        z = model.generate(1.0, fidelity=fidelity, seed=2)
        assert np.all(np.isfinite(z)) and np.std(z) > 1e-3


def test_the_refit_starts_from_the_reference_states(tmp_path):
    x = _signal()
    model = _load(_write(tmp_path / "ref.safetensors", artifacts=x))
    assert [r["iteration"] for r in model.training_history[:2]] == [0, 1]
    X = model.corpus.data()
    labels = np.arange(len(X)) % N
    start = parameters_from_labels(X, model.sequence_lengths, labels, N, model.covariance_floor)
    assert np.allclose(start.means[1], X[1::N].mean(axis=0))
    counted = np.full((N, N), 0.1)
    np.add.at(counted, (labels[:-1], labels[1:]), 1.0)
    assert np.allclose(start.transmat, counted / counted.sum(axis=1, keepdims=True))


@pytest.mark.parametrize("missing", ["transition_matrix", "initial_probabilities", "state_means",
                                     "state_covariances"])
def test_a_missing_parameter_tensor_is_named(tmp_path, missing):
    path = _write(tmp_path / "ref.safetensors", drop=[missing])
    with pytest.raises(CheckpointError, match=f"missing tensor {missing}"):
        ssgs.SpectralStateGuidedSynthesis.load_checkpoint(path)


@pytest.mark.parametrize("change, message", [
    (dict(state_means=np.zeros((N, P + 1), np.float32)), "'state_means' has shape"),
    (dict(state_covariances=np.full((N, P, P), np.nan, np.float32)), "'state_covariances' contains NaN"),
    (dict(transition_matrix=np.full((N, N), 0.5, np.float32)), "'transition_matrix' is not a probability"),
])
def test_malformed_parameters_are_named(tmp_path, change, message):
    path = _write(tmp_path / "ref.safetensors", **change)
    with pytest.raises(CheckpointError, match=message):
        ssgs.SpectralStateGuidedSynthesis.load_checkpoint(path)


def test_ssgs_convert_writes_a_verified_checkpoint_and_info_says_what_a_reference_file_is(tmp_path, capsys):
    ref = _write(tmp_path / "ref.safetensors", artifacts=_signal())
    assert cli.main(["info", str(ref)]) == 0
    out = capsys.readouterr().out
    assert "reference implementation" in out and "ssgs convert" in out and "no integrity check" in out
    assert cli.main(["verify", str(ref)]) == 1
    assert "FAILED" in capsys.readouterr().out
    out_path = tmp_path / "model.safetensors"
    assert cli.main(["convert", str(ref), "-o", str(out_path), "--n-iterations", "3"]) == 0
    assert cli.main(["verify", str(out_path)]) == 0
    model = ssgs.SpectralStateGuidedSynthesis.load_checkpoint(out_path)
    assert model.has_training_artifacts and model.iteration == 3
    assert cli.main(["convert", str(out_path), "-o", str(tmp_path / "again.safetensors")]) == 2
    assert "not a checkpoint of the reference implementation" in capsys.readouterr().err


def test_state_lpc_coefficients_give_back_the_reference_state_means(tmp_path):
    model = _load(_write(tmp_path / "ref.safetensors"))
    a = np.zeros((N, P))
    a[:, 0] = np.linspace(-0.9, 0.5, N)
    a[:, 1] = 0.2
    assert model.state_means.shape == (N, P + 2)
    assert np.allclose(model.state_lpc_coefficients, a.astype(np.float32), atol=1e-6)
