"""`rewardlab spans`: fine-grained span rewards — label spans of QA-Feedback, train a span head, score, evaluate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from rewardlab.cli.console import out, print_table, progress_bars, user_errors
from rewardlab.cli.options import (
    FROM_CONFIG,
    AllowExternalEncoderOpt,
    CacheDir,
    DeviceOpt,
    EncoderOpt,
    LimitOpt,
    ModelArg,
    Quiet,
    SeedOpt,
    config_defaults,
)
from rewardlab.embed.devices import DEFAULT_DEVICE
from rewardlab.errors import DataError, ModelError
from rewardlab.rewards.span_config import SpanModelConfig

spans_app = typer.Typer(no_args_is_help=True, help=__doc__)
#: `spans eval` runs a study section (`rewardlab.studies.fine_grained_spans`), imported only when it runs
STUDY_DEFAULT = "Default: the study's."

SplitOpt = Annotated[str | None, typer.Option(
    "--split", help="How each error kind cuts a response: 'sentence' or 'clause' for every kind, or per kind, e.g. "
                    "relevance=clause,factuality=sentence (the default: Fine-Grained RLHF's granularities).")]
ContextOpt = Annotated[str, typer.Option(help="What a span's features see besides its text: span+left (the "
                                              "response before it and the prompt), span+response, span (the prompt "
                                              "only), prefix (the response through the span, as a PRM sees a step).")]
AggregateOpt = Annotated[str, typer.Option(help="Fold span error probabilities into the response reward (summed "
                                                "over kinds): length-weighted, sum, min or mean.")]
QA_FEEDBACK_HELP = "QA-Feedback: 'qa-feedback' (shared data) or a path to its JSON file."


def qa_feedback_path(data: str) -> Path:
    """The QA-Feedback file a command names: the registered dataset or a path."""
    from rewardlab.data.registry import REGISTRY

    if data in REGISTRY:
        if data != "qa-feedback":
            raise DataError(f"span labels come from QA-Feedback's error spans; {data!r} has none (use qa-feedback, "
                            "or a span JSONL file)")
        return REGISTRY[data].path()
    return Path(data)


def load_span_rows(data: str, split: str | None = None, limit: int | None = None) -> list[Any]:
    """Span rows from a span JSONL file, or labelled on the fly from QA-Feedback (by name or its JSON file)."""
    from rewardlab.data.spans import is_span_file, qa_feedback_spans, read_span_jsonl

    if Path(data).is_file() and is_span_file(data):
        return read_span_jsonl(data, limit)
    return qa_feedback_spans(qa_feedback_path(data), split, limit=limit)


@spans_app.command("label")
def label(
    data: Annotated[str, typer.Argument(help=QA_FEEDBACK_HELP)] = "qa-feedback",
    output: Annotated[Path, typer.Option("--out", help="Span JSONL file to write.")] = Path("spans.jsonl"),
    split: SplitOpt = None,
    min_overlap: Annotated[float, typer.Option(help="A span is an error of a kind when an annotated error of that "
                                                    "kind covers this share of the shorter of the two.")] = 0.5,
    limit: LimitOpt = None,
) -> None:
    """Cut QA-Feedback's annotated answer (prediction 1) into spans and label each, per error kind, by overlap with
    the annotated error spans: relevance (Irrelevant, Redundant, Incoherent) and factuality (Wrong-Grounding,
    Unverifiable)."""
    from rewardlab.data.spans import qa_feedback_spans, write_span_jsonl

    with user_errors():
        rows = qa_feedback_spans(qa_feedback_path(data), split, min_overlap, limit)
        write_span_jsonl(rows, output)
        counts: dict[str, list[int]] = {}
        for r in rows:
            counts.setdefault(r.kind, []).append(r.label)
        summary = "; ".join(f"{kind}: {len(v)} spans, {sum(v)} errors" for kind, v in counts.items())
        out.print(f"{len({r.question_id for r in rows})} questions; {summary} → {output}", highlight=False)


@spans_app.command("train")
@config_defaults(SpanModelConfig, head="kind")
def train(
    data: Annotated[str, typer.Argument(help="Span rows: a span JSONL file (`spans label`, or your own), or "
                                             "QA-Feedback ('qa-feedback' or its JSON file), labelled on the fly.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Span reward model directory to write.")],
    head: Annotated[str, typer.Option(help="The head of each error kind: one that learns from labels "
                                           "(outcome-logistic, outcome-mlp, outcome-lgbm).")] = FROM_CONFIG,
    encoder: EncoderOpt = FROM_CONFIG,
    context: ContextOpt = FROM_CONFIG,
    aggregate: AggregateOpt = FROM_CONFIG,
    split: SplitOpt = None,
    seed: SeedOpt = FROM_CONFIG,
    limit: LimitOpt = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing model directory at --out.")] = False,
    cache_dir: CacheDir = None,
    device: DeviceOpt = DEFAULT_DEVICE,
    quiet: Quiet = False,
) -> None:
    """Train a span reward model: one output per error kind, each span embedded with its left context and the
    prompt."""
    with user_errors():
        if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
            raise ModelError(f"{out_dir} already exists; pass --overwrite to replace it, or choose another --out")
        train_spans(load_span_rows(data, split, limit), out_dir, head, encoder, context, aggregate, split, seed,
                    cache_dir, quiet, device)


def train_spans(rows: list[Any], out_dir: Path, head: str, encoder: str, context: str, aggregate: str,
                split: str | None, seed: int, cache_dir: Path | None, quiet: bool, device: str | None = None) -> None:
    """Fit and save a span reward model on ``rows``, and say what it learnt from (`spans train`, and `train` given
    span rows); ``device``: where the encoder runs and the heads fit (None: the CPU)."""
    from rewardlab.data.spans import parse_splits
    from rewardlab.embed import make_encoder
    from rewardlab.rewards.span_rewards import SpanRewardModel

    splits = parse_splits(split, [r.kind for r in rows])
    model = SpanRewardModel.create(head, encoder if device is None else make_encoder(encoder, device), context,
                                   aggregate, splits, seed=seed, cache_dir=cache_dir)
    with progress_bars(quiet) as bars:
        model.fit(rows, on_progress=bars.bar(f"embedding spans in context ({encoder})"),
                  on_fit_progress=bars.bar(f"fitting {head} per error kind"), device=device)
    model.save(out_dir)
    kinds = "; ".join(f"{kind}: {c['spans']} spans, {c['errors']} errors, threshold {model.thresholds[kind]:.2f}"
                      for kind, c in model.train_info["spans"].items())
    out.print(f"trained {head} per kind on {model.train_info['questions']} questions ({kinds}) in "
              f"{model.train_info['fit_seconds']:.1f}s → {out_dir}", highlight=False)


@spans_app.command("score")
def score(
    model: ModelArg,
    prompt: Annotated[str | None, typer.Option(help="The prompt (with --response).")] = None,
    response: Annotated[str | None, typer.Option(help="The response whose spans to score.")] = None,
    input: Annotated[Path | None, typer.Option(help="JSONL of {prompt, response} records to score instead.")] = None,
    output: Annotated[Path | None, typer.Option(help="With --input: write one JSON record per response here "
                                                     "(its reward and spans) instead of printing.")] = None,
    aggregate: Annotated[str | None, typer.Option(help="Fold spans with this instead of the model's aggregation.")]
    = None,
    cache_dir: CacheDir = None,
    allow_external_encoder: AllowExternalEncoderOpt = False,
) -> None:
    """P(error) of each span of each kind, the response's reward, and the spans flagged (P >= the kind's threshold)."""
    from rewardlab.data.records import get_field, iter_records, require_text
    from rewardlab.rewards.span_rewards import SpanRewardModel

    with user_errors():
        if (input is None) == (prompt is None or response is None):
            raise DataError("give either --prompt and --response, or --input")
        spans_model = SpanRewardModel.load(model, cache_dir=cache_dir, allow_external_encoder=allow_external_encoder)
        if input is None:
            pairs = [(str(prompt), str(response))]
        else:
            pairs = [tuple(require_text(get_field(rec, f, source=input, row=row), source=input, row=row, field=f)
                           for f in ("prompt", "response")) for row, rec in iter_records(input)]  # type: ignore[misc]
        scored = spans_model.score_spans([p for p, _ in pairs], [r for _, r in pairs])
        if output is not None:
            with open(output, "w", encoding="utf-8") as handle:
                for (p, r), spans in zip(pairs, scored):
                    handle.write(json.dumps({"prompt": p, "response": r, "reward": spans_model.response_reward(
                        spans, aggregate), "spans": [vars(s) for s in spans]}, ensure_ascii=False) + "\n")
            out.print(f"{len(pairs)} responses → {output}", highlight=False)
            return
        for spans in scored:
            table = Table(title=f"span error probabilities (reward {spans_model.response_reward(spans, aggregate):.3f}, "
                                f"{aggregate or spans_model.aggregate})", title_justify="left")
            for column in ("kind", "span", "P(error)", "flag", "text"):
                table.add_column(column)
            for s in spans:
                flag = "error" if s.probability >= spans_model.thresholds.get(s.kind, 0.5) else ""
                table.add_row(s.kind, f"{s.start}-{s.end}", f"{s.probability:.3f}", flag, s.text)
            print_table(table)


@spans_app.command("eval")
def evaluate(
    data: Annotated[str, typer.Argument(help=QA_FEEDBACK_HELP)] = "qa-feedback",
    encoder: Annotated[str | None, typer.Option(help=f"{STUDY_DEFAULT} Encoder spec (see `rewardlab encoders`).")]
    = None,
    context: Annotated[str | None, typer.Option(help=f"{STUDY_DEFAULT} What a span's features see.")] = None,
    head: Annotated[str | None, typer.Option(help=f"{STUDY_DEFAULT} The head of each error kind.")] = None,
    aggregate: Annotated[str | None, typer.Option(help=f"{STUDY_DEFAULT} The aggregation compared with BT.")] = None,
    split: SplitOpt = None,
    folds: Annotated[int | None, typer.Option(help=f"{STUDY_DEFAULT} Folds by question (each held out once).")]
    = None,
    seed: Annotated[int | None, typer.Option(help=f"{STUDY_DEFAULT} Random seed.")] = None,
    limit: LimitOpt = None,
    record: Annotated[Path | None, typer.Option(help="Write the JSON record here.")] = None,
    cache_dir: CacheDir = None,
) -> None:
    """Span-level error detection on held-out questions (precision, recall, F1, AUC per kind; CIs by question),
    and the span-aggregate reward vs a response-level BT on the holistic preferences (paired by question)."""
    from rewardlab.studies.fine_grained_spans import SpanSectionConfig, render_span_section, span_section

    with user_errors():
        settings: dict[str, Any] = {"encoder": encoder, "context": context, "head": head, "aggregate": aggregate, "splits": split,
                    "folds": folds, "seed": seed}
        config = SpanSectionConfig(**{k: v for k, v in settings.items() if v is not None})
        section = span_section(qa_feedback_path(data), config, cache_dir=cache_dir, limit=limit,
                               log=lambda line: out.print(line, highlight=False))
        out.print(render_span_section(section), highlight=False, soft_wrap=True)
        if record is not None:
            record.parent.mkdir(parents=True, exist_ok=True)
            record.write_text(json.dumps(section.as_dict(), indent=2), encoding="utf-8")
            out.print(f"record: {record}", highlight=False)
