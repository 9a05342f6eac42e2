"""Saved reward models (issue 21): atomic saves, a weights checksum, encoder paths confined to the model directory,
damaged files as one ModelError, and no bare NaN in JSON output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import run
from rewardlab.artifacts import encoder_path
from rewardlab.errors import ModelError, RewardlabError
from rewardlab.rewards import RewardModel
from synthetic import preference_dataset

ROWS = [(f"question {i}", f"a kind answer {i}", f"a rude answer {i}") for i in range(40)]
PROMPTS, RESPONSES = ["question 3", "question 3"], ["a kind answer 3", "a rude answer 3"]


def _fit(seed: int, ensemble: int = 0, kind: str = "bt-linear") -> RewardModel:
    return RewardModel.create(kind, encoder="hashing:32", ensemble=ensemble, seed=seed, max_epochs=3).fit(
        preference_dataset("polite", ROWS))


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _fit(0, kind="bt-mlp").save(tmp_path_factory.mktemp("model") / "m")


def _copy(saved: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(saved, tmp_path / "m"))


def _edit_config(model: Path, **changes: object) -> None:
    config = json.loads((model / "config.json").read_text())
    config.update(changes)
    (model / "config.json").write_text(json.dumps(config))


# ---------------------------------------------------------------------- item 3: atomic saves
@pytest.mark.parametrize("die_at", ["member 001", "config.json"])
def test_an_interrupted_save_over_an_ensemble_leaves_the_old_model(die_at: str, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe: interrupted between head and config.json, member 000 was new and 001-002 old; it loaded silently
    and the mean reward moved from -1.043 to -0.697."""
    old = _fit(0, ensemble=3)
    old.save(tmp_path / "m")
    before = old.score_members(PROMPTS, RESPONSES)
    new = _fit(11, ensemble=3)
    assert not np.allclose(new.score_members(PROMPTS, RESPONSES), before)
    if die_at == "config.json":
        import rewardlab.rewards.model as model_module

        def crash(*args: object, **kwargs: object) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(model_module, "file_digests", crash)
    else:
        member_type, real_save, calls = type(new.head.members_[0]), type(new.head.members_[0]).save, [0]

        def save_then_die(self, directory):  # type: ignore[no-untyped-def]
            calls[0] += 1
            if calls[0] == 2:
                raise KeyboardInterrupt
            real_save(self, directory)

        monkeypatch.setattr(member_type, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        new.save(tmp_path / "m")
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # nothing half-written beside it
    assert np.array_equal(RewardModel.load(tmp_path / "m").score_members(PROMPTS, RESPONSES), before)
    new.save(tmp_path / "m")  # an uninterrupted save replaces the whole model
    assert np.array_equal(RewardModel.load(tmp_path / "m").score_members(PROMPTS, RESPONSES),
                          new.score_members(PROMPTS, RESPONSES))


def test_saving_over_a_directory_that_is_not_a_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("keep me")
    with pytest.raises(ModelError, match="not a saved model"):
        _fit(0).save(tmp_path / "notes")
    assert (tmp_path / "notes" / "mine.txt").read_text() == "keep me"


# ---------------------------------------------------------------------- item 7: checksum
def test_a_bit_flipped_weights_file_fails_to_load(saved: Path, tmp_path: Path) -> None:
    model = _copy(saved, tmp_path)
    weights = model / "head" / "head.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) - 7] ^= 0x10
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match the checksum") as info:
        RewardModel.load(model)
    assert str(weights) in str(info.value)


def test_the_checksum_covers_every_head_file(saved: Path) -> None:
    config = json.loads((saved / "config.json").read_text())
    assert set(config["weights_sha256"]) == {"head/head.json", "head/head.safetensors"}


# ---------------------------------------------------------------------- item 7: encoder paths
def test_an_encoder_path_outside_the_model_is_refused_unless_allowed(saved: Path, tmp_path: Path) -> None:
    model = _copy(saved, tmp_path)
    config = json.loads((model / "config.json").read_text())
    _edit_config(model, encoder={**config["encoder"], "spec": "hf-last:../../../../etc"})
    with pytest.raises(ModelError, match="outside the model directory") as info:
        RewardModel.load(model)
    assert "allow_external_encoder" in str(info.value)
    with pytest.raises(RewardlabError) as allowed:  # allowed: it gets as far as building the encoder, which fails
        RewardModel.load(model, allow_external_encoder=True)
    assert "outside the model directory" not in str(allowed.value)
    code, output = run("score", "--model", str(model), "--prompt", "p", "--response", "r")
    assert code != 0 and "--allow-external-encoder" in output and "Traceback" not in output
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a prompt\n")
    code, output = run("policy", "grpo", "--reward-model", str(model), "--prompts", str(prompts), "--quiet")
    assert code != 0 and "outside the model directory" in output  # refused before any LLM loads


@pytest.mark.parametrize("spec", ["minilm:int8", "minilm", "hashing:64", "hf-last:smollm2",
                                  "st:sentence-transformers/all-MiniLM-L6-v2"])
def test_registered_encoder_specs_are_not_paths(spec: str) -> None:
    assert encoder_path(spec) is None


@pytest.mark.parametrize("spec", ["hf-last:../../../../etc", "hf-last:/etc", "st:../other", "st:/opt/models/x"])
def test_encoder_specs_naming_files_are_paths(spec: str) -> None:
    assert encoder_path(spec) is not None


# ---------------------------------------------------------------------- item 6: damaged models
@pytest.mark.parametrize("damage", ["bad json", "deep json", "not an object", "encoder list", "features number",
                                    "unknown features", "train list", "augment number", "checksum garbage",
                                    "checksum outside"])
def test_a_damaged_config_is_one_model_error(damage: str, saved: Path, tmp_path: Path) -> None:
    model = _copy(saved, tmp_path)
    config_path = model / "config.json"
    edits: dict[str, object] = {"encoder list": {"encoder": ["hashing:32"]}, "features number": {"features": 3},
                                "unknown features": {"features": "everything"}, "train list": {"train": []},
                                "augment number": {"augment": 7},
                                "checksum garbage": {"weights_sha256": {"head/head.json": "abc"}},
                                "checksum outside": {"weights_sha256": {"../../etc/passwd": "0" * 64}}}
    if damage == "bad json":
        config_path.write_text('{"format": "rewardlab.reward_model/1",')
    elif damage == "deep json":
        config_path.write_text("[" * 100_000 + "]" * 100_000)
    elif damage == "not an object":
        config_path.write_text("[1, 2, 3]")
    else:
        _edit_config(model, **edits[damage])  # type: ignore[arg-type]
    with pytest.raises(ModelError) as info:
        RewardModel.load(model)
    assert str(model) in str(info.value)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "absurd dims"])
@pytest.mark.parametrize("checksum", [True, False])
def test_damaged_weights_are_one_model_error(damage: str, checksum: bool, saved: Path, tmp_path: Path) -> None:
    """With the checksum (new saves) and without it (models saved before checksums, or one removed by hand)."""
    model = _copy(saved, tmp_path)
    if not checksum:
        config = json.loads((model / "config.json").read_text())
        del config["weights_sha256"]
        (model / "config.json").write_text(json.dumps(config))
    weights, head_json = model / "head" / "head.safetensors", model / "head" / "head.json"
    if damage == "truncated":
        weights.write_bytes(weights.read_bytes()[:100])
    elif damage == "garbage":
        weights.write_bytes(b"\xff" * 64)
    else:
        head = json.loads(head_json.read_text())
        head["dim"] = 400_000_000  # × hidden 256: the probe's 409 GB
        head_json.write_text(json.dumps(head))
    with pytest.raises(ModelError) as info:
        RewardModel.load(model)
    assert str(model) in str(info.value)


# ---------------------------------------------------------------------- item 7: NaN rewards
def test_nan_rewards_are_null_in_json_output(saved: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A diverged model's NaN reward printed as bare NaN, which is not JSON; it is written as null, with a warning."""
    monkeypatch.setattr(RewardModel, "predict_stats", lambda self, x, lam=None: {
        "score": np.full(len(x), np.nan)})
    code, output = run("score", "--model", str(saved), "--prompt", "p", "--response", "r")
    assert code == 0 and "NaN" not in output.replace("(NaN or inf)", "")
    assert json.loads(output.splitlines()[0]) == {"score": None}
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"prompt": "p", "response": "r"}) + "\n"
                    + json.dumps({"prompt": "p", "responses": ["a", "b"]}) + "\n")
    code, output = run("score", "--model", str(saved), "--input", str(rows), "--output", str(tmp_path / "out.jsonl"))
    assert code == 0 and "3 reward(s) are not finite" in output
    written = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert written[0]["reward"] is None and written[1]["rewards"] == [None, None]


def test_a_save_killed_midway_leaves_only_a_hidden_sibling_which_the_next_save_removes(tmp_path: Path) -> None:
    import subprocess
    import sys

    model = _fit(0)
    model.save(tmp_path / "m")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".m.saving-{int(dead.stdout)}-0123abcd"  # what kill -9 mid-save leaves behind
    (stale / "head").mkdir(parents=True)
    (stale / "head" / "head.json").write_text("{")
    assert np.array_equal(RewardModel.load(tmp_path / "m").score(PROMPTS, RESPONSES), model.score(PROMPTS, RESPONSES))
    _fit(1).save(tmp_path / "m")
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_a_save_that_cannot_be_written_is_a_model_error_and_keeps_the_old_model(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _fit(0)
    model.save(tmp_path / "m")
    import rewardlab.artifacts as artifacts

    def full_disk(root: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(artifacts, "_fsync_tree", full_disk)
    with pytest.raises(ModelError, match="No space left on device"):
        _fit(1).save(tmp_path / "m")
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["m"]
    assert np.array_equal(RewardModel.load(tmp_path / "m").score(PROMPTS, RESPONSES), model.score(PROMPTS, RESPONSES))


def test_replacing_without_an_atomic_exchange_still_replaces_the_whole_model(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where renameat2(RENAME_EXCHANGE) is missing, the old directory is moved aside, the new one renamed in."""
    import rewardlab.artifacts as artifacts

    monkeypatch.setattr(artifacts, "_exchange", lambda a, b: False)
    _fit(0, ensemble=2).save(tmp_path / "m")
    new = _fit(5, ensemble=2)
    new.save(tmp_path / "m")
    assert [p.name for p in tmp_path.iterdir()] == ["m"]
    assert np.array_equal(RewardModel.load(tmp_path / "m").score_members(PROMPTS, RESPONSES),
                          new.score_members(PROMPTS, RESPONSES))


def test_saved_files_are_readable_like_any_new_file(saved: Path) -> None:
    """safetensors writes owner-only files; a saved model folder is shared like anything else the user writes."""
    import os

    mask = os.umask(0)
    os.umask(mask)
    for path in saved.rglob("*"):
        if path.is_file():
            assert path.stat().st_mode & 0o777 == 0o666 & ~mask, path
