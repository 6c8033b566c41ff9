"""The training audio as ssgs keeps it (ssgs.training_audio): 16- or 24-bit
codes after a gain, FLAC in the checkpoint; what training analyses, what
fidelity 1 replays, what a checkpoint rebuilds its corpus from."""

import io
import json

import numpy as np
import pytest
import soundfile as sf
from numpy.testing import assert_array_equal

from ssgs import CheckpointError, SpectralStateGuidedSynthesis
from ssgs import checkpoint as ckpt
from ssgs import training_audio
from ssgs.features import FeatureConfig, analyse_signal
from ssgs.residual_shapes import frame_spectral_shapes

from signals import music_like

SR = 16000


def snr_db(ref, est):
    ref, est = np.asarray(ref, np.float64), np.asarray(est, np.float64)
    return 10 * np.log10(np.sum(ref**2) / max(np.sum((ref - est) ** 2), 1e-300))


def test_decode_gives_codes_times_scale_and_any_stretch_of_them(rng):
    x = music_like(rng, 3.0)
    coded = training_audio.encode(x, SR)
    with sf.SoundFile(io.BytesIO(coded.data)) as f:  # read back by soundfile alone, as 16-bit integers
        assert (f.format, f.subtype, f.channels, f.samplerate) == ("FLAC", "PCM_16", 1, SR)
        codes = f.read(dtype="int16").astype(np.int64)
    assert_array_equal(codes, codes_of(coded))
    assert np.abs(codes).max() == 32767  # the gain uses the full range
    y = coded.decode()
    assert y.dtype == np.float32 and len(y) == len(x) == coded.n_samples
    assert_array_equal(y, (codes * coded.scale).astype(np.float32))
    for start, stop in [(0, 100), (12345, 23456), (len(x) - 7, len(x)), (len(x) - 7, len(x) + 50), (9, 9)]:
        assert_array_equal(coded.decode(start, stop), y[start:stop])


@pytest.mark.parametrize("level_db", [0.0, -20.0, -40.0, -70.0])
def test_at_least_80_db_from_the_source_at_any_level(rng, level_db):
    x = music_like(rng, 2.0)
    x = x / np.abs(x).max() * 10 ** (level_db / 20)
    coded = training_audio.encode(x, SR)
    assert coded.bits == 16 and snr_db(x, coded.decode()) >= 80
    assert abs(snr_db(x, coded.decode()) - training_audio.quantisation_snr(x, 16)) < 0.5  # float32 rounding aside


def test_a_crest_factor_16_bits_cannot_keep_gets_24(rng):
    """A quiet recording with one click at full scale: 16 bits after the
    peak's gain would keep it some 60 dB from its source; it is coded at 24."""
    x = 1e-3 * music_like(rng, 2.0)
    x[5000] = 1.0
    assert training_audio.quantisation_snr(x, 16) < 80
    coded = training_audio.encode(x, SR)
    assert coded.bits == 24 and snr_db(x, coded.decode()) >= 80
    with sf.SoundFile(io.BytesIO(coded.data)) as f:
        assert f.subtype == "PCM_24"
    assert training_audio.encode(music_like(rng, 1.0), SR, bits=24).bits == 24  # asked for


def test_a_file_with_much_of_it_near_the_16_bit_floor_gets_24(rng):
    """A piece that fades to near its 16-bit floor for a third of its
    length: its energy gives 16 bits a fine SNR, but those blocks' own
    analysis would read the rounding. A piece with a short fade keeps 16."""
    def faded(tail_seconds):
        x = music_like(rng, 3.0)
        tail = 2e-4 * music_like(rng, tail_seconds)  # about -80 dB under the peak: 2-3 steps of 16 bits
        return np.concatenate([x, tail])
    long_fade, short_fade = faded(1.5), faded(0.05)
    assert training_audio.quantisation_snr(long_fade, 16) > 80
    assert training_audio.quiet_share(long_fade, 16) > 0.3 and training_audio.encode(long_fade, SR).bits == 24
    assert training_audio.quiet_share(short_fade, 16) < 0.05 and training_audio.encode(short_fade, SR).bits == 16
    blocks = long_fade[: len(long_fade) // 256 * 256].reshape(-1, 256)  # the rule, recomputed here
    rms, step = np.sqrt((blocks**2).mean(1)), np.abs(long_fade).max() / 32767
    assert training_audio.quiet_share(long_fade, 16) == pytest.approx(np.mean(rms < 4 * step))


def test_samples_already_on_the_grid_are_kept_exactly(rng, tmp_path):
    """A 16-bit file read as floats is coded as it is (no gain): the kept
    audio is the file's samples bit for bit, however quiet."""
    codes = np.clip(np.rint(0.01 * 32767 * music_like(rng, 2.0) / 0.5), -32768, 32767).astype(np.int16)
    codes[10] = -32768  # the one code with no positive twin
    path = tmp_path / "quiet.wav"
    sf.write(path, codes, SR, subtype="PCM_16")
    x, _ = sf.read(path, dtype="float64")
    coded = training_audio.encode(x, SR)
    assert coded.scale == 2.0**-15 and coded.bits == 16
    assert_array_equal(coded.decode(), x.astype(np.float32))
    assert training_audio.quantisation_snr(x, 16) == float("inf")


def codes_of(coded):
    with sf.SoundFile(io.BytesIO(coded.data)) as f:
        return f.read(dtype="int32") >> (32 - coded.bits)


def test_keeping_kept_audio_again_keeps_its_codes(rng):
    """Kept audio coded again gets the same codes; its gain moves only by
    the float32 rounding of the decoded peak."""
    once = training_audio.encode(music_like(rng, 2.0), SR)
    twice = training_audio.encode(once.decode(), SR)
    assert_array_equal(codes_of(twice), codes_of(once))
    assert twice.scale == pytest.approx(once.scale, rel=1e-7)


def test_silence_and_empty_signals_code(rng):
    for x in (np.zeros(1000), np.zeros(0)):
        coded = training_audio.encode(x, SR)
        assert_array_equal(coded.decode(), np.zeros(len(x), np.float32))


def test_check_names_what_is_wrong(rng):
    coded = training_audio.encode(music_like(rng, 0.5), SR)
    assert training_audio.check(coded, SR) is None
    garbage = training_audio.CodedAudio(b"not flac at all", coded.scale, 16, coded.n_samples)
    assert "not a readable FLAC stream" in training_audio.check(garbage, SR)
    assert "at 22050 Hz, not mono FLAC at 16000 Hz" in training_audio.check(training_audio.encode(
        music_like(rng, 0.5), 22050), SR)
    short = training_audio.CodedAudio(coded.data, coded.scale, 16, coded.n_samples + 3)
    assert training_audio.check(short, SR) == f"holds {coded.n_samples} samples, not {coded.n_samples + 3}"
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros((100, 2), np.int16), SR, format="FLAC")
    stereo = training_audio.CodedAudio(buffer.getvalue(), 1.0, 16, 100)
    assert "2 channel(s)" in training_audio.check(stereo, SR)


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(23)
    audio = [music_like(rng, 3.0), 0.3 * music_like(rng, 4.0)]
    return audio, SpectralStateGuidedSynthesis(n_states=5, seed=3).train(audio, SR, n_em_iterations=3)


def test_training_analyses_the_kept_audio(model):
    """The corpus is the analysis of the decoded codes, so a checkpoint
    rebuilds it from them exactly."""
    audio, m = model
    for i, x in enumerate(audio):
        kept = m.rebuild_sequence(i)
        assert snr_db(x, kept) >= 80
        feats = analyse_signal(kept.astype(np.float32), FeatureConfig(SR, 1024, 256, 12))
        rows = slice(m.corpus.sequence_offsets[i], m.corpus.sequence_offsets[i + 1])
        assert_array_equal(m.observations[rows], feats.observations)
        assert_array_equal(m.residual_signals[rows], feats.residual)  # computed again from the kept audio
        assert_array_equal(m.corpus.frame_shapes()[rows], frame_spectral_shapes(feats.residual))


def test_the_residual_is_not_held_in_memory(model):
    """The residual (a float32 a sample) is computed from the kept audio when
    read; what the corpus holds frame by frame is a fraction of it."""
    _, m = model
    held = sum(v.nbytes for v in vars(m.corpus).values() if isinstance(v, np.ndarray))
    residual = m.residual_signals
    assert residual is not m.residual_signals and held < 0.8 * residual.nbytes


def test_checkpoint_holds_the_codes_and_analyses_them_on_first_use(model, tmp_path):
    audio, m = model
    path = m.save_checkpoint(tmp_path / "c.safetensors")
    meta, header = ckpt.read_header(path)
    assert header["training_audio"]["dtype"] == "U8"
    assert not {"residual_signals", "observations", "lpc_coefficients"} & set(header)
    assert json.loads(meta["config"])["audio_bits"] == 16
    back = SpectralStateGuidedSynthesis.load_checkpoint(path)
    assert "observations" not in vars(back.corpus)  # not analysed yet
    blend = back.generate(1.0, fidelity=0.5, seed=4, start=(1, 0.5))
    assert "observations" not in vars(back.corpus)  # a passage analyses only the sequences it plays
    assert_array_equal(blend, m.generate(1.0, fidelity=0.5, seed=4, start=(1, 0.5)))
    assert_array_equal(back.generate(2.0, fidelity=1.0, start=(1, 0.5)),
                       m.generate(2.0, fidelity=1.0, start=(1, 0.5)))
    for name in ("observations", "lpc_coefficients", "residual_signals", "perceptual_features", "f0", "periodicity"):
        assert_array_equal(getattr(back, name), getattr(m, name))
    for key in m.frame_metadata:
        assert_array_equal(back.frame_metadata[key], m.frame_metadata[key])
    assert_array_equal(back.generate(3.0, fidelity=0.5, seed=4), m.generate(3.0, fidelity=0.5, seed=4))


def test_the_checkpoint_is_a_fraction_of_the_float_residuals(model, tmp_path):
    _, m = model
    seconds = m.sequence_samples.sum() / SR
    header = ckpt.read_header(m.save_checkpoint(tmp_path / "c.safetensors"))[1]
    coded = ckpt.tensor_nbytes(header["training_audio"])
    assert coded / seconds < 2 * SR  # under 16 bits a sample, whatever FLAC finds to pack
    assert coded * 2 < m.residual_signals.nbytes  # the float32 residuals it replaces: 4 bytes a sample


def test_24_bit_models_keep_24_bits(tmp_path):
    rng = np.random.default_rng(5)
    x = music_like(rng, 2.0)
    m = SpectralStateGuidedSynthesis(n_states=3, seed=1, audio_bits=24).train([x], SR, n_em_iterations=2)
    assert m.corpus.audio[0].bits == 24 and snr_db(x, m.rebuild_sequence(0)) >= 120
    back = SpectralStateGuidedSynthesis.load_checkpoint(m.save_checkpoint(tmp_path / "c.safetensors"))
    assert back.audio_bits == 24
    assert_array_equal(back.rebuild_sequence(0), m.rebuild_sequence(0))
    with pytest.raises(ValueError, match="audio_bits must be 16 or 24, got 8"):
        SpectralStateGuidedSynthesis(audio_bits=8)


def corrupt(saved, tmp_path, **changes):
    """A checkpoint whose coded audio tensors are changed, with valid digests."""
    tensors, metadata = ckpt.read_checkpoint(saved)
    meta = {k: v for k, v in metadata.items() if k not in ("tensors_sha256", "metadata_sha256")}
    path = tmp_path / "bad.safetensors"
    ckpt.write_checkpoint(path, {**tensors, **changes}, meta)
    return path


def test_damaged_coded_audio_is_named(model, tmp_path):
    _, m = model
    saved = m.save_checkpoint(tmp_path / "c.safetensors")
    tensors, _ = ckpt.read_checkpoint(saved)
    data, offsets = tensors["training_audio"], tensors["training_audio_offsets"]
    flipped = data.copy()
    flipped[offsets[1] : offsets[1] + 40] = 0  # sequence 1's FLAC header
    cases = {
        "is not a readable FLAC stream": {"training_audio": flipped},
        "'training_audio_offsets' does not split 'training_audio'": {"training_audio_offsets": offsets + 1},
        r"sequence 0's training audio has scale -1": {"training_audio_scale": -np.ones_like(tensors["training_audio_scale"])},
        r"'training_audio_scale' has shape \(3,\)": {"training_audio_scale": np.ones(3)},
        "missing tensor 'training_audio_bits'": {},
    }
    for message, change in cases.items():
        path = corrupt(saved, tmp_path, **change)
        if not change:
            tensors2, meta = ckpt.read_checkpoint(path)
            del tensors2["training_audio_bits"]
            ckpt.write_checkpoint(path, tensors2, {k: v for k, v in meta.items() if not k.endswith("sha256")})
        with pytest.raises(CheckpointError, match=message):
            SpectralStateGuidedSynthesis.load_checkpoint(path)


def test_older_checkpoints_with_residuals_load_as_before(model, tmp_path):
    """A checkpoint of the per-frame form (float32 residuals, what ssgs
    wrote before it kept coded audio) loads, replays and generates as the
    model it was saved from."""
    _, m = model
    saved = m.save_checkpoint(tmp_path / "new.safetensors")
    tensors, metadata = ckpt.read_checkpoint(saved)
    for name in ("training_audio", "training_audio_offsets", "training_audio_scale", "training_audio_bits"):
        del tensors[name]
    tensors.update({"observations": m.observations, "lpc_coefficients": m.lpc_coefficients,
                    "residual_signals": m.residual_signals, "perceptual_features": m.perceptual_features,
                    "f0": m.f0, "periodicity": m.periodicity,
                    **{f"frame_metadata__{k}": v for k, v in m.frame_metadata.items()}})
    config = json.loads(metadata["config"])
    del config["audio_bits"]  # older files have no such entry
    meta = {k: v for k, v in metadata.items() if not k.endswith("sha256")}
    meta.update(config=json.dumps(config), ssgs_format_version="1")
    path = tmp_path / "old.safetensors"
    ckpt.write_checkpoint(path, tensors, meta)
    old = SpectralStateGuidedSynthesis.load_checkpoint(path)
    assert old.corpus.audio is None and old.audio_bits == 16
    assert_array_equal(old.residual_signals, m.residual_signals)
    assert snr_db(m.rebuild_sequence(1), old.rebuild_sequence(1)) > 100  # rebuilt by the LPC filters
    assert_array_equal(old.generate(2.0, fidelity=0.0, seed=6), m.generate(2.0, fidelity=0.0, seed=6))
    again = SpectralStateGuidedSynthesis.load_checkpoint(old.save_checkpoint(tmp_path / "again.safetensors"))
    assert "residual_signals" in ckpt.read_header(tmp_path / "again.safetensors")[1]  # kept in its own form
    assert_array_equal(again.residual_signals, m.residual_signals)
