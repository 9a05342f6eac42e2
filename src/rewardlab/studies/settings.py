"""A study's settings from three layers: its config dataclass's defaults, a JSON file of settings (the ``config`` of a
past run's results.json, so a run reruns from its record), and the settings a user typed, each over the one before.

Bad settings are one clear error (`DataError` naming the file for the file, `RewardlabError` for a value the config
refuses), never a TypeError from deep inside a dataclass."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

from rewardlab.errors import DataError, RewardlabError

C = TypeVar("C")


def study_config(config_class: type[C], settings: Mapping[str, Any] | None = None,
                 path: str | Path | None = None) -> C:
    """``settings`` over the JSON settings at ``path`` over ``config_class``'s defaults (JSON lists become tuples)."""
    merged: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"cannot read study settings: {exc}", source=path) from None
        if not isinstance(loaded, dict):
            raise DataError("expected a JSON object of settings", source=path)
        known = {f.name for f in fields(config_class)}  # type: ignore[arg-type]
        unknown = sorted(set(loaded) - known)
        if unknown:
            raise DataError(f"unknown settings {unknown}; known: {', '.join(sorted(known))}", source=path)
        merged.update({k: tuple(v) if isinstance(v, list) else v for k, v in loaded.items()})
    merged.update(settings or {})
    try:
        return config_class(**merged)
    except (TypeError, ValueError) as exc:  # an unknown keyword, or a value __post_init__ refuses
        raise RewardlabError(f"bad study settings: {exc}") from None
