import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from ssgs import kernels

import reference


def random_model(rng, N, D, sparse=False):
    startprob = rng.dirichlet(np.ones(N))
    transmat = rng.dirichlet(np.ones(N), size=N)
    if sparse and N > 1:
        # zero out some transitions and a start state, keeping rows stochastic
        mask = rng.random((N, N)) < 0.3
        np.fill_diagonal(mask, False)
        transmat = np.where(mask, 0.0, transmat)
        transmat /= transmat.sum(1, keepdims=True)
        startprob[0] = 0.0
        startprob /= startprob.sum()
    means = rng.normal(0, 2, (N, D))
    A = rng.normal(size=(N, D, D))
    covars = A @ A.transpose(0, 2, 1) / D + 0.3 * np.eye(D)
    return startprob, transmat, means, covars


def sample_observations(rng, startprob, transmat, means, covars, T):
    states = kernels.sample_states(startprob, transmat, T, int(rng.integers(2**63)))
    X = np.stack([rng.multivariate_normal(means[s], covars[s]) for s in states])
    return X, states


@pytest.mark.parametrize("N,D", [(1, 1), (3, 2), (5, 8), (4, 13)])
def test_gaussian_logpdf_matches_scipy(rng, N, D):
    _, _, means, covars = random_model(rng, N, D)
    X = rng.normal(0, 2, (300, D))
    got = kernels.gaussian_logpdf(X, means, covars)
    assert_allclose(got, reference.gaussian_logpdf(X, means, covars), rtol=1e-10, atol=1e-9)
    assert_array_equal(kernels.gaussian_logpdf(X, means, covars, n_threads=1), got)


def test_gaussian_logpdf_names_the_state_that_is_not_positive_definite(rng):
    _, _, means, covars = random_model(rng, 4, 3)
    covars[2] = np.diag([1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match=r"covars\[2\].*not positive definite"):
        kernels.gaussian_logpdf(rng.normal(size=(10, 3)), means, covars)


def test_forward_backward_wikipedia_umbrella_example():
    # https://en.wikipedia.org/wiki/Forward-backward_algorithm (as in hmmlearn's tests)
    startprob = np.array([0.5, 0.5])
    transmat = np.array([[0.7, 0.3], [0.3, 0.7]])
    log_frameprob = np.log([[0.9, 0.2], [0.9, 0.2], [0.1, 0.8], [0.9, 0.2], [0.9, 0.2]])
    ll, posteriors, xi = kernels.forward_backward(log_frameprob, startprob, transmat)
    assert_allclose(ll, -3.3725, atol=1e-4)
    assert_allclose(posteriors, [[0.8673, 0.1327], [0.8204, 0.1796], [0.3075, 0.6925],
                                 [0.8204, 0.1796], [0.8673, 0.1327]], atol=1e-4)
    assert_allclose(xi.sum(), 4.0)


def test_viterbi_wikipedia_example():
    # https://en.wikipedia.org/wiki/Viterbi_algorithm: Healthy/Fever, observed normal, cold, dizzy
    startprob = np.array([0.6, 0.4])
    transmat = np.array([[0.7, 0.3], [0.4, 0.6]])
    emission = np.array([[0.5, 0.4, 0.1], [0.1, 0.3, 0.6]])
    log_frameprob = np.log(emission[:, [0, 1, 2]].T)
    log_prob, path = kernels.viterbi(log_frameprob, startprob, transmat)
    assert_array_equal(path, [0, 0, 1])
    assert_allclose(np.exp(log_prob), 0.01512)


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("T,N", [(1, 1), (1, 3), (2, 2), (4, 3), (5, 2), (3, 4)])
def test_forward_backward_and_viterbi_against_every_path(rng, T, N, sparse):
    startprob, transmat, _, _ = random_model(rng, N, 1, sparse)
    log_frameprob = rng.normal(0, 3, (T, N))
    ll, post, xi = kernels.forward_backward(log_frameprob, startprob, transmat)
    ref_ll, ref_post, ref_xi, best_lp, best_path = reference.brute_force(log_frameprob, startprob, transmat)
    assert_allclose(ll, ref_ll, rtol=1e-12)
    assert_allclose(post, ref_post, atol=1e-12)
    assert_allclose(xi, ref_xi, atol=1e-12)
    log_prob, path = kernels.viterbi(log_frameprob, startprob, transmat)
    assert_allclose(log_prob, best_lp, rtol=1e-12)
    assert_array_equal(path, best_path)


@pytest.mark.parametrize("sparse", [False, True])
def test_forward_backward_matches_log_domain_reference(rng, sparse):
    startprob, transmat, means, covars = random_model(rng, 6, 4, sparse)
    X, _ = sample_observations(rng, startprob, transmat, means, covars, 400)
    log_frameprob = kernels.gaussian_logpdf(X, means, covars)
    ll, post, xi = kernels.forward_backward(log_frameprob, startprob, transmat)
    ref_ll, ref_post, ref_xi = reference.forward_backward_log(log_frameprob, startprob, transmat)
    assert_allclose(ll, ref_ll, rtol=1e-11)
    assert_allclose(post, ref_post, atol=1e-10)
    assert_allclose(xi, ref_xi, rtol=1e-9, atol=1e-9)
    assert_allclose(post.sum(1), 1.0, rtol=1e-12)


def test_forward_backward_survives_emissions_far_below_underflow(rng):
    # log-likelihoods around -1e5: exp() of them is 0, the scaled pass must not care
    startprob, transmat, _, _ = random_model(rng, 3, 1)
    log_frameprob = rng.normal(-1e5, 50, (50, 3))
    ll, post, _ = kernels.forward_backward(log_frameprob, startprob, transmat)
    ref_ll, ref_post, _ = reference.forward_backward_log(log_frameprob, startprob, transmat)
    assert_allclose(ll, ref_ll, rtol=1e-12)
    assert_allclose(post, ref_post, atol=1e-9)


def test_forward_backward_when_the_likeliest_emission_is_unreachable():
    # state 1 explains frame 1 best by far but cannot be reached from state 0
    startprob = np.array([1.0, 0.0, 0.0])
    transmat = np.array([[0.5, 0.0, 0.5], [0.3, 0.4, 0.3], [0.5, 0.0, 0.5]])
    log_frameprob = np.array([[0.0, 0.0, 0.0], [-900.0, 0.0, -1000.0], [0.0, 0.0, 0.0]])
    ll, post, xi = kernels.forward_backward(log_frameprob, startprob, transmat)
    ref_ll, ref_post, ref_xi, _, _ = reference.brute_force(log_frameprob, startprob, transmat)
    assert_allclose(ll, ref_ll, rtol=1e-12)
    assert_allclose(post, ref_post, atol=1e-12)
    assert np.isfinite(xi).all()


def test_impossible_sequence_is_an_error_naming_the_frame():
    startprob = np.array([1.0, 0.0])
    transmat = np.array([[1.0, 0.0], [0.0, 1.0]])
    log_frameprob = np.array([[0.0, 0.0], [-np.inf, 0.0]])
    with pytest.raises(ValueError, match="frame 1 has zero probability"):
        kernels.forward_backward(log_frameprob, startprob, transmat)
    log_prob, _ = kernels.viterbi(log_frameprob, startprob, transmat)
    assert log_prob == -np.inf


def test_sample_states_is_seeded_and_follows_the_chain(rng):
    startprob, transmat, _, _ = random_model(rng, 5, 1, sparse=True)
    path = kernels.sample_states(startprob, transmat, 200_000, seed=7)
    assert_array_equal(path, kernels.sample_states(startprob, transmat, 200_000, seed=7))
    assert not np.array_equal(path[:1000], kernels.sample_states(startprob, transmat, 1000, seed=8))
    assert path.dtype == np.int64 and path.min() >= 0 and path.max() < 5
    counts = np.zeros((5, 5))
    np.add.at(counts, (path[:-1], path[1:]), 1)
    assert np.all(counts[transmat == 0] == 0)
    visits = counts.sum(1, keepdims=True)
    sigma = np.sqrt(transmat * (1 - transmat) / np.maximum(visits, 1))
    assert np.all(np.abs(counts / np.maximum(visits, 1) - transmat) <= 5 * sigma + 1e-12)
    starts = np.array([kernels.sample_states(startprob, transmat, 1, seed=s)[0] for s in range(3000)])
    assert np.all(startprob[starts] > 0)
    assert_allclose(np.bincount(starts, minlength=5) / 3000, startprob, atol=0.04)


def test_sample_states_edge_cases():
    assert kernels.sample_states([1.0], [[1.0]], 0, seed=0).shape == (0,)
    assert_array_equal(kernels.sample_states([1.0], [[1.0]], 5, seed=2**64 - 1), 0)
    cycle = np.roll(np.eye(3), 1, axis=1)
    assert_array_equal(kernels.sample_states([0, 1.0, 0], cycle, 6, seed=3), [1, 2, 0, 1, 2, 0])


def stats_close(got, ref, rtol=1e-9):
    scale = np.abs(ref["m2"]).max()
    assert_allclose(got.seq_log_likelihood, ref["ll"], rtol=1e-11)
    assert_allclose(got.log_likelihood, np.sum(ref["ll"]), rtol=1e-11)
    assert_allclose(got.occupancy, ref["occ"], rtol=rtol)
    assert_allclose(got.start_occupancy, ref["start"], rtol=rtol, atol=1e-12)
    assert_allclose(got.xi_sum, ref["xi"], rtol=rtol, atol=1e-10)
    assert_allclose(got.moment1, ref["m1"], rtol=rtol, atol=1e-9 * scale)
    assert_allclose(got.moment2, ref["m2"], rtol=rtol, atol=1e-9 * scale)


@pytest.mark.parametrize("sparse", [False, True])
def test_estep_matches_reference(rng, sparse):
    startprob, transmat, means, covars = random_model(rng, 5, 3, sparse)
    lengths = [1, 130, 2, 64, 65, 200, 1]
    X, _ = sample_observations(rng, startprob, transmat, means, covars, sum(lengths))
    got = kernels.estep(X, lengths, startprob, transmat, means, covars, return_posteriors=True)
    ref = reference.estep_reference(X, lengths, startprob, transmat, means, covars)
    stats_close(got, ref)
    assert_allclose(got.posteriors, ref["post"], atol=1e-10)
    assert_array_equal(got.moment2, got.moment2.transpose(0, 2, 1))
    assert kernels.estep(X, lengths, startprob, transmat, means, covars).posteriors is None


def test_estep_moments_stay_accurate_far_from_the_origin(rng):
    # raw sums of x x^T would lose everything here: the data sit at 1e6 with spread 1e-2
    startprob, transmat, means, covars = random_model(rng, 3, 2)
    means += 1e6
    covars *= 1e-4
    X, _ = sample_observations(rng, startprob, transmat, means, covars, 300)
    got = kernels.estep(X, [300], startprob, transmat, means, covars)
    ref = reference.estep_reference(X, [300], startprob, transmat, means, covars)
    stats_close(got, ref, rtol=1e-8)
    cov = got.moment2 / got.occupancy[:, None, None]
    assert np.all(np.linalg.eigvalsh(cov) > 0)


@given(
    lengths=st.lists(st.integers(1, 90), min_size=1, max_size=40),
    N=st.integers(1, 6), D=st.integers(1, 5), seed=st.integers(0, 2**32 - 1),
)
def test_estep_is_bit_identical_for_any_thread_count(lengths, N, D, seed):
    rng = np.random.default_rng(seed)
    startprob, transmat, means, covars = random_model(rng, N, D, sparse=bool(seed % 2))
    X = rng.normal(0, 2, (sum(lengths), D))
    results = [kernels.estep(X, lengths, startprob, transmat, means, covars, n_threads=nt,
                             return_posteriors=True) for nt in (1, 2, 4)]
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert_array_equal(a, b)


@given(
    lengths=st.lists(st.integers(1, 60), min_size=2, max_size=30),
    N=st.integers(1, 5), D=st.integers(1, 4), seed=st.integers(0, 2**32 - 1), data=st.data(),
)
def test_an_estep_continued_over_batches_gives_the_one_calls_bits(lengths, N, D, seed, data):
    """Sequences split anywhere into batches, each E-step continuing the
    last one's sums (``after``), on any thread count: the bits of one call."""
    rng = np.random.default_rng(seed)
    startprob, transmat, means, covars = random_model(rng, N, D, sparse=bool(seed % 2))
    X = rng.normal(0, 2, (sum(lengths), D))
    whole = kernels.estep(X, lengths, startprob, transmat, means, covars)
    cuts = sorted(set(data.draw(st.lists(st.integers(1, len(lengths) - 1), max_size=5))))
    edges, offsets = [0, *cuts, len(lengths)], np.concatenate([[0], np.cumsum(lengths)])
    stats = None
    for a, b in zip(edges[:-1], edges[1:]):
        stats = kernels.estep(X[offsets[a]:offsets[b]], lengths[a:b], startprob, transmat, means, covars,
                              n_threads=data.draw(st.sampled_from([1, 2, 3])), after=stats)
    for name in ("log_likelihood", "seq_log_likelihood", "occupancy", "start_occupancy", "xi_sum", "moment1",
                 "moment2"):
        assert_array_equal(getattr(stats, name), getattr(whole, name), err_msg=name)


def test_estep_agrees_with_the_single_sequence_kernels(rng):
    startprob, transmat, means, covars = random_model(rng, 4, 6)
    X, _ = sample_observations(rng, startprob, transmat, means, covars, 500)
    got = kernels.estep(X, [500], startprob, transmat, means, covars, return_posteriors=True)
    ll, post, xi = kernels.forward_backward(kernels.gaussian_logpdf(X, means, covars), startprob, transmat)
    assert_allclose(got.log_likelihood, ll, rtol=1e-13)
    assert_allclose(got.posteriors, post, atol=1e-13)
    assert_allclose(got.xi_sum, xi, rtol=1e-12, atol=1e-12)


def test_estep_names_the_impossible_sequence():
    startprob = np.array([1.0, 0.0])
    transmat = np.eye(2)
    means = np.array([[0.0], [1000.0]])
    covars = np.full((2, 1, 1), 1e-6)
    X = np.array([[0.0], [0.0], [0.0], [1e200]])  # (x - mu)^2 overflows: density 0 everywhere
    with pytest.raises(ValueError, match="sequence 1 has zero probability"):
        kernels.estep(X, [2, 2], startprob, transmat, means, covars)
