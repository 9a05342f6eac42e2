"""Run a reward-model audit: every measurement the card shows, as one JSON-able record.

The audit composes what rewardlab already measures — held-out accuracy and calibration with CIs and length controls
(`evaluate.holdout`), slices, perturbation and fixed bias probes (`evaluate.probes`), best-of-n against gold with the
Gao fit (`evaluate.best_of_n`), ensemble disagreement and the top tail (`evaluate.reward_risk`) — on one held-out set,
so a team reads one card before putting a reward model into RLHF. The record is what `rewardlab.audit.card` renders;
the per-pair arrays stay in memory for paired comparisons of two models (`rewardlab.audit.compare`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import rewardlab
from rewardlab.audit.measures import (
    clip_prompt,
    clip_text,
    confident_mistakes,
    reliability_bins,
    score_distribution,
    top_rewarded,
)
from rewardlab.audit.settings import AuditSettings
from rewardlab.data.candidates import CandidateSet
from rewardlab.data.dataset import FeedbackDataset
from rewardlab.errors import DataError, RewardlabError
from rewardlab.evaluate.bootstrap import GroupBootstrap
from rewardlab.evaluate.holdout import HoldoutResult, evaluate_model
from rewardlab.evaluate.pairwise import pairwise_correct, preference_probability
from rewardlab.evaluate.probes import ProbeResult, probe_items, run_fixed_probes, run_probes
from rewardlab.evaluate.reward_risk import disagreement_along_scale, tail_shape
from rewardlab.evaluate.slices import slice_accuracy
from rewardlab.rewards.features import featurize_dataset
from rewardlab.rewards.model import RewardModel

AUDIT_FORMAT = "rewardlab.audit/1"
#: best-of-n is shown up to this n (or the smallest pool, if smaller)
MAX_BON_N = 64


@dataclass
class AuditRun:
    """One model's audit: the record the card renders, and the per-pair arrays paired comparisons need."""

    record: dict[str, Any]
    holdout: HoldoutResult
    pair_group: np.ndarray
    probes: list[ProbeResult] = field(default_factory=list)


def licence_of(name: str | None) -> str | None:
    """The registry's licence of a named dataset, or of the dataset a split of it came from (``name[train]``)."""
    from rewardlab.data.registry import REGISTRY

    entry = REGISTRY.get(re.sub(r"\[[^\]]*\]$", "", name)) if name else None
    return entry.licence if entry is not None else None


def _describe_data(dataset: FeedbackDataset) -> dict[str, Any]:
    return {"name": dataset.name, "fingerprint": dataset.fingerprint(), "summary": dataset.summary(),
            "licence": licence_of(dataset.name), "annotators": annotator_summary(dataset)}


def annotator_summary(dataset: FeedbackDataset, seed: int = 0) -> dict[str, Any] | None:
    """How many annotators labelled the comparisons and, where several labelled the same pairs, how far they agree
    (Krippendorff's α with a CI, from the annotation service's statistics). None when no row names an annotator."""
    ids = [c.annotator_id for c in dataset.comparisons if c.annotator_id]
    if not ids:
        return None
    summary: dict[str, Any] = {"count": len(set(ids)), "labelled_rows": len(ids),
                               "unlabelled_rows": len(dataset.comparisons) - len(ids), "agreement": None}
    if len(set(ids)) > 1:
        from rewardlab.collect.annotation_stats import dataset_labels, label_stats

        try:
            stats = label_stats(dataset_labels(dataset, "comparisons"), n_resamples=500, seed=seed)
        except RewardlabError as exc:  # labels the agreement statistics cannot read: say why, do not guess
            stats = {"agreement_error": str(exc)}
        if "agreement" in stats:
            agreement = stats["agreement"]
            summary["agreement"] = {"alpha": agreement.get("alpha"), "fleiss_kappa": agreement.get("fleiss_kappa"),
                                    "items": agreement.get("items")}
        else:
            summary["agreement_note"] = stats.get("agreement_error")
    return summary


def _training_data(config: dict[str, Any]) -> dict[str, Any]:
    """What the model's config says it was trained on, with the registry's licence and annotators when the name is
    a registered dataset present on this machine."""
    from rewardlab.data.registry import REGISTRY

    train = config.get("train") or {}
    name = train.get("data")
    described: dict[str, Any] = {"name": name, "fingerprint": train.get("data_fingerprint"),
                                 "summary": train.get("data_summary"), "fit_seconds": train.get("fit_seconds"),
                                 "licence": None, "annotators": None}
    described["licence"] = licence_of(name) if isinstance(name, str) else None
    entry = REGISTRY.get(name) if isinstance(name, str) else None
    if entry is not None:
        if entry.available():
            data = entry.load()
            if data.fingerprint() == described["fingerprint"]:  # the same data, not a later version of it
                described["annotators"] = annotator_summary(data)
    for key in ("annotator_quality", "augment"):
        if key in train:
            described[key] = train[key]
    return described


def _saved_at(model_dir: Path) -> str | None:
    config = model_dir / "config.json"
    if not config.exists():
        return None
    return dt.datetime.fromtimestamp(config.stat().st_mtime, dt.UTC).isoformat(timespec="seconds")


def _best_of_n(rm: RewardModel, sets: Sequence[CandidateSet], bootstrap_seed: int) -> dict[str, Any]:
    """Best-of-n against gold on ``sets``: the curve along KL(BoN) with the oracle's, the share of the oracle's gain
    recovered at a few n (CIs over prompts), the Gao et al. fit, and the length rules on the same pools."""
    from rewardlab.evaluate.best_of_n import (
        best_of_n,
        fit_overoptimization,
        kl_best_of_n,
        length_rules,
        length_rules_record,
        summarize_best_of_n,
        summarize_length_rules,
    )
    from rewardlab.rewards.scoring import score_candidate_sets

    scores, _ = score_candidate_sets(rm, sets)
    max_n = int(min(MAX_BON_N, min(len(s) for s in sets)))
    result = best_of_n(sets, scores, max_n=max_n)
    ns: list[int | str] = sorted({n for n in (1, 2, 4, 8, 16, 32, 64) if n <= max_n} | {max_n})
    bootstrap = GroupBootstrap(np.arange(len(sets)), seed=bootstrap_seed)
    summary = summarize_best_of_n(result, ns, bootstrap)
    rules, rho = summarize_length_rules(result, length_rules(sets, scores, max_n), ns, bootstrap)
    kl = kl_best_of_n(np.arange(1, max_n + 1))
    random = float(result.random.mean())
    gold, oracle = result.curve.mean(0), result.oracle_curve.mean(0)
    fit = fit_overoptimization(kl, gold - random) if max_n >= 3 else None
    return {
        "prompts": len(sets), "pool_sizes": [int(result.pool_size.min()), int(result.pool_size.max())],
        "curve": {"n": list(range(1, max_n + 1)), "kl": kl.tolist(), "gold": gold.tolist(), "oracle": oracle.tolist(),
                  "random": random},
        "at_n": {k: {m: e.as_dict() for m, e in v.items()} for k, v in summary.items()},
        "gao_fit": fit.as_dict() | {"turns_down_within_range": fit.turns_down_before(float(kl[-1]))} if fit else None,
        "length_rules": length_rules_record(rules, rho),
    }


def run_audit(
    model_dir: str | Path,
    model: RewardModel,
    dataset: FeedbackDataset,
    settings: AuditSettings | None = None,
    *,
    candidate_sets: Sequence[CandidateSet] | None = None,
    fixed_probe_set: FeedbackDataset | None = None,
    fixed_probe_note: str | None = None,
    disclosure: dict[str, str] | None = None,
    on_step: Callable[[str], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> AuditRun:
    """Audit ``model`` on the held-out comparisons of ``dataset`` (see the module docstring)."""
    step = on_step or (lambda _: None)
    settings = settings or AuditSettings()
    if not dataset.comparisons:
        raise DataError("an audit needs held-out comparisons; this data has none", source=dataset.name)
    model_dir = Path(model_dir)
    config = model.config()
    step("held-out accuracy, calibration and length controls")
    rows, _ = featurize_dataset(dataset, model.encoder, model.features, cache_dir=model.cache_dir,
                                on_progress=on_progress)
    holdout = evaluate_model(model, dataset, n_resamples=settings.n_resamples, seed=settings.seed, feature_rows=rows)
    comps = dataset.comparisons
    target = holdout.pair_lengths.target
    groups = dataset.prompt_groups()
    pair_group = np.array([groups[c.prompt_id] for c in comps])
    training = _training_data(config)
    held_out = _describe_data(dataset)
    same_data = bool(training["fingerprint"] and training["fingerprint"] == held_out["fingerprint"])

    step("slices")
    slices = slice_accuracy(dataset, holdout.score_a, holdout.score_b, target, seed=settings.seed,
                            n_resamples=settings.n_resamples)

    step("reward scale: ensemble disagreement and the top tail")
    response_ids = list(rows)
    x = np.stack([rows[rid] for rid in response_ids])
    members, rewards = model.predict_members(x), model.predict(x)
    response_group = np.array([groups[dataset.responses[rid].prompt_id] for rid in response_ids])
    disagreement = disagreement_along_scale(members, response_group, n_resamples=settings.n_resamples, seed=settings.seed)
    tail = tail_shape(rewards)

    step(f"perturbation probes ({settings.probe_items} held-out responses each)")

    def score(prompts: list[str], responses: list[str]) -> np.ndarray:
        return model.score(prompts, responses)

    probes = run_probes(score, probe_items(dataset), settings.probes, max_items=settings.probe_items,
                        seed=settings.seed, n_resamples=settings.n_resamples, n_examples=settings.n_examples)
    fixed: dict[str, Any] = {"name": None, "results": [], "note": fixed_probe_note}
    if fixed_probe_set is not None:
        step(f"fixed probe set {fixed_probe_set.name}")
        fixed = {"name": fixed_probe_set.name, "fingerprint": fixed_probe_set.fingerprint(), "note": fixed_probe_note,
                 "results": [r.as_dict() for r in run_fixed_probes(score, fixed_probe_set, seed=settings.seed,
                                                                   n_resamples=settings.n_resamples)]}
    bon = None
    if candidate_sets:
        step(f"best-of-n against gold on {len(candidate_sets)} candidate pools")
        bon = _best_of_n(model, candidate_sets, settings.seed)

    failures = sorted(((r.name, e) for r in probes if r.verdict != "passes" or r.direction == "degraded"
                       for e in r.examples), key=lambda pe: pe[1].score_original - pe[1].score_perturbed)
    record = {
        "format": AUDIT_FORMAT,
        "rewardlab_version": rewardlab.__version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "settings": asdict(settings),
        "model": {"path": str(model_dir), "saved_at": _saved_at(model_dir), "config": config,
                  "members": model.n_members},
        "training_data": training,
        "held_out": held_out | {"same_as_training": same_data},
        "disclosure": disclosure,
        "accuracy": {"metrics": {k: v.as_dict() for k, v in holdout.metrics.items()},
                     "length_controls": holdout.length.as_dict(), "length": holdout.length_audit.as_dict(),
                     "reliability": reliability_bins(holdout.score_a, holdout.score_b, target),
                     "score_distribution": score_distribution(holdout.score_a, holdout.score_b, target)},
        "slices": [s.as_dict() for s in slices],
        "probes": {"perturbation": [r.as_dict() for r in probes], "fixed": fixed},
        "risk": {"best_of_n": bon, "disagreement": disagreement.as_dict() if disagreement else None,
                 "tail": tail.as_dict() if tail else None},
        "examples": {
            "confident_mistakes": confident_mistakes(dataset, holdout.score_a, holdout.score_b, target,
                                                     settings.n_examples),
            "probe_failures": [{"probe": name, "prompt": clip_prompt(e.prompt), "original": clip_text(e.original),
                                "perturbed": clip_text(e.perturbed), "score_original": e.score_original,
                                "score_perturbed": e.score_perturbed} for name, e in failures[: settings.n_examples]],
            "top_rewarded": top_rewarded(dataset, response_ids, rewards),
        },
    }
    return AuditRun(record, holdout, pair_group, probes)


def pair_outcomes(run: AuditRun) -> dict[str, np.ndarray]:
    """Per held-out pair: correct (½ for a score tie), NLL and Brier of the model's P(a ≻ b), for paired comparisons."""
    target = run.holdout.pair_lengths.target
    p = np.clip(preference_probability(run.holdout.score_a, run.holdout.score_b), 1e-12, 1 - 1e-12)
    return {"correct": pairwise_correct(run.holdout.score_a, run.holdout.score_b, target),
            "nll": -(target * np.log(p) + (1 - target) * np.log(1 - p)), "brier": (p - target) ** 2}
