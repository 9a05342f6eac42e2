"""A new feedback format is one read function plus one `@register_reader` line; `load_feedback` then reads it,
by name or by auto-detection, and the built-in formats keep detecting as before."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rewardlab.data import Comparison, FeedbackDataset, load_feedback
from rewardlab.data.load import READERS, ReadOptions, Sniff, detect_format, formats, register_reader
from rewardlab.errors import DataError


def _is_pairs_file(sniff: Sniff) -> bool:
    return sniff.path.suffix == ".pairs"


def read_pairs(path: Path, options: ReadOptions) -> FeedbackDataset:
    """Toy format: one ``prompt | better | worse`` line per comparison."""
    dataset = FeedbackDataset(path.stem)
    lines = path.read_text(encoding="utf-8").splitlines()
    for row, line in enumerate(lines[: options.limit], start=1):
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 3:
            raise DataError("expected prompt | better | worse", source=path, row=row)
        pid = dataset.add_prompt(parts[0])
        dataset.add(Comparison(pid, dataset.add_response(pid, parts[1]), dataset.add_response(pid, parts[2]), "a"))
    return dataset


@pytest.fixture
def pairs_format() -> Iterator[str]:
    register_reader("pairs", detect=_is_pairs_file)(read_pairs)
    yield "pairs"
    READERS.unregister("pairs")


def test_a_registered_reader_is_read_by_name_and_detected(pairs_format: str, tmp_path: Path) -> None:
    path = tmp_path / "toy.pairs"
    path.write_text("q1 | kind | rude\nq2 | helpful | curt\nq3 | a | b\n", encoding="utf-8")
    assert pairs_format in formats() and detect_format(path) == pairs_format
    assert len(load_feedback(path).comparisons) == 3
    assert len(load_feedback(path, format=pairs_format, limit=2).comparisons) == 2
    with pytest.raises(DataError, match="unknown format 'excel'; choose from auto, rewardlab, hh, trl, mapped, pairs"):
        load_feedback(path, format="excel")
    with pytest.raises(DataError, match="already registered"):
        register_reader(pairs_format)(read_pairs)


def test_files_no_reader_recognises_keep_their_errors(tmp_path: Path) -> None:
    odd = tmp_path / "x.xyz"
    odd.write_text("hello\n", encoding="utf-8")
    with pytest.raises(DataError, match="unknown file type"):
        load_feedback(odd)
    empty = tmp_path / "e.jsonl"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="no rows"):
        load_feedback(empty)


def test_built_in_formats_are_registered_in_detection_order() -> None:
    assert formats()[:5] == ("auto", "rewardlab", "hh", "trl", "mapped")
    assert READERS["mapped"].detect is None  # never guessed: it needs a column mapping
