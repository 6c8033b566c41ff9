"""Runs in per-frame sequences: which frame pairs lie in one sequence, the
stretches of a flag, each state's run lengths and whether a geometric
distribution fits them.

Every function takes the sequences' lengths (frames) so that nothing runs
across the boundary between two training files.
"""

from __future__ import annotations

import numpy as np
import scipy.stats

__all__ = [
    "BATCH_FRAMES",
    "RUN_QUANTILES",
    "end_shares",
    "geometric_rejected",
    "mean_run_lengths",
    "silence_run_lengths",
    "state_run_quantiles",
    "sequence_batches",
    "state_runs",
    "true_runs",
    "within_sequences",
]

RUN_QUANTILES = 33  # a state's run lengths, where a geometric does not fit them, are kept as this many quantiles
RUN_TEST_LEVEL = 0.01  # a state's run lengths are called not geometric when a G-test rejects it at this level
RUN_TEST_MIN = 10  # runs a state needs before its lengths are tested
BATCH_FRAMES = 1 << 17  # statistics over a long corpus are summed over batches of whole sequences of this many frames


def sequence_batches(lengths, limit=None):
    """Consecutive whole sequences (of ``lengths`` frames) in batches of
    at most ``limit`` frames (default :data:`BATCH_FRAMES`; a longer
    sequence alone): a list of (frame slice, sequence slice). A corpus
    within ``limit`` frames is one batch."""
    limit = BATCH_FRAMES if limit is None else limit
    lengths = np.asarray(lengths, dtype=np.int64)
    out, first, frame, count = [], 0, 0, 0
    for i, n in enumerate(lengths):
        if count and count + n > limit:
            out.append((slice(frame, frame + count), slice(first, i)))
            first, frame, count = i, frame + count, 0
        count += int(n)
    out.append((slice(frame, frame + count), slice(first, len(lengths))))
    return out


def within_sequences(n_frames, lengths):
    """[n_frames - 1] bool: which consecutive frame pairs lie in one
    sequence (of ``lengths`` frames; None: one sequence)."""
    pair = np.ones(max(n_frames - 1, 0), bool)
    if lengths is not None and len(lengths) > 1:
        pair[np.cumsum(lengths)[:-1] - 1] = False
    return pair


def true_runs(flags, lengths=None):
    """Starts and ends (exclusive) of the stretches of True in ``flags`` [T],
    in order, each cut where its sequence (of ``lengths`` frames; None: one
    sequence) ends."""
    flags = np.asarray(flags, dtype=bool)
    cut = ~within_sequences(flags.shape[0], lengths)
    begins, finishes = flags.copy(), flags.copy()
    begins[1:] &= ~flags[:-1] | cut
    finishes[:-1] &= ~flags[1:] | cut
    return np.flatnonzero(begins), np.flatnonzero(finishes) + 1


def state_runs(labels, lengths, n_states):
    """Per state, the lengths of its runs in ``labels`` (runs cut where a
    sequence of ``lengths`` frames ends), as a list of int64 arrays."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return [np.zeros(0, np.int64) for _ in range(n_states)]
    first = np.ones(labels.shape[0], bool)
    first[1:] = labels[1:] != labels[:-1]
    first[np.cumsum(lengths)[:-1]] = True
    starts = np.flatnonzero(first)
    runs = np.diff(np.append(starts, labels.shape[0]))
    owner = labels[starts]
    return [runs[owner == s] for s in range(n_states)]


def end_shares(labels, lengths, n_states):
    """Per state, the share of its runs in ``labels`` (:func:`state_runs`)
    that end a sequence (of ``lengths`` frames): the chance that a chain
    ends when a run of the state ends. A state a sequence fades out in is
    left this way in the training; without it such a state, whose
    transitions lead only back into it, would hold a generated chain for
    good. 0 for states with no run."""
    labels = np.asarray(labels, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    last = np.cumsum(lengths)[lengths > 0] - 1
    ends = np.bincount(labels[last], minlength=n_states).astype(np.float64)
    runs = np.array([r.size for r in state_runs(labels, lengths, n_states)], dtype=np.float64)
    return np.where(runs > 0, ends / np.maximum(runs, 1.0), 0.0)


def mean_run_lengths(labels, lengths, n_states):
    """Per state, the mean length of its runs in ``labels`` (one state per
    frame; sequences of ``lengths`` frames, a run ends where its sequence
    does; :func:`state_runs`); 0 for states with no run."""
    return np.array([runs.mean() if runs.size else 0.0 for runs in state_runs(labels, lengths, n_states)])


def silence_run_lengths(silent, lengths=None):
    """Lengths (frames) of the stretches of consecutive silent frames
    ``silent`` [T] within each sequence (``lengths``; one sequence when
    None), in order."""
    starts, ends = true_runs(silent, lengths)
    return ends - starts


def geometric_rejected(runs, level=RUN_TEST_LEVEL, min_runs=RUN_TEST_MIN):
    """Whether a G-test rejects, at ``level``, a geometric distribution
    (from 1, its mean the runs' mean) for the run lengths ``runs``: the
    lengths 1, 2, ... each a class while a geometric expects five or more
    runs of it, the rest one class; one degree of freedom fewer for the
    fitted mean. False for fewer than ``min_runs`` runs or fewer than three
    classes (too little to tell)."""
    runs = np.asarray(runs, dtype=np.int64)
    n = runs.size
    if n < min_runs or runs.max(initial=0) < 2:
        return False
    p = 1.0 / runs.mean()
    k = 1  # classes 1 .. k - 1 on their own, then >= k
    while n * p * (1.0 - p) ** (k - 1) >= 5.0:  # an empty tail class counts too (runs never past 2)
        k += 1
    if k < 3:
        return False
    observed = np.append(np.bincount(runs, minlength=k)[1:k], np.sum(runs >= k)).astype(np.float64)
    expected = np.append(n * p * (1.0 - p) ** np.arange(k - 1), n * (1.0 - p) ** (k - 1))
    seen = observed > 0
    g = 2.0 * np.sum(observed[seen] * np.log(observed[seen] / expected[seen]))
    return bool(scipy.stats.chi2.sf(g, observed.size - 2) < level)


def state_run_quantiles(labels, lengths, n_states, quantiles=RUN_QUANTILES):
    """[n_states, quantiles]: the quantiles of each state's run lengths in
    ``labels`` (the training frames' most likely states; runs cut by a
    sequence's end included) where :func:`geometric_rejected` says a
    geometric does not fit them, zeros where it does; None when it fits
    every state's (see docs/durations-and-silence.md)."""
    out = np.zeros((n_states, quantiles))
    grid = np.linspace(0.0, 1.0, quantiles)
    flagged = False
    for s, runs in enumerate(state_runs(labels, lengths, n_states)):
        if geometric_rejected(runs):
            out[s] = np.quantile(runs, grid)
            flagged = True
    return out if flagged else None

