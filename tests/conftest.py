"""Shared fixtures. Tests that need the real datasets skip, with the reason, when ../shared is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
FORMATS = FIXTURES / "formats"
SHARED_DATA = Path(os.environ.get("SIGVERIFY_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_dataset(name: str) -> Path:
    """Path of a dataset in ../shared/data, or skip the test saying why."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"needs the shared dataset {name!r} at {path} (CI places ../shared beside the clone)")
    return path


@pytest.fixture
def cedar_root() -> Path:
    return shared_dataset("cedar")


@pytest.fixture
def sigcomp_root() -> Path:
    return shared_dataset("sigcomp2009")


@pytest.fixture
def tobacco_root() -> Path:
    return shared_dataset("tobacco800_signatures")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test writes preprocessed caches into a temporary folder, never ~/.cache."""
    monkeypatch.setenv("SIGVERIFY_CACHE", str(tmp_path_factory.mktemp("cache")))
