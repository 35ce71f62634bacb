"""Typed exceptions for everything a caller can get wrong.

Every error names the input it is about (a file path, ``<bytes>``, ``<array>`` ...) and the reason,
so a batch job's log says which file to look at.
"""

from __future__ import annotations


class SigverifyError(Exception):
    """Base class of every error sigverify raises on purpose."""


class InputError(SigverifyError, ValueError):
    """A caller-supplied input is unusable. ``source`` names it, ``reason`` says why."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")


class InvalidImage(InputError):
    """Empty, truncated, not an image, or in a form sigverify cannot read."""


class ImageTooLarge(InputError):
    """More pixels (or bytes) than the configured limit; refused before decoding."""


class NoSignatureFound(InputError):
    """The image decodes but holds no ink (a blank page or a flat scan)."""


class DatasetError(SigverifyError, ValueError):
    """A dataset folder is missing, empty or in no layout sigverify knows."""


class ModelError(SigverifyError, ValueError):
    """A model artifact is missing, truncated, corrupt or inconsistent with its metadata."""


class ReferencesError(InputError):
    """References for verification are missing or unusable (none given, mixed kinds ...)."""
