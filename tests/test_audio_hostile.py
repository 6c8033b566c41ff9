"""Audio input a user's folder can hold that is not what it seems: truncated
files, byte-identical copies, names that are not valid UTF-8 or hold a
newline, audio with other endings, decoders that talk on stderr, and odd
signals. Every file is made here, from seeded signals."""

import os
import re
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import soundfile as sf
from numpy.testing import assert_allclose, assert_array_equal

from ssgs import AudioError, AudioWarning, SpectralStateGuidedSynthesis
from ssgs.audio import display_path, load_audio, native_stderr_silenced
from ssgs.corpus import analyse_items
from ssgs.features import FeatureConfig
from ssgs.scan import DEFAULT_EXTENSIONS, scan_folders

from signals import music_like, tone

SR = 44100


def full_decode(path):
    """The whole file as libsndfile decodes it in one read: float32 mono."""
    y, _ = sf.read(path, dtype="float32", always_2d=True)
    return y[:, 0]


def write_head(src, dst, fraction):
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])


@pytest.fixture(scope="module")
def long_mp3(tmp_path_factory):
    """60 s of varied music-like audio as an MP3 (a repeated or silent block
    in a decoding is told apart from the real continuation)."""
    path = tmp_path_factory.mktemp("mp3") / "long.mp3"
    sf.write(path, music_like(np.random.default_rng(18), 60.0, SR).astype(np.float32), SR, format="MP3")
    return path


def truncation_warning(record):
    messages = [str(w.message) for w in record if issubclass(w.category, AudioWarning)]
    assert len(messages) == 1, messages
    match = re.search(r": truncated: ([\d.]+) s decodable of the ([\d.]+) s its header claims; using the \1 s$",
                      messages[0])
    assert match, messages[0]
    return messages[0], float(match[1]), float(match[2])


# ------------------------------------------------------------ truncated files
def test_a_truncated_mp3_gives_only_its_real_audio(long_mp3, tmp_path):
    head = tmp_path / "head.mp3"
    write_head(long_mp3, head, 1 / 6)
    full = full_decode(long_mp3)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        y = load_audio(head, SR)
    # the same bytes decode to the same samples: what is there is the head of
    # the whole file's decoding, and nothing repeated or invented follows
    assert_array_equal(y, full[: y.shape[0]])
    assert 0.12 * full.shape[0] < y.shape[0] < 0.22 * full.shape[0]
    message, decoded, claimed = truncation_warning(record)
    assert message.startswith(f"{head}: truncated:")
    assert decoded == pytest.approx(y.shape[0] / SR, abs=0.051)
    assert claimed == pytest.approx(60.0, abs=0.05)


def test_a_truncated_mp3_resampled_has_the_real_length(long_mp3, tmp_path):
    head = tmp_path / "head.mp3"
    write_head(long_mp3, head, 1 / 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AudioWarning)
        native = load_audio(head, SR)
        y = load_audio(head, 16000)
    assert abs(y.shape[0] - native.shape[0] * 16000 / SR) <= 2
    assert np.isfinite(y).all()


def test_a_truncated_flac_gives_what_decodes_before_the_loss(tmp_path):
    rng = np.random.default_rng(3)
    x = music_like(rng, 20.0, SR)
    whole = tmp_path / "whole.flac"
    sf.write(whole, x, SR)
    head = tmp_path / "head.flac"
    write_head(whole, head, 0.5)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        y = load_audio(head, SR)
    full = full_decode(whole)
    assert_array_equal(y, full[: y.shape[0]])
    assert 0.3 * full.shape[0] < y.shape[0] < 0.6 * full.shape[0]
    _, decoded, claimed = truncation_warning(record)
    assert claimed == pytest.approx(20.0, abs=0.01)


def test_a_file_with_nothing_decodable_is_an_error_saying_so(tmp_path):
    whole = tmp_path / "whole.flac"
    sf.write(whole, tone(440, 5.0, 16000), 16000)
    head = tmp_path / "head.flac"
    head.write_bytes(whole.read_bytes()[:100])  # the header, no audio frame
    with pytest.raises(AudioError, match=r"head.flac: cannot decode \(.+\): nothing decodable of the 5.0 s its "
                                         r"header claims$") as info:
        load_audio(head, 16000)
    assert "\n" not in str(info.value)


def test_an_mp3_whose_length_is_an_estimate_is_not_called_truncated(tmp_path):
    # without a Xing/Info header libsndfile estimates the length from the
    # file's size, a little above what decodes: within the tolerance
    av = pytest.importorskip("av")
    x = music_like(np.random.default_rng(9), 20.0, SR).astype(np.float32)
    path = tmp_path / "no_xing.mp3"
    with av.open(str(path), "w", format="mp3", options={"write_xing": "0"}) as out:
        stream = out.add_stream("libmp3lame", rate=SR, layout="mono")
        frame = av.AudioFrame.from_ndarray(x[None, :], format="fltp", layout="mono")
        frame.sample_rate = SR
        for packet in list(stream.encode(frame)) + list(stream.encode(None)):
            out.mux(packet)
    claimed = sf.info(path).frames
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = load_audio(path, SR)
    assert y.shape[0] < claimed  # the estimate is above what is there ...
    assert y.shape[0] > 0.99 * claimed  # ... by less than the tolerance
    assert_array_equal(y, full_decode(path)[: y.shape[0]])


def test_whole_files_decode_as_before(tmp_path, long_mp3):
    # long enough for three 30 s blocks; stereo too; every format libsndfile
    # writes here. soundfile's block reader (what decoded files before) is
    # exact on whole files; one read of the whole file differs by at most
    # one float32 rounding step in an MP3 (libsndfile's MP3 reader rounds
    # per read call)
    rng = np.random.default_rng(5)
    x = music_like(rng, 65.0, 22050).astype(np.float32)
    paths = [long_mp3]
    for ext in (".wav", ".flac", ".ogg", ".aiff"):
        paths.append(tmp_path / f"a{ext}")
        sf.write(paths[-1], x, 22050)
    paths.append(tmp_path / "stereo.flac")
    sf.write(paths[-1], np.stack([x, x[::-1]], axis=1), 22050)
    for path in paths:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            y = load_audio(path, sf.info(path).samplerate)
        rate = sf.info(path).samplerate
        blocks = np.concatenate(list(sf.blocks(path, blocksize=int(30 * rate), dtype="float32", always_2d=True)))
        assert_array_equal(y, blocks.mean(axis=1, dtype=np.float32) if blocks.shape[1] == 2 else blocks[:, 0])
        one_read, _ = sf.read(path, dtype="float32", always_2d=True)
        assert_allclose(y, one_read.mean(axis=1), rtol=0, atol=2.0 ** -23)


def test_a_truncated_file_in_a_folder_is_used_with_a_warning(long_mp3, tmp_path):
    head = tmp_path / "head.mp3"
    write_head(long_mp3, head, 1 / 6)
    empty_head = tmp_path / "nothing.flac"
    sf.write(tmp_path / "w.flac", tone(440, 5.0, 16000), 16000)
    empty_head.write_bytes((tmp_path / "w.flac").read_bytes()[:100])
    config = FeatureConfig()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        analysed, skipped = analyse_items([head, empty_head], config, workers=2)
    assert len(analysed) == 1
    seconds = analysed[0][1]["n_samples"] / config.sample_rate
    assert 7.0 < seconds < 13.0  # a sixth of 60 s; never the 60 s the header claims
    assert [p for p, _ in skipped] == [str(empty_head)]
    assert skipped[0][1].endswith("nothing decodable of the 5.0 s its header claims"), skipped
    truncation_warning(record)


# ------------------------------------------------------------ same content
def test_byte_identical_copies_are_used_once(tmp_path):
    songs = []
    for i in range(3):
        songs.append(tmp_path / f"song{i}.wav")
        sf.write(songs[-1], tone(200 + 100 * i, 1.0, 16000), 16000)
    copies = tmp_path / "copies"
    copies.mkdir()
    for k in range(8):
        for i, song in enumerate(songs):
            (copies / f"copy{k}_{i}.wav").write_bytes(song.read_bytes())
    other = tmp_path / "same_size.wav"  # same size, other bytes: kept
    sf.write(other, tone(999, 1.0, 16000), 16000)
    result = scan_folders([tmp_path, copies], [".wav"])
    assert result.files == [str(other)] + [str(s) for s in songs]
    reasons = dict(result.skipped)
    assert len(reasons) == 24
    for k in range(8):
        for i, song in enumerate(songs):
            assert reasons[str(copies / f"copy{k}_{i}.wav")] == f"same content as {song}"


def test_a_file_and_a_link_to_it_keep_the_real_name(tmp_path):
    sf.write(tmp_path / "real.wav", tone(440, 1.0, 16000), 16000)
    os.symlink(tmp_path / "real.wav", tmp_path / "a_link.wav")  # sorts first
    result = scan_folders([tmp_path], [".wav"])
    assert result.files == [str(tmp_path / "real.wav")]
    assert result.skipped == [(str(tmp_path / "a_link.wav"), f"same file as {tmp_path / 'real.wav'}")]


def test_empty_files_are_not_copies_of_each_other(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"")
    (tmp_path / "b.wav").write_bytes(b"")
    assert scan_folders([tmp_path], [".wav"]).files == [str(tmp_path / "a.wav"), str(tmp_path / "b.wav")]


# ------------------------------------------------------------ names
@pytest.mark.parametrize("raw,shown", [
    (b"caf\xe9.wav", "caf\\xe9.wav"),
    ("café ünï 日本.wav".encode(), "café ünï 日本.wav"),
    (b"two\nlines.wav", "two\\nlines.wav"),
    (b"tab\tand\rbell\x07.wav", "tab\\tand\\rbell\\x07.wav"),
])
def test_display_path_escapes_what_cannot_be_printed(raw, shown):
    assert display_path(os.fsdecode(raw)) == shown
    assert display_path(raw) == shown
    assert display_path(os.fsdecode(b"/d/" + raw)) == "/d/" + shown


def test_a_name_that_is_not_utf8_is_read(tmp_path):
    x = tone(440, 1.0, 16000).astype(np.float32)
    path = os.path.join(str(tmp_path), os.fsdecode(b"caf\xe9.wav"))
    sf.write(tmp_path / "plain.wav", x, 16000, subtype="FLOAT")
    os.rename(tmp_path / "plain.wav", path)
    assert scan_folders([tmp_path], [".wav"]).files == [path]
    assert_array_equal(load_audio(path, 16000), x)


def test_messages_name_a_file_on_one_printable_line(tmp_path):
    odd = os.path.join(str(tmp_path), os.fsdecode(b"bad\xff\nname.wav"))
    with open(odd, "w") as f:
        f.write("not audio\n" * 20)
    with pytest.raises(AudioError) as info:
        load_audio(odd, 16000)
    assert str(info.value).startswith(display_path(odd) + ": cannot decode")
    assert "\n" not in str(info.value) and "\udcff" not in str(info.value)
    analysed, skipped = analyse_items([odd], FeatureConfig())
    assert analysed == [] and skipped[0][0] == odd
    assert skipped[0][1].startswith("cannot decode")
    os.symlink(odd, os.path.join(str(tmp_path), "a_link.wav"))
    reasons = dict(scan_folders([tmp_path], [".wav"]).skipped)
    assert reasons[os.path.join(str(tmp_path), "a_link.wav")] == f"same file as {display_path(odd)}"
    with pytest.raises(AudioError) as info:  # nothing usable: the model's own message
        SpectralStateGuidedSynthesis(n_states=3).extract_features_from_files([odd], 16000)
    assert "\n" not in str(info.value) and display_path(odd) in str(info.value)


def test_a_checkpoint_trained_on_a_name_that_is_not_utf8_saves_and_loads(tmp_path):
    path = os.path.join(str(tmp_path), os.fsdecode(b"m\xfcsic.wav"))
    sf.write(tmp_path / "plain.wav", music_like(np.random.default_rng(7), 3.0), 16000)
    os.rename(tmp_path / "plain.wav", path)
    model = SpectralStateGuidedSynthesis(n_states=3, seed=2).train([path], 16000, n_em_iterations=1)
    out = model.save_checkpoint(tmp_path / "m.safetensors")
    loaded = SpectralStateGuidedSynthesis.load_checkpoint(out)
    assert [s["path"] for s in loaded.sources] == [path]
    assert loaded.sources == model.sources


# ------------------------------------------------------------ other endings
def test_default_endings_hold_every_ogg_ending():
    assert {".oga", ".opus", ".ogg", ".mp3", ".wav", ".flac"} <= set(DEFAULT_EXTENSIONS)


def test_the_scan_counts_audio_with_other_endings(tmp_path):
    (tmp_path / "sub").mkdir()
    names = ["a.M4A", "b.m4a", "c.opus", "d.aiff", "e.wav", "f.txt", "g.jpg", "sub/h.flac", "i.mp3"]
    for i, name in enumerate(names):
        (tmp_path / name).write_bytes(bytes([i]) * 10)
    flat = scan_folders([tmp_path], [".mp3"])
    assert flat.files == [str(tmp_path / "i.mp3")]
    assert flat.other_endings == {".aiff": 1, ".m4a": 2, ".opus": 1, ".wav": 1}
    deep = scan_folders([tmp_path], ["mp3", ".wav"], recursive=True)
    assert deep.other_endings == {".aiff": 1, ".flac": 1, ".m4a": 2, ".opus": 1}
    assert scan_folders([tmp_path], [".xyz"]).other_endings == {".aiff": 1, ".m4a": 2, ".mp3": 1, ".opus": 1,
                                                                ".wav": 1}


# ------------------------------------------------------------ native stderr
SILENCED = textwrap.dedent("""
    import os, sys, warnings
    from ssgs.audio import native_stderr_silenced
    before = os.fstat(2)
    with native_stderr_silenced():
        os.write(2, b"native chatter\\n")
        with native_stderr_silenced():
            os.write(2, b"nested chatter\\n")
            print("python line", file=sys.stderr)
        warnings.warn("a python warning")
        from tqdm import tqdm
        for _ in tqdm(range(3), desc="the bar", file=None, disable=False):
            pass
    try:
        with native_stderr_silenced():
            raise KeyError("boom")
    except KeyError:
        pass
    after = os.fstat(2)
    assert (before.st_dev, before.st_ino) == (after.st_dev, after.st_ino)
    os.write(2, b"native after\\n")
    print("python after", file=sys.stderr)
""")


def test_native_stderr_is_silenced_and_python_stderr_is_not():
    proc = subprocess.run([sys.executable, "-c", SILENCED], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for shown in ("python line", "a python warning", "the bar", "native after", "python after"):
        assert shown in proc.stderr, proc.stderr
    assert "chatter" not in proc.stderr


DECODING = textwrap.dedent("""
    import sys
    from ssgs.corpus import analyse_items
    from ssgs.features import FeatureConfig
    analysed, skipped = analyse_items([sys.argv[1]], FeatureConfig(), progress=True)
    print(len(analysed), skipped)
""")


def test_decoder_chatter_does_not_reach_the_console(long_mp3, tmp_path):
    head = tmp_path / "head.mp3"
    write_head(long_mp3, head, 1 / 6)
    proc = subprocess.run([sys.executable, "-c", DECODING, str(head)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1 []"
    assert "Xing" not in proc.stderr and "libmpg123" not in proc.stderr
    assert "truncated:" in proc.stderr  # the warning is Python's: still shown


def test_native_stderr_is_restored_after_an_exception_in_nested_blocks():
    before, stream = os.fstat(2), sys.stderr
    with pytest.raises(KeyError):
        with native_stderr_silenced():
            with native_stderr_silenced():
                inside = os.fstat(2)
                raise KeyError("boom")
    after = os.fstat(2)
    assert (inside.st_dev, inside.st_ino) == (os.stat(os.devnull).st_dev, os.stat(os.devnull).st_ino)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)
    assert sys.stderr is stream


def test_native_stderr_silenced_without_a_descriptor_2(tmp_path):
    script = "import os\nos.close(2)\nfrom ssgs.audio import native_stderr_silenced\n" \
             "with native_stderr_silenced():\n    print('inside')\nprint('after')\n"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    assert proc.stdout.split() == ["inside", "after"]


# ------------------------------------------------------------ odd signals
def odd_signals(rng, sr):
    n, t = 3 * sr, np.arange(3 * sr) / sr
    return {
        "silent_then_tone": np.concatenate([np.zeros(n), 0.3 * np.sin(2 * np.pi * 220 * t[: n // 3])]),
        "dc": np.full(n, 0.25),
        "impulse": np.eye(1, n, n // 2)[0],
        "clipped_square": np.clip(10 * np.sign(np.sin(2 * np.pi * 100 * t)), -1, 1),
        "nyquist": 0.5 * np.cos(np.pi * np.arange(n)),
        "one_lsb": np.round(0.3 * rng.standard_normal(n)) / 32768,
        "sparse_clicks": np.where(rng.random(n) > 0.9995, 1.0, 0.0),
        "step": np.concatenate([np.zeros(n // 2), np.full(n - n // 2, 0.5)]),
    }


def test_odd_audio_is_analysed_without_numpy_warnings(tmp_path, rng):
    paths = []
    for sr in (16000, 44100):
        for name, x in odd_signals(rng, sr).items():
            paths.append(tmp_path / f"{name}_{sr}.wav")
            sf.write(paths[-1], x, sr, subtype="FLOAT")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        analysed, skipped = analyse_items(paths, FeatureConfig(), workers=2, augment=True)
    assert skipped == []
    assert len(analysed) == 5 * len(paths)
    assert all(np.isfinite(f.observations).all() for f, _ in analysed)
