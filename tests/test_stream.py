"""Generation as a stream (model.generate_stream, ssgs generate block by
block, -o -): the blocks are generate()'s bytes whatever their size, and
memory does not grow with the duration."""

import io
import subprocess
import sys
import tracemalloc

import corpora
import numpy as np
import pytest
import soundfile as sf

from ssgs.synthesis.segments import SEGMENT_FRAMES

SR = 16000


@pytest.fixture(scope="module")
def model():
    return corpora.music_model(corpora.music_audio())


def _long(model):
    """A duration over two segments and a bit, not a whole number of hops."""
    return (2 * SEGMENT_FRAMES + 37) * model.hop_size / SR + 0.0123


def _streamed(model, duration, block, **kw):
    blocks = list(model.generate_stream(duration, block_seconds=block, **kw))
    return blocks, np.concatenate(blocks)


@pytest.mark.parametrize("fidelity", [0.0, 0.3, 0.5, 1.0])
@pytest.mark.parametrize("excitation", ["Karplus-Strong", "Wavelet", "Noise"])
def test_stream_is_generate_at_every_fidelity_and_excitation(model, fidelity, excitation):
    duration = _long(model)
    kw = dict(fidelity=fidelity, excitation_type=excitation, seed=5, sample_rate=SR)
    whole = model.generate(duration, **kw)
    blocks, joined = _streamed(model, duration, 0.7, **kw)
    assert joined.dtype == np.float32 and joined.tobytes() == whole.tobytes()
    assert all(len(b) == round(0.7 * SR) for b in blocks[:-1]) and 0 < len(blocks[-1]) <= round(0.7 * SR)


@pytest.mark.parametrize("fidelity", [0.0, 0.5])
def test_smooth_decoder_streams_the_same_bytes(model, fidelity):
    duration = _long(model)
    kw = dict(fidelity=fidelity, seed=8, decoder="smooth")
    assert _streamed(model, duration, 1.3, **kw)[1].tobytes() == model.generate(duration, **kw).tobytes()


@pytest.mark.parametrize("block", [1 / SR, 100 / SR, 0.0161, 1.0, 33.3, 1000.0])
def test_any_block_size_gives_the_same_bytes(model, block):
    duration = _long(model)
    whole = model.generate(duration, seed=3, fidelity=0.3)
    assert _streamed(model, duration, block, seed=3, fidelity=0.3)[1].tobytes() == whole.tobytes()


@pytest.mark.parametrize("fidelity", [0.0, 0.5, 1.0])
def test_resampled_stream_is_generate(model, fidelity):
    duration = _long(model)
    kw = dict(seed=4, fidelity=fidelity, sample_rate=22050)
    whole = model.generate(duration, **kw)
    assert len(whole) == -(-int(round(duration * SR)) * 22050 // SR)
    assert _streamed(model, duration, 0.9, **kw)[1].tobytes() == whole.tobytes()


def test_one_segment_is_the_whole_rendering(model):
    """A generation of one segment or less is the model's rendering of its
    path whole (render_model, as generation was before it was cut into
    segments): the first segment takes the seed."""
    from ssgs.synthesis.paths import model_path
    from ssgs.synthesis.render import soft_limit
    from ssgs.synthesis.voice import render_model

    n = int(2.0 * SR)
    rng = np.random.default_rng(11)
    voice = model.voice()
    path = model_path(voice, -(-n // model.hop_size), rng)
    y, _ = render_model(voice, path, "karplus-strong", rng)
    expected = np.ascontiguousarray(soft_limit(y[:n]), dtype=np.float32)
    assert model.generate(2.0, seed=11).tobytes() == expected.tobytes()


def test_details_during_and_after_streaming(model):
    duration = _long(model)
    stream = model.generate_stream(duration, block_seconds=2.0, seed=6)
    details = model.last_generation
    assert details.n_samples == 0 and details.seed == 6
    assert len(details.state_path) == -(-int(round(duration * SR)) // model.hop_size)
    first = next(stream)
    assert details.n_samples == len(first)
    total = len(first) + sum(len(b) for b in stream)
    assert details.n_samples == total == int(round(duration * SR))
    _, whole = model.generate(duration, seed=6, return_details=True)
    assert np.array_equal(whole.state_path, details.state_path)


@pytest.mark.parametrize("decoder", ["sample", "smooth"])
def test_endless_stream_is_deterministic_and_continues(model, decoder):
    seconds = SEGMENT_FRAMES * model.hop_size / SR

    def take(k):
        stream = model.generate_stream(None, block_seconds=seconds / 2, seed=9, decoder=decoder)
        return [next(stream) for _ in range(k)], model.last_generation

    blocks, details = take(7)  # three segments and a half
    again, _ = take(7)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(blocks, again))
    assert all(len(b) == len(blocks[0]) for b in blocks)
    assert all(np.abs(b).max() > 1e-3 and np.abs(b).max() <= 1.0 for b in blocks)
    assert len(details.state_path) >= 3 * SEGMENT_FRAMES and details.n_samples == 7 * len(blocks[0])


@pytest.mark.parametrize("kwargs, name", [
    (dict(block_seconds=0), "block_seconds"),
    (dict(block_seconds=-1.0), "block_seconds"),
    (dict(block_seconds=float("inf")), "block_seconds"),
    (dict(block_seconds="x"), "block_seconds"),
    (dict(duration_seconds=0), "duration_seconds"),
    (dict(duration_seconds=-2.0), "duration_seconds"),
    (dict(duration_seconds=float("nan")), "duration_seconds"),
    (dict(duration_seconds=None, fidelity=0.5), "duration_seconds"),
    (dict(fidelity=1.5), "fidelity"),
    (dict(sample_rate=10), "sample_rate"),
    (dict(decoder="viterbi"), "decoder"),
    (dict(seed=-1), "seed"),
])
def test_bad_arguments_name_themselves(model, kwargs, name):
    kwargs = {"duration_seconds": 1.0, **kwargs}
    with pytest.raises(ValueError, match=name):
        model.generate_stream(**kwargs)


def test_stream_memory_does_not_grow_with_the_duration(model):
    """tracemalloc's peak while a stream is read is a few segments' worth,
    the same for 8 minutes as for 2, and far below a whole generation's
    (which holds the output)."""
    model.generate(1.0, seed=1)  # what the voice derives once is not counted

    def peak(run):
        tracemalloc.start()
        try:
            run()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    def read_stream(duration):
        for _ in model.generate_stream(duration, block_seconds=0.5, seed=2):
            pass

    short, long = peak(lambda: read_stream(120.0)), peak(lambda: read_stream(480.0))
    whole = peak(lambda: model.generate(480.0, seed=2))
    segment_bytes = SEGMENT_FRAMES * model.hop_size * 8
    assert long < 12 * segment_bytes
    assert long < 1.25 * short
    assert long < whole / 2


def test_generate_to_stdout_is_the_file(model, tmp_path):
    ckpt = tmp_path / "m.safetensors"
    model.save_checkpoint(ckpt)
    args = [str(ckpt), "--duration", "2.3", "--seed", "4", "--sample-rate", "22050"]
    proc = subprocess.run([sys.executable, "-m", "ssgs.generate", *args, "-o", "-"], capture_output=True,
                          timeout=120)
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout[:4] == b"RIFF" and b"wrote standard output" in proc.stderr
    piped, rate = sf.read(io.BytesIO(proc.stdout), dtype="int32")
    file_proc = subprocess.run([sys.executable, "-m", "ssgs.generate", *args, "-o", str(tmp_path / "o.wav")],
                               capture_output=True, timeout=120)
    assert file_proc.returncode == 0, file_proc.stderr
    written, rate2 = sf.read(tmp_path / "o.wav", dtype="int32")
    assert rate == rate2 == 22050 and len(piped) == -(-round(2.3 * SR) * 22050 // SR)
    assert np.array_equal(piped, written)
    assert sf.info(io.BytesIO(proc.stdout)).subtype == "PCM_24"


def test_stdout_refuses_what_a_pipe_cannot_take(model, tmp_path):
    ckpt = tmp_path / "m.safetensors"
    model.save_checkpoint(ckpt)
    proc = subprocess.run([sys.executable, "-m", "ssgs.generate", str(ckpt), "-o", "-", "--subtype", "VORBIS"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "subtype VORBIS" in proc.stderr
