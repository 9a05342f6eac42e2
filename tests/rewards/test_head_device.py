"""Reward heads on `--device`: a CPU fit asked for by name is the fit without a device, bit for bit; the CLI takes
`--device` for train, evaluate and quickstart, and a GPU that is not here is one line. The GPU cases (fit on CUDA,
scores close to the CPU's, the saved model loads on the CPU) skip on a machine without one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cli_helpers import demo_lines, run
from rewardlab.errors import InvalidValueError
from rewardlab.evaluate.crossval import LearnerSpec, cross_validate
from rewardlab.rewards import load_head, make_head
from rewardlab.rewards.base import RewardHead
from rewardlab.rewards.default_recipe import DEFAULT_FEATURES
from rewardlab.rewards.head_device import fit_head, fits_on_device, move_head
from rewardlab.rewards.model import RewardModel
from rewardlab.rewards.torch_training import module_device
from rewardlab.rewards.training_set import TrainingSet
from synthetic import synthetic_problem, worded_preferences

HAS_GPU = torch.cuda.is_available()
needs_gpu = pytest.mark.skipif(not HAS_GPU, reason="no CUDA GPU on this machine: the GPU path is not run here")
no_gpu = pytest.mark.skipif(HAS_GPU, reason="checks the error on a machine without a GPU")

#: (kind, ensemble, params): a linear, an MLP, a length-debiased MLP, a label model, an ensemble, an annotator-aware
#: head and a multi-objective head, each small enough to fit in a second or two
HEADS = [
    ("bt-linear", 0, {"max_epochs": 30}),
    ("bt-mlp", 0, {"max_epochs": 15}),
    ("bt-mlp-debiased", 0, {"max_epochs": 15}),
    ("davidson-linear", 0, {"max_epochs": 15}),
    ("bt-mlp", 3, {"max_epochs": 8}),
    ("bt-mlp-annotator", 0, {"hidden": 16, "max_epochs": 15}),
    ("multi-objective", 0, {"hidden": 16, "objectives": ["u", "v"], "max_epochs": 15}),
]
IDS = ["linear", "mlp", "mlp-debiased", "davidson", "ensemble", "annotator", "multi-objective"]


def _data() -> TrainingSet:
    data, _ = synthetic_problem(n_prompts=200, dim=6, seed=3)
    data.pair_annotator = np.array([f"a{i % 3}" for i in range(len(data.pair_a))])  # for the annotator-aware head
    return data


def _head(kind: str, ensemble: int, params: dict) -> RewardHead:
    return make_head(kind, seed=2, ensemble=ensemble, **params)


def _files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.filterwarnings("ignore:a multi-objective head does not read plain ratings")
@pytest.mark.parametrize(("kind", "ensemble", "params"), HEADS, ids=IDS)
def test_a_cpu_fit_by_name_is_the_fit_without_a_device(kind: str, ensemble: int, params: dict,
                                                        tmp_path: Path) -> None:
    data = _data()
    x_new = np.random.default_rng(9).normal(size=(40, data.dim)).astype(np.float32)
    plain = _head(kind, ensemble, params).fit(data)
    assert fits_on_device(plain)
    plain.save(tmp_path / "plain")
    for device in ("cpu", torch.device("cpu")):
        head = fit_head(_head(kind, ensemble, params), data, None, device)
        head.save(tmp_path / str(device))
        assert _files(tmp_path / str(device)) == _files(tmp_path / "plain")  # weights and head.json (fit log) alike
        scores = head.predict(x_new)
        assert scores.dtype == np.float64
        assert np.array_equal(scores, plain.predict(x_new))


@pytest.mark.filterwarnings("ignore:a multi-objective head does not read plain ratings")
@pytest.mark.parametrize(("kind", "params", "with_labels"), [
    ("bt-linear", {}, False), ("bt-mlp", {}, False), ("clf-mlp", {}, False), ("rating-mlp", {}, False),
    ("bt-mlp-annotator", {"hidden": 8}, False), ("multi-objective", {"hidden": 8, "objectives": ["u", "v"]}, False),
    ("multi-objective", {"hidden": 8, "objectives": ["u", "v"], "scalarization": "gated", "prompt_columns": [0, 3]},
     True),
])
def test_a_fit_off_the_cpu_keeps_every_tensor_on_its_device(kind: str, params: dict, with_labels: bool) -> None:
    """The GPU path without a GPU: torch's meta device computes shapes only, and any op mixing a CPU tensor with a
    device tensor raises there as on CUDA, so a batch, target or weight left behind on the CPU fails this fit. (No
    early-stopping share: reading a validation loss copies data out, which meta tensors do not have.)"""
    data = _data()
    extra = {}
    if with_labels:
        rng = np.random.default_rng(3)
        extra["labels"] = np.where(rng.random((data.n_items, 2)) < 0.5, np.nan, 1.0).astype(np.float32)
    head = make_head(kind, seed=0, val_fraction=0.0, max_epochs=2, **params)
    head.fit(data, device=torch.device("meta"), **extra)  # type: ignore[call-arg]
    assert module_device(head.net_).type == "meta"  # type: ignore[attr-defined]


def test_heads_that_fit_on_the_cpu_only_take_a_cpu_device() -> None:
    data = _data()
    lgbm = fit_head(make_head("clf-lgbm", seed=0), data, None, "cpu")
    assert not fits_on_device(lgbm)
    assert move_head(lgbm, "cpu") is lgbm
    assert np.array_equal(lgbm.predict(data.x), make_head("clf-lgbm", seed=0).fit(data).predict(data.x))


@no_gpu
@pytest.mark.parametrize("kind", ["bt-linear", "clf-lgbm"])
def test_a_missing_gpu_is_a_clear_error_for_every_head(kind: str) -> None:
    with pytest.raises(InvalidValueError, match="'cuda:3'"):
        fit_head(make_head(kind), _data(), None, "cuda:3")


def test_cross_validation_on_the_cpu_by_name_gives_the_default_scores(tmp_path: Path) -> None:
    from rewardlab.embed.hashing import HashingEncoder

    dataset = worded_preferences("pairs", 30)
    learners = [LearnerSpec("linear", "bt-linear", params={"max_epochs": 20})]
    plain = cross_validate(dataset, learners, HashingEncoder(32), k=3, seed=1, n_resamples=20)
    named = cross_validate(dataset, learners, HashingEncoder(32), k=3, seed=1, n_resamples=20, device="cpu")
    for side in (0, 1):
        np.testing.assert_array_equal(plain.scores["linear"][side], named.scores["linear"][side])


# ---------------------------------------------------------------- the command line
@pytest.fixture
def pairs_file(tmp_path: Path) -> Path:
    path = tmp_path / "hh.jsonl"
    path.write_text("".join(demo_lines(60)), encoding="utf-8")
    return path


def _one_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert "Traceback" not in output and len(lines) == 1, output
    return lines[0]


def test_train_on_the_cpu_saves_the_library_default_weights(pairs_file: Path, tmp_path: Path) -> None:
    code, output = run("train", str(pairs_file), "--head", "bt-mlp", "--head-param", "max_epochs=5", "--encoder",
                       "hashing:32", "--on-empty", "skip", "--device", "cpu", "--out", str(tmp_path / "cli"),
                       "--cache-dir", str(tmp_path / "cache"), "--quiet")
    assert code == 0, output
    from rewardlab.data.source import load_source

    dataset = load_source(str(pairs_file), on_empty="skip")
    model = RewardModel.create("bt-mlp", encoder="hashing:32", features=DEFAULT_FEATURES, max_epochs=5,
                               cache_dir=tmp_path / "cache")
    model.fit(dataset).save(tmp_path / "library")
    assert _files(tmp_path / "cli" / "head") == _files(tmp_path / "library" / "head")
    code, output = run("evaluate", str(pairs_file), "--model", str(tmp_path / "cli"), "--on-empty", "skip",
                       "--device", "cpu", "--cache-dir", str(tmp_path / "cache"), "--quiet")
    assert code == 0, output


def test_quickstart_takes_a_device(tmp_path: Path) -> None:
    code, output = run("quickstart", "--encoder", "hashing:32", "--limit", "60", "--folds", "2", "--workers", "1",
                       "--device", "cpu", "--runs", str(tmp_path), "--cache-dir", str(tmp_path / "cache"), "--quiet")
    assert code == 0, output
    (run_dir,) = [p for p in tmp_path.iterdir() if p.name != "cache"]
    record = json.loads((run_dir / "record.json").read_text())
    assert len(record["learners"]) == 5


@no_gpu
@pytest.mark.parametrize("command", ["train", "evaluate", "quickstart"])
def test_a_missing_gpu_is_one_line(command: str, pairs_file: Path, tmp_path: Path) -> None:
    args = {"train": ["train", str(pairs_file), "--out", str(tmp_path / "m")],
            "evaluate": ["evaluate", str(pairs_file), "--heads", "bt-linear"],
            "quickstart": ["quickstart", "--limit", "40", "--runs", str(tmp_path)]}[command]
    code, output = run(*args, "--encoder", "hashing:32", "--device", "cuda:3", "--quiet")
    assert code != 0
    line = _one_line(output)
    assert line.startswith("error: device 'cuda:3'") and "--device cpu" in line
    assert not (tmp_path / "m").exists()


# ---------------------------------------------------------------- on a GPU
@needs_gpu
@pytest.mark.parametrize(("kind", "params"), [("bt-linear", {"max_epochs": 30}),
                                              ("bt-mlp", {"max_epochs": 10, "dropout": 0.0})],
                         ids=["linear", "mlp-without-dropout"])
def test_a_gpu_fit_scores_as_the_cpu_fit(kind: str, params: dict) -> None:
    """Same start, same batches, no dropout (its masks come from each device's own generator): the two fits differ by
    rounding only."""
    data = _data()
    x_new = np.random.default_rng(9).normal(size=(40, data.dim)).astype(np.float32)
    on_gpu = fit_head(make_head(kind, seed=2, **params), data, None, "cuda")
    assert module_device(on_gpu.net_).type == "cuda"  # type: ignore[attr-defined]
    on_cpu = make_head(kind, seed=2, **params).fit(data)
    np.testing.assert_allclose(on_gpu.predict(x_new), on_cpu.predict(x_new), atol=1e-4)


@needs_gpu
@pytest.mark.filterwarnings("ignore:a multi-objective head does not read plain ratings")
@pytest.mark.parametrize(("kind", "ensemble", "params"), HEADS, ids=IDS)
def test_a_gpu_fit_saves_a_model_the_cpu_loads(kind: str, ensemble: int, params: dict, tmp_path: Path) -> None:
    data = _data()
    x_new = np.random.default_rng(9).normal(size=(40, data.dim)).astype(np.float32)
    head = fit_head(_head(kind, ensemble, params), data, None, "cuda:0")
    on_gpu = head.predict(x_new)
    assert on_gpu.dtype == np.float64 and np.isfinite(on_gpu).all()
    head.save(tmp_path / "head")
    loaded = load_head(tmp_path / "head")  # on the CPU: a saved head never names the device it was fitted on
    np.testing.assert_allclose(loaded.predict(x_new), on_gpu, atol=1e-5)
    np.testing.assert_allclose(move_head(loaded, "cuda").predict(x_new), on_gpu, atol=1e-5)
    on_cpu = _head(kind, ensemble, params).fit(data).predict(x_new)
    assert np.corrcoef(on_cpu, on_gpu)[0, 1] > 0.9  # dropout masks differ by device: close, not equal


@needs_gpu
def test_train_on_the_gpu_then_evaluate_on_the_cpu(pairs_file: Path, tmp_path: Path) -> None:
    code, output = run("train", str(pairs_file), "--head", "bt-linear", "--encoder", "hashing:32", "--on-empty",
                       "skip", "--device", "cuda", "--out", str(tmp_path / "m"), "--quiet")
    assert code == 0, output
    code, output = run("evaluate", str(pairs_file), "--model", str(tmp_path / "m"), "--on-empty", "skip", "--device",
                       "cpu", "--quiet")
    assert code == 0, output
