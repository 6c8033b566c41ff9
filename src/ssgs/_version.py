"""The version of the installed ssgs, for whoever needs it (no module imports the package root)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ssgs")
except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
    __version__ = "0+unknown"
