"""The exceptions ssgs raises for problems a user can fix."""

__all__ = ["AudioError", "AudioWarning", "CheckpointError", "CheckpointNotFoundError", "ReferenceCheckpointWarning",
           "SSGSError", "SSGSWarning", "StateCountWarning"]


class SSGSError(Exception):
    """Base class of every ssgs error."""


class CheckpointError(SSGSError, ValueError):
    """A checkpoint that cannot be trusted: unreadable, incomplete or corrupt."""


class CheckpointNotFoundError(CheckpointError):
    """A checkpoint path that names no file (missing, or a folder): a mistake in the command, not damage."""


class AudioError(SSGSError, ValueError):
    """Audio that cannot be used: unreadable, empty, or otherwise unusable."""


class SSGSWarning(UserWarning):
    """Base class of every ssgs warning: something done with a caveat the
    user should know of."""


class AudioWarning(SSGSWarning):
    """Audio used with a caveat the user should know of (a truncated file:
    only its decodable part is used)."""


class ReferenceCheckpointWarning(SSGSWarning):
    """A checkpoint of the reference implementation, converted on load: its
    contents could not be verified, and some of the model may be
    approximated (:mod:`ssgs.reference`)."""


class StateCountWarning(SSGSWarning):
    """The model has fewer states than asked for: the training audio has
    fewer distinct frames than that (recorded in the training history)."""
