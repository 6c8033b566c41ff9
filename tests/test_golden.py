"""The same inputs give the same bytes out: generation at fidelity 0, 0.5 and
1, previews and checkpoint tensors of models trained with fixed seeds, and
files written by an earlier release, against the hashes in
tests/data/golden.json (see tests/golden.py): everything one test computes
must equal one platform's recorded set."""


import pytest

import golden

PLATFORMS = golden.platform_sets()


def mismatches(expected, got):
    keys = sorted(set(expected) | set(got))
    return [k for k in keys if expected.get(k, {}).get("sha") != got.get(k, {}).get("sha")]


def recorded_at(recorded, where):
    for key in where:
        recorded = recorded[key]
    return recorded


def check(got, *where):
    """``got`` equals, byte for byte, the set recorded at ``where`` on one
    platform; on a platform that has no recorded set, its values agree with
    one set's summaries instead (golden.summaries_agree). Else a failure
    naming the mismatches against each platform."""
    report = {}
    for recorded in PLATFORMS:
        wrong = mismatches(recorded_at(recorded, where), got)
        if not wrong:
            return
        report[recorded["platform"]] = wrong
    here = golden.platform()
    if all(recorded["platform"] != here for recorded in PLATFORMS):
        if any(golden.summaries_agree(recorded_at(r, where), got) for r in PLATFORMS):
            return
        report["summaries"] = "no recorded set agrees to golden.SUMMARY_RTOL either"
    pytest.fail(f"on {here}, mismatches against every recorded platform: {report}")


def test_a_new_platform_is_held_to_the_summaries():
    """What a platform with no recorded set is compared on: the summaries
    of a recorded set pass, a change of one value by more than rounding
    does not, nor a missing key."""
    recorded = PLATFORMS[-1]["models"]["music"]
    assert golden.summaries_agree(recorded, recorded)
    key = "generate f0-string"
    nudged = dict(recorded, **{key: {"sha": "", "summary": [v * (1 + 1e-9) for v in recorded[key]["summary"]]}})
    assert golden.summaries_agree(recorded, nudged)
    changed = dict(recorded, **{key: {"sha": "", "summary": [v * 1.001 for v in recorded[key]["summary"]]}})
    assert not golden.summaries_agree(recorded, changed)
    assert not golden.summaries_agree(recorded, {k: v for k, v in recorded.items() if k != key})


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
