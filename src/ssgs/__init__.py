"""ssgs: Spectral-State Guided Synthesis.

Gaussian hidden Markov models over per-frame LPC descriptions of audio, and
audio made from them by driving LPC filters with an excitation.
"""

from pathlib import Path as _Path

from ssgs._version import __version__
from ssgs.errors import (AudioError, AudioWarning, CheckpointError, CheckpointNotFoundError,
                         ReferenceCheckpointWarning, SSGSError, SSGSWarning, StateCountWarning)
from ssgs.model import SpectralStateGuidedSynthesis

__all__ = ["AudioError", "AudioWarning", "CheckpointError", "CheckpointNotFoundError", "ReferenceCheckpointWarning",
           "SSGSError", "SSGSWarning", "SpectralStateGuidedSynthesis", "StateCountWarning", "__version__", "get_include"]


def get_include() -> str:
    """The folder holding the C headers of the ssgs kernels.

    Compile C code or Cython extensions that use the kernels with this folder
    on the include path (as with ``numpy.get_include()``). From Cython,
    ``from ssgs.ckernels cimport estep`` gives the kernels without linking
    anything; from C, ``#include "ssgs_hmm.h"`` gives the prototypes.
    """
    return str(_Path(__file__).resolve().parent / "_core" / "c")
