"""The reference implementation's other features, through the public API."""

import itertools
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from ssgs import SpectralStateGuidedSynthesis, SSGSError, kernels
from ssgs import hmm as H
from ssgs.augment import pitch_shift, time_stretch
from ssgs.retrieval import FrameQueryResult
from ssgs.synthesis.paths import smooth_path

from signals import ar_process, music_like, switching_ar_audio, tone

SR = 16000


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(12)
    return SpectralStateGuidedSynthesis(n_states=6, seed=3).train([music_like(rng, 4.0), music_like(rng, 3.0)], SR, 6)


# ------------------------------------------------------------ AR recovery
def test_ar4_lpc_coefficients_are_recovered():
    # x[n] = 0.65 x[n-1] - 0.3 x[n-2] + 0.2 x[n-3] - 0.1 x[n-4] + w[n]; the
    # artifact stores a_1..a_4 of A(z) = 1 + sum a_i z^-i, so a = -(coefficients)
    coefficients = np.array([0.65, -0.3, 0.2, -0.1])
    x = ar_process(np.random.default_rng(0), -coefficients, 16000 * 20) * 0.05
    m = SpectralStateGuidedSynthesis(n_states=1, lpc_order=4, seed=0).train([x], SR, 2)
    assert_allclose(np.median(m.lpc_coefficients, axis=0), -coefficients, atol=0.05)


# ------------------------------------------------------------ graph constraints
def constructed_model(n_states=5):
    m = SpectralStateGuidedSynthesis(n_states=n_states, lpc_order=2, seed=0)
    m.sample_rate = SR
    rng = np.random.default_rng(1)
    trans = np.full((n_states, n_states), 0.1) + np.eye(n_states)
    trans[:, 4] = 0.0  # nothing goes to state 4
    trans[:, 3] = 1e-9  # state 3 is almost never entered
    trans /= trans.sum(axis=1, keepdims=True)
    start = np.array([0.5, 0.5, 0.0, 0.0, 0.0])
    means = rng.normal(size=(n_states, 4))
    covars = np.stack([np.eye(4) * (1 + j) for j in range(n_states)])
    m.params = H.HMMParams(start, trans, means, covars)
    return m


def test_graph_constraints_remove_unreachable_and_rare_states():
    m = constructed_model()
    before = m.means.copy() if hasattr(m, "means") else m.state_means.copy()
    result = m.identify_graph_constraints(min_state_probability=1e-4)
    assert result["unreachable"] == [4]
    assert result["removed"] == [3, 4] and result["kept"] == [0, 1, 2]
    assert result["n_states_before"] == 5 and result["n_states_after"] == 3 == m.n_states
    assert m.transition_matrix.shape == (3, 3) and m.state_covariances.shape == (3, 4, 4)
    assert_allclose(m.transition_matrix.sum(axis=1), 1.0)
    assert_allclose(m.initial_probabilities.sum(), 1.0)
    assert_array_equal(m.state_means, before[[0, 1, 2]])
    assert any(len(c) > 1 for c in result["components"])
    assert m.training_history[-1]["graph_constraints"]["removed"] == [3, 4]
    # nothing more to remove the second time
    assert m.identify_graph_constraints(1e-4)["removed"] == []
    with pytest.raises(ValueError, match="min_state_probability"):
        m.identify_graph_constraints(1.5)


def test_graph_constraints_keep_a_trained_model_whole_and_consistent(model, tmp_path):
    m = SpectralStateGuidedSynthesis.load_checkpoint(model.save_checkpoint(tmp_path / "m.safetensors"))
    result = m.identify_graph_constraints(min_state_probability=0.05)
    assert m.n_states == result["n_states_after"] == len(result["kept"])
    assert m.excitation_model.pitch_histogram.shape[0] == m.n_states
    m.generate(0.5, seed=1)
    back = SpectralStateGuidedSynthesis.load_checkpoint(m.save_checkpoint(tmp_path / "shrunk.safetensors"))
    assert back.n_states == m.n_states


def test_long_run_occupancy_of_a_periodic_chain():
    cycle = np.roll(np.eye(3), 1, axis=1)
    assert_allclose(H.long_run_occupancy([1.0, 0, 0], cycle), [1 / 3] * 3, atol=1e-4)


# ------------------------------------------------------------ smooth decoder
def test_viterbi_log_against_every_path():
    rng = np.random.default_rng(5)
    for T, N in [(1, 3), (4, 3), (5, 2)]:
        lf, ls, lt = rng.normal(size=(T, N)), rng.normal(size=N), rng.normal(size=(N, N))
        lt[0, 1] = -np.inf
        best, path = kernels.viterbi_log(lf, ls, lt)
        scores = {p: ls[p[0]] + sum(lf[t, p[t]] for t in range(T)) + sum(lt[p[t - 1], p[t]] for t in range(1, T))
                  for p in itertools.product(range(N), repeat=T)}
        want = max(scores, key=scores.get)
        assert tuple(path) == want and best == pytest.approx(scores[want])


def test_viterbi_log_equals_viterbi_on_log_probabilities():
    rng = np.random.default_rng(6)
    start, trans = rng.dirichlet(np.ones(4)), rng.dirichlet(np.ones(4), size=4)
    lf = rng.normal(size=(50, 4))
    a = kernels.viterbi(lf, start, trans)
    b = kernels.viterbi_log(lf, np.log(start), np.log(trans))
    assert_array_equal(a[1], b[1]) and a[0] == pytest.approx(b[0])


def test_smooth_decoder_trades_transitions_for_small_jumps():
    # two clusters of three states, far apart; every transition equally likely
    params = H.HMMParams(np.full(6, 1 / 6), np.full((6, 6), 1 / 6),
                         np.vstack([np.zeros((3, 3)) + np.arange(3)[:, None] * 0.1,
                                    np.full((3, 3), 10.0) + np.arange(3)[:, None] * 0.1]),
                         np.stack([np.eye(3)] * 6))

    def crossings(weight):
        path = smooth_path(params, 4000, np.random.default_rng(2), weight)
        return np.mean((path[1:] >= 3) != (path[:-1] >= 3))

    rates = [crossings(w) for w in (0.0, 0.5, 0.9)]
    assert rates[0] > rates[1] > rates[2] and rates[2] < 0.35 * rates[0]
    same = smooth_path(params, 100, np.random.default_rng(3), 0.5)
    assert_array_equal(same, smooth_path(params, 100, np.random.default_rng(3), 0.5))


def test_generate_with_the_smooth_decoder(model):
    y, details = model.generate(1.0, decoder="smooth", seed=4, return_details=True)
    assert details.decoder == "smooth" and y.shape == (SR,)
    assert_array_equal(y, model.generate(1.0, decoder="smooth", seed=4))
    z = model.generate(1.0, fidelity=0.5, start=(0, 0.5), decoder="smooth", seed=4)
    assert np.isfinite(z).all()


# ------------------------------------------------------------ online adaptation
@pytest.mark.parametrize("kwargs,message", [
    ({"adaptation_rate": 1.5}, r"adaptation_rate must be in \[0.0, 1.0\]"),
    ({"stability_bias": -0.1}, r"stability_bias must be in \[0.0, 1.0\]"),
    ({"memory_blend": 2}, r"memory_blend must be in \[0.0, 1.0\]"),
    ({"memory_limit": 0}, "memory_limit must be an integer >= 1"),
    ({"n_adaptation_iterations": 0}, "n_adaptation_iterations must be an integer >= 1"),
])
def test_adaptation_arguments_are_validated(model, kwargs, message):
    with pytest.raises(ValueError, match=message):
        model.adapt_to_audio([np.zeros(4000) + 0.1], SR, **kwargs)


def test_adaptation_moves_towards_new_audio_and_resumes_after_reload(tmp_path):
    rng = np.random.default_rng(7)
    m = SpectralStateGuidedSynthesis(n_states=5, seed=1).train([music_like(rng, 4.0)], SR, 5)
    new = [switching_ar_audio(rng, n_segments=6, seg_len=4000)]
    first = m.adapt_to_audio(new, SR, n_adaptation_iterations=2)
    assert first["log_likelihood_after"] > first["log_likelihood_before"]
    assert first["memory_frames"] <= m.adaptive_memory_limit + 1e-9 and first["updates"] == 2
    second = m.adapt_to_audio(new, SR)
    assert second["log_likelihood_before"] == pytest.approx(first["log_likelihood_after"])
    assert_allclose(m.transition_matrix.sum(axis=1), 1.0)
    assert np.all(np.linalg.eigvalsh(m.state_covariances) > 0)
    # the statistics persist: a reloaded model adapts exactly like this one
    reloaded = SpectralStateGuidedSynthesis.load_checkpoint(m.save_checkpoint(tmp_path / "a.safetensors"))
    exported = tmp_path / "a.npz"
    m.export_model(exported, precision=np.float64)
    from_npz = SpectralStateGuidedSynthesis.load_model(exported)
    for other in (reloaded, from_npz):
        assert other.adaptive_statistics["updates"] == m.adaptive_statistics["updates"]
    results = [x.adapt_to_audio(new, SR) for x in (m, reloaded)]
    assert results[0]["updates"] == results[1]["updates"] == 4
    assert_array_equal(m.state_means, reloaded.state_means)
    assert m.training_history[-1]["adaptation"]["updates"] == 4


def test_rate_zero_keeps_the_model_and_memory_limit_caps(model):
    m = SpectralStateGuidedSynthesis.load_checkpoint(model.save_checkpoint("memory://extras/rate0.safetensors"))
    before = m.state_means.copy(), m.transition_matrix.copy()
    metrics = m.adapt_to_audio([music_like(np.random.default_rng(3), 2.0)], SR, adaptation_rate=0.0,
                               stability_bias=0.0, memory_limit=50)
    assert_array_equal(m.state_means, before[0])
    assert_allclose(m.transition_matrix, before[1], atol=1e-12)
    assert metrics["memory_frames"] <= 50 + 1e-9


def test_adaptation_without_training_artifacts(model, tmp_path):
    light = SpectralStateGuidedSynthesis.load_checkpoint(
        model.save_checkpoint(tmp_path / "l.safetensors", include_training_artifacts=False))
    metrics = light.adapt_to_audio([music_like(np.random.default_rng(4), 2.0)], SR)
    assert np.isfinite(metrics["log_likelihood_after"])


# ------------------------------------------------------------ frame retrieval
def test_frame_retrieval(model):
    for space in ("lpc", "extended", "residual"):
        index = model.build_feature_index(space)
        assert index.feature_space == space
        result = model.query_similar_frames(40, k=4, feature_space=space)
        assert isinstance(result, FrameQueryResult) and result.feature_space == space
        assert len(result.indices) == 4 and 40 not in result.indices
        assert np.all(np.diff(result.distances) >= 0)
        assert set(result.metadata) >= {"rms", "spectral_centroid", "sequence", "seconds", "f0"}
    # exact match: a frame's own feature vector finds the frame itself at distance 0
    vector = model.lpc_coefficients[77]
    hit = model.query_frames_by_features(vector, k=1, feature_space="lpc")
    assert hit.indices[0] == 77 and hit.distances[0] == pytest.approx(0.0, abs=1e-9)
    # brute force agrees with the tree
    from ssgs.retrieval import frame_features

    feats = frame_features(model, "extended")
    z = (feats - feats.mean(0)) / np.where(feats.std(0) > 0, feats.std(0), 1)
    d = np.sqrt(((z - z[10]) ** 2).sum(1))
    d[10] = np.inf
    assert_array_equal(model.query_similar_frames(10, k=5, feature_space="extended").indices, np.argsort(d)[:5])


def test_top_frames_and_metadata(model):
    top = model.top_frames("rms", k=5)
    rms = model.get_frame_metadata("rms")
    assert_array_equal(top.indices, np.argsort(-rms, kind="stable")[:5])
    assert_array_equal(top.distances, rms[top.indices])
    low = model.top_frames("spectral_centroid", k=3, descending=False)
    assert low.distances[0] == model.get_frame_metadata("spectral_centroid").min()
    meta = model.get_frame_metadata(indices=[0, 5])
    assert all(len(v) == 2 for v in meta.values())
    assert meta["sequence"][0] == 0 and meta["seconds"][1] == pytest.approx(5 * 256 / SR)


def test_retrieval_errors(model, tmp_path):
    with pytest.raises(ValueError, match="feature_space must be one of"):
        model.build_feature_index("mfcc")
    with pytest.raises(ValueError, match="frame_idx must be an integer"):
        model.query_similar_frames(10**9)
    with pytest.raises(ValueError, match="vector must have 12 values"):
        model.query_frames_by_features(np.zeros(3), feature_space="lpc")
    with pytest.raises(ValueError, match="unknown metadata key"):
        model.top_frames("loudness")
    light = SpectralStateGuidedSynthesis.load_checkpoint(
        model.save_checkpoint(tmp_path / "l.safetensors", include_training_artifacts=False))
    with pytest.raises(SSGSError, match="needs the training frames"):
        light.query_similar_frames(0)


# ------------------------------------------------------------ previews
def test_training_previews_and_a_failing_callback():
    seen = []

    def callback(snapshot):
        seen.append(snapshot["iteration"])
        if snapshot["iteration"] == 4:
            raise RuntimeError("user code broke")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = SpectralStateGuidedSynthesis(n_states=4, seed=2, tol=0).train(
            [music_like(np.random.default_rng(9), 3.0)], SR, 8, preview_every=2, preview_duration_frames=20,
            preview_callback=callback)
    assert seen == [2, 4, 6, 8] and m.iteration == 8
    assert any("preview_callback failed at iteration 4" in str(w.message) for w in caught)
    assert [s["iteration"] for s in m.preview_snapshots] == [2, 4, 6, 8]
    assert all(s["audio"].shape == (20 * 256,) and s["audio"].dtype == np.float32 for s in m.preview_snapshots)


def test_render_preview(model):
    a = model.render_preview(16)
    assert_array_equal(a, model.render_preview(16))  # reproducible
    assert model.render_preview(16, sample_rate=8000).shape == (2048,)
    assert model.render_preview(state_sequence=[0, 0, 1, 1, 1]).shape == (5 * 256,)
    with pytest.raises(ValueError, match="state_sequence holds states outside"):
        model.render_preview(state_sequence=[0, 99])


# ------------------------------------------------------------ augmentation
def test_time_stretch_keeps_pitch_and_pitch_shift_keeps_duration():
    x = (tone(220, 2.0, SR, 0.3) + tone(440, 2.0, SR, 0.1)).astype(np.float32)
    for rate in (0.92, 1.08):
        y = time_stretch(x, rate)
        assert abs(len(y) - len(x) / rate) <= 1
        f0, _ = kernels.pitch(y, 256, 1024, SR)
        assert np.median(f0[4:-4]) == pytest.approx(220, rel=0.005)
    for semitones in (-0.5, 0.5):
        y = pitch_shift(x, semitones, SR)
        assert len(y) == len(x)
        f0, _ = kernels.pitch(y, 256, 1024, SR)
        assert np.median(f0[4:-4]) == pytest.approx(220 * 2 ** (semitones / 12), rel=0.003)


def test_augmented_training_adds_four_sequences_per_input():
    audio = [music_like(np.random.default_rng(2), 3.0)]
    m = SpectralStateGuidedSynthesis(n_states=4, seed=1).train(audio, SR, 2, augment=True)
    assert len(m.sequence_lengths) == 5
    tags = [s.get("augmentation") for s in m.sources]
    assert tags == [None, "time_stretch 0.92", "time_stretch 1.08", "pitch_shift -0.5", "pitch_shift +0.5"]
    n = len(audio[0])
    assert abs(m.sequence_samples[1] - n / 0.92) <= 2 and m.sequence_samples[3] == n
