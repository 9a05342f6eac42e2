"""``--device`` of the experiment commands (rm-recipes, bon-noise, pluralistic, prm, fine-grained, demo-reward): on the
CPU the record is the one without a device (a CPU fit is the fit without one), a CUDA device that is not here is one
line before any work, and on a GPU the study runs there (skipped without one)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from cli_helpers import run
from rewardlab.data.candidates import CANDIDATE_SOURCES
from rewardlab.data.objectives_qa import default_path
from rewardlab.data.registry import shared_data_dir
from synthetic import tiny_recipe_study

GSM8K = shared_data_dir() / CANDIDATE_SOURCES["gsm8k"][0]
NO_GPU = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none here)")


def _numbers(record: dict[str, Any], device: str | None) -> str:
    """The record as JSON text without its times, the machine and where the fits ran; its config's device must be
    ``device`` and is left out too."""
    assert record["config"]["device"] == device
    return json.dumps(_without_times({**record, "config": {k: v for k, v in record["config"].items()
                                                           if k != "device"}}), sort_keys=True, default=str)


def _without_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items()
                if "second" not in k and k not in ("timing", "machine", "fits_on")}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------- the studies' small configs
@pytest.fixture
def rm_tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """tests/studies/test_rm_recipes_ray.py's run: two small synthetic sets, three recipes of 5 epochs, two heads."""
    return tiny_recipe_study(tmp_path, monkeypatch, ("interaction", "joint+debias", "interaction+off-topic"))


BON_NOISE: dict[str, Any] = {  # tests/studies/test_bon_noise_ray.py's run
    "betas": (3.0,), "budgets": (200,), "pairings": ("same-prompt",), "learners": ("bt-linear", "clf-logistic"),
    "seeds": 1, "ensemble_learners": ("bt-linear",), "ensemble_members": 3, "ensemble_budget": 200,
    "ensemble_pairing": "same-prompt", "n_resamples": 100, "limit_prompts": 20, "encoder": "hashing:64"}
PLURALISTIC: dict[str, Any] = {  # tests/studies/test_ray_pluralistic.py's run
    "encoder": "hashing:32", "prompts": 12, "pairs": 60, "careless_items": 30, "seeds": 2,
    "aware_learners": ("bt-mlp-annotator",), "n_resamples": 50, "wmt_segments": 3, "convabuse_ratings": 300,
    "real_seeds": 1}


def test_rm_recipes_on_the_cpu_gives_the_record_without_a_device(rm_tiny: dict[str, Any]) -> None:
    from rewardlab.studies.rm_recipes import make_config, run_study

    plain = run_study(make_config(rm_tiny))
    assert _numbers(run_study(make_config({**rm_tiny, "device": "cpu"})), "cpu") == _numbers(plain, None)


@pytest.mark.filterwarnings("ignore:.*exact repeats")
def test_bon_noise_on_the_cpu_gives_the_record_without_a_device(shared_data: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from rewardlab.studies.bon_noise import BonNoiseConfig, run_study

    monkeypatch.setenv("REWARDLAB_DATA_DIR", str(shared_data))
    plain = run_study(BonNoiseConfig(**BON_NOISE))
    assert _numbers(run_study(BonNoiseConfig(**BON_NOISE, device="cpu")), "cpu") == _numbers(plain, None)


@pytest.mark.filterwarnings("ignore:.*exact repeats")
def test_pluralistic_on_the_cpu_gives_the_record_without_a_device(shared_data: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    from rewardlab.studies.pluralistic import make_config, run_study

    for folder in ("alpaca-eval-weighted-gpt4-turbo", "wmt-mqm-human-evaluation", "convabuse"):
        if not (shared_data / folder).is_dir():
            pytest.skip(f"no {folder} under {shared_data}")
    monkeypatch.setenv("REWARDLAB_DATA_DIR", str(shared_data))
    monkeypatch.setenv("REWARDLAB_CACHE_DIR", str(tmp_path / "cache"))
    plain = run_study(make_config(PLURALISTIC))
    assert _numbers(run_study(make_config({**PLURALISTIC, "device": "cpu"})), "cpu") == _numbers(plain, None)


@pytest.mark.skipif(not GSM8K.exists(), reason=f"the shared GSM8K pools are not at {GSM8K}")
def test_prm_on_the_cpu_gives_the_record_without_a_device(tmp_path: Path) -> None:
    from rewardlab.studies.prm import make_config, run_study

    settings = {"limit": 40, "encoder": "hashing:64", "n_resamples": 100}  # tests/studies/test_ray_prm.py's run
    plain = run_study(make_config(settings), str(tmp_path / "cache"))
    on_cpu = run_study(make_config({**settings, "device": "cpu"}), str(tmp_path / "cache"))
    assert _numbers(on_cpu, "cpu") == _numbers(plain, None)


@pytest.mark.skipif(not default_path().exists(), reason=f"QA-Feedback is not at {default_path()}")
def test_fine_grained_on_the_cpu_gives_the_record_without_a_device(tmp_path: Path) -> None:
    from rewardlab.studies.fine_grained import make_config, run_study

    # tests/studies/test_ray_fine_grained.py's run
    settings = {"limit": 12, "encoder": "hashing:32", "folds": 2, "seeds": (0, 1), "n_resamples": 100}
    plain = run_study(make_config(settings), str(tmp_path / "cache"))
    on_cpu = run_study(make_config({**settings, "device": "cpu"}), str(tmp_path / "cache"))
    assert _numbers(on_cpu, "cpu") == _numbers(plain, None)


def test_demo_reward_on_the_cpu_gives_the_record_without_a_device(shared_data: Path, tiny_model: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from rewardlab.optimize.sft import SftConfig
    from rewardlab.studies.demo_reward import DemoRewardConfig, run_study

    hh = shared_data / "hh-rlhf-harmless-base-test" / "test.jsonl.gz"
    if not hh.exists():
        pytest.skip("shared HH-RLHF data not present")
    monkeypatch.setenv("REWARDLAB_CACHE_DIR", str(tmp_path / "cache"))
    config = DemoRewardConfig(data=str(hh), train_prompts=16, model=str(tiny_model), max_new_tokens=6,
                              sft=SftConfig(steps=2, trainable_layers=1), encoder="hashing:64")
    plain = run_study(config, tmp_path / "run")  # the second run reuses its samples and fine-tuned policy
    assert _numbers(run_study(replace(config, device="cpu"), tmp_path / "run"), "cpu") == _numbers(plain, None)


# ---------------------------------------------------------------------------------------- a GPU that is not here
#: each command with an input that does not exist: the device's error must come first
MISSING_DEVICE = {
    "rm-recipes": ["--sets", "no-such-set.jsonl"],
    "bon-noise": ["--candidates", "no-such-pools.jsonl"],
    "pluralistic": ["--candidates", "no-such-pools.jsonl"],
    "prm": ["--candidates", "no-such-pools.jsonl"],
    "fine-grained": ["--data", "no-such-file.jsonl"],
    "demo-reward": ["--data", "no-such-file.jsonl"],
}


@pytest.mark.parametrize("study", sorted(MISSING_DEVICE))
def test_a_cuda_device_that_is_not_here_is_one_line_before_any_work(study: str, tmp_path: Path) -> None:
    if torch.cuda.device_count() > 3:
        pytest.skip("this machine has a cuda:3")
    code, output = run("experiment", study, *MISSING_DEVICE[study], "--device", "cuda:3", "--out",
                       str(tmp_path / "out"), "--quiet")
    assert code != 0
    assert "cuda:3" in output and "Traceback" not in output
    assert len(output.strip().splitlines()) == 1, output
    assert not (tmp_path / "out").exists()


def test_a_device_that_is_no_device_is_refused(tmp_path: Path) -> None:
    code, output = run("experiment", "rm-recipes", "--device", "tpu", "--out", str(tmp_path / "out"), "--quiet")
    assert code != 0 and "tpu" in output and "Traceback" not in output


# ---------------------------------------------------------------------------------------- on a GPU
@NO_GPU
def test_rm_recipes_fits_on_the_gpu_and_agrees_with_the_cpu(rm_tiny: dict[str, Any]) -> None:
    from rewardlab.studies.rm_recipes import make_config, run_study

    on_cpu = run_study(make_config({**rm_tiny, "device": "cpu"}))
    on_gpu = run_study(make_config({**rm_tiny, "device": "cuda"}))
    cpu_acc = [m["accuracy"]["value"] for t in on_cpu["transfers"] for m in t["models"]]
    gpu_acc = [m["accuracy"]["value"] for t in on_gpu["transfers"] for m in t["models"]]
    assert len(gpu_acc) == len(cpu_acc) > 0
    assert max(abs(a - b) for a, b in zip(cpu_acc, gpu_acc)) <= 0.25  # other kernels, the same models roughly


@NO_GPU
@pytest.mark.filterwarnings("ignore:.*exact repeats")
def test_bon_noise_fits_on_the_gpu(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rewardlab.studies.bon_noise import BonNoiseConfig, run_study

    monkeypatch.setenv("REWARDLAB_DATA_DIR", str(shared_data))
    record = run_study(BonNoiseConfig(**{**BON_NOISE, "learners": ("bt-mlp", "clf-logistic"),
                                         "ensemble_learners": ("bt-mlp",)}, device="cuda"))
    assert record["config"]["device"] == "cuda" and record["findings"]


# ---------------------------------------------------------------------------------------- the serial path's threads
def _threads_seen(module: Any, fit_name: str, run: Callable[[], Any], monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The torch thread count each call of ``module.fit_name`` saw while ``run()`` ran with the process on 2 threads;
    checks that the process has its 2 threads back afterwards."""
    seen: list[int] = []
    fit = getattr(module, fit_name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        seen.append(torch.get_num_threads())
        return fit(*args, **kwargs)

    monkeypatch.setattr(module, fit_name, counted)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        run()
        assert torch.get_num_threads() == 2  # the process's threads given back
    finally:
        torch.set_num_threads(threads)
    return seen


def test_the_recipe_studys_serial_fits_run_on_one_thread_as_ray_tasks_do(rm_tiny: dict[str, Any],
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from rewardlab.studies import rm_recipes_fits
    from rewardlab.studies.rm_recipes import make_config, run_study

    config = make_config({**rm_tiny, "recipes": ("interaction",), "heads": ("bt-mlp",)})
    seen = _threads_seen(rm_recipes_fits, "fit_condition", lambda: run_study(config), monkeypatch)
    assert seen == [1, 1]  # one fit per set


@pytest.mark.filterwarnings("ignore:.*exact repeats")
def test_the_noise_studys_serial_fits_run_on_one_thread_as_ray_tasks_do(shared_data: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from rewardlab.studies import bon_noise
    from rewardlab.studies.bon_noise import BonNoiseConfig, run_study

    monkeypatch.setenv("REWARDLAB_DATA_DIR", str(shared_data))
    seen = _threads_seen(bon_noise, "fit_and_score", lambda: run_study(BonNoiseConfig(**BON_NOISE)), monkeypatch)
    assert seen and set(seen) == {1}
