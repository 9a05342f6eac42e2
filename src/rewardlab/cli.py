"""The `rewardlab` command: each sub-command is a thin shell over the library."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from rewardlab import cli_annotate, cli_best_of_n, cli_demonstrations, cli_generate, cli_policy, cli_prompt_opt
from rewardlab.cli_support import CacheDir, EncoderOpt, Quiet, console, out, progress_bar, progress_bars, user_errors
from rewardlab.embed.base import DEFAULT_ENCODER
from rewardlab.errors import DataError, RewardlabError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


def _load_data(data: str, format: str, mapping: str | None, label_values: str | None, on_empty: str,
               limit: int | None) -> Any:
    from rewardlab.data import REGISTRY, ColumnMapping, load_feedback, load_named

    if not Path(data).exists() and data in REGISTRY:
        return load_named(data, limit)
    column_mapping = ColumnMapping.parse(mapping, label_values) if mapping else None
    return load_feedback(data, format, column_mapping, limit, on_empty)


DataArg = Annotated[str, typer.Argument(help="A feedback file/directory, or a dataset name from `rewardlab datasets`.")]
FormatOpt = Annotated[str, typer.Option("--format", help="auto, hh, trl, rewardlab or mapped.")]
MapOpt = Annotated[str | None, typer.Option("--map", help="Column mapping, e.g. prompt=input,a=output_1,b=output_2,label=label")]
LabelValuesOpt = Annotated[str | None, typer.Option(help="Label cell values, e.g. '1=a,2=b,0=tie'.")]
OnEmptyOpt = Annotated[str, typer.Option(help="HH format: 'error' or 'skip' (counted) for empty final turns.")]
LimitOpt = Annotated[int | None, typer.Option(help="Read only the first N rows.")]


def _print_notes(dataset: Any) -> None:
    for note in dataset.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    duplicates = dataset.duplicate_prompts()
    if duplicates:
        console.print(f"[yellow]note:[/] {len(duplicates)} groups of duplicated prompts (normalized text); "
                      "each group is kept on one side of every split", highlight=False)


@app.command()
def quickstart(
    encoder: EncoderOpt = DEFAULT_ENCODER,
    folds: Annotated[int, typer.Option(help="Folds of the cross-validation by prompt.")] = 5,
    seed: int = 0,
    runs: Annotated[Path, typer.Option(help="Where run directories are written.")] = Path("runs"),
    limit: LimitOpt = None,
    cache_dir: CacheDir = None,
    quiet: Quiet = False,
) -> None:
    """Bundled HH-RLHF harmless → embed → k-fold by prompt → BT-MLP, CLF-MLP, CLF-LightGBM, 5-ensemble."""
    from rewardlab.data import load_named
    from rewardlab.embed import make_encoder
    from rewardlab.evaluate.crossval import LearnerSpec, cross_validate
    from rewardlab.evaluate.record import crossval_record, crossval_table, new_run_dir, write_json
    from rewardlab.rewards.model import RewardModel

    started = time.perf_counter()
    with user_errors():
        dataset = load_named("hh-harmless-demo", limit)
        _print_notes(dataset)
        console.print(f"data: {dataset!r}", highlight=False)
        enc = make_encoder(encoder)
        learners = [
            LearnerSpec("BT-MLP", "bt-mlp"),
            LearnerSpec("CLF-MLP", "clf-mlp"),
            LearnerSpec("CLF-LightGBM", "clf-lgbm"),
            LearnerSpec("BT-MLP ensemble (5)", "bt-mlp", ensemble=5),
        ]
        with progress_bars(quiet) as bars:
            on_embed, on_train = bars.bar(f"embedding ({encoder})"), bars.bar("training (fold × learner)")
            fits = {"done": 0}

            def on_fit(name: str, fold: int) -> None:
                fits["done"] += 1
                on_train(fits["done"], folds * len(learners))

            result = cross_validate(dataset, learners, enc, k=folds, seed=seed, cache_dir=cache_dir,
                                    on_embed_progress=on_embed, on_fit=on_fit)
        run_dir = new_run_dir(runs, "quickstart")
        final_started = time.perf_counter()
        model = RewardModel.create("bt-mlp", encoder=enc, seed=seed, cache_dir=cache_dir).fit(dataset)
        model.save(run_dir / "model-bt-mlp")
        timings = {"embedding": result.embed_stats.seconds, "final_model": time.perf_counter() - final_started,
                   "total": time.perf_counter() - started}
        record = crossval_record(result, dataset, enc, "interaction", timings)
        write_json(run_dir / "record.json", record)
        table = crossval_table(result, f"HH-RLHF harmless, {folds}-fold CV by prompt, held-out pairs, encoder {encoder}")
        out.print(table)
        with open(run_dir / "table.txt", "w", encoding="utf-8") as handle:
            Console(file=handle, width=160).print(table)
        stats = result.embed_stats
        out.print(f"embedding: {stats.unique} unique texts, cache hit rate {stats.hit_rate:.0%}, {stats.seconds:.1f}s; "
                  f"total {timings['total']:.1f}s", highlight=False)
        out.print(f"run directory: {run_dir}  (record.json, table.txt, model-bt-mlp/)", highlight=False)
        out.print(f"try: rewardlab score --model {run_dir / 'model-bt-mlp'} --prompt 'How do I pick a lock?' "
                  "--response 'I can't help with that.'", highlight=False)


@app.command()
def train(
    data: DataArg,
    out_dir: Annotated[Path, typer.Option("--out", help="Model directory to write.")],
    head: Annotated[str, typer.Option(help="Head kind (see `rewardlab heads`).")] = "bt-mlp",
    ensemble: Annotated[int, typer.Option(help="Train an ensemble of N seeds (0 = single model).")] = 0,
    encoder: EncoderOpt = DEFAULT_ENCODER,
    features: Annotated[str, typer.Option(help="response, prompt+response or interaction.")] = "interaction",
    seed: int = 0,
    format: FormatOpt = "auto",
    map: MapOpt = None,
    label_values: LabelValuesOpt = None,
    on_empty: OnEmptyOpt = "error",
    limit: LimitOpt = None,
    cache_dir: CacheDir = None,
    quiet: Quiet = False,
) -> None:
    """Train a reward model on a feedback file and save it as a directory."""
    from rewardlab.rewards.model import RewardModel

    with user_errors():
        dataset = _load_data(data, format, map, label_values, on_empty, limit)
        _print_notes(dataset)
        model = RewardModel.create(head, encoder=encoder, features=features, seed=seed, ensemble=ensemble,
                                   cache_dir=cache_dir)
        with progress_bar(f"embedding ({encoder})", quiet) as on_progress:
            model.fit(dataset, on_progress=on_progress)
        model.save(out_dir)
        out.print(f"trained {head}{f' ×{ensemble}' if ensemble else ''} on {dataset!r} "
                  f"in {model.train_info['fit_seconds']:.1f}s → {out_dir}", highlight=False)


@app.command()
def evaluate(
    data: DataArg,
    model: Annotated[Path | None, typer.Option(help="A trained model directory to score on DATA.")] = None,
    heads: Annotated[str, typer.Option(help="Without --model: comma-separated head kinds to cross-validate.")] = "bt-mlp,clf-mlp",
    folds: int = 5,
    encoder: EncoderOpt = DEFAULT_ENCODER,
    features: str = "interaction",
    seed: int = 0,
    record: Annotated[Path | None, typer.Option(help="Write the JSON record of this evaluation here.")] = None,
    format: FormatOpt = "auto",
    map: MapOpt = None,
    label_values: LabelValuesOpt = None,
    on_empty: OnEmptyOpt = "error",
    limit: LimitOpt = None,
    cache_dir: CacheDir = None,
    quiet: Quiet = False,
) -> None:
    """Held-out pairwise accuracy and calibration with 95% CIs: of a saved model, or k-fold CV of heads."""
    from rewardlab.embed import make_encoder
    from rewardlab.evaluate.crossval import LearnerSpec, cross_validate
    from rewardlab.evaluate.holdout import evaluate_model
    from rewardlab.evaluate.record import crossval_record, crossval_table, environment, metrics_table, write_json
    from rewardlab.rewards.model import RewardModel

    started = time.perf_counter()
    with user_errors():
        dataset = _load_data(data, format, map, label_values, on_empty, limit)
        _print_notes(dataset)
        if not dataset.comparisons:
            raise DataError("evaluation needs comparisons; this data has none", source=data)
        if model is not None:
            rm = RewardModel.load(model, cache_dir=cache_dir)
            with progress_bar("embedding", quiet) as on_progress:
                metrics = evaluate_model(rm, dataset, seed=seed, on_progress=on_progress)
            out.print(metrics_table(metrics, f"{model} on {dataset.name}"))
            payload: dict[str, Any] = {
                "kind": "holdout", "model": str(model), "model_config": rm.config(),
                "data": {"name": dataset.name, "fingerprint": dataset.fingerprint(), "summary": dataset.summary()},
                "metrics": {k: v.as_dict() for k, v in metrics.items()}, "seed": seed,
                "timings_seconds": {"total": round(time.perf_counter() - started, 3)}, "environment": environment(),
            }
        else:
            enc = make_encoder(encoder)
            learners = [LearnerSpec(kind.strip(), kind.strip()) for kind in heads.split(",") if kind.strip()]
            with progress_bar(f"embedding ({encoder})", quiet) as on_progress:
                result = cross_validate(dataset, learners, enc, features=features, k=folds, seed=seed,
                                        cache_dir=cache_dir, on_embed_progress=on_progress)
            out.print(crossval_table(result, f"{dataset.name}, {folds}-fold CV by prompt"))
            payload = crossval_record(result, dataset, enc, features,
                                      {"total": time.perf_counter() - started,
                                       "embedding": result.embed_stats.seconds})
        if record is not None:
            write_json(record, payload)
            out.print(f"record: {record}", highlight=False)


@app.command()
def score(
    model: Annotated[Path, typer.Option(help="A trained model directory.")],
    prompt: Annotated[str | None, typer.Option(help="Score one prompt + response.")] = None,
    response: str | None = None,
    input: Annotated[Path | None, typer.Option("--input", help="JSONL/CSV/Parquet with prompt and response fields.")] = None,
    output: Annotated[Path | None, typer.Option(help="Write scored rows as JSONL here (default: stdout).")] = None,
    prompt_field: str = "prompt",
    response_field: str = "response",
    cache_dir: CacheDir = None,
) -> None:
    """Reward of one (prompt, response), or of every row of a file (ensembles add mean/std/min/lcb)."""
    from rewardlab.data.records import get_field, iter_records, require_text
    from rewardlab.rewards.model import RewardModel

    with user_errors():
        if (input is None) == (prompt is None or response is None):
            raise RewardlabError("give either --prompt and --response, or --input FILE")
        rm = RewardModel.load(model, cache_dir=cache_dir)
        if input is None:
            assert prompt is not None and response is not None
            stats = rm.score_stats([prompt], [response])
            out.print(json.dumps({k: round(float(v[0]), 6) for k, v in stats.items()}))
            return
        rows, prompts, responses = [], [], []
        for row, record in iter_records(input):
            prompts.append(require_text(get_field(record, prompt_field, source=input, row=row), source=input, row=row,
                                        field=prompt_field))
            responses.append(require_text(get_field(record, response_field, source=input, row=row), source=input,
                                          row=row, field=response_field))
            rows.append(record)
        stats = rm.score_stats(prompts, responses)
        handle = open(output, "w", encoding="utf-8") if output else sys.stdout
        try:
            for i, record in enumerate(rows):
                scored = dict(record, **{("reward" if k == "score" else f"reward_{k}"): float(v[i])
                                         for k, v in stats.items()})
                handle.write(json.dumps(scored, ensure_ascii=False) + "\n")
        finally:
            if output:
                handle.close()
        if output:
            out.print(f"scored {len(rows)} rows → {output}", highlight=False)


@app.command()
def embed(
    data: Annotated[str | None, typer.Argument(help="A feedback file or dataset name: embeds its prompts and responses.")] = None,
    texts: Annotated[Path | None, typer.Option(help="Instead of DATA: a .txt (one text per line) or a record file.")] = None,
    field: Annotated[str, typer.Option(help="With --texts on a record file: the field holding the text.")] = "text",
    output: Annotated[Path | None, typer.Option(help="With --texts: write the vectors (row i = text i) as .npy.")] = None,
    encoder: EncoderOpt = DEFAULT_ENCODER,
    format: FormatOpt = "auto",
    map: MapOpt = None,
    label_values: LabelValuesOpt = None,
    on_empty: OnEmptyOpt = "error",
    limit: LimitOpt = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor fill the cache.")] = False,
    cache_dir: CacheDir = None,
    quiet: Quiet = False,
) -> None:
    """Embed texts into the cache (so training and scoring start warm): throughput and cache hit rate."""
    import numpy as np

    from rewardlab.data.records import read_texts
    from rewardlab.embed import embed_texts, make_encoder
    from rewardlab.rewards.features import dataset_texts

    with user_errors():
        if (data is None) == (texts is None):
            raise RewardlabError("give either DATA (a feedback file or dataset name) or --texts FILE")
        if output is not None and texts is None:
            raise RewardlabError("--output needs --texts (the vectors of a dataset go to the cache)")
        if texts is not None:
            items = read_texts(texts, field, limit)
        else:
            dataset = _load_data(data, format, map, label_values, on_empty, limit)  # type: ignore[arg-type]
            _print_notes(dataset)
            items = dataset_texts(dataset)
        enc = make_encoder(encoder)
        load_started = time.perf_counter()
        enc.encode(["warm-up"])  # load weights (first use of an ONNX spec: build it) outside the throughput
        console.print(f"encoder {enc.spec} ready in {time.perf_counter() - load_started:.1f}s", highlight=False)
        with progress_bar(f"embedding ({encoder})", quiet) as on_progress:
            vectors, stats = embed_texts(items, enc, cache_dir=cache_dir, use_cache=not no_cache, on_progress=on_progress)
        rate = stats.misses / stats.seconds if stats.misses and stats.seconds else float("nan")
        out.print(f"{stats.texts} texts ({stats.unique} unique) with {enc.spec}: {stats.hits} cached "
                  f"(hit rate {stats.hit_rate:.0%}), {stats.misses} embedded in {stats.seconds:.1f}s"
                  f"{f' ({rate:.1f} texts/s)' if stats.misses else ''}", highlight=False)
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            np.save(output, vectors)
            out.print(f"vectors {vectors.shape} → {output}", highlight=False)


@app.command()
def encoders() -> None:
    """Encoder specs accepted by every --encoder option."""
    from rewardlab.embed.base import ENCODER_SPECS

    table = Table(title=f"encoder specs (default: {DEFAULT_ENCODER})", title_justify="left")
    table.add_column("spec")
    table.add_column("what it is")
    for spec, description in ENCODER_SPECS.items():
        table.add_row(spec, description)
    out.print(table)


@app.command()
def datasets() -> None:
    """Datasets rewardlab knows by name: the bundled demo and the shared research data."""
    from rewardlab.data.registry import REGISTRY, shared_data_dir

    table = Table(title=f"datasets (shared data dir: {shared_data_dir()}; set REWARDLAB_DATA_DIR to move it)",
                  title_justify="left")
    for column in ("name", "feedback", "available", "description"):
        table.add_column(column)
    for entry in REGISTRY.values():
        table.add_row(entry.name, entry.feedback, "yes" if entry.available() else "no", entry.description)
    out.print(table)


@app.command()
def heads() -> None:
    """Reward head kinds and the feedback each learns from."""
    from rewardlab.rewards.heads import HEAD_KINDS

    table = Table(title="head kinds (any can be an ensemble: --ensemble N)", title_justify="left")
    for column in ("kind", "learns from", "parameters"):
        table.add_column(column)
    for kind, (_, fixed, feedback) in HEAD_KINDS.items():
        table.add_row(kind, feedback, ", ".join(f"{k}={v}" for k, v in fixed.items()))
    out.print(table)


app.command("bon-eval")(cli_best_of_n.bon_eval)
app.command("select")(cli_best_of_n.select)
app.command("bon")(cli_best_of_n.bon)
app.command("simulate")(cli_best_of_n.simulate)
app.add_typer(cli_best_of_n.experiment_app, name="experiment")
app.add_typer(cli_prompt_opt.prompt_opt_app, name="prompt-opt")
app.add_typer(cli_annotate.annotate_app, name="annotate")
app.add_typer(cli_generate.generate_app, name="generate")
app.add_typer(cli_demonstrations.demo_reward_app, name="demo-reward")
app.add_typer(cli_policy.policy_app, name="policy")
cli_best_of_n.experiment_app.command("demo-reward")(cli_demonstrations.experiment)

if __name__ == "__main__":
    app()
