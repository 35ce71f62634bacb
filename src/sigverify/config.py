"""Settings dataclasses read from TOML: one loader for training, detector and cleaner configs."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from typing import Any, ClassVar, TypeVar

T = TypeVar("T", bound="TomlConfig")


class TomlConfig:
    """Mixin for a settings dataclass: ``from_file`` (the ``[SECTION]`` table, or the whole file),
    ``from_dict`` refusing unknown keys by name, and ``to_dict``."""

    SECTION: ClassVar[str]  # the TOML table holding the settings, e.g. "train"
    LABEL: ClassVar[str]  # how error messages name them, e.g. "training"

    @classmethod
    def from_file(cls: type[T], path: str | os.PathLike) -> T:
        with open(path, "rb") as handle:
            values = tomllib.load(handle)
        return cls.from_dict(values.get(cls.SECTION, values))

    @classmethod
    def from_dict(cls: type[T], values: dict[str, Any]) -> T:
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown {cls.LABEL} settings: {sorted(unknown)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
