"""The same inputs give the same bytes out: generation at fidelity 0, 0.5 and
1, previews and checkpoint tensors of models trained with fixed seeds, and
files written by an earlier release, against the hashes in
tests/data/golden.json (see tests/golden.py)."""

import json

import pytest

import golden

REFERENCE = json.loads(golden.REFERENCE.read_text())


def mismatches(expected, got):
    keys = sorted(set(expected) | set(got))
    return [k for k in keys if expected.get(k) != got.get(k)]


@pytest.mark.parametrize("corpus", sorted(golden.CORPORA))
def test_trained_model_generates_and_saves_the_same_bytes(corpus):
    got = golden.model_hashes(golden.trained(corpus))
    assert mismatches(REFERENCE["models"][corpus], got) == []


def test_one_thread_gives_the_same_bytes():
    got = golden.model_hashes(golden.trained("gaps", n_threads=1))
    assert mismatches(REFERENCE["models"]["gaps"], got) == []


def test_run_lengths_from_quantiles_give_the_same_bytes():
    assert mismatches(REFERENCE["run_quantiles"], golden.run_quantile_hashes()) == []


@pytest.mark.parametrize("name", sorted(golden.stored_models()))
def test_files_of_an_earlier_release_generate_the_same_bytes(name):
    assert mismatches(REFERENCE["stored"][name], golden.stored_hashes(name)) == []
