"""The output stages of generation, a stretch at a time: audio on the frame
grid cut to the samples asked for, resampled (a soxr stream), limited and
handed out in blocks of any size.

Every stage works on the segments of
:func:`ssgs.synthesis.segments.joined_segments` (a fixed grid), never on
the caller's blocks, so the samples do not depend on the block size: a
whole generation is its stream concatenated.
"""

from __future__ import annotations

import numpy as np

from ssgs.synthesis.render import soft_limit

__all__ = ["blocks", "limited", "resampled", "trimmed"]


def trimmed(chunks, offset, n):
    """``chunks`` without their first ``offset`` samples, ending after ``n``
    samples (None: never)."""
    done = 0
    for y in chunks:
        if offset:
            skip = min(offset, y.shape[0])
            y, offset = y[skip:], offset - skip
        if n is not None:
            y = y[: n - done]
        if y.shape[0]:
            done += y.shape[0]
            yield y
        if n is not None and done >= n:
            return


def _with_last(chunks):
    """(chunk, is_last) pairs."""
    it = iter(chunks)
    try:
        previous = next(it)
    except StopIteration:
        return
    for y in it:
        yield previous, False
        previous = y
    yield previous, True


def resampled(chunks, in_rate, out_rate):
    """``chunks`` at ``in_rate`` as one signal at ``out_rate``: one
    soxr.ResampleStream (HQ) fed chunk by chunk, flushed after the last."""
    if in_rate == out_rate:
        yield from chunks
        return
    import soxr

    stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype="float64", quality="HQ")
    for y, last in _with_last(chunks):
        out = stream.resample_chunk(np.ascontiguousarray(y, dtype=np.float64), last=last)
        if out.shape[0]:
            yield out


def limited(chunks, limit):
    """``chunks`` as float32, each through the soft limiter when ``limit``
    (:func:`ssgs.synthesis.render.soft_limit`: only a chunk with a sample
    over full scale changes)."""
    for y in chunks:
        yield np.ascontiguousarray(soft_limit(y) if limit else y, dtype=np.float32)


def blocks(chunks, size, on_block=None):
    """``chunks`` re-cut into blocks of ``size`` samples (the last one
    shorter); ``on_block(block)`` is called before each is handed out."""
    pending, held = [], 0
    for y in chunks:
        pending.append(y)
        held += y.shape[0]
        while held >= size:
            joined = np.concatenate(pending) if len(pending) > 1 else pending[0]
            block, rest = joined[:size], joined[size:]
            pending, held = ([rest] if rest.shape[0] else []), rest.shape[0]
            if on_block is not None:
                on_block(block)
            yield block
    if held:
        block = np.concatenate(pending)
        if on_block is not None:
            on_block(block)
        yield block
