import os

import numpy as np
import pytest
import soundfile as sf
from numpy.testing import assert_allclose

from ssgs import AudioError
from ssgs.audio import load_audio, prepare_signal
from ssgs.scan import scan_folders

from signals import tone


def dominant_frequency(x, sr):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spec)]


@pytest.mark.parametrize("ext,subtype", [(".wav", "PCM_16"), (".flac", "PCM_24"), (".ogg", "VORBIS"),
                                         (".mp3", "MPEG_LAYER_III"), (".wav", "FLOAT")])
def test_formats_decode_to_the_same_tone(tmp_path, ext, subtype):
    x = tone(440.0, 2.0, 44100)
    path = tmp_path / f"a{ext}"
    sf.write(path, x, 44100, subtype=subtype)
    y = load_audio(path, 16000)
    assert y.dtype == np.float32
    assert abs(len(y) - 32000) <= 1200  # mp3 adds encoder delay and padding
    assert abs(dominant_frequency(y, 16000) - 440.0) < 8.0
    rms = np.sqrt(np.mean(y[4000:-4000] ** 2))
    assert_allclose(rms, 0.5 / np.sqrt(2), rtol=0.05)


def test_stereo_is_mixed_to_mono(tmp_path):
    left, right = tone(300, 1.0, 16000, 0.4), tone(300, 1.0, 16000, 0.2)
    sf.write(tmp_path / "s.wav", np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    assert_allclose(load_audio(tmp_path / "s.wav", 16000), (left + right) / 2, atol=1e-7)


@pytest.mark.parametrize("sr", [8000, 11025, 22050, 48000, 192000])
def test_odd_sample_rates_are_resampled(tmp_path, sr):
    x = tone(1000.0, 1.0, sr)
    sf.write(tmp_path / "r.wav", x, sr, subtype="FLOAT")
    y = load_audio(tmp_path / "r.wav", 16000)
    assert abs(len(y) - 16000) <= 1
    assert abs(dominant_frequency(y, 16000) - 1000.0) < 2.0
    # soxr HQ: away from the edges the tone comes through at its level
    assert_allclose(np.sqrt(np.mean(y[2000:-2000] ** 2)), 0.5 / np.sqrt(2), rtol=0.01)


def test_resampling_in_blocks_equals_one_shot(tmp_path):
    import soxr

    rng = np.random.default_rng(0)
    x = rng.uniform(-0.5, 0.5, 44100 * 70).astype(np.float32)  # longer than one 30 s block
    sf.write(tmp_path / "long.wav", x, 44100, subtype="FLOAT")
    y = load_audio(tmp_path / "long.wav", 16000)
    ref = soxr.resample(x, 44100, 16000, quality="HQ")
    assert len(y) == len(ref)
    assert_allclose(y, ref, atol=1e-5)


@pytest.mark.parametrize("case,message", [
    ("empty", "empty file"),
    ("text", "cannot decode"),
    ("truncated", "cannot decode|no audio samples"),
    ("nan", "NaN or inf"),
    ("channels", "3 channels"),
    ("missing", "does not exist"),
    ("dangling", "does not exist"),
])
def test_bad_files_raise_audio_error_naming_the_file(tmp_path, case, message):
    path = tmp_path / "bad.wav"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "text":
        path.write_text("this is not audio\n" * 20)
    elif case == "truncated":
        sf.write(path, tone(440, 1.0, 16000), 16000)
        path.write_bytes(path.read_bytes()[:30])
    elif case == "nan":
        x = tone(440, 1.0, 16000)
        x[100] = np.nan
        sf.write(path, x, 16000, subtype="FLOAT")
    elif case == "channels":
        sf.write(path, np.zeros((16000, 3)) + 0.1, 16000)
    elif case == "dangling":
        os.symlink(tmp_path / "nowhere.wav", path)
    with pytest.raises(AudioError, match=message) as info:
        load_audio(path, 16000)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_unreadable_file(tmp_path, monkeypatch):
    # permissions cannot be taken away from root (the CI user), so the
    # operating system's answer is injected where the file is opened
    path = tmp_path / "locked.wav"
    sf.write(path, tone(440, 1.0, 16000), 16000)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(sf, "SoundFile", denied)
    with pytest.raises(AudioError, match=r"locked.wav: cannot read \(Permission denied\)"):
        load_audio(path, 16000)


def test_m4a_decodes_through_pyav(tmp_path):
    import av

    path = tmp_path / "a.m4a"
    x = tone(440.0, 2.0, 44100, amplitude=0.4).astype(np.float32)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=44100, layout="stereo")
        frame = av.AudioFrame.from_ndarray(np.stack([x, x]), format="fltp", layout="stereo")
        frame.sample_rate = 44100
        for packet in list(stream.encode(frame)) + list(stream.encode(None)):
            out.mux(packet)
    y = load_audio(path, 16000)
    assert abs(len(y) - 32000) < 1500  # AAC adds priming samples
    assert abs(dominant_frequency(y, 16000) - 440.0) < 8.0
    assert_allclose(np.sqrt(np.mean(y[4000:-4000] ** 2)), 0.4 / np.sqrt(2), rtol=0.05)
    (tmp_path / "junk.m4a").write_bytes(b"\0" * 100)
    with pytest.raises(AudioError, match="junk.m4a: cannot decode"):
        load_audio(tmp_path / "junk.m4a", 16000)


def test_m4a_without_pyav_names_the_extra(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "av", None)  # as if PyAV were not installed
    path = tmp_path / "a.m4a"
    path.write_bytes(b"\0" * 100)
    with pytest.raises(AudioError, match=r'pip install "ssgs\[av\]"'):
        load_audio(path, 16000)


def test_scan_folders_order_duplicates_and_missing(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    (a / "sub").mkdir(parents=True)
    b.mkdir()
    for i, p in enumerate((a / "2.wav", a / "1.WAV", a / "sub" / "3.flac", b / "x.mp3", a / "notes.txt")):
        p.write_bytes(bytes([i]))  # each its own content: copies are another test's
    os.symlink(a / "1.WAV", b / "link.wav")
    flat = scan_folders([a, b, tmp_path / "nope"], [".wav", "flac", ".mp3"])
    assert flat.files == [str(a / "1.WAV"), str(a / "2.wav"), str(b / "x.mp3")]
    reasons = dict(flat.skipped)
    assert "same file as" in reasons[str(b / "link.wav")]
    assert reasons[str(tmp_path / "nope")] == "folder does not exist"
    deep = scan_folders([a], [".wav", ".flac"], recursive=True)
    assert str(a / "sub" / "3.flac") in deep.files


def test_scan_survives_symlink_loops(tmp_path):
    d = tmp_path / "d"
    (d / "inner").mkdir(parents=True)
    (d / "inner" / "x.wav").write_bytes(b"x")
    os.symlink(d, d / "inner" / "loop")
    os.symlink(d / "inner", d / "inner" / "self")
    result = scan_folders([d], [".wav"], recursive=True)
    assert result.files == [str(d / "inner" / "x.wav")]


def test_prepare_signal():
    stereo = np.stack([np.ones(10), np.zeros(10)], axis=1)
    assert_allclose(prepare_signal(stereo), 0.5)
    assert_allclose(prepare_signal(stereo.T), 0.5)
    assert_allclose(prepare_signal(np.array([16384, -32767], np.int16)), [0.5, -1.0], atol=1e-4)
    with pytest.raises(AudioError, match="3 channels"):
        prepare_signal(np.zeros((100, 3)))
    with pytest.raises(AudioError, match="NaN"):
        prepare_signal(np.array([0.0, np.nan]))
    with pytest.raises(AudioError, match="expected a 1-D signal"):
        prepare_signal(np.zeros((2, 2, 2)))
