"""The voice: what generation reads of a model (HMM parameters, excitation
statistics, bounds, sizes), what it derives from them with a fixed seed
(the excitation's colour, the chain's own silences), and the model's own
rendering along a state path."""

from __future__ import annotations

import functools
import hashlib

import numpy as np

from ssgs.excitation_model import KINDS

from ssgs.synthesis.excitation import (COLOUR_HOPS, excitation_colour, shape_coefficients,
                                       state_shaped_excitation, synthetic_excitation)
from ssgs.synthesis.paths import chain_silence_runs, duration_corrected_transitions, model_path
from ssgs.synthesis.render import render
from ssgs.synthesis.segments import FramePlan
from ssgs.synthesis.trajectory import model_trajectory

__all__ = ["DERIVED_SEED", "Voice", "model_plan", "render_model", "tensor_shapes"]

DERIVED_SEED = 0x5C01  # the fixed seed of what generation derives from the model itself


class Voice:
    """What generation needs of a model, and what it derives from it.

    Parameters
    ----------
    params : ssgs.hmm.HMMParams
    excitation : ssgs.excitation_model.ExcitationModel
    hop : int
        Samples per frame.
    sample_rate : int
        The model's rate.
    observation_range : ndarray [2, D], optional
        Per-dimension bounds of the drawn frames.
    piece_lengths : sequence of int
        Frames of each training sequence (fidelity 0 walks pieces as long).
    smoothness_weight : float
        The smooth decoder's weight of spectral distance.
    n_threads : int
        Threads for the kernels (0: all cores).

    Notes
    -----
    The derived values (:meth:`colour`, :meth:`chain_runs`) are computed
    once per voice: a voice is made anew whenever what it reads changes
    (:attr:`key`). They can be saved (:meth:`derived_tensors`) and taken
    back by a voice of the same key (:meth:`preload`), so a loaded model
    derives nothing before it sounds.
    """

    def __init__(self, params, excitation, hop, sample_rate, observation_range=None, piece_lengths=(),
                 smoothness_weight=0.5, n_threads=0):
        self.params = params
        self.excitation = excitation
        self.hop = int(hop)
        self.sample_rate = int(sample_rate)
        self.observation_range = observation_range
        self.piece_lengths = list(piece_lengths)
        self.smoothness_weight = smoothness_weight
        self.n_threads = n_threads
        self._derived = {}

    @functools.cached_property
    def key(self) -> bytes:
        """A digest of everything the derived values depend on (what the
        voice reads is fixed when it is made)."""
        p, exc = self.params, self.excitation
        arrays = [p.startprob, p.transmat, p.means, p.covars, *exc.tensors().values(),
                  np.asarray(self.piece_lengths, np.int64), np.array([self.hop, self.sample_rate], np.int64)]
        if self.observation_range is not None:
            arrays.append(np.asarray(self.observation_range, np.float64))
        return hashlib.blake2b(b"".join(np.ascontiguousarray(a).tobytes() for a in arrays), digest_size=16).digest()

    def derived_tensors(self):
        """Every derived value (each kind's colour, the chain's silences) as
        named arrays, with the :attr:`key` they belong to."""
        for kind in KINDS:
            self.colour(kind)
        out = {"voice_key": np.frombuffer(self.key, np.uint8).copy(),
               "voice_colour": np.concatenate([self._derived[f"colour {kind}"] for kind in KINDS])}
        runs = self.chain_runs()
        if runs is not None:
            out["voice_silence_runs"] = np.asarray(runs, np.int64)
        return out

    def preload(self, tensors):
        """Take back :meth:`derived_tensors` saved by a voice of the same key
        (anything else is left to be derived)."""
        if "voice_key" not in tensors or bytes(np.asarray(tensors["voice_key"], np.uint8)) != self.key:
            return
        colours = np.asarray(tensors["voice_colour"], np.float64)
        for i, kind in enumerate(KINDS[: colours.shape[0]]):
            self._derived[f"colour {kind}"] = colours[i : i + 1]
        if "voice_silence_runs" in tensors and self.excitation.silence_runs is not None:
            self._derived["silences"] = np.asarray(tensors["voice_silence_runs"], np.int64)

    @property
    def lpc_order(self) -> int:
        return self.params.means.shape[1] - 2

    def derived(self, name, compute):
        """``compute()``, computed once for this voice and kept under ``name``."""
        if name not in self._derived:
            self._derived[name] = compute()
        return self._derived[name]

    def transitions(self):
        """The duration-corrected transition matrix paths are sampled from."""
        return duration_corrected_transitions(self.params.transmat, self.excitation.mean_run)

    def chain_runs(self):
        """The sorted lengths of the chain's own silences (see
        :func:`ssgs.synthesis.paths.chain_silence_runs`), or None for a
        model without the training's silence lengths."""
        exc = self.excitation
        if exc.silence_runs is None:
            return None
        return self.derived("silences", lambda: chain_silence_runs(
            self.transitions(), exc.occupancy / exc.occupancy.sum(), exc, seed=DERIVED_SEED))

    def colour(self, kind):
        """The colour of the model's own synthetic excitation of ``kind``,
        measured over COLOUR_HOPS hops drawn from the model with a fixed
        seed (the caller's random stream is not touched), with the model's
        equaliser for ``kind`` added."""
        def measure():
            rng = np.random.default_rng(DERIVED_SEED)
            path = model_path(self, COLOUR_HOPS, rng)
            _, f0, voicing, onset, _ = model_trajectory(self.params, self.excitation, path, rng,
                                                        bounds=self.observation_range, kind=kind)
            e = synthetic_excitation(kind, f0, voicing, onset, self.hop, self.sample_rate,
                                     int(rng.integers(2**63)))
            return excitation_colour(e, self.hop)

        return self.excitation.equalised(self.derived(f"colour {kind}", measure), kind)


def render_model(voice, path, kind, rng, voicing_offset=None):
    """The model alone along a state path: frames drawn from the states, the
    synthetic excitation of ``kind`` (its colour taken out) given each
    state's residual shape, frames of silent states silent. With a trial
    ``voicing_offset`` (a calibration's) the colour is measured on the
    excitation itself (plus the model's equaliser, if any). Returns
    (audio [len(path) * hop at most], F0 per frame)."""
    hop, p, exc = voice.hop, voice.lpc_order, voice.excitation
    obs, f0, voicing, onset, audible, draws = model_trajectory(
        voice.params, exc, path, rng, bounds=voice.observation_range, kind=kind, voicing_offset=voicing_offset,
        return_draws=True)
    e = synthetic_excitation(kind, f0, voicing, onset, hop, voice.sample_rate, int(rng.integers(2**63)))
    colour = voice.colour(kind) if voicing_offset is None else exc.equalised(excitation_colour(e, hop), kind)
    e = state_shaped_excitation(exc, e, path, hop, rng, colour=colour, deviations=draws)
    y, _ = render(obs[:, :p], obs[:, p], e, hop, audible=audible)
    return y, f0


def model_plan(voice, path, kind, rng):
    """What :func:`render_model` renders along ``path``, planned per frame
    (:class:`ssgs.synthesis.segments.FramePlan`), drawing from ``rng`` in
    the same order, so that the plan's rendering of all its frames is
    :func:`render_model`'s audio. Returns (plan, F0 per frame)."""
    p, exc = voice.lpc_order, voice.excitation
    obs, f0, voicing, onset, audible, draws = model_trajectory(
        voice.params, exc, path, rng, bounds=voice.observation_range, kind=kind, return_draws=True)
    seed = int(rng.integers(2**63))
    colour = voice.colour(kind)
    coef = shape_coefficients(exc, path, rng, deviations=draws)
    plan = FramePlan(kind, voice.hop, voice.sample_rate, obs[:, :p], obs[:, p], f0, voicing, onset, audible,
                     np.asarray(path), coef, exc, colour, seed)
    return plan, f0


def tensor_shapes(hop):
    """The shape of each derived-value tensor a checkpoint may hold."""
    return {"voice_key": (16,), "voice_colour": (None, hop // 2 + 1), "voice_silence_runs": (None,)}
