import numpy as np
import pytest
from numpy.testing import assert_array_equal

from ssgs import AudioError, SpectralStateGuidedSynthesis, SSGSError

from signals import music_like, switching_ar_audio


def corpus(seed=0, n=3, seconds=3.0):
    rng = np.random.default_rng(seed)
    return [music_like(rng, seconds + i) for i in range(n)]


def test_train_on_a_list_of_arrays_keeps_sequences_apart():
    audio = corpus()
    m = SpectralStateGuidedSynthesis(n_states=5, seed=3).train(audio, 16000, n_em_iterations=4)
    assert_array_equal(m.sequence_lengths, [-(-len(x) // 256) for x in audio])
    T = int(m.sequence_lengths.sum())
    assert m.observations.shape == (T, 14) and m.lpc_coefficients.shape == (T, 12)
    assert m.residual_signals.shape == (T, 256)
    assert m.transition_matrix.shape == (5, 5) and m.state_covariances.shape == (5, 14, 14)
    assert set(m.frame_metadata) >= {"energy", "rms", "zero_crossings", "lpc_norm", "residual_rms",
                                     "spectral_centroid", "spectral_bandwidth", "dominant_frequency",
                                     "spectral_flux"}
    assert m.perceptual_features.shape == (T, 74)
    assert m.spectral_flux is m.frame_metadata["spectral_flux"]
    assert len(m.training_history) == 4 and m.iteration == 4
    for record in m.training_history:
        assert {"log_likelihood", "occupancy_entropy", "smoothness_penalty", "seconds"} <= set(record)
    frames = m.training_frames
    assert frames.shape == (T, 256)
    assert np.allclose(frames[: m.sequence_lengths[0]].reshape(-1)[: len(audio[0])], audio[0], atol=1e-5)


def test_the_steps_on_their_own_match_train():
    audio = corpus()
    a = SpectralStateGuidedSynthesis(n_states=4, seed=9).train(audio, 16000, n_em_iterations=3)
    b = SpectralStateGuidedSynthesis(n_states=4, seed=9)
    lpc, residual = b.extract_features(audio, 16000)
    assert lpc.shape[1] == 12 and residual.shape[1] == 256
    b.initialize_hmm_parameters()
    out = [b.run_em_iteration() for _ in range(3)]
    assert all(len(o) == 3 for o in out)
    assert_array_equal(a.state_covariances, b.state_covariances)
    assert_array_equal(a.transition_matrix, b.transition_matrix)


def test_same_seed_same_model_for_any_thread_count():
    audio = corpus(1)
    runs = [SpectralStateGuidedSynthesis(n_states=6, seed=5, n_threads=nt).train(audio, 16000, 5)
            for nt in (1, 2, 3)]
    for other in runs[1:]:
        for name in ("transition_matrix", "initial_probabilities", "state_means", "state_covariances"):
            assert_array_equal(getattr(runs[0], name), getattr(other, name))
    different = SpectralStateGuidedSynthesis(n_states=6, seed=6).train(audio, 16000, 5)
    assert not np.array_equal(different.state_means, runs[0].state_means)


def test_log_likelihood_never_decreases_on_audio_like_data():
    rng = np.random.default_rng(2)
    audio = [switching_ar_audio(rng, n_segments=10, seg_len=6000) for _ in range(3)]
    m = SpectralStateGuidedSynthesis(n_states=8, seed=1, tol=0).train(audio, 16000, n_em_iterations=25)
    ll = np.array([r["log_likelihood"] for r in m.training_history])
    assert not any(r["reseeded"] for r in m.training_history)
    assert np.all(np.diff(ll) >= -1e-10 * np.abs(ll[:-1])), ll
    assert ll[-1] > ll[0]


def test_em_stops_when_converged():
    m = SpectralStateGuidedSynthesis(n_states=3, seed=0, tol=1e-1).train(corpus(), 16000, n_em_iterations=50)
    assert m.converged and m.iteration < 50
    more = m.iterative_refinement(10)
    assert len(more) == m.iteration  # converged: nothing more runs


def test_states_that_empty_out_are_reseeded_not_nan():
    # two well separated clusters but many states: some states lose all their frames
    rng = np.random.default_rng(0)
    m = SpectralStateGuidedSynthesis(n_states=12, seed=2, lpc_order=2, frame_size=64, hop_size=32)
    m.extract_features([music_like(rng, 0.5)], 16000)
    m.initialize_hmm_parameters()
    m.state_means[5] = 1e3  # a state no frame is near
    m.state_means[7] = -1e3
    for _ in range(5):
        m.run_em_iteration()
    reseeded = {j for r in m.training_history for j in r["reseeded"]}
    assert {5, 7} <= reseeded
    for name in ("transition_matrix", "initial_probabilities", "state_means", "state_covariances"):
        assert np.isfinite(getattr(m, name)).all()
    assert np.all(np.linalg.eigvalsh(m.state_covariances) > 0)


def test_auto_n_states_picks_by_bic_and_records_the_scores():
    m = SpectralStateGuidedSynthesis(auto_n_states=True, auto_n_states_candidates=(2, 4, 8), seed=0)
    m.train(corpus(), 16000, n_em_iterations=2)
    selection = m.training_history[0]["n_states_selection"]
    assert [s["n_states"] for s in selection] == [2, 4, 8]
    best = min(selection, key=lambda s: s["bic"])
    assert m.n_states == best["n_states"] == m.state_means.shape[0]


@pytest.mark.parametrize("kwargs,message", [
    ({"n_states": 0}, "n_states must be an integer >= 1"),
    ({"hop_size": 2048, "frame_size": 1024}, "hop_size .* must not exceed frame_size"),
    ({"lpc_order": 1024}, "lpc_order must be below frame_size"),
    ({"smoothness_weight": 2.0}, r"smoothness_weight must be in \[0.0, 1.0\]"),
    ({"seed": -1}, "seed must be an integer >= 0"),
    ({"n_threads": -2}, "n_threads must be >= 0"),
    ({"tol": float("nan")}, "tol must be in"),
])
def test_constructor_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SpectralStateGuidedSynthesis(**kwargs)


def test_analysis_settings_follow_the_rate_unless_given():
    x = np.random.default_rng(0).standard_normal(44100 * 2) * 0.1
    m = SpectralStateGuidedSynthesis(n_states=2)
    assert (m.lpc_order, m.frame_size, m.hop_size) == (12, 1024, 256)
    m.train([x], 44100, n_em_iterations=1)
    assert (m.lpc_order, m.frame_size, m.hop_size) == (24, 4096, 1024)
    assert m.state_means.shape[1] == 26 and m.config()["hop_size"] == 1024
    given = SpectralStateGuidedSynthesis(n_states=2, hop_size=512).train([x], 48000, n_em_iterations=1)
    assert (given.lpc_order, given.frame_size, given.hop_size) == (24, 4096, 512)
    low = SpectralStateGuidedSynthesis(n_states=2).train([x[:32000]], 16000, n_em_iterations=1)
    assert (low.lpc_order, low.frame_size, low.hop_size) == (12, 1024, 256)
    with pytest.raises(ValueError, match="hop_size .* must not exceed frame_size"):
        SpectralStateGuidedSynthesis(n_states=2, hop_size=2048).train([x], 16000, n_em_iterations=1)


def test_training_input_errors():
    m = SpectralStateGuidedSynthesis(n_states=4)
    with pytest.raises(AudioError, match=r"audio\[1\]: contains NaN"):
        m.train([np.ones(4000) * 0.1, np.full(4000, np.nan)], 16000)
    with pytest.raises(AudioError, match=r"audio\[0\]: shorter than one frame"):
        m.train([np.ones(100)], 16000)
    with pytest.raises(AudioError, match=r"audio\[0\]: silent"):
        m.train([np.zeros(40000)], 16000)
    with pytest.raises(SSGSError, match="no parameters yet"):
        SpectralStateGuidedSynthesis().save_checkpoint("x.safetensors")
