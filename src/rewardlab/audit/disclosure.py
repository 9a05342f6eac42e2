"""The disclosure block of a reward-model card: what only the people behind the model can say.

Casper et al. (2023, §6) ask RLHF work to disclose how the feedback was gathered (who the annotators were, what they
were told, how they were paid and screened), the reward model's known limits and its intended use. None of this can
be measured, so the user writes it in a small TOML or JSON file and the card prints it; a field left out is shown as
"not provided" rather than hidden, so its absence is visible too.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from rewardlab.errors import DataError

#: field -> what it asks, in the order the card shows them
DISCLOSURE_FIELDS: dict[str, str] = {
    "feedback_source": "Where the feedback came from (people, an AI judge, a simulation) and how it was collected",
    "annotators": "Who the annotators were, how they were recruited, screened and paid",
    "instructions": "What annotators were told (or a link to the guidelines)",
    "known_limits": "Known limits and failure modes of the data and the reward model",
    "intended_use": "What the reward model is meant to be used for",
    "out_of_scope_use": "Uses it was not built or checked for",
    "contact": "Who to ask about it",
}
NOT_PROVIDED = "not provided"


def read_disclosure(path: str | Path | None) -> dict[str, str]:
    """Every field of `DISCLOSURE_FIELDS`, from ``path`` (``.toml`` or ``.json``; a top-level table) where given.

    A value may be text or a list of texts (joined as lines). Unknown keys are refused, naming them, so a typo cannot
    leave a field silently "not provided"."""
    given: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise DataError("disclosure file not found", source=path)
        text = path.read_text(encoding="utf-8")
        try:
            given = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"not valid {'TOML' if path.suffix.lower() == '.toml' else 'JSON'}: {exc}", source=path) from exc
        if not isinstance(given, dict):
            raise DataError("expected a table of fields at the top level", source=path)
        unknown = sorted(set(given) - set(DISCLOSURE_FIELDS))
        if unknown:
            raise DataError(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(DISCLOSURE_FIELDS)}", source=path)
    disclosure = {}
    for key in DISCLOSURE_FIELDS:
        value = given.get(key)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = "\n".join(value)
        if value is not None and not isinstance(value, str):
            raise DataError(f"expected text or a list of texts, got {type(value).__name__}", source=path, field=key)
        disclosure[key] = value.strip() if value and value.strip() else NOT_PROVIDED
    return disclosure
