"""The span section of the fine-grained study (issue 19, item 2): span rewards on QA-Feedback's held-out questions.

Protocol. QA-Feedback's 500 questions are cut into ``folds`` folds by question (the study's own assignment when it
passes one); every question is held out once (cross-fitting), so every span and every preference pair gets a
prediction from models that never saw its question. In each fold:

- a **span reward model** (`rewardlab.rewards.span_rewards`: one logistic output per error kind, each span scored
  with its left context and the prompt) is trained on the training questions' span rows of ``prediction 1`` (the
  only answer with error spans): relevance on clauses, factuality on sentences;
- a **response-level BT** head is trained on the training questions' holistic preferences among the 4 answers.

Reported, with n and 95% cluster-bootstrap CIs by question:

- **span detection** per kind: precision, recall and F1 of flagging a span (P(error) >= the threshold chosen for
  best F1 on the fold's training spans), and AUC; beside it the trivial control, the same head on where the span
  is and how long it is (context ``position``, no text), trained on the same folds;
- **holistic preferences**: pairwise accuracy on the held-out decided pairs of the span-aggregate reward (each
  aggregation), the response-level BT, and the length controls, with the span aggregate minus BT paired by
  question. The span model never saw a preference: this asks how much of the holistic judgement the error
  spans of one answer explain.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.data.qa_feedback import read_qa_feedback
from rewardlab.data.spans import SpanRow, parse_splits, qa_feedback_spans, split_spans
from rewardlab.embed.base import Encoder, make_encoder
from rewardlab.errors import InvalidValueError
from rewardlab.evaluate.bootstrap import Estimate, GroupBootstrap
from rewardlab.evaluate.pairwise import pairwise_correct
from rewardlab.evaluate.ray_tasks import EncoderHandle, map_here_or_on_ray
from rewardlab.evaluate.span_detection import DETECTION_METRICS, DetectionRow, detection_table
from rewardlab.rewards.features import dataset_texts, featurize_dataset, prompt_view
from rewardlab.rewards.model import RewardModel
from rewardlab.rewards.span_config import CONTEXT_MODES, SCALAR_PARTS, SPAN_AGGREGATIONS, SpanModelConfig
from rewardlab.rewards.span_rewards import ANSWER_START, SpanRewardModel, span_features

#: the trivial control's context: the span's position and length only
CONTROL_CONTEXT = "position"


@dataclass(frozen=True)
class SpanSectionConfig:
    encoder: str = SpanModelConfig.encoder
    context: str = SpanModelConfig.context
    head: str = SpanModelConfig.kind
    aggregate: str = SpanModelConfig.aggregate
    #: ``relevance=clause,factuality=sentence`` (the kinds' defaults), or one split for every kind
    splits: str | None = None
    bt_head: str = "bt-mlp"
    bt_features: str = "interaction"
    folds: int = 5
    seed: int = 0
    n_resamples: int = 2000

    def __post_init__(self) -> None:
        if self.folds < 2:
            raise InvalidValueError(f"folds must be at least 2, got {self.folds}")
        SPAN_AGGREGATIONS.lookup(self.aggregate)


@dataclass
class SpanSection:
    """What `span_section` measured, as plain data (``as_dict`` for a JSON record)."""

    config: SpanSectionConfig
    detection: list[DetectionRow]
    #: the same, for the head that sees only the span's position and length (context ``position``)
    control: list[DetectionRow]
    #: rule -> pairwise accuracy on held-out decided pairs ("span: <aggregation>", "bt", "prefer shorter", ...)
    preference: dict[str, Estimate]
    #: "span: <configured aggregation> - bt", paired by question
    difference: Estimate
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"config": vars(self.config), "detection": [row.as_dict() for row in self.detection],
                "control": [row.as_dict() for row in self.control],
                "preference": {k: v.as_dict() for k, v in self.preference.items()},
                "difference": self.difference.as_dict(), "counts": self.counts, "seconds": self.seconds}


def question_folds(question_ids: Sequence[str], folds: int, seed: int) -> dict[str, int]:
    """Each distinct question (group) id -> its fold, by a seeded permutation of the sorted ids (sizes differ by <= 1)."""
    unique = sorted(set(question_ids))
    order = np.random.default_rng(seed).permutation(len(unique))
    return {unique[i]: rank % folds for rank, i in enumerate(order)}


def _response_spans(prompts: Sequence[str], responses: Sequence[str], splits: Mapping[str, str]) -> list[SpanRow]:
    """Every span of every kind of each response, unlabelled (label 0), its question id the response's index."""
    return [SpanRow(str(i), p, r, a, b, kind, 0) for i, (p, r) in enumerate(zip(prompts, responses))
            for kind, by in splits.items() for a, b in split_spans(r, by)]


def span_texts(spans: Sequence[SpanRow], context: str) -> list[str]:
    """Every text `span_features` embeds for ``spans`` in ``context`` (its views of a span, mirrored here so that
    ``ray`` can embed them on the cluster first). A text this list missed would only be embedded later, by
    `span_features` itself; a test compares the two lists."""
    parts = CONTEXT_MODES.lookup(context)
    views = {"s": lambda r: r.response[r.start:r.end], "l": lambda r: r.response[:r.start].rstrip() or ANSWER_START,
             "c": lambda r: r.response[:r.end], "r": lambda r: r.response, "p": lambda r: prompt_view(r.prompt)}
    used = [v for v in views if any(v in part for part in parts if part not in SCALAR_PARTS)]
    return [views[v](r) for v in used for r in spans]


def span_section(data: str | Path, config: SpanSectionConfig = SpanSectionConfig(),
                 fold_of: Mapping[str, int] | None = None, cache_dir: str | Path | None = None,
                 log: Callable[[str], None] | None = None, limit: int | None = None,
                 encoder: Encoder | None = None, ray: str | None = None, device: str | None = None) -> SpanSection:
    """Cross-fitted span detection and span-aggregate vs BT on the holistic preferences of the QA-Feedback file at
    ``data``. ``fold_of`` (prompt id -> fold, prompt ids as `read_qa_feedback` makes them) reuses a study's folds.
    ``ray`` (a Ray address): the span and answer texts missing from the cache are embedded on that cluster first,
    and each fold's fits are a Ray task there (`fit_span_fold`; the same numbers). ``device``: where the fits run
    here (a `rewardlab.studies.device.study_device` result; None: the CPU)."""
    say = log or (lambda line: None)
    started = time.perf_counter()
    enc = encoder or make_encoder(config.encoder)
    splits = parse_splits(config.splits)
    rows = qa_feedback_spans(data, splits, limit=limit)
    dataset = read_qa_feedback(data, limit)
    groups = dataset.prompt_groups()  # questions equal up to case and punctuation share a fold
    group_fold = question_folds(list(groups.values()), config.folds, config.seed)
    folds = dict(fold_of) if fold_of is not None else {p: group_fold[g] for p, g in groups.items()}
    n_folds = max(folds.values()) + 1
    response_ids = list(dataset.responses)
    prompts = [dataset.prompts[dataset.responses[r].prompt_id].text for r in response_ids]
    texts = [dataset.responses[r].text for r in response_ids]
    candidates = _response_spans(prompts, texts, splits)
    say(f"{len(rows)} labelled spans of {len({r.question_id for r in rows})} questions; {len(candidates)} spans of "
        f"{len(texts)} answers to score; {len(dataset.comparisons)} preference pairs")

    if ray is not None:
        from rewardlab.embed.ray_embed import embed_texts_ray

        texts_needed = [*span_texts(rows, config.context), *span_texts(candidates, config.context),
                        *dataset_texts(dataset, config.bt_features, enc)]
        embed_texts_ray(texts_needed, enc, address=ray, cache_dir=cache_dir)
    x_rows = span_features([r.prompt for r in rows], [r.response for r in rows], [(r.start, r.end) for r in rows],
                           enc, config.context, cache_dir=cache_dir)
    x_cand = span_features([r.prompt for r in candidates], [r.response for r in candidates],
                           [(r.start, r.end) for r in candidates], enc, config.context, cache_dir=cache_dir)
    x_control = span_features([r.prompt for r in rows], [r.response for r in rows], [(r.start, r.end) for r in rows],
                              enc, CONTROL_CONTEXT)
    bt_rows, _ = featurize_dataset(dataset, enc, config.bt_features, cache_dir=cache_dir)
    embedded = time.perf_counter()
    say(f"embedded in {embedded - started:.0f}s")

    row_fold = np.array([folds[r.question_id] for r in rows])
    response_fold = np.array([folds[dataset.responses[r].prompt_id] for r in response_ids])
    cand_response = np.array([int(r.question_id) for r in candidates])
    detected, thresholds = np.zeros(len(rows)), np.zeros(len(rows))
    control, control_cut = np.zeros(len(rows)), np.zeros(len(rows))
    span_scores = {how: np.zeros(len(texts)) for how in SPAN_AGGREGATIONS}
    bt_scores = np.zeros(len(texts))
    job = SpanFoldJob(config, EncoderHandle(enc, device), dict(splits), rows, x_rows, x_control, x_cand, candidates, row_fold,
                      response_fold, cand_response, dataset, folds, bt_rows, response_ids, cache_dir)
    fits = map_here_or_on_ray(fit_span_fold, job, list(range(n_folds)), ray,
                              on_result=lambda fold, _: say(f"fold {fold + 1}/{n_folds} done"))
    for fold, fit in enumerate(fits):
        test = row_fold == fold
        detected[test], thresholds[test], control[test], control_cut[test] = (fit.detected, fit.thresholds,
                                                                              fit.control, fit.control_cut)
        held = response_fold[cand_response] == fold
        _fold_rewards(span_scores, [c for c, keep in zip(candidates, held) if keep], fit.probs)
        bt_scores[response_fold == fold] = fit.bt

    kinds, labels, questions = [r.kind for r in rows], np.array([r.label for r in rows]), [r.question_id for r in rows]
    detection = detection_table(kinds, detected, labels, questions, thresholds, config.n_resamples, config.seed)
    controls = detection_table(kinds, control, labels, questions, control_cut, config.n_resamples, config.seed)
    preference, difference, pairs = _preference_accuracy(dataset, response_ids, span_scores, bt_scores, config)
    return SpanSection(config, detection, controls, preference, difference,
                       counts={"spans": len(rows), "questions": len({r.question_id for r in rows}),
                               "answers": len(texts), "decided_pairs": pairs, "folds": n_folds},
                       seconds={"embedding": round(embedded - started, 1),
                                "total": round(time.perf_counter() - started, 1)})


@dataclass(frozen=True)
class SpanFoldJob:
    """What every fold's fits share: the span rows and their features, the answers, the folds."""

    config: SpanSectionConfig
    encoder: EncoderHandle
    splits: dict[str, str]
    rows: Sequence[SpanRow]  # labelled spans, with their features and the control's
    x_rows: np.ndarray
    x_control: np.ndarray
    x_cand: np.ndarray  # every span of every answer
    candidates: Sequence[SpanRow]
    row_fold: np.ndarray
    response_fold: np.ndarray
    cand_response: np.ndarray
    dataset: Any  # the holistic preferences (FeedbackDataset)
    folds: Mapping[str, int]
    bt_rows: Mapping[str, np.ndarray]
    response_ids: Sequence[str]
    cache_dir: str | Path | None


@dataclass(frozen=True)
class SpanFoldFit:
    """One fold's held-out outputs: on its labelled spans (detector, control), its answers' spans and BT rewards."""

    detected: np.ndarray
    thresholds: np.ndarray
    control: np.ndarray
    control_cut: np.ndarray
    probs: np.ndarray
    bt: np.ndarray


def fit_span_fold(job: SpanFoldJob, fold: int) -> SpanFoldFit:
    """The span model, its position-only control and the response-level BT, trained without ``fold``'s questions
    and scored on them."""
    config, enc, rows, candidates = job.config, job.encoder.encoder, job.rows, job.candidates
    train, test = job.row_fold != fold, job.row_fold == fold
    model = SpanRewardModel.create(config.head, enc, config.context, config.aggregate, dict(job.splits),
                                   seed=config.seed, cache_dir=job.cache_dir)
    device = job.encoder.device
    model.fit([r for r, keep in zip(rows, train) if keep], x=job.x_rows[train], device=device)
    test_rows = [r for r, keep in zip(rows, test) if keep]
    trivial = SpanRewardModel.create(config.head, enc, CONTROL_CONTEXT, config.aggregate, dict(job.splits),
                                     seed=config.seed)
    trivial.fit([r for r, keep in zip(rows, train) if keep], x=job.x_control[train], device=device)
    held = job.response_fold[job.cand_response] == fold
    probs = model.predict_rows([c for c, keep in zip(candidates, held) if keep], job.x_cand[held])
    subset = job.dataset.subset({p for p in job.dataset.prompts if job.folds[p] != fold})
    bt = RewardModel.create(config.bt_head, encoder=enc, features=config.bt_features, seed=config.seed,
                            cache_dir=job.cache_dir)
    bt.fit(subset, feature_rows={r: job.bt_rows[r] for r in subset.responses}, device=device)
    test_ids = [r for r, f in zip(job.response_ids, job.response_fold) if f == fold]
    return SpanFoldFit(model.predict_rows(test_rows, job.x_rows[test]),
                       np.array([model.thresholds[r.kind] for r in test_rows]),
                       trivial.predict_rows(test_rows, job.x_control[test]),
                       np.array([trivial.thresholds[r.kind] for r in test_rows]), probs,
                       bt.predict(np.stack([job.bt_rows[r] for r in test_ids])))


def _fold_rewards(scores: dict[str, np.ndarray], spans: Sequence[SpanRow], probs: np.ndarray) -> None:
    """Each held-out answer's reward under every aggregation, from its spans' probabilities (kinds summed)."""
    by_answer: dict[tuple[int, str], list[int]] = {}
    for k, span in enumerate(spans):
        by_answer.setdefault((int(span.question_id), span.kind), []).append(k)
    answers = {a for a, _ in by_answer}
    for how, fold in SPAN_AGGREGATIONS.items():
        for a in answers:
            scores[how][a] = 0.0
        for (a, _), ks in by_answer.items():
            scores[how][a] += fold(probs[ks], np.array([spans[k].end - spans[k].start for k in ks], float))


def _preference_accuracy(dataset: Any, response_ids: list[str], span_scores: dict[str, np.ndarray],
                         bt_scores: np.ndarray, config: SpanSectionConfig) -> tuple[dict[str, Estimate], Estimate, int]:
    """Accuracy on decided held-out pairs of each rule, and the configured span aggregate minus BT, by question."""
    index = {r: i for i, r in enumerate(response_ids)}
    decided = [c for c in dataset.comparisons if c.outcome != "tie"]
    a = np.array([index[c.a] for c in decided])
    b = np.array([index[c.b] for c in decided])
    target = np.array([1.0 if c.outcome == "a" else 0.0 for c in decided])
    bootstrap = GroupBootstrap(np.array([c.prompt_id for c in decided]), config.n_resamples, config.seed)
    length = -np.array([len(dataset.responses[r].text) for r in response_ids], float)
    rules = {**{f"span: {how}": s for how, s in span_scores.items()}, "bt": bt_scores, "prefer shorter": length,
             "prefer longer": -length}
    correct = {name: pairwise_correct(s[a], s[b], target) for name, s in rules.items()}
    accuracy = {name: bootstrap.mean(c) for name, c in correct.items()}
    difference = bootstrap.mean(correct[f"span: {config.aggregate}"] - correct["bt"])
    return accuracy, difference, len(decided)


# ---------------------------------------------------------------------- rendering
def _ci(e: Mapping[str, Any]) -> str:
    return f"{e['value']:.3f} [{e['ci_low']:.3f}, {e['ci_high']:.3f}]"


def render_span_section(section: SpanSection | Mapping[str, Any]) -> str:
    """The section as Markdown, from the measurement or its JSON record (`SpanSection.as_dict`): the detection
    table, then the preference table."""
    record = section.as_dict() if isinstance(section, SpanSection) else section
    c, counts = record["config"], record["counts"]
    lines = [f"Span detection on held-out questions ({counts['folds']}-fold cross-fitting by question; "
             f"{c['encoder']}, context `{c['context']}`, head `{c['head']}`; 95% CIs by question):", "",
             "| kind | n spans | errors | questions | threshold | " + " | ".join(DETECTION_METRICS) + " |",
             "|---|---|---|---|---|" + "---|" * len(DETECTION_METRICS)]
    for row, what in [*((r, "") for r in record["detection"]), *((r, " (control: position, length)")
                                                                  for r in record["control"])]:
        lines.append(f"| {row['kind']}{what} | {row['n']} | {row['errors']} | {row['questions']} | "
                     f"{row['threshold']:.2f} | " + " | ".join(_ci(row[m]) for m in DETECTION_METRICS) + " |")
    lines += ["", f"Holistic preferences, pairwise accuracy on {counts['decided_pairs']} held-out decided pairs "
                  "(ties left out; 95% CIs by question):", "", "| rule | accuracy | n |", "|---|---|---|"]
    for name, e in record["preference"].items():
        lines.append(f"| {name} | {_ci(e)} | {e['n']} |")
    d = record["difference"]
    lines += ["", f"span ({c['aggregate']}) minus BT ({c['bt_head']}), paired by question: {_ci(d)} "
                  f"(n = {d['n']} pairs)."]
    return "\n".join(lines)
