"""sigverify: offline handwritten-signature verification."""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import (  # noqa: E402
    DatasetError,
    ImageTooLarge,
    InputError,
    InvalidImage,
    ModelError,
    NoSignatureFound,
    ReferencesError,
    SigverifyError,
)
from .preprocess import PreprocessConfig, preprocess  # noqa: E402
from .api import detect, distances, load_model, represent, verify, verify_document  # noqa: E402
from .cleaning import clean  # noqa: E402

__all__ = [
    "__version__",
    "load_model",
    "detect",
    "clean",
    "represent",
    "distances",
    "verify",
    "verify_document",
    "preprocess",
    "PreprocessConfig",
    "SigverifyError",
    "InputError",
    "InvalidImage",
    "ImageTooLarge",
    "NoSignatureFound",
    "DatasetError",
    "ModelError",
    "ReferencesError",
]
