"""Reader for Google's WMT23 side-by-side MQM ratings (``wmt-mqm-human-evaluation``): per-rater comparisons.

In the WMT23 generalMT side-by-side study (en→de and zh→en), every source segment was translated by ten system
entries and each (segment, entry) was annotated by three distinct professional raters with MQM: one TSV row per
marked error span (``No-error`` when there is none). A rater annotates *every* entry of a segment, so for each
(segment, rater) the rater's MQM totals order the translations of that segment. This reader turns that order into
`Comparison` rows, one per pair of translations per rater, ``annotator_id`` = ``<pair>:<rater>`` (``ende:rater3``;
the two language pairs had their own raters, numbered separately): the translation with
fewer MQM penalty points is preferred, equal totals are a tie. The prompt is the source segment, a response is a
system's translation (``source`` = the system entry), and the rater's two totals are in ``meta["mqm"]``.

Penalty weights (the data README's, Freitag et al. 2021): Major 5, Minor 1, Minor ``Fluency/Punctuation`` 0.1,
``Non-translation!`` 25 (the whole segment), ``No-error`` 0. Two kinds of row are not errors of the translation and
weigh 0: ``Source issue`` (an error in the source text, the same for every system) and ``HOTW-test`` rows
("hands on the wheel": an attention check in which the annotation tool planted an error; ``Found``/``Missed`` says
whether the rater caught it, so it measures the rater, not the system). Each rater's checks found / missed are kept
in the dataset's notes, a quality signal beside the agreement-based ones.

Details of the data that the reader handles:
- error spans are marked ``<v>…</v>`` inside ``target`` (and ``source`` for source issues); marks and the spaces
  around the text are stripped, so every row of a (segment, system) gives one translation;
- ``GPT4-5shot_with_ONLINE-W`` and ``GPT4-5shot_with_refA`` are the same GPT-4 translation, shown in two
  side-by-side screens and annotated twice: they are one response, and the pair of the two (identical text) is
  skipped (counted in ``notes``), while each is compared with every other entry with its own annotation;
- the files are TSV without quoting (``csv.QUOTE_NONE``) inside ``.tar.gz`` archives, read as they are.
"""

from __future__ import annotations

import csv
import io
import re
import tarfile
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.records import SkippedRows, check_policies
from rewardlab.data.types import Comparison, Outcome
from rewardlab.errors import DataError

#: language pairs of the WMT23 side-by-side study, in reading order, and their archive under the dataset folder
LANGUAGE_PAIRS: dict[str, str] = {
    "ende": "generalMT2023/ende/sxs_mqm_generalMT2023_ende.3ratingsPerSegment.tsv.tar.gz",
    "zhen": "generalMT2023/zhen/sxs_mqm_generalMT2023_zhen.3ratingsPerSegment.tsv.tar.gz",
}
COLUMNS = ("system", "doc", "docSegId", "globalSegId", "rater", "source", "target", "category", "severity")
SEVERITY_WEIGHTS = {"Major": 5.0, "Minor": 1.0, "No-error": 0.0, "HOTW-test": 0.0}
NON_TRANSLATION_WEIGHT = 25.0
MINOR_PUNCTUATION_WEIGHT = 0.1
ZERO_WEIGHT_CATEGORIES = ("Source issue",)
_MARK = re.compile(r"</?v>")


def error_weight(category: str, severity: str, *, source: str = "", row: int | None = None) -> float:
    """MQM penalty points of one annotated row (see the module docstring)."""
    if severity not in SEVERITY_WEIGHTS:
        raise DataError(f"unknown MQM severity {severity!r}; expected one of {', '.join(SEVERITY_WEIGHTS)}",
                        source=source, row=row, field="severity")
    if severity == "HOTW-test" or category in ZERO_WEIGHT_CATEGORIES:
        return 0.0
    if category.startswith("Non-translation"):
        return NON_TRANSLATION_WEIGHT
    if severity == "Minor" and category == "Fluency/Punctuation":
        return MINOR_PUNCTUATION_WEIGHT
    return SEVERITY_WEIGHTS[severity]


def unmarked(text: str) -> str:
    """The text without its ``<v>…</v>`` error marks and outer spaces."""
    return _MARK.sub("", text).strip()


def iter_tsv_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """``(row, record)`` of the one TSV inside a ``.tar.gz`` (or a plain ``.tsv``); row 1 is the first data row."""
    try:
        if path.name.endswith(".tsv"):
            raw = path.read_bytes()
        else:
            with tarfile.open(path, "r:*") as archive:
                members = [m for m in archive.getmembers() if m.isfile() and m.name.endswith(".tsv")]
                if len(members) != 1:
                    raise DataError(f"expected one .tsv inside the archive, found {len(members)}", source=path)
                handle = archive.extractfile(members[0])
                assert handle is not None
                raw = handle.read()
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise DataError(f"cannot read the file ({type(exc).__name__}: {str(exc)[:200]})", source=path) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"bytes at offset {exc.start} are not valid UTF-8", source=path) from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise DataError(f"cannot read the header ({exc})", source=path, row=0) from None
    if header is None or tuple(header[: len(COLUMNS)]) != COLUMNS:
        raise DataError(f"expected the columns {', '.join(COLUMNS)}, ... first; got {(header or [])[:len(COLUMNS)]}",
                        source=path, row=0)
    row = 0
    while True:
        row += 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # e.g. a cell past the csv module's size limit
            raise DataError(f"cannot read this row ({exc})", source=path, row=row) from None
        if len(cells) < len(COLUMNS):
            raise DataError(f"row has {len(cells)} cells, fewer than the {len(COLUMNS)} named columns", source=path,
                            row=row)
        yield row, dict(zip(COLUMNS, cells))


@dataclass
class _Judgement:
    """One rater's annotation of one translation: its MQM total and the rows it came from."""

    points: float = 0.0
    rows: list[int] = field(default_factory=list)


@dataclass
class _Segment:
    source: str
    first_row: int
    translations: dict[str, str] = field(default_factory=dict)  # system -> text
    judgements: dict[str, dict[str, _Judgement]] = field(default_factory=lambda: defaultdict(dict))  # rater -> system


def _read_pair(path: Path, pair: str, skipped: SkippedRows | None) -> tuple[dict[str, _Segment], Counter[tuple[str, str]]]:
    """Segments (in file order) of one language pair, and each rater's attention checks (rater, Found|Missed).

    With ``skipped`` (``on_error="skip"``), a bad row is counted there and its whole segment is left out (its
    comparisons need all of its rows); else the row's error is raised."""
    source = str(path)
    segments: dict[str, _Segment] = {}
    bad_segments: set[str] = set()
    checks: Counter[tuple[str, str]] = Counter()
    for row, record in iter_tsv_rows(path):
        try:
            for name in ("system", "globalSegId", "rater", "source", "target"):
                if not record[name].strip():
                    raise DataError("empty value", source=source, row=row, field=name)
            points = error_weight(record["category"], record["severity"], source=source, row=row)
            text = unmarked(record["target"])
            if not text:
                raise DataError("the translation is empty once its error marks are removed", source=source, row=row,
                                field="target")
        except DataError as error:
            if skipped is None:
                raise
            skipped.bad(error)
            bad_segments.add(record["globalSegId"])
            continue
        rater = f"{pair}:{record['rater']}"
        if record["severity"] == "HOTW-test":
            checks[(rater, record["category"])] += 1
        segment = segments.setdefault(record["globalSegId"], _Segment(unmarked(record["source"]), row))
        segment.translations.setdefault(record["system"], text)
        judgement = segment.judgements[rater].setdefault(record["system"], _Judgement())
        judgement.points += points
        judgement.rows.append(row)
    for segment_id in bad_segments:
        segments.pop(segment_id, None)
    return segments, checks


def read_wmt_mqm(path: str | Path, limit: int | None = None, on_empty: str = "error", on_error: str = "error",
                 language_pairs: Sequence[str] = tuple(LANGUAGE_PAIRS)) -> FeedbackDataset:
    """Per-rater comparisons of the translations of each source segment (see the module docstring).

    ``path`` is the ``wmt-mqm-human-evaluation`` folder (``language_pairs`` chooses the archives) or one archive /
    TSV. ``limit`` counts source segments of each language pair, in file order (so a quick read keeps every
    rater of both pairs). A bad row is an error naming the
    archive and row (1 = the first row after the header); ``on_error="skip"`` counts it and leaves out its whole
    segment, whose comparisons need all of its rows. ``on_empty`` is accepted for the registry's sake: an empty
    translation is a bad row (there is no text to rate).
    """
    path = Path(path)
    check_policies(on_empty, on_error, path)
    if path.is_dir():
        unknown = [p for p in language_pairs if p not in LANGUAGE_PAIRS]
        if unknown:
            raise DataError(f"unknown language pair(s) {', '.join(unknown)}; known: {', '.join(LANGUAGE_PAIRS)}",
                            source=path)
        files = [(pair, path / LANGUAGE_PAIRS[pair]) for pair in language_pairs]
    else:
        files = [(path.name.split(".")[0], path)]
    for _, file in files:
        if not file.exists():
            raise DataError("file not found", source=file)
    dataset = FeedbackDataset("wmt23-mqm-sxs")
    identical: list[int] = []
    checks: Counter[tuple[str, str]] = Counter()
    for pair, file in files:
        skipped = SkippedRows()
        segments, pair_checks = _read_pair(file, pair, skipped if on_error == "skip" else None)
        dataset.notes.extend(skipped.notes(str(file)))
        checks.update(pair_checks)
        for segment_id, segment in list(segments.items())[:limit]:
            _add_segment(dataset, pair, segment_id, segment, str(file), identical)
    if identical:
        dataset.notes.append(f"skipped {len(identical)} pair(s) of identical translations (the GPT-4 entry shown in "
                             f"two screens), e.g. of rows {', '.join(map(str, identical[:5]))}")
    if checks:
        raters = sorted({rater for rater, _ in checks}, key=lambda r: (r.split(":")[0], len(r), r))
        dataset.notes.append("attention checks (HOTW) found/missed per rater: " + ", ".join(
            f"{r} {checks[(r, 'Found')]}/{checks[(r, 'Missed')]}" for r in raters))
    return dataset


def _add_segment(dataset: FeedbackDataset, pair: str, segment_id: str, segment: _Segment, source: str,
                 identical: list[int]) -> None:
    pid = dataset.add_prompt(segment.source)
    ids = {system: dataset.add_response(pid, text, system) for system, text in segment.translations.items()}
    for rater, judged in segment.judgements.items():
        for first, second in combinations(sorted(judged), 2):
            a, b = judged[first], judged[second]
            if ids[first] == ids[second]:
                identical.append(a.rows[0])
                continue
            # totals to 3 decimals: sums of 0.1 points are not exact in binary, and 0.3 must tie with 0.1 + 0.2
            points_a, points_b = round(a.points, 3), round(b.points, 3)
            outcome: Outcome = "a" if points_a < points_b else "b" if points_b < points_a else "tie"
            dataset.add(Comparison(pid, ids[first], ids[second], outcome, annotator_id=rater,
                                   meta={"language_pair": pair, "segment": segment_id, "systems": [first, second],
                                         "mqm": [points_a, points_b],
                                         "file": Path(source).name, "rows": [a.rows[0], b.rows[0]]}))
