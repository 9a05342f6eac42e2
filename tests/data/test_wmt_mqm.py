"""WMT23 side-by-side MQM: per rater, the MQM totals of a segment's translations become comparisons."""

from __future__ import annotations

import io
import tarfile
from collections import Counter
from pathlib import Path

import pytest

from rewardlab.data.registry import load_named
from rewardlab.data.wmt_mqm import error_weight, read_wmt_mqm
from rewardlab.errors import DataError

HEADER = "system\tdoc\tdocSegId\tglobalSegId\trater\tsource\ttarget\tcategory\tseverity\tmetadata\t# Documentation"


def test_the_real_archives_give_per_rater_comparisons(shared_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not (shared_data_dir / "wmt-mqm-human-evaluation").is_dir():
        pytest.skip(f"no wmt-mqm-human-evaluation under {shared_data_dir}")
    monkeypatch.setenv("REWARDLAB_DATA_DIR", str(shared_data_dir))
    data = load_named("wmt23-mqm")
    # 104 en-de + 377 zh-en segments (two share a source text) x 3 raters x 45 pairs, less the identical GPT-4 pairs
    assert len(data.prompts) == 480 and len(data.comparisons) == 63006
    assert Counter(c.outcome for c in data.comparisons) == {"a": 23850, "b": 20742, "tie": 18414}
    raters = Counter(c.annotator_id for c in data.comparisons)
    assert len(raters) == 18 and {r.split(":")[0] for r in raters} == {"ende", "zhen"}
    assert "skipped 1929 pair(s) of identical translations" in data.notes[0]
    assert "ende:rater4 22/10" in data.notes[1]  # attention checks found/missed
    for c in data.comparisons[:500]:
        a, b = c.meta["mqm"]
        assert c.outcome == ("a" if a < b else "b" if b < a else "tie")
    assert not any("<v>" in r.text for r in data.responses.values())
    first = load_named("wmt23-mqm", limit=1)  # the first segment of each language pair
    assert {(c.meta["language_pair"], c.meta["segment"]) for c in first.comparisons} == {("ende", "1"), ("zhen", "1")}
    # en-de: 10 entries give 7 distinct translations of a short headline: 3 raters x 45 pairs, less 12 identical pairs
    assert sum(c.meta["language_pair"] == "ende" for c in first.comparisons) == 123


@pytest.mark.parametrize(("category", "severity", "points"), [
    ("Accuracy/Mistranslation", "Major", 5.0), ("Style/Unnatural or awkward", "Minor", 1.0),
    ("Fluency/Punctuation", "Minor", 0.1), ("Fluency/Punctuation", "Major", 5.0), ("Non-translation!", "Major", 25.0),
    ("No-error", "No-error", 0.0), ("Found", "HOTW-test", 0.0), ("Source issue", "Major", 0.0)])
def test_mqm_weights(category: str, severity: str, points: float) -> None:
    assert error_weight(category, severity) == points


def archive(path: Path, lines: list[str]) -> Path:
    data = ("\n".join([HEADER, *lines]) + "\n").encode("utf-8")
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("sxs.tsv")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def line(system: str, rater: str, target: str, category: str = "No-error", severity: str = "No-error",
         segment: str = "1") -> str:
    return "\t".join([system, "doc", segment, segment, rater, "Hello <v>world</v>", target, category, severity, "{}"])


def test_a_tiny_archive(tmp_path: Path) -> None:
    path = archive(tmp_path / "ende.tsv.tar.gz", [
        line("A", "r1", "Hallo <v>Welt</v>", "Fluency/Punctuation", "Minor"),
        line("B", "r1", "Hallo Erde"), line("C", "r1", "Hallo Welt "),  # C's text is A's: one response, pair skipped
        line("A", "r2", "Hallo Welt"), line("B", "r2", "<v>Hallo</v> Erde", "Accuracy/Mistranslation", "Major"),
        line("B", "r2", "Hallo Erde", "Found", "HOTW-test"), line("C", "r2", "Hallo Welt"),
        line("A", "r1", "Servus", segment="2"), line("B", "r1", "Grüß Gott", segment="2")])
    data = read_wmt_mqm(path)
    assert data.prompts[data.comparisons[0].prompt_id].text == "Hello world"
    got = [(c.annotator_id, *c.meta["systems"], c.outcome, c.meta["mqm"]) for c in data.comparisons]
    assert got == [("ende:r1", "A", "B", "b", [0.1, 0.0]), ("ende:r1", "B", "C", "tie", [0.0, 0.0]),
                   ("ende:r2", "A", "B", "a", [0.0, 5.0]), ("ende:r2", "B", "C", "b", [5.0, 0.0]),
                   ("ende:r1", "A", "B", "tie", [0.0, 0.0])]
    assert "skipped 2 pair(s) of identical translations" in data.notes[0]
    assert data.notes[1] == "attention checks (HOTW) found/missed per rater: ende:r2 1/0"
    assert len(read_wmt_mqm(path, limit=1).comparisons) == 4


def test_bad_rows_name_archive_row_and_field(tmp_path: Path) -> None:
    path = archive(tmp_path / "bad.tsv.tar.gz", [line("A", "r1", "Hallo"), line("B", "r1", "Hi", "X", "Severe"),
                                                  line("A", "r1", "Servus", segment="2"),
                                                  line("B", "r1", "<v></v>", "Accuracy/Omission", "Major", "2"),
                                                  line("A", "r1", "Tag", segment="3"), line("B", "", "Tag!", segment="3"),
                                                  line("A", "r1", "Ja", segment="4"), line("B", "r1", "Jawohl", segment="4")])
    with pytest.raises(DataError, match=r"bad.tsv.tar.gz, row 2, field 'severity': unknown MQM severity 'Severe'"):
        read_wmt_mqm(path)
    data = read_wmt_mqm(path, on_error="skip")  # a bad row takes its whole segment out
    assert [c.meta["segment"] for c in data.comparisons] == ["4"]
    assert "skipped 3 bad row(s)" in data.notes[0] and "row 4 field 'target'" in data.notes[0]
    short = archive(tmp_path / "short.tsv.tar.gz", ["A\tdoc\t1"])
    with pytest.raises(DataError, match="row 1: row has 3 cells"):
        read_wmt_mqm(short)
    with pytest.raises(DataError, match="unknown language pair"):
        read_wmt_mqm(tmp_path, language_pairs=("frde",))
    with pytest.raises(DataError, match="file not found"):
        read_wmt_mqm(tmp_path)
    huge = archive(tmp_path / "huge.tsv.tar.gz", [line("A", "r1", "Hallo" + "x" * 200_000)])
    with pytest.raises(DataError, match="huge.tsv.tar.gz, row 1: cannot read this row"):
        read_wmt_mqm(huge)
    broken = tmp_path / "broken.tsv.tar.gz"
    broken.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(DataError, match="cannot read the file"):
        read_wmt_mqm(broken)
