"""Measuring text in an encoder's own tokens, so that a text built from parts fits the encoder's limit.

An encoder with a tokenizer may implement `TokenAware` besides `Encoder` (the protocol stays as it was:
these members are optional). `token_meter` turns any encoder into a `TokenMeter`: exact for a
`TokenAware` encoder, by characters (`CHARS_PER_TOKEN`) for one without a tokenizer, e.g. ``hashing``.

Counts and limits here are of the text's *own* tokens: the special tokens an encoder adds around every
text ([CLS]/[SEP], a BOS) are already taken off `TokenMeter.limit`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from rewardlab.errors import EncoderError

#: the character fallback's exchange rate (English text runs ~4 characters per word piece)
CHARS_PER_TOKEN = 4
#: the token limit assumed for an encoder that names none
DEFAULT_MAX_TOKENS = 256

Keeps = Literal["start", "end"]


@runtime_checkable
class TokenAware(Protocol):
    """Optional members of an encoder that has a tokenizer.

    ``max_tokens`` is the limit the encoder truncates at, special tokens included; ``truncation_keeps`` says
    which end of a longer text survives ("start": cut on the right, "end": cut on the left).
    """

    max_tokens: int
    truncation_keeps: Keeps

    def token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """Per text, the (start, end) character offsets of each of its tokens, without special tokens."""
        ...

    def special_token_count(self) -> int:
        """How many special tokens the encoder adds to every text."""
        ...


@dataclass(frozen=True)
class TokenMeter:
    """Counts and cuts text in one encoder's tokens (or characters / `CHARS_PER_TOKEN` without a tokenizer)."""

    limit: int  # own tokens a text may have before the encoder truncates it
    keeps: Keeps  # which end of a too-long text the encoder keeps
    encoder: TokenAware | None = None  # None: the character fallback

    @property
    def exact(self) -> bool:
        return self.encoder is not None

    def spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """Token spans of each text (the fallback: one span per `CHARS_PER_TOKEN` characters)."""
        if self.encoder is not None:
            return self.encoder.token_spans(list(texts))
        return [[(i, min(i + CHARS_PER_TOKEN, len(t))) for i in range(0, len(t), CHARS_PER_TOKEN)] for t in texts]

    def count(self, texts: Sequence[str]) -> list[int]:
        return [len(s) for s in self.spans(texts)]


def head(text: str, spans: list[tuple[int, int]], n: int) -> str:
    """The first ``n`` tokens of ``text``, ended at a word boundary where one is within reach (a cut
    inside a word would tokenize differently)."""
    if n >= len(spans):
        return text
    k = n
    while k > 0 and _inside_word(text, spans[k - 1][1]) and n - k < 8:
        k -= 1
    if k == 0 or _inside_word(text, spans[k - 1][1]):
        k = n
    return text[: spans[k - 1][1]] if k else ""


def tail(text: str, spans: list[tuple[int, int]], n: int) -> str:
    """The last ``n`` tokens of ``text``, started at a word boundary where one is within reach."""
    if n >= len(spans):
        return text
    if n <= 0:
        return ""
    k = len(spans) - n
    while k < len(spans) and _inside_word(text, spans[k][0]) and k - (len(spans) - n) < 8:
        k += 1
    if k == len(spans) or _inside_word(text, spans[k][0]):
        k = len(spans) - n
    return text[spans[k][0] :]


def _inside_word(text: str, offset: int) -> bool:
    return 0 < offset < len(text) and text[offset - 1].isalnum() and text[offset].isalnum()


def token_meter(encoder: object) -> TokenMeter:
    """How to measure text for ``encoder``: its own tokenizer when it is `TokenAware`, else characters."""
    if isinstance(encoder, TokenAware):
        limit = int(encoder.max_tokens) - int(encoder.special_token_count())
        keeps = encoder.truncation_keeps
        if keeps not in ("start", "end"):
            raise EncoderError(f"encoder {getattr(encoder, 'spec', encoder)!r}: truncation_keeps must be "
                               f"'start' or 'end', not {keeps!r}")
        if limit < 1:
            raise EncoderError(f"encoder {getattr(encoder, 'spec', encoder)!r}: max_tokens leaves no room for text")
        return TokenMeter(limit, keeps, encoder)
    max_tokens = getattr(encoder, "max_tokens", None)
    limit = max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else DEFAULT_MAX_TOKENS
    return TokenMeter(limit, "start")
