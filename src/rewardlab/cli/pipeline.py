"""The pipeline's main commands: `quickstart`, `train`, `evaluate`, `score`, `embed`."""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from rewardlab.cli.console import (
    console,
    out,
    print_table,
    progress_bar,
    progress_bars,
    reading_progress,
    user_errors,
    warn,
)
from rewardlab.cli.options import (
    DATA_OPTIONS,
    FROM_CONFIG,
    AllowExternalEncoderOpt,
    CacheDir,
    DataArg,
    DeviceOpt,
    EncoderOpt,
    FeaturesOpt,
    HeadParamOpt,
    LimitOpt,
    Quiet,
    RayOpt,
    SeedOpt,
    WorkersOpt,
    config_defaults,
    parse_head_params,
    with_options,
)
from rewardlab.embed.base import DEFAULT_ENCODER
from rewardlab.embed.devices import DEFAULT_DEVICE
from rewardlab.errors import DataError, ModelError, RewardlabError
from rewardlab.evaluate.quickstart import QuickstartConfig
from rewardlab.rewards.default_recipe import DEFAULT_FEATURES, DEFAULT_HEAD

AUGMENT_HELP = ("Add synthetic training pairs, kind[:ratio],... (ratio: pairs per comparison, default 0.5): off-topic "
                "(a response ≻ a good one to a similar other prompt), truncated (≻ its cut), padded (≻ itself with a "
                "sentence repeated).")
AugmentOpt = Annotated[str | None, typer.Option(help=AUGMENT_HELP)]
ANNOTATOR_WEIGHTS_HELP = ("Weigh each comparison by its annotator's reliability, estimated from pairs labelled by "
                          "several annotators: dawid-skene (one-coin EM), agreement (with the others' majority) or "
                          "none. Weight = log-odds of reliability, 0 at or below chance.")
AnnotatorWeightsOpt = Annotated[str, typer.Option(help=ANNOTATOR_WEIGHTS_HELP)]
HEAD_DEVICE_HELP = ("Where the model runs: auto (a CUDA GPU when there is one, else the CPU), cpu, cuda or cuda:N. "
                    "The encoder runs there (on a GPU int8 encoders run as fp16: the model then names that encoder), "
                    "and so do the torch heads' fits (LightGBM heads fit on the CPU).")
PerAnnotatorOpt = Annotated[bool, typer.Option("--per-annotator", help="Also report held-out accuracy per annotator "
                                                                       "(with the macro-average and the worst "
                                                                       "annotator, each paired against the pooled "
                                                                       "accuracy).")]


def print_annotator_quality(info: dict[str, Any]) -> None:
    """The reliabilities a model was trained with (``train_info["annotator_quality"]``), as a table, and its notes."""
    from rich.table import Table

    from rewardlab.rewards.annotator_quality import quality_rows

    header, rows = quality_rows(info)
    table = Table(title=f"annotator reliability ({info['overlapping_items']} pairs labelled by several annotators; "
                        "95% bootstrap CI over pairs)", title_justify="left")
    for column in header:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    print_table(table)
    for note in info.get("notes", []):
        console.print(f"[yellow]note:[/] {note}", highlight=False)


def print_notes(dataset: Any) -> None:
    """What a reader left out or grouped, before anything is trained on the data."""
    for note in dataset.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    duplicates = dataset.duplicate_prompts()
    if duplicates:
        console.print(f"[yellow]note:[/] {len(duplicates)} groups of duplicated prompts (normalized text); "
                      "each group is kept on one side of every split", highlight=False)


def load_data(data: str, format: str = "auto", map: str | None = None, label_values: str | None = None,
              on_empty: str | None = None, limit: int | None = None, on_error: str = "error", *,
              quiet: bool = True) -> Any:
    """The data a command names, with `DATA_OPTIONS` as given; what the reader left out is printed as notes. Unless
    ``quiet``, a bar follows the file being read (a 200k-row JSONL takes tens of seconds to parse)."""
    from rewardlab.data.source import load_source

    with reading_progress(quiet):
        dataset = load_source(data, format, map, label_values, on_empty, limit, on_error)
    print_notes(dataset)
    return dataset


@config_defaults(QuickstartConfig)
def quickstart(
    encoder: EncoderOpt = FROM_CONFIG,
    folds: Annotated[int, typer.Option(help="Folds of the cross-validation by prompt.")] = FROM_CONFIG,
    seed: SeedOpt = FROM_CONFIG,
    runs: Annotated[Path, typer.Option(help="Where run directories are written.")] = FROM_CONFIG,
    limit: LimitOpt = FROM_CONFIG,
    cache_dir: CacheDir = FROM_CONFIG,
    workers: WorkersOpt = FROM_CONFIG,
    ray: RayOpt = FROM_CONFIG,
    device: Annotated[str, typer.Option(help=HEAD_DEVICE_HELP + " Fits run as Ray tasks (--ray) use the CPU.")]
    = FROM_CONFIG,
    quiet: Quiet = False,
) -> None:
    """Bundled HH-RLHF harmless → embed → k-fold by prompt → BT-MLP debiased (the default), BT-MLP, CLF-MLP,
    CLF-LightGBM, 5-ensemble."""
    from rewardlab.cli.ray_embedding import ray_connected
    from rewardlab.evaluate.quickstart import run_quickstart

    with user_errors():
        config = QuickstartConfig(encoder, folds, seed, runs, limit, cache_dir, workers, ray, device)

        def show(dataset: Any) -> None:
            print_notes(dataset)
            console.print(f"data: {dataset!r}", highlight=False)

        with ray_connected(ray), progress_bars(quiet) as bars:
            result = run_quickstart(config, show, bars.bar(f"embedding ({encoder})"),
                                    bars.bar("training (fold × learner)"))
        print_table(result.table)
        if result.length_table is not None:
            print_table(result.length_table)
        stats = result.crossval.embed_stats
        out.print(f"embedding: {stats.unique} unique texts, cache hit rate {stats.hit_rate:.0%}, {stats.seconds:.1f}s; "
                  f"total {result.timings['total']:.1f}s", highlight=False)
        out.print(f"run directory: {result.run_dir}  (record.json, table.txt, {result.model_dir.name}/)",
                  highlight=False)
        example = ["rewardlab", "score", "--model", str(result.model_dir), "--prompt", "How do I pick a lock?",
                   "--response", "I can't help with that."]
        out.print(f"try: {shlex.join(example)}", highlight=False, soft_wrap=True)  # one line a shell can take


@with_options(DATA_OPTIONS)
def train(
    data: DataArg,
    out_dir: Annotated[Path, typer.Option("--out", help="Model directory to write.")],
    head: Annotated[str, typer.Option(help="Head kind (see `rewardlab heads`); the default is the rm-recipes study's "
                                           "pick, a length-debiased BT-MLP (plain: bt-mlp).")] = DEFAULT_HEAD,
    ensemble: Annotated[int, typer.Option(help="Train an ensemble of N seeds (0 = single model).")] = 0,
    encoder: EncoderOpt = DEFAULT_ENCODER,
    features: FeaturesOpt = DEFAULT_FEATURES,
    seed: SeedOpt = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing model directory at --out.")] = False,
    head_param: HeadParamOpt = None,
    augment: AugmentOpt = None,
    annotator_weights: AnnotatorWeightsOpt = "none",
    cache_dir: CacheDir = None,
    device: Annotated[str, typer.Option(help=HEAD_DEVICE_HELP + " The saved model loads anywhere.")] = DEFAULT_DEVICE,
    ray: RayOpt = None,
    quiet: Quiet = False,
    **data_options: Any,
) -> None:
    """Train a reward model on a feedback file and save it as a directory."""
    from rewardlab.cli.ray_embedding import warm_dataset_on_ray
    from rewardlab.embed import make_encoder
    from rewardlab.rewards.heads import HEAD_KINDS
    from rewardlab.rewards.model import RewardModel
    from rewardlab.rewards.torch_training import fit_device

    started = time.perf_counter()
    with user_errors():
        head_device = fit_device(device)  # a GPU that is not here is one line, before the data is read
        if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
            raise ModelError(f"{out_dir} already exists; pass --overwrite to replace it, or choose another --out")
        from rewardlab.cli import fine_grained_train as fine  # span rows and step labels have their own trainers

        extras = {"ensemble": ensemble, "augment": augment, "head_param": head_param,
                  "annotator_weights": annotator_weights != "none"}
        if fine.is_span_source(data):
            fine.train_span_source(data, out_dir, head, encoder, seed, cache_dir, quiet, device=device, **extras)
            return
        dataset = load_data(data, **data_options, quiet=quiet)
        if fine.wants_steps(dataset, head):
            fine.train_steps(dataset, out_dir, encoder, features, seed, cache_dir, quiet, device=device, **extras)
            return
        if head == "multi-objective":  # it also learns from ratings naming an objective, which fit() does not read
            from rewardlab.cli.objectives_train import train_multi_objective

            return train_multi_objective(dataset, out_dir, make_encoder(encoder, device), features, seed, cache_dir,
                                         parse_head_params(head_param), quiet, device=head_device, **extras)
        model = RewardModel.create(head, encoder=make_encoder(encoder, device), features=features, seed=seed,
                                   ensemble=ensemble, cache_dir=cache_dir, augment=augment, annotator_weights=annotator_weights,
                                   **parse_head_params(head_param))
        warm_dataset_on_ray(dataset, model.encoder, model.features, ray, cache_dir, quiet)
        thin = dataset.thin_data_warning(HEAD_KINDS.lookup(head).feedback)
        if thin:
            warn(thin)
        what = f"{head}{f' ×{ensemble}' if ensemble else ''}"
        examples = dataset.training_examples(HEAD_KINDS.lookup(head).feedback)
        with progress_bars(quiet) as bars:
            model.fit(dataset, on_progress=bars.bar(f"embedding ({encoder})"),
                      on_fit_progress=bars.bar(f"fitting {what} on {examples} examples (epochs or rounds; early "
                                               "stopping ends sooner)"), device=head_device)
        model.save(out_dir)
        if augment is not None:
            added = ", ".join(f"{n} {kind}" for kind, n in model.train_info["augment"]["added"].items())
            out.print(f"augmented with {added} synthetic pairs", highlight=False)
        if "annotator_quality" in model.train_info:
            print_annotator_quality(model.train_info["annotator_quality"])
        out.print(f"trained {what} on {dataset!r} in {time.perf_counter() - started:.1f}s → {out_dir}", highlight=False)


@with_options(DATA_OPTIONS)
def evaluate(
    data: DataArg,
    model: Annotated[Path | None, typer.Option(help="A trained model directory to score on DATA.")] = None,
    heads: Annotated[str, typer.Option(help="Without --model: comma-separated head kinds to cross-validate.")] = "bt-mlp,clf-mlp",
    folds: Annotated[int, typer.Option(help="Without --model: folds of the cross-validation by prompt.")] = 5,
    encoder: EncoderOpt = DEFAULT_ENCODER,
    features: FeaturesOpt = DEFAULT_FEATURES,
    seed: SeedOpt = 0,
    record: Annotated[Path | None, typer.Option(help="Write the JSON record of this evaluation here.")] = None,
    predictions: Annotated[Path | None, typer.Option(help="Write per-pair JSONL rows here: ids, both scores, label, "
                                                          "both lengths (and fold in CV), the length-only head's too.")] = None,
    head_param: HeadParamOpt = None,
    augment: Annotated[str | None, typer.Option(help="Without --model: " + AUGMENT_HELP)] = None,
    annotator_weights: Annotated[str, typer.Option(help="Without --model: " + ANNOTATOR_WEIGHTS_HELP)] = "none",
    per_annotator: PerAnnotatorOpt = False,
    cache_dir: CacheDir = None,
    allow_external_encoder: AllowExternalEncoderOpt = False,
    device: Annotated[str, typer.Option(help="Where the model runs: auto (a CUDA GPU when there is one, else the CPU), "
                                             "cpu, cuda or cuda:N. The cross-validated torch heads fit and score there "
                                             "(LightGBM heads, and fits run as Ray tasks, use the CPU); a --model's "
                                             "head scores there. The encoder runs there too, except that with --model "
                                             "auto uses the GPU only where it computes the vectors the model was "
                                             "trained on.")] = DEFAULT_DEVICE,
    ray: RayOpt = None,
    workers: WorkersOpt = 0,
    quiet: Quiet = False,
    **data_options: Any,
) -> None:
    """Held-out pairwise accuracy and calibration with 95% CIs, beside length controls: of a saved model, or k-fold CV
    of heads."""
    from rewardlab.cli.ray_embedding import ray_connected, warm_dataset_on_ray
    from rewardlab.embed import make_encoder
    from rewardlab.evaluate.crossval import LearnerSpec, cross_validate
    from rewardlab.evaluate.holdout import evaluate_model
    from rewardlab.evaluate.predictions import prediction_rows, write_predictions
    from rewardlab.evaluate.record import (
        crossval_length_table,
        crossval_record,
        crossval_table,
        holdout_record,
        length_table,
        metrics_table,
        write_json,
    )
    from rewardlab.rewards.model import RewardModel
    from rewardlab.rewards.torch_training import fit_device

    started = time.perf_counter()
    with user_errors():
        head_device = fit_device(device)  # a GPU that is not here is one line, before the data is read
        if model is not None and augment is not None:
            raise RewardlabError("--augment applies to training: give it with --heads (cross-validation), not --model")
        if model is not None and annotator_weights != "none":
            raise RewardlabError("--annotator-weights applies to training: give it with --heads (cross-validation), "
                                 "not --model")
        if model is not None and head_param:
            raise RewardlabError("--head-param applies to training: give it with --heads (cross-validation), not --model")
        params = parse_head_params(head_param)
        dataset = load_data(data, **data_options, quiet=quiet)
        if not dataset.comparisons:
            raise DataError("evaluation needs comparisons; this data has none", source=data)
        if model is not None:
            rm = RewardModel.load(model, cache_dir=cache_dir, allow_external_encoder=allow_external_encoder,
                                  device=device).move_head(head_device)
            warm_dataset_on_ray(dataset, rm.encoder, rm.features, ray, cache_dir, quiet)
            with progress_bars(quiet) as bars:
                held_out = evaluate_model(rm, dataset, seed=seed, on_progress=bars.bar("embedding"),
                                          on_bootstrap_progress=bars.bar("bootstrap resamples"))
            print_table(metrics_table(held_out.metrics, f"{model} on {dataset.name}"))
            print_table(length_table(held_out.length, {"model": held_out.metrics["accuracy"]},
                                     {"model": held_out.length_audit}, "length controls (same pairs)"))
            payload = holdout_record(model, rm.config(), dataset, held_out.metrics, seed, time.perf_counter() - started,
                                     held_out.length, held_out.length_audit)
            rows = prediction_rows(held_out) if predictions is not None else []
            if per_annotator:
                payload["per_annotator"] = {"model": show_per_annotator(dataset, held_out.score_a, held_out.score_b,
                                                                        str(model), seed)}
        else:
            enc = make_encoder(encoder, device)
            learners = [LearnerSpec(kind.strip(), kind.strip(), params=params) for kind in heads.split(",") if kind.strip()]
            with ray_connected(ray):
                warm_dataset_on_ray(dataset, enc, features, ray, cache_dir, quiet)
                with progress_bars(quiet) as bars:
                    result = cross_validate(dataset, learners, enc, features=features, k=folds, seed=seed,
                                            cache_dir=cache_dir, augment=augment, annotator_weights=annotator_weights,
                                            workers=workers, ray=ray, device=head_device,
                                            on_embed_progress=bars.bar(f"embedding ({encoder})"),
                                            on_fit_progress=bars.bar("training (fold × learner)"))
            print_table(crossval_table(result, f"{dataset.name}, {folds}-fold CV by prompt"))
            lengths = crossval_length_table(result)
            if lengths is not None:
                print_table(lengths)
            payload = crossval_record(result, dataset, enc, features,
                                      {"total": time.perf_counter() - started, "embedding": result.embed_stats.seconds})
            rows = prediction_rows(result) if predictions is not None else []
            if annotator_weights != "none":
                payload["annotator_weights"] = annotator_weights
            if per_annotator:
                payload["per_annotator"] = {spec.name: show_per_annotator(dataset, *result.scores[spec.name],
                                                                          f"{spec.name} (out of fold)", seed)
                                            for spec in result.learners}
        if record is not None:
            write_json(record, payload)
            out.print(f"record: {record}", highlight=False)
        if predictions is not None:
            write_predictions(predictions, rows)
            out.print(f"predictions: {predictions} ({len(rows)} rows)", highlight=False)


def show_per_annotator(dataset: Any, score_a: Any, score_b: Any, what: str, seed: int) -> dict[str, Any]:
    """Print the per-annotator accuracy table of scores in ``dataset.comparisons`` order; its record."""
    from rewardlab.evaluate.per_annotator import per_annotator_of_scores, per_annotator_table

    result = per_annotator_of_scores(dataset, score_a, score_b, seed=seed)
    print_table(per_annotator_table(result, f"{what}: accuracy per annotator (95% CI by prompt; − pooled: paired)"))
    return result.as_dict()


def score(
    model: Annotated[Path, typer.Option(help="A trained model directory.")],
    prompt: Annotated[str | None, typer.Option(help="Score one prompt + response.")] = None,
    response: Annotated[str | None, typer.Option(help="The response to --prompt.")] = None,
    input: Annotated[Path | None, typer.Option("--input", help="JSONL/CSV/Parquet rows with prompt and response "
                                                              "fields, or candidate pools (prompt + responses list, "
                                                              "as `generate run` writes).")] = None,
    output: Annotated[Path | None, typer.Option(help="Write scored rows as JSONL here (default: stdout).")] = None,
    prompt_field: str = "prompt",
    response_field: str = "response",
    cache_dir: CacheDir = None,
    allow_external_encoder: AllowExternalEncoderOpt = False,
    annotator: Annotated[str | None, typer.Option(help="Score as this annotator would (an annotator-aware model: "
                                                       "head bt-mlp-annotator or bt-mixture); an id the model does "
                                                       "not know gets the population reward, with a warning.")] = None,
    distribution: Annotated[bool, typer.Option("--distribution", help="Add the spread of the known annotators' "
                                                                      "rewards: mean, std, q10, q50, q90 "
                                                                      "(annotator-aware models).")] = False,
    ray: RayOpt = None,
    steps: Annotated[bool, typer.Option("--steps", help="MODEL is a step reward model (`rewardlab steps train`): "
                                                        "P(good) of each step of --response and each aggregation "
                                                        "(min, product, last, mean), as `rewardlab steps score`.")]
    = False,
    objectives: Annotated[bool, typer.Option("--objectives", help="Add one column per objective (a multi-objective "
                                                                  "model: its logit of each).")] = False,
    weights: Annotated[str | None, typer.Option(help="Re-scalarize a multi-objective model: the reward is "
                                                     "Σ weight·objective, e.g. relevance=1,factuality=2 (objectives "
                                                     "left out weigh 0).")] = None,
    device: Annotated[str, typer.Option(help="Where the encoder runs: auto (a CUDA GPU when there is one and it "
                                             "computes the vectors the model was trained on, else the CPU), cpu, "
                                             "cuda or cuda:N.")] = DEFAULT_DEVICE,
) -> None:
    """Reward of one (prompt, response), or of every row of a file (ensembles add mean/std/min/lcb; annotator-aware
    models score as one annotator, or add the spread over annotators; step reward models score each step)."""
    from rewardlab.rewards.annotator_scoring import AnnotatorScoring
    from rewardlab.rewards.model import RewardModel
    from rewardlab.rewards.scoring import count_missing, json_numbers, reported_stats, score_record_file

    with user_errors():
        if (input is None) == (prompt is None or response is None):
            raise RewardlabError("give either --prompt and --response, or --input FILE")
        if steps:
            if input is not None or annotator is not None or distribution or ray is not None:
                raise RewardlabError("--steps scores one solution: give --prompt and --response, without --input, "
                                     "--annotator, --distribution or --ray")
            from rewardlab.cli.steps import score as score_steps

            assert prompt is not None and response is not None
            return score_steps(model, prompt, response, cache_dir, allow_external_encoder)
        try:
            loaded = RewardModel.load(model, cache_dir=cache_dir, allow_external_encoder=allow_external_encoder,
                                      device=device).move_head(device)  # torch heads score there too
        except ModelError as exc:
            from rewardlab.rewards.step_rewards import STEP_MODEL_FORMAT

            if repr(STEP_MODEL_FORMAT) in str(exc):  # a PRM: its own format, scored step by step
                raise ModelError(f"{exc}: a step reward model; score it with --steps") from None
            raise
        rm: Any = loaded  # an annotator view scores like the model, with the chosen annotator's statistics
        if objectives or weights is not None:
            from rewardlab.rewards.objective_scoring import ObjectiveScoring

            if annotator is not None or distribution:
                raise RewardlabError("--objectives/--weights do not combine with --annotator or --distribution")
            rm = ObjectiveScoring(loaded, objectives, weights)
        if annotator is not None or distribution:
            rm = AnnotatorScoring(loaded, annotator, distribution)
            if rm.unknown:
                warn(f"annotator {annotator!r} is not one this model was trained with; scoring with the population "
                     "reward (the model's own, as without --annotator)")
        if input is None:
            assert prompt is not None and response is not None
            row = json_numbers(reported_stats(rm, [prompt], [response]))
            out.print(json.dumps(row, allow_nan=False))
            if row["score"] is None:
                warn("the reward is not a finite number (NaN or inf); written as null")
            return
        if ray is not None:
            from rewardlab.cli.ray_embedding import record_file_pairs, warm_pairs_on_ray

            warm_pairs_on_ray(*record_file_pairs(input, prompt_field, response_field), loaded, ray, quiet=True)
        scored = list(score_record_file(rm, input, prompt_field, response_field))
        missing = sum(count_missing(row) for row in scored)
        if missing:  # stderr: stdout may be the scored rows themselves
            warn(f"{missing} reward(s) are not finite numbers (NaN or inf); written as null")
        if output is None:
            for row in scored:
                sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
            return
        output.parent.mkdir(parents=True, exist_ok=True)
        with open(output, "w", encoding="utf-8") as handle:
            for row in scored:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        out.print(f"scored {len(scored)} rows → {output}", highlight=False)


@with_options(DATA_OPTIONS)
def embed(
    data: Annotated[str | None, typer.Argument(help="A feedback file or dataset name: embeds its prompts and responses.")] = None,
    texts: Annotated[Path | None, typer.Option(help="Instead of DATA: a .txt (one text per line) or a record file.")] = None,
    field: Annotated[str, typer.Option(help="With --texts on a record file: the field holding the text.")] = "text",
    output: Annotated[Path | None, typer.Option(help="With --texts: write the vectors (row i = text i) as .npy.")] = None,
    encoder: EncoderOpt = DEFAULT_ENCODER,
    features: Annotated[str, typer.Option(help="With DATA: embed the texts this feature mode needs (joint modes embed "
                                               "prompt and response together).")] = "interaction",
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor fill the cache.")] = False,
    cache_dir: CacheDir = None,
    device: DeviceOpt = DEFAULT_DEVICE,
    ray: RayOpt = None,
    quiet: Quiet = False,
    **data_options: Any,
) -> None:
    """Embed texts into the cache (so training and scoring start warm): throughput and cache hit rate."""
    import numpy as np

    from rewardlab.data.records import read_texts
    from rewardlab.embed import embed_texts, make_encoder
    from rewardlab.embed.embedding import fill_cache
    from rewardlab.rewards.features import dataset_texts

    with user_errors():
        if (data is None) == (texts is None):
            raise RewardlabError("give either DATA (a feedback file or dataset name) or --texts FILE")
        if output is not None and texts is None:
            raise RewardlabError("--output needs --texts (the vectors of a dataset go to the cache)")
        enc = make_encoder(encoder, device)
        if texts is not None:
            items = read_texts(texts, field, data_options["limit"])
        else:
            assert data is not None
            items = dataset_texts(load_data(data, **data_options, quiet=quiet), features, enc)
        load_started = time.perf_counter()
        enc.encode(["warm-up"])  # load weights (first use of an ONNX spec: build it) outside the throughput
        console.print(f"encoder {enc.spec} ready in {time.perf_counter() - load_started:.1f}s", highlight=False)
        vectors = None
        if ray is None and output is None and not no_cache:  # the vectors go to the cache only: hold one chunk
            with progress_bar(f"embedding ({encoder})", quiet) as on_progress:
                stats = fill_cache(items, enc, cache_dir=cache_dir, on_progress=on_progress)
        elif ray is None:
            with progress_bar(f"embedding ({encoder})", quiet) as on_progress:
                vectors, stats = embed_texts(items, enc, cache_dir=cache_dir, use_cache=not no_cache,
                                             on_progress=on_progress)
        else:
            from rewardlab.embed.ray_embed import embed_texts_ray

            with progress_bar(f"embedding on Ray ({encoder})", quiet) as on_progress:
                vectors, stats = embed_texts_ray(items, enc, address=ray, cache_dir=cache_dir, use_cache=not no_cache,
                                                 on_progress=on_progress)
            console.print(f"Ray ({ray}): {stats.workers} workers", highlight=False)
        rate = stats.misses / stats.seconds if stats.misses and stats.seconds else float("nan")
        out.print(f"{stats.texts} texts ({stats.unique} unique) with {enc.spec}: {stats.hits} cached "
                  f"(hit rate {stats.hit_rate:.0%}), {stats.misses} embedded in {stats.seconds:.1f}s"
                  f"{f' ({rate:.1f} texts/s)' if stats.misses else ''}", highlight=False)
        if output is not None and vectors is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            np.save(output, vectors)
            out.print(f"vectors {vectors.shape} → {output}", highlight=False)
