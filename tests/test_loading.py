"""Loading a final checkpoint and generating fits nothing and derives
nothing: the excitation model and what generation derives from it are
stored; a checkpoint without them still gives the same bytes."""

import numpy as np
import pytest

import golden
import ssgs.excitation_model
import ssgs.synthesis.voice
from ssgs import SpectralStateGuidedSynthesis
from ssgs.checkpoint import read_checkpoint, write_checkpoint


def forbidden(*args, **kwargs):
    raise AssertionError("fitted or derived after loading")


@pytest.fixture(scope="module")
def model():
    return golden.trained("gaps")  # (silent states: the chain's silences are derived too)


@pytest.mark.parametrize("kind", ["Karplus-Strong", "Wavelet", "Noise"])
def test_a_loaded_final_checkpoint_fits_and_derives_nothing(model, kind, tmp_path, monkeypatch):
    expected = model.generate(1.0, seed=3, excitation_type=kind)
    path = model.save_checkpoint(tmp_path / "m.safetensors")
    monkeypatch.setattr(ssgs.excitation_model, "fit", forbidden)
    monkeypatch.setattr("ssgs.model.calibrate", forbidden)
    monkeypatch.setattr(ssgs.synthesis.voice, "excitation_colour", forbidden)
    monkeypatch.setattr(ssgs.synthesis.voice, "chain_silence_runs", forbidden)
    loaded = SpectralStateGuidedSynthesis.load_checkpoint(path)
    assert np.array_equal(loaded.generate(1.0, seed=3, excitation_type=kind), expected)


def test_stored_derived_values_are_used_only_with_their_tables(model, tmp_path):
    """The stored derived values are what a loaded model sounds with (changed
    under the same key, the sound changes); a checkpoint whose tables
    changed derives them again from its own tables."""
    path = model.save_checkpoint(tmp_path / "m.safetensors")
    tensors, metadata = read_checkpoint(path)
    colour = tensors["voice_colour"]  # stale values under the same key: a tilt (an even offset is only a
    tensors["voice_colour"] = colour + np.linspace(0.0, 2.0, colour.shape[-1])  # gain, which the level undoes)
    write_checkpoint(tmp_path / "stale.safetensors", tensors, metadata)
    stale = SpectralStateGuidedSynthesis.load_checkpoint(tmp_path / "stale.safetensors")
    assert not np.array_equal(stale.generate(1.0, seed=4), model.generate(1.0, seed=4))
    tensors["excitation_voicing_offset"] = tensors["excitation_voicing_offset"] + 0.5
    write_checkpoint(tmp_path / "other.safetensors", tensors, metadata)
    other = SpectralStateGuidedSynthesis.load_checkpoint(tmp_path / "other.safetensors")
    fresh = SpectralStateGuidedSynthesis.load_checkpoint(path)
    fresh.excitation_model.voicing_offset = np.asarray(tensors["excitation_voicing_offset"])
    assert np.array_equal(other.generate(1.0, seed=4), fresh.generate(1.0, seed=4))


def test_without_the_stored_tables_the_same_bytes(model, tmp_path):
    path = model.save_checkpoint(tmp_path / "m.safetensors")
    tensors, metadata = read_checkpoint(path)
    names = set(ssgs.excitation_model.ExcitationModel.TENSORS.values()) | {"voice_key", "voice_colour",
                                                                           "voice_silence_runs"}
    write_checkpoint(tmp_path / "bare.safetensors", {k: v for k, v in tensors.items() if k not in names}, metadata)
    bare = SpectralStateGuidedSynthesis.load_checkpoint(tmp_path / "bare.safetensors")
    assert np.array_equal(bare.generate(1.0, seed=5), model.generate(1.0, seed=5))
