"""The same inputs give the same bytes out: generation at fidelity 0, 0.5 and
1, previews and checkpoint tensors of models trained with fixed seeds, and
files written by an earlier release, against the hashes in
tests/data/golden.json (see tests/golden.py): everything one test computes
must equal one platform's recorded set."""

import json

import pytest

import golden

PLATFORMS = golden.platform_sets()


def mismatches(expected, got):
    keys = sorted(set(expected) | set(got))
    return [k for k in keys if expected.get(k) != got.get(k)]


def check(got, *where):
    """``got`` equals the set recorded at ``where`` on one platform; else the
    mismatches against each platform, this one named."""
    report = {}
    for recorded in PLATFORMS:
        expected = recorded
        for key in where:
            expected = expected[key]
        wrong = mismatches(expected, got)
        if not wrong:
            return
        report[recorded["platform"]] = wrong
    pytest.fail(f"on {golden.platform()}, mismatches against every recorded platform: {report}")


def test_sets_are_whole():
    """Every recorded platform holds every reference (a set is never partial)."""
    for recorded in PLATFORMS:
        assert set(recorded) == {"platform", "models", "run_quantiles", "stored"}
        assert set(recorded["models"]) == set(golden.CORPORA)
        assert set(recorded["stored"]) == set(golden.stored_models())


@pytest.mark.parametrize("corpus", sorted(golden.CORPORA))
def test_trained_model_generates_and_saves_the_same_bytes(corpus):
    check(golden.model_hashes(golden.trained(corpus)), "models", corpus)


def test_one_thread_gives_the_same_bytes():
    check(golden.model_hashes(golden.trained("gaps", n_threads=1)), "models", "gaps")


def test_run_lengths_from_quantiles_give_the_same_bytes():
    check(golden.run_quantile_hashes(), "run_quantiles")


@pytest.mark.parametrize("name", sorted(golden.stored_models()))
def test_files_of_an_earlier_release_generate_the_same_bytes(name):
    check(golden.stored_hashes(name), "stored", name)
