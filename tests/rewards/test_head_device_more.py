"""`--device` for the last head fits: label models' likelihoods, multi-objective `train`, step and span models.

A CPU fit asked for by name is the fit without a device, bit for bit (weights, fit log, label parameters, scores);
fits on torch's meta device stand in for a GPU (any op mixing a CPU tensor with a device tensor raises there, as on
CUDA); `train --device` reaches every trainer, and a GPU that is not here is one line. The GPU cases skip on a
machine without one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from label_model_data import davidson_pairs, graded_pairs, ordinal_ratings, pl_rankings

from cli_helpers import run
from rewardlab.data import FeedbackDataset, StepLabel
from rewardlab.data.parquet import write_parquet
from rewardlab.data.spans import SpanRow, parse_splits, split_spans, write_span_jsonl
from rewardlab.errors import InvalidValueError
from rewardlab.rewards import load_head, make_head
from rewardlab.rewards.default_recipe import DEFAULT_FEATURES
from rewardlab.rewards.head_device import fit_head, move_head
from rewardlab.rewards.likelihoods import get_label_model
from rewardlab.rewards.model import RewardModel
from rewardlab.rewards.objective_labels import create_model, fit_model, train_on_dataset
from rewardlab.rewards.objectives import examples_for, get_objective
from rewardlab.rewards.span_rewards import SpanRewardModel
from rewardlab.rewards.step_rewards import StepRewardModel
from rewardlab.rewards.torch_head import TorchHead
from rewardlab.rewards.torch_training import module_device
from rewardlab.rewards.training_set import TrainingSet
from synthetic import objective_labelled

HAS_GPU = torch.cuda.is_available()
needs_gpu = pytest.mark.skipif(not HAS_GPU, reason="no CUDA GPU on this machine: the GPU path is not run here")
no_gpu = pytest.mark.skipif(HAS_GPU, reason="checks the error on a machine without a GPU")
META = torch.device("meta")


def _label_sets() -> dict[str, TrainingSet]:
    return {"davidson": davidson_pairs(150, 0.5, seed=1)[0],
            "graded": graded_pairs(150, 0.3, [1.0, 2.0], [0.25, 0.5, 1.0], seed=2)[0],
            "graded-no-ties": graded_pairs(150, 0.0, [1.0], [0.5, 1.0], seed=5)[0],
            "pl": pl_rankings(50, 4, seed=3)[0], "ordinal": ordinal_ratings(200, [-1.0, 0.0, 1.5], seed=4)[0]}


LABEL_SETS = _label_sets()
#: (kind, data set, params): every label model, linear and MLP, with and without ties for the graded one
LABEL_HEADS = [
    ("davidson-linear", "davidson", {"max_epochs": 20}),
    ("davidson-mlp", "davidson", {"max_epochs": 4}),
    ("bt-strength-linear", "graded", {"max_epochs": 20}),
    ("bt-strength-linear", "graded-no-ties", {"max_epochs": 20}),
    ("pl-linear", "pl", {"max_epochs": 20}),
    ("pl-mlp", "pl", {"max_epochs": 4}),
    ("ordinal-linear", "ordinal", {"max_epochs": 20}),
    ("ordinal-mlp", "ordinal", {"max_epochs": 4}),
]
LABEL_IDS = [f"{kind}-{data}" for kind, data, _ in LABEL_HEADS]


def _files(directory: Path, skip: tuple[str, ...] = ()) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file() and p.name not in skip}


def _without_timings(directory: Path) -> dict[str, object]:
    """A model directory's files, its config.json read without the fit's wall-clock seconds."""
    files: dict[str, object] = dict(_files(directory, skip=("config.json",)))
    config = json.loads((directory / "config.json").read_text())
    config.get("train", {}).pop("fit_seconds", None)
    files["config.json"] = config
    return files


# ---------------------------------------------------------------- label models
@pytest.mark.parametrize(("kind", "data_name", "params"), LABEL_HEADS, ids=LABEL_IDS)
def test_a_label_model_fit_on_the_cpu_by_name_is_the_fit_without_a_device(kind: str, data_name: str, params: dict,
                                                                          tmp_path: Path) -> None:
    data = LABEL_SETS[data_name]
    x_new = np.random.default_rng(9).normal(size=(30, data.dim)).astype(np.float32)
    plain = make_head(kind, seed=1, **params).fit(data)
    plain.save(tmp_path / "plain")
    head = fit_head(make_head(kind, seed=1, **params), data, None, "cpu")
    head.save(tmp_path / "cpu")
    assert _files(tmp_path / "cpu") == _files(tmp_path / "plain")  # weights, label.* parameters, fit log
    assert head.label_model_params() == plain.label_model_params() != {}
    assert np.array_equal(head.predict(x_new), plain.predict(x_new))
    if kind.startswith("ordinal"):
        assert np.array_equal(head.expected_rating(x_new), plain.expected_rating(x_new))


@pytest.mark.parametrize(("kind", "data_name", "params"), LABEL_HEADS, ids=LABEL_IDS)
def test_a_label_model_fit_off_the_cpu_keeps_its_likelihood_there(kind: str, data_name: str, params: dict,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole likelihood (outcomes, levels, masks, the ±BIG bounds, a zero tie band) on the meta device. The fit
    log's label parameters are read out of the tensors, which meta tensors cannot do, so that report is left out."""
    monkeypatch.setattr(TorchHead, "label_model_params", lambda self: {})
    head = make_head(kind, seed=1, **{**params, "max_epochs": 2, "val_fraction": 0.0})
    fit_head(head, LABEL_SETS[data_name], None, META)
    assert module_device(head.net_).type == "meta"  # type: ignore[attr-defined]
    assert {t.device.type for t in head.label_params_.state_dict().values()} <= {"meta"}  # type: ignore[attr-defined]


@pytest.mark.parametrize("data_name", list(LABEL_SETS))
def test_each_likelihood_is_computed_where_its_rewards_and_parameters_are(data_name: str) -> None:
    objective = {"davidson": "davidson", "graded": "bt-strength", "graded-no-ties": "bt-strength",
                 "pl": "plackett-luce", "ordinal": "ordinal"}[data_name]
    data = LABEL_SETS[data_name]
    ex = examples_for(objective, data)
    model = get_label_model(get_objective(objective).label_model or "")
    params = model.make_params(ex).to(META)
    x = torch.zeros(data.n_items, device=META)
    losses = model.losses(lambda items: x[items.to(META)], ex, torch.arange(len(ex)), params)
    assert losses.device.type == "meta" and losses.shape == (len(ex),)


def test_label_parameters_fitted_elsewhere_report_and_save_from_the_cpu(tmp_path: Path) -> None:
    """The fixed levels a loss reads are kept as numpy: a report and `expected_rating` need no copy of them."""
    data = LABEL_SETS["ordinal"]
    head = make_head("ordinal-linear", seed=1, max_epochs=10).fit(data)
    params = head.label_params_  # type: ignore[attr-defined]
    assert np.array_equal(params.fixed("edges"), params.get("fixed_edges").numpy())
    with pytest.raises(AttributeError, match="fixed_nothing"):
        params.fixed("nothing")
    head.save(tmp_path / "h")
    loaded = load_head(tmp_path / "h")
    assert loaded.label_model_params() == head.label_model_params()  # type: ignore[attr-defined]


# ---------------------------------------------------------------- step and span models
def step_labels(n: int) -> FeedbackDataset:
    """Two solutions per question; the one that slips at step 1 has that step labelled bad."""
    dataset = FeedbackDataset("steps")
    for q in range(n):
        pid = dataset.add_prompt(f"Question {q}: what is 2 + {q}?")
        for slip in (0, 1):
            rid = dataset.add_response(pid, f"We add.\nSo 2 + {q} = {2 + q + slip}\nA: {2 + q + slip}")
            dataset.add(StepLabel(rid, 0, 1.0))
            dataset.add(StepLabel(rid, 1, 0.0 if slip else 1.0))
    return dataset


def span_rows(n: int) -> list[SpanRow]:
    """Sentences that go off topic (relevance) or name the wrong year (factuality)."""
    rng = np.random.default_rng(0)
    rows = []
    for q in range(n):
        prompt = f"When did topic{q} begin? Passages: it began in {1900 + q}."
        off, wrong = rng.random() < 0.5, rng.random() < 0.5
        response = (f"The topic{q} began in {1950 + q if wrong else 1900 + q}. "
                    f"{'Meanwhile the weather was nice' if off else 'It grew quickly after that'}.")
        for k, (a, b) in enumerate(split_spans(response, "sentence")):
            rows.append(SpanRow(f"q{q}", prompt, response, a, b, "factuality", int(wrong and k == 0)))
            rows.append(SpanRow(f"q{q}", prompt, response, a, b, "relevance", int(off and k == 1)))
    return rows


def _step_model(**params: object) -> StepRewardModel:
    return StepRewardModel.create("outcome-mlp", encoder="hashing:64", features="response", seed=0,
                                  **{"max_epochs": 5, **params})


def _span_model(kind: str = "outcome-logistic", **params: object) -> SpanRewardModel:
    return SpanRewardModel.create(kind, encoder="hashing:64", splits="sentence", seed=0, **params)


@pytest.mark.parametrize("what", ["steps", "spans", "spans-mlp", "multi-objective"])
def test_a_fine_grained_fit_on_the_cpu_by_name_is_the_fit_without_a_device(what: str, tmp_path: Path) -> None:
    def fitted(device: str | None) -> Path:
        on = {} if device is None else {"device": device}
        where = tmp_path / str(device)
        if what == "steps":
            _step_model().fit(step_labels(10), **on).save(where)
        elif what.startswith("spans"):
            model = _span_model("outcome-mlp", max_epochs=3) if what == "spans-mlp" else _span_model()
            model.fit(span_rows(20), **on).save(where)
        else:
            fit_model(create_model("hashing:32", "interaction", objectives=["relevance", "factuality"], hidden=8,
                                   max_epochs=3), objective_labelled(20), **on).save(where)
        return where

    assert _without_timings(fitted("cpu")) == _without_timings(fitted(None))


def test_a_step_model_fit_off_the_cpu_fits_its_head_there() -> None:
    model = _step_model(max_epochs=2, val_fraction=0.0).fit(step_labels(6), device=META)
    assert module_device(model.head.net_).type == "meta"  # type: ignore[attr-defined]


def test_a_span_model_fit_off_the_cpu_fits_its_heads_there() -> None:
    """Each head fits on the device; the detection threshold then reads its scores back (meta tensors hold none, so
    the meta fit stops there, after the first kind's head)."""
    model = _span_model("outcome-mlp", max_epochs=2, val_fraction=0.0)
    with pytest.raises(NotImplementedError, match="meta tensor"):
        model.fit(span_rows(10), device=META)
    (head,) = model.heads.values()
    assert module_device(head.net_).type == "meta"  # type: ignore[attr-defined]


def test_a_multi_objective_model_fit_off_the_cpu_fits_both_stages_there() -> None:
    model = create_model("hashing:32", "interaction", objectives=["relevance", "factuality"], hidden=8, max_epochs=2,
                         val_fraction=0.0)
    fit_model(model, objective_labelled(10), device=META)
    assert module_device(model.head.net_).type == "meta"  # type: ignore[attr-defined]
    assert model.head.fit_log["objective_stage"]["n_train_items"] == 20


@no_gpu
def test_a_missing_gpu_fails_before_the_embedding() -> None:
    from rewardlab.embed.hashing import HashingEncoder

    class Counting(HashingEncoder):
        calls = 0

        def encode(self, texts: list[str]) -> np.ndarray:  # type: ignore[override]
            Counting.calls += 1
            return super().encode(texts)

    with pytest.raises(InvalidValueError, match="'cuda:3'"):
        StepRewardModel.create("outcome-mlp", encoder=Counting(64), features="response").fit(step_labels(4),
                                                                                            device="cuda:3")
    with pytest.raises(InvalidValueError, match="'cuda:3'"):
        SpanRewardModel.create(encoder=Counting(64), splits="sentence").fit(span_rows(4), device="cuda:3")
    assert Counting.calls == 0


# ---------------------------------------------------------------- the command line
@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("device_sources")
    write_parquet(step_labels(10), root / "steps")
    write_parquet(objective_labelled(20), root / "objectives")
    return {"steps": root / "steps", "spans": write_span_jsonl(span_rows(20), root / "spans.jsonl"),
            "multi-objective": root / "objectives"}


def _train(source: Path, what: str, out: Path, *args: str) -> tuple[int, str]:
    head = ["--head", "multi-objective"] if what == "multi-objective" else []
    return run("train", str(source), *head, "--encoder", "hashing:64", "--out", str(out), "--quiet", *args)


@pytest.mark.parametrize("what", ["steps", "spans", "multi-objective"])
def test_train_on_the_cpu_saves_the_library_default_weights(what: str, sources: dict[str, Path],
                                                            tmp_path: Path) -> None:
    code, output = _train(sources[what], what, tmp_path / "cli", "--device", "cpu")
    assert code == 0, output
    library = tmp_path / "library"
    if what == "steps":
        StepRewardModel.create(encoder="hashing:64", features=DEFAULT_FEATURES).fit(step_labels(10)).save(library)
    elif what == "spans":
        rows = span_rows(20)
        SpanRewardModel.create(encoder="hashing:64", splits=parse_splits(None, [r.kind for r in rows])).fit(rows) \
            .save(library)
    else:
        from rewardlab.data.source import load_source

        train_on_dataset(load_source(str(sources[what])), "hashing:64", DEFAULT_FEATURES).save(library)
    cli = _without_timings(tmp_path / "cli")
    lib = _without_timings(library)
    for files in (cli, lib):  # what differs by construction: where the data came from
        files["config.json"]["train"].pop("data", None)  # type: ignore[index]
    assert cli == lib


@no_gpu
@pytest.mark.parametrize("what", ["steps", "spans", "multi-objective"])
def test_a_missing_gpu_is_one_line_for_every_trainer(what: str, sources: dict[str, Path], tmp_path: Path) -> None:
    code, output = _train(sources[what], what, tmp_path / "m", "--device", "cuda:3")
    lines = [line for line in output.splitlines() if line.strip()]
    assert code != 0 and "Traceback" not in output and len(lines) == 1, output
    assert lines[0].startswith("error: device 'cuda:3'") and "--device cpu" in lines[0]
    assert not (tmp_path / "m").exists()


@no_gpu
@pytest.mark.parametrize("what", ["steps", "spans"])
def test_steps_train_and_spans_train_take_the_device_too(what: str, sources: dict[str, Path], tmp_path: Path) -> None:
    base = [what, "train", str(sources[what]), "--encoder", "hashing:64", "--quiet"]
    code, output = run(*base, "--out", str(tmp_path / "missing"), "--device", "cuda:3")
    lines = [line for line in output.splitlines() if line.strip()]
    assert code != 0 and "Traceback" not in output and len(lines) == 1, output
    assert lines[0].startswith("error: device 'cuda:3'") and not (tmp_path / "missing").exists()
    code, output = run(*base, "--out", str(tmp_path / "cpu"), "--device", "cpu")
    assert code == 0, output
    code, output = run(*base, "--out", str(tmp_path / "default"))
    assert code == 0, output
    assert _without_timings(tmp_path / "cpu") == _without_timings(tmp_path / "default")


# ---------------------------------------------------------------- on a GPU
@needs_gpu
@pytest.mark.parametrize(("kind", "data_name", "params"), LABEL_HEADS, ids=LABEL_IDS)
def test_a_label_model_fits_on_the_gpu_and_loads_on_the_cpu(kind: str, data_name: str, params: dict,
                                                            tmp_path: Path) -> None:
    data = LABEL_SETS[data_name]
    x_new = np.random.default_rng(9).normal(size=(30, data.dim)).astype(np.float32)
    head = fit_head(make_head(kind, seed=1, **params), data, None, "cuda")
    assert module_device(head.net_).type == "cuda"  # type: ignore[attr-defined]
    assert {t.device.type for t in head.label_params_.state_dict().values()} == {"cuda"}  # type: ignore[attr-defined]
    on_gpu = head.predict(x_new)
    head.save(tmp_path / "h")
    loaded = load_head(tmp_path / "h")
    np.testing.assert_allclose(loaded.predict(x_new), on_gpu, atol=1e-5)
    assert loaded.label_model_params() == head.label_model_params()  # type: ignore[attr-defined]
    if kind.startswith("ordinal"):
        np.testing.assert_allclose(loaded.expected_rating(x_new), head.expected_rating(x_new), atol=1e-5)  # type: ignore[attr-defined]
    if kind.endswith("-linear"):  # no dropout: the same start and batches, so the fits differ by rounding only
        on_cpu = make_head(kind, seed=1, **params).fit(data)
        np.testing.assert_allclose(on_gpu, on_cpu.predict(x_new), atol=1e-3)
        np.testing.assert_allclose(_numbers(head.label_model_params()),  # type: ignore[attr-defined]
                                   _numbers(on_cpu.label_model_params()), atol=1e-3)


def _numbers(report: dict) -> np.ndarray:
    values: list[float] = []
    for value in report.values():
        if isinstance(value, float):
            values.append(value)
        elif isinstance(value, list):
            values.extend(v for v in value if isinstance(v, float))
    return np.array(values)


@needs_gpu
@pytest.mark.parametrize("what", ["steps", "spans", "multi-objective"])
def test_train_on_the_gpu_saves_a_model_the_cpu_loads(what: str, sources: dict[str, Path], tmp_path: Path) -> None:
    code, output = _train(sources[what], what, tmp_path / "m", "--device", "cuda")
    assert code == 0, output
    if what == "steps":
        probs = StepRewardModel.load(tmp_path / "m").step_probabilities(["Question 1: what is 2 + 1?"],
                                                                         ["We add.\nSo 2 + 1 = 3\nA: 3"])[0]
        assert len(probs) == 3 and np.isfinite(probs).all()
    elif what == "spans":
        scores = SpanRewardModel.load(tmp_path / "m").score(["When did topic1 begin?"], ["The topic1 began in 1901."])
        assert np.isfinite(scores).all()
    else:
        model = RewardModel.load(tmp_path / "m")
        assert np.isfinite(model.score(["question 1 about topic 1"], ["grounded answer 1"])).all()
        assert move_head(model.head, "cuda") is model.head
