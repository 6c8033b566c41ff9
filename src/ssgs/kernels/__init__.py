"""The compiled core of ssgs, validated.

Every function here checks its arguments (shapes, dtypes, finiteness,
probabilities), converts them to C-contiguous arrays of the kernel's dtype and
calls a C kernel without the GIL. Bad input raises a ``ValueError`` that names
the argument; the C code never sees it.

Conventions follow hmmlearn: ``N`` states, ``D`` features, ``T`` frames,
``startprob`` [N], ``transmat`` [N, N] (rows sum to 1), ``means`` [N, D],
``covars`` [N, D, D], ``log_frameprob`` [T, N]. LPC filters are
A(z) = 1 + sum_i a[i] z^-i with ``a[..., 0] == 1``.

``n_threads=0`` means every core this process may use; results never depend
on the number of threads.

The functions live beside their compiled twins in ``ssgs._core``:
:mod:`ssgs.kernels.hmm` (``_hmm.pyx``), :mod:`ssgs.kernels.lpc`
(``_lpc.pyx``) and :mod:`ssgs.kernels.synth` (``_synth.pyx``); the argument
checks they share are in :mod:`ssgs.kernels.checks`, the thread count in
:mod:`ssgs.kernels.threads`.
"""

from ssgs.kernels.hmm import (EStepResult, estep, forward_backward, gaussian_logpdf, sample_states, viterbi,
                              viterbi_log)
from ssgs.kernels.lpc import MAX_ORDER, lpc_analysis, lpc_residual, lpc_synthesis, pitch
from ssgs.kernels.synth import EXCITATIONS, MIN_F0, excitation, lpc_synthesis_smooth
from ssgs.kernels.threads import have_openmp, resolve_threads

__all__ = [
    "EStepResult",
    "MAX_ORDER",
    "EXCITATIONS",
    "MIN_F0",
    "estep",
    "excitation",
    "forward_backward",
    "gaussian_logpdf",
    "have_openmp",
    "lpc_analysis",
    "lpc_residual",
    "lpc_synthesis",
    "lpc_synthesis_smooth",
    "pitch",
    "resolve_threads",
    "sample_states",
    "viterbi",
    "viterbi_log",
]
