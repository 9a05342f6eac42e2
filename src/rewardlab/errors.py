"""Errors a user can act on: each names where the problem is (file, row, field)."""

from __future__ import annotations

from pathlib import Path


class RewardlabError(Exception):
    """Base class for errors the CLI reports as one clean line instead of a traceback."""


class DataError(RewardlabError):
    """Bad input data, located as precisely as we can: file, row (1-based) and field."""

    def __init__(
        self,
        message: str,
        *,
        source: str | Path | None = None,
        row: int | None = None,
        field: str | None = None,
    ) -> None:
        self.source = str(source) if source is not None else None
        self.row = row
        self.field = field
        self.reason = message
        where = []
        if self.source is not None:
            where.append(self.source)
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field '{field}'")
        prefix = ", ".join(where)
        # a lone surrogate from the data would make the message itself unprintable: show it escaped instead
        text = f"{prefix}: {message}" if prefix else message
        super().__init__(text.encode("utf-8", "backslashreplace").decode("utf-8"))


class ModelError(RewardlabError):
    """A reward model cannot be built, loaded or used as asked."""


class EncoderError(RewardlabError):
    """An encoder cannot be built from its spec, or its cache cannot be used."""


class InvalidValueError(RewardlabError, ValueError):
    """An argument outside what a function accepts (a bad k, temperature, strategy...).

    It is also a ``ValueError``, so code that catches the standard exception keeps working, while the CLI reports
    it as one clean line like every other `RewardlabError`.
    """


class UnknownIdError(RewardlabError, KeyError):
    """A feedback row refers to a prompt or response id the dataset does not have (also a ``KeyError``)."""

    def __str__(self) -> str:  # KeyError quotes its message; a user should read it plainly
        return str(self.args[0]) if self.args else ""
