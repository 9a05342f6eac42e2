"""`rewardlab datasets` accounts for every folder of the shared data: a named dataset, or what else it is.

Before issue 15 it listed 4 named datasets and said nothing of the other 7 folders; EvalBiasBench is now loadable.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewardlab.cli import app
from rewardlab.data.evalbiasbench import read_evalbiasbench
from rewardlab.data.registry import REGISTRY, load_named, shared_folders
from rewardlab.errors import DataError


def test_every_shared_folder_is_listed_as_a_dataset_or_with_what_it_is(shared_data_dir: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARDLAB_DATA_DIR", str(shared_data_dir))
    folders = {folder.folder: folder for folder in shared_folders()}
    present = {p.name for p in shared_data_dir.iterdir() if p.is_dir()}
    assert present <= set(folders)
    for name in present:
        assert folders[name].datasets or folders[name].other, name
    assert "evalbiasbench" in folders["evalbiasbench"].datasets
    assert "vicuna80-reviews" in folders["vicuna80-gpt4-reviews"].datasets
    for entry in REGISTRY.values():  # every named dataset's file is really there
        assert entry.available(), entry.name
    output = CliRunner().invoke(app, ["datasets"], terminal_width=250).output
    for name in present:
        assert name in output, name


def test_an_unknown_folder_is_listed_too(tmp_path: Path) -> None:
    (tmp_path / "new-set").mkdir()
    (folder,) = [f for f in shared_folders(tmp_path) if f.folder == "new-set"]
    assert folder.datasets == () and "SOURCE.md" in (folder.other or "")


def test_evalbiasbench_is_80_pairs_with_the_first_response_better(shared_data_dir: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARDLAB_DATA_DIR", str(shared_data_dir))
    dataset = load_named("evalbiasbench")
    assert dataset.name == "evalbiasbench" and len(dataset.comparisons) == 80 and not dataset.notes
    assert {c.outcome for c in dataset.comparisons} == {"a"}
    assert sum(c.meta["bias"] == "length bias" for c in dataset.comparisons) == 17


def test_evalbiasbench_reader_takes_the_row_policies(tmp_path: Path) -> None:
    item = {"bias": "length bias", "instruction": "say hi", "response1": "hi", "response2": "hello, how are you"}
    data = {"length bias": [dict(item, label=1), dict(item, label=2, response2=""), dict(item, label=True)],
            "concreteness": [dict(item, label=2, instruction="other")]}
    path = tmp_path / "biasbench.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(DataError, match=r"row 2, field 'response2': text is empty"):
        read_evalbiasbench(path)
    dataset = read_evalbiasbench(path, on_empty="skip", on_error="skip")
    assert [(c.outcome, c.meta["row"]) for c in dataset.comparisons] == [("a", 1), ("b", 4)]
    assert any("row 3 field 'label'" in note for note in dataset.notes)


def test_the_shared_folder_is_found_from_any_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rewardlab.data.registry import CHECKOUT_SHARED_DATA, shared_data_dir

    monkeypatch.delenv("REWARDLAB_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)  # no ../shared/data from here
    if not CHECKOUT_SHARED_DATA.is_dir():
        pytest.skip(f"no shared data folder beside this checkout ({CHECKOUT_SHARED_DATA})")
    assert shared_data_dir() == CHECKOUT_SHARED_DATA
    monkeypatch.setenv("REWARDLAB_DATA_DIR", str(tmp_path))
    assert shared_data_dir() == tmp_path  # the variable always wins
