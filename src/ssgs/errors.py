"""The exceptions ssgs raises for problems a user can fix."""

__all__ = ["AudioError", "AudioWarning", "CheckpointError", "CheckpointNotFoundError", "ReferenceCheckpointWarning", "SSGSError"]


class SSGSError(Exception):
    """Base class of every ssgs error."""


class CheckpointError(SSGSError, ValueError):
    """A checkpoint that cannot be trusted: unreadable, incomplete or corrupt."""


class CheckpointNotFoundError(CheckpointError):
    """A checkpoint path that names no file (missing, or a folder): a mistake in the command, not damage."""


class AudioError(SSGSError, ValueError):
    """Audio that cannot be used: unreadable, empty, or otherwise unusable."""


class AudioWarning(UserWarning):
    """Audio used with a caveat the user should know of (a truncated file:
    only its decodable part is used)."""


class ReferenceCheckpointWarning(UserWarning):
    """A checkpoint of the reference implementation, converted on load: its
    contents could not be verified, and some of the model may be
    approximated (:mod:`ssgs.reference`)."""
