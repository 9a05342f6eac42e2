"""Options renamed by the CLI redesign: the old spelling fails with a message that names the new one."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from rewardlab.cli import app


def test_bon_generator_url_points_to_base_url(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("hello\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["bon", str(prompts), "--reward-model", str(tmp_path / "none"),
                                      "--generator", "http://127.0.0.1:9/v1", "--quiet"])
    assert result.exit_code == 2
    assert "--generator was renamed" in result.output and "--base-url" in result.output


def test_train_refuses_to_overwrite_a_model_without_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "model"
    out.mkdir()
    (out / "config.json").write_text("{}", encoding="utf-8")
    result = CliRunner().invoke(app, ["train", "hh-harmless-demo", "--limit", "20", "--encoder", "hashing:64",
                                      "--out", str(out), "--quiet"])
    assert result.exit_code == 2
    assert "--overwrite" in result.output
    assert (out / "config.json").read_text(encoding="utf-8") == "{}"
