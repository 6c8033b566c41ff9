"""The exceptions ssgs raises for problems a user can fix."""

__all__ = ["AudioError", "CheckpointError", "SSGSError"]


class SSGSError(Exception):
    """Base class of every ssgs error."""


class CheckpointError(SSGSError, ValueError):
    """A checkpoint that cannot be trusted: unreadable, incomplete or corrupt."""


class AudioError(SSGSError, ValueError):
    """Audio that cannot be used: unreadable, empty, or otherwise unusable."""
