"""Property-based fuzzing of the saved-model loaders (issue 21): random edits of config.json and of the head files
(bytes flipped, cut or inserted; JSON values replaced or removed; with the checksum kept, recomputed or dropped) give
a loaded model or a `RewardlabError`, never another exception. A model that loads must score or fail the same way.

Bounded and reproducible like the reader fuzzing (``derandomize=True``, fixed example counts, no deadline).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewardlab.errors import RewardlabError
from rewardlab.optimize.prompts import PromptRewardModel
from rewardlab.rewards import RewardModel
from synthetic import preference_dataset

EXAMPLES = int(os.environ.get("REWARDLAB_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="REWARDLAB_FUZZ_RANDOM" not in os.environ,
                database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

ROWS = [(f"question {i}", f"a kind answer {i}", f"a rude answer {i}") for i in range(30)]
#: the torch heads: their weights are parsed by rewardlab's own loader, so edits with a recomputed checksum reach it
MODELS = {"bt-mlp": {}, "bt-linear-ens": {"ensemble": 2}, "clf-lgbm": {}}

TEXT = st.text(st.characters(codec=None), max_size=12)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=10**8, max_value=10**12),
                    st.floats(allow_nan=True, allow_infinity=True), TEXT,
                    st.sampled_from(["hf-last:../../../../etc", "hashing:32", "interaction", "torch", "ensemble",
                                     "bt", ""]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(TEXT, inner, max_size=3)), max_leaves=10)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    data = preference_dataset("polite", ROWS)
    out = {}
    for name, options in MODELS.items():
        kind = name.removesuffix("-ens")
        params = {"max_epochs": 2} if "lgbm" not in kind else {"n_estimators": 5}
        out[name] = RewardModel.create(kind, encoder="hashing:16", seed=0, **options, **params).fit(data).save(root / name)
    return out


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key path inside a parsed JSON value (dict keys and list indices)."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*prefix, index))


def _json_edit(text: str, choice: int, value: Any, delete: bool) -> str:
    """Replace (or delete) the value at one key path of a JSON document chosen by ``choice``."""
    doc = json.loads(text)
    paths = [p for p in _paths(doc) if p]
    if not paths:
        return json.dumps(value)
    path = paths[choice % len(paths)]
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return json.dumps(doc, allow_nan=True)


def _byte_edit(data: bytes, kind: str, at: int, payload: bytes) -> bytes:
    if not data:
        return payload
    at %= len(data)
    if kind == "flip":
        return data[:at] + bytes([data[at] ^ (1 << (payload[0] % 8 if payload else 0))]) + data[at + 1:]
    if kind == "cut":
        return data[:at]
    return data[:at] + payload + data[at:]


EDITS = st.lists(st.one_of(
    st.tuples(st.just("json"), st.integers(0, 10_000), VALUES, st.booleans()),
    st.tuples(st.just("bytes"), st.sampled_from(["flip", "cut", "insert"]), st.integers(0, 10**6),
              st.binary(max_size=16)),
), min_size=1, max_size=3)


def _apply(directory: Path, target: str, edits: list[tuple[Any, ...]]) -> None:
    path = directory / target
    for edit in edits:
        if edit[0] == "json":
            try:
                path.write_text(_json_edit(path.read_text(encoding="utf-8"), *edit[1:]), encoding="utf-8")
            except (ValueError, UnicodeError):  # an earlier byte edit broke the JSON: edit bytes instead
                path.write_bytes(_byte_edit(path.read_bytes(), "flip", edit[1], b"\x01"))
        else:
            path.write_bytes(_byte_edit(path.read_bytes(), *edit[1:]))


def _rechecksum(directory: Path, mode: str) -> None:
    """After editing head files: "keep" the old checksum (the edit must be caught), "recompute" it (the loader's
    parsing must hold on its own), or "drop" it (as a model saved before checksums)."""
    config_path = directory / "config.json"
    config = json.loads(config_path.read_text())
    if mode == "drop":
        config.pop("weights_sha256", None)
    elif mode == "recompute":
        config["weights_sha256"] = {name: hashlib.sha256((directory / name).read_bytes()).hexdigest()
                                    for name in config["weights_sha256"] if (directory / name).is_file()}
    config_path.write_text(json.dumps(config))


def _load_and_score(directory: Path, cache: Path) -> None:
    try:
        model = RewardModel.load(directory, cache_dir=cache)
        scores = model.score(["a question"], ["an answer"])
    except RewardlabError as error:
        str(error).encode("utf-8")
        return
    assert np.asarray(scores).shape == (1,)


@pytest.mark.parametrize("name", list(MODELS))
@FUZZ
@given(edits=EDITS)
def test_random_edits_of_config_json_load_or_fail_cleanly(name: str, edits: list[tuple[Any, ...]],
                                                          saved: dict[str, Path]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(shutil.copytree(saved[name], Path(tmp) / "m"))
        _apply(model, "config.json", edits)
        _load_and_score(model, Path(tmp) / "cache")


@pytest.mark.parametrize("name,target", [("bt-mlp", "head/head.safetensors"), ("bt-mlp", "head/head.json"),
                                         ("bt-linear-ens", "head/head.json"),
                                         ("bt-linear-ens", "head/members/001/head.safetensors"),
                                         ("bt-linear-ens", "head/members/000/head.json"),
                                         ("clf-lgbm", "head/head.lgbm.txt")])
@FUZZ
@given(edits=EDITS, checksum=st.sampled_from(["keep", "recompute", "drop"]))
def test_random_edits_of_the_weights_load_or_fail_cleanly(name: str, target: str, edits: list[tuple[Any, ...]],
                                                          checksum: str, saved: dict[str, Path]) -> None:
    if name == "clf-lgbm" and checksum != "keep":
        checksum = "keep"  # LightGBM parses its own text format in C++; rewardlab's guard for it is the checksum
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(shutil.copytree(saved[name], Path(tmp) / "m"))
        _apply(model, target, edits)
        _rechecksum(model, checksum)
        _load_and_score(model, Path(tmp) / "cache")


@pytest.fixture(scope="module")
def prompt_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    q = rng.normal(size=(60, 6)).astype(np.float32)
    labels = (q[:, :2] > 0).astype(np.float32)
    model = PromptRewardModel(head="logistic", seed=0, max_epochs=2).fit(q, np.eye(2, 6, dtype=np.float32), labels,
                                                                         ["a", "b"])
    return model.save(tmp_path_factory.mktemp("prompt") / "m")


@FUZZ
@given(target=st.sampled_from(["config.json", "model.safetensors"]), edits=EDITS,
       checksum=st.sampled_from(["keep", "drop"]))
def test_random_edits_of_a_prompt_model_load_or_fail_cleanly(target: str, edits: list[tuple[Any, ...]], checksum: str,
                                                             prompt_model: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(shutil.copytree(prompt_model, Path(tmp) / "m"))
        _apply(model, target, edits)
        if target != "config.json":
            try:
                _rechecksum(model, checksum)
            except ValueError:
                pass
        try:
            PromptRewardModel.load(model)
        except RewardlabError as error:
            str(error).encode("utf-8")
