"""The pluralistic study on real multi-annotator data: does modelling *who* labelled help predict each person?

Two shipped sets, each split by prompt (``test_fraction`` held out), every number with n and a 95% CI from the
cluster bootstrap over held-out prompts, every comparison paired on the same resamples. No targets: the truth about
these people is unknown, so the study reports what it finds.

**WMT23 side-by-side MQM** (`rewardlab.data.wmt_mqm`): per-rater comparisons of the translations of one source
segment (fewer MQM points preferred), 3 expert raters per segment, 18 raters over en→de and zh→en. The split keeps
each source segment on one side. Learners, all on the same features: unimodal ``bt-mlp`` (the baseline), the
annotator-conditioned ``bt-mlp-annotator`` and the EM mixture ``bt-mixture`` (each scored with the reward of the
rater who gave the held-out label, `predict_for`), and ``bt-mlp`` trained with Dawid–Skene or agreement weights
(annotator quality in training). Each held-out decided comparison is scored against its own rater's label
(MQM ties are left out, as in every pairwise accuracy here): pooled, macro over raters and worst rater, each paired
against unimodal BT. Split calibration: on held-out pairs that two or more raters compared, the predicted P(a rater
prefers a) against the raters' observed split (a tie counts ½).

**ConvAbuse** (`rewardlab.data.convabuse`): ordinal abuse ratings (1 not abusive … −3 very strongly abusive) of
users' turns to chatbots by 8 annotators. The split is by conversation (every prompt of a held-out conversation is
held out, so the turns of one conversation never straddle the split). Without the annotator: an ``ordinal-mlp``
(cumulative-link reward head) predicts one rating distribution per turn. With the annotator: the same shared reward
r(x), plus **per-annotator thresholds and scale**, P(level ≤ k | a) = σ(θ_{a,k} − s_a·r(x)), fitted by maximum
likelihood on each annotator's training ratings with a unit Gaussian prior pulling θ_a and log s_a towards the
population's (an annotator-offset model on a shared trunk; the conditioned trunk with an
annotator embedding trained end to end under the ordinal objective is not built). The control refits thresholds and
scale the same way on all training ratings pooled (the annotators' prior is centred on that refit), so a
difference is due to the annotators, not to the refit. Scored per held-out rating against that annotator's label:
exact-level accuracy, "abusive or not" accuracy (level ≤ −1) and log-likelihood, pooled / macro / worst annotator,
paired. Calibration: on held-out turns rated by two or more annotators, the total
variation distance between the observed split of their labels and the predicted distribution (with annotators: the
mean of those annotators' predicted distributions; without: the pooled refit's).
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.registry import load_named
from rewardlab.evaluate.bootstrap import GroupBootstrap
from rewardlab.evaluate.per_annotator import PairedStatistic, paired_people_accuracy, per_annotator_accuracy
from rewardlab.evaluate.ray_tasks import EncoderHandle, map_here_or_on_ray
from rewardlab.rewards.annotator_aware import UnknownAnnotatorWarning
from rewardlab.rewards.features import dataset_texts, featurize_dataset
from rewardlab.rewards.model import RewardModel
from rewardlab.studies.pluralistic_fits import ConvAbuseJob, WmtJob, convabuse_fit, wmt_fit

REAL_SETS = {"wmt": "wmt23-mqm", "convabuse": "convabuse"}
UNIMODAL = "bt-mlp"
#: bt-mlp trained with these annotator weights (`RewardModel`'s ``annotator_weights``)
WEIGHTINGS = ("dawid-skene", "agreement")
ORDINAL_HEAD = "ordinal-mlp"
ORDINAL_METRICS = ("exact", "abusive", "log_likelihood")
#: strength of the unit Gaussian prior of the per-annotator thresholds (in units of summed log-likelihood)
PRIOR = 1.0
OnFit = Callable[[], None]


def _stat(paired: dict[str, PairedStatistic]) -> dict[str, Any]:
    return {name: stat.as_dict() for name, stat in paired.items()}


def _correct(margin: np.ndarray, says_a: np.ndarray) -> np.ndarray:
    return np.where(margin == 0, 0.5, (margin > 0) == says_a).astype(np.float64)


# ---------------------------------------------------------------------------------------------------------- WMT
def wmt_learners(aware: Sequence[str]) -> list[str]:
    """The baseline first, then the annotator-aware heads, then bt-mlp with each quality weighting."""
    return [UNIMODAL, *aware, *(f"{UNIMODAL}+{w}" for w in WEIGHTINGS)]


def fit_comparisons(learner: str, train: FeedbackDataset, rows: dict[str, np.ndarray], encoder: Any,
                     seed: int, device: str | None = None) -> RewardModel:
    kind, _, weights = learner.partition("+")
    return RewardModel.create(kind, encoder=encoder, features="interaction", seed=seed,
                              annotator_weights=weights or "none").fit(train, feature_rows=rows, device=device)


def margins(model: RewardModel, x_a: np.ndarray, x_b: np.ndarray, raters: np.ndarray, aware: bool) -> np.ndarray:
    """Each held-out pair's reward margin: the pair's own rater's reward for an annotator-aware head."""
    if not aware:
        return model.predict(x_a) - model.predict(x_b)
    head: Any = model.head
    margin = np.zeros(len(x_a))
    with warnings.catch_warnings():  # a rater unseen in training gets the population reward, as designed
        warnings.simplefilter("ignore", UnknownAnnotatorWarning)
        for rater in np.unique(raters):
            rows = raters == rater
            margin[rows] = head.predict_for(x_a[rows], str(rater)) - head.predict_for(x_b[rows], str(rater))
    return margin


def run_wmt(data: FeedbackDataset, rows: dict[str, np.ndarray], encoder: Any, *, aware: Sequence[str],
            test_fraction: float, seeds: int, n_resamples: int, on_fit: OnFit, ray: str | None = None,
            device: str | None = None) -> dict[str, Any]:
    """The WMT part of the record; the seed × learner fits here or as Ray tasks (`pluralistic_fits`)."""
    train, test = data.split(by="prompt", test_size=test_fraction, seed=0)
    groups = test.prompt_groups()
    decided = [c for c in test.comparisons if c.outcome != "tie"]
    x_a, x_b = np.stack([rows[c.a] for c in decided]), np.stack([rows[c.b] for c in decided])
    says_a = np.array([c.outcome == "a" for c in decided])
    raters = np.array([str(c.annotator_id) for c in decided])
    prompt = np.array([groups[c.prompt_id] for c in decided])
    # pairs two or more raters compared: their observed split (ties ½), for the calibration of P(a rater prefers a)
    by_pair: dict[tuple[str, str], list[float]] = defaultdict(list)
    pair_prompt: dict[tuple[str, str], str] = {}
    for c in test.comparisons:
        by_pair[(c.a, c.b)].append(1.0 if c.outcome == "a" else 0.0 if c.outcome == "b" else 0.5)
        pair_prompt[(c.a, c.b)] = groups[c.prompt_id]
    shared = [pair for pair, labels in by_pair.items() if len(labels) >= 2]
    split_a = np.stack([rows[a] for a, _ in shared]) if shared else x_a[:0]
    split_b = np.stack([rows[b] for _, b in shared]) if shared else x_b[:0]
    observed = np.array([np.mean(by_pair[p]) for p in shared])
    split_prompt = np.array([pair_prompt[p] for p in shared])

    learners = wmt_learners(aware)
    units = [(seed, learner) for seed in range(seeds) for learner in learners]
    job = WmtJob(train, rows, tuple(aware), x_a, x_b, says_a, raters, split_a, split_b, EncoderHandle(encoder, device))
    fits = map_here_or_on_ray(wmt_fit, job, units, ray, on_result=lambda *_: on_fit())
    hits: dict[str, list[np.ndarray]] = {learner: [] for learner in learners}
    prob: dict[str, list[np.ndarray]] = {learner: [] for learner in (UNIMODAL, *aware)}
    reliability: dict[str, dict[str, Any]] = {}
    chosen_k = [fit.mixture_k for fit in fits if fit.mixture_k is not None]
    for (_, learner), fit in zip(units, fits):
        hits[learner].append(fit.hits)
        if fit.prob_a is not None:
            prob[learner].append(fit.prob_a)
        if fit.reliability is not None:
            reliability[learner.partition("+")[2]] = fit.reliability
    mean = {learner: np.mean(hits[learner], axis=0) for learner in learners}
    paired = {learner: _stat(paired_people_accuracy(mean[learner], mean[UNIMODAL], list(raters), prompt,
                                                    n_resamples=n_resamples, seed=0))
              for learner in learners[1:]}
    per_rater = {learner: {a: e.as_dict() for a, e in per_annotator_accuracy(
        mean[learner], says_a.astype(float), list(raters), prompt, n_resamples=n_resamples).per_annotator.items()}
        for learner in learners}
    baseline_prob = np.mean(prob[UNIMODAL], axis=0)
    calibration = {}
    for learner in aware if shared else ():
        bootstrap = GroupBootstrap(split_prompt, n_resamples=n_resamples, seed=0)
        error, base = np.abs(np.mean(prob[learner], axis=0) - observed), np.abs(baseline_prob - observed)
        calibration[learner] = PairedStatistic(bootstrap.mean(error), bootstrap.mean(base),
                                               bootstrap.mean(error - base)).as_dict()
    return {
        "data": {"prompts": len(data.prompts), "train_prompts": len(train.prompts), "test_prompts": len(test.prompts),
                 "train_comparisons": len(train.comparisons), "test_comparisons": len(test.comparisons),
                 "test_decided": len(decided), "raters": len(set(raters)), "split_pairs": len(shared),
                 "notes": list(data.notes)},
        "learners": learners, "against_unimodal": paired, "per_rater": per_rater, "split_calibration": calibration,
        "per_seed": {learner: [float(h.mean()) for h in hits[learner]] for learner in learners},
        "mixture_k": chosen_k, "reliability": reliability}


# ---------------------------------------------------------------------------------------------------- ConvAbuse
def conversation_split(data: FeedbackDataset, fraction: float, seed: int = 0) -> tuple[set[str], dict[str, str]]:
    """Held-out prompt ids (every prompt of a held-out conversation) and each prompt's conversation (its cluster)."""
    conversations: dict[str, set[str]] = defaultdict(set)
    for rating in data.ratings:
        conversations[data.responses[rating.response_id].prompt_id].add(str(rating.meta.get("conv_id")))
    names = sorted(set().union(*conversations.values()))
    order = np.random.default_rng(seed).permutation(len(names))
    held = {names[i] for i in order[: max(1, round(fraction * len(names)))]}
    test = {pid for pid, convs in conversations.items() if convs & held}
    return test, {pid: min(convs) for pid, convs in conversations.items()}


def level_probabilities(reward: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(n, levels) P(level k) under a cumulative logit with increasing ``thresholds``."""
    cdf = expit(thresholds[None, :] - np.asarray(reward, np.float64)[:, None])
    cdf = np.concatenate([np.zeros((len(cdf), 1)), cdf, np.ones((len(cdf), 1))], axis=1)
    return np.clip(np.diff(cdf, axis=1), 1e-12, 1.0)


def _unpack(params: np.ndarray) -> tuple[np.ndarray, float]:
    steps = np.logaddexp(0.0, params[2:])  # softplus: the thresholds stay increasing
    return np.concatenate([[params[1]], params[1] + np.cumsum(steps)]), float(np.exp(params[0]))


def fit_annotator_thresholds(reward: np.ndarray, level: np.ndarray, population: np.ndarray,
                             population_scale: float = 1.0) -> tuple[np.ndarray, float]:
    """One annotator's thresholds θ_a and scale s_a on a shared reward: maximum likelihood of their levels with a
    unit Gaussian prior towards the population's thresholds and log scale, so a sparse annotator stays near the
    population."""
    steps = np.diff(population)
    log_scale = float(np.log(population_scale))
    start = np.concatenate([[log_scale, population[0]], np.log(np.expm1(np.maximum(steps, 1e-3)))])

    def loss(params: np.ndarray) -> float:
        theta, scale = _unpack(params)
        upper = np.concatenate([theta, [np.inf]])[level]
        lower = np.concatenate([[-np.inf], theta])[level]
        r = scale * reward
        p = expit(upper - r) - expit(lower - r)
        prior = PRIOR * 0.5 * (np.sum((theta - population) ** 2) + (np.log(scale) - log_scale) ** 2)
        return float(-np.sum(np.log(np.clip(p, 1e-12, 1.0))) + prior)

    result = minimize(loss, start, method="L-BFGS-B")
    return _unpack(result.x)


def run_convabuse(data: FeedbackDataset, rows: dict[str, np.ndarray], encoder: Any, *, test_fraction: float,
                  seeds: int, n_resamples: int, on_fit: OnFit, ray: str | None = None,
                  device: str | None = None) -> dict[str, Any]:
    """The ConvAbuse part of the record; one fit per seed, here or as a Ray task (`pluralistic_fits`)."""
    test_ids, conversation = conversation_split(data, test_fraction)
    train, test = data.subset(set(data.prompts) - test_ids, "convabuse[train]"), data.subset(test_ids, "convabuse[test]")
    levels = np.array(sorted({r.value for r in data.ratings}))
    annotators = np.array([str(r.annotator_id) for r in test.ratings])
    observed = np.searchsorted(levels, [r.value for r in test.ratings])
    item = np.array([r.response_id for r in test.ratings])
    prompt = np.array([conversation[test.responses[r].prompt_id] for r in item])
    x_test = np.stack([rows[r] for r in item])
    x_train = np.stack([rows[r.response_id] for r in train.ratings])
    train_level = np.searchsorted(levels, [r.value for r in train.ratings])
    train_annotator = np.array([str(r.annotator_id) for r in train.ratings])
    shared_items = [rid for rid in np.unique(item) if (item == rid).sum() >= 2]
    job = ConvAbuseJob(train, rows, levels, x_train, train_level, train_annotator, x_test, annotators, observed, item,
                       shared_items, EncoderHandle(encoder, device))
    fits = map_here_or_on_ray(convabuse_fit, job, list(range(seeds)), ray, on_result=lambda *_: on_fit())
    scores = {m: {n: [fit.scores[m][n] for fit in fits] for n in ("population", "annotator")} for m in ORDINAL_METRICS}
    tv = {n: [fit.tv[n] for fit in fits] for n in ("population", "annotator")}
    fitted, last = fits[0].annotator_thresholds, fits[-1]
    population, population_scale = last.population, last.population_scale
    result: dict[str, Any] = {
        "data": {"ratings": len(data.ratings), "train_ratings": len(train.ratings), "test_ratings": len(test.ratings),
                 "train_prompts": len(train.prompts), "test_prompts": len(test.prompts),
                 "test_conversations": len(set(prompt)), "annotators": len(set(annotators)),
                 "shared_items": len(shared_items), "levels": [float(v) for v in levels]},
        "model": "ordinal-mlp reward + per-annotator thresholds and scale (unit Gaussian prior to the population's)",
        "control": "the same reward, thresholds and scale refitted on all training ratings (no annotator)",
        "head_thresholds": last.head_thresholds, "population_thresholds": [round(float(t), 3) for t in population],
        "population_scale": round(population_scale, 3), "annotator_thresholds": fitted, "metrics": {}}
    for metric in ORDINAL_METRICS:
        model_mean, base_mean = (np.mean(scores[metric][n], axis=0) for n in ("annotator", "population"))
        result["metrics"][metric] = _stat(paired_people_accuracy(model_mean, base_mean, list(annotators), prompt,
                                                                 n_resamples=n_resamples, seed=0))
    result["calibration"] = None  # no held-out turn rated by two annotators (a tiny run)
    if shared_items:
        shared_prompt = np.array([prompt[item == rid][0] for rid in shared_items])
        bootstrap = GroupBootstrap(shared_prompt, n_resamples=n_resamples, seed=0)
        with_annotators, without = np.mean(tv["annotator"], axis=0), np.mean(tv["population"], axis=0)
        result["calibration"] = PairedStatistic(bootstrap.mean(with_annotators), bootstrap.mean(without),
                                                bootstrap.mean(with_annotators - without)).as_dict()
    return result


def run_real(sets: Sequence[str], *, encoder: Any, aware: Sequence[str], test_fraction: float, seeds: int,
             limits: dict[str, int | None], n_resamples: int, on_fit: OnFit,
             on_embed_progress: Callable[[int, int], None] | None = None, ray: str | None = None,
             device: str | None = None) -> dict[str, Any]:
    """Each named real set's part of the record (keys of `REAL_SETS`); ``limits`` per set: WMT source segments per
    language pair, ConvAbuse rating rows (None: all). ``ray``: each set's texts missing from the cache are embedded
    on that Ray cluster first, and its fits run there as Ray tasks."""
    out: dict[str, Any] = {}
    for name in sets:
        data = load_named(REAL_SETS[name], limit=limits.get(name))
        if ray is not None:
            from rewardlab.embed.ray_embed import embed_texts_ray

            embed_texts_ray(dataset_texts(data, "interaction", encoder), encoder, address=ray,
                            on_progress=on_embed_progress)
        rows, _ = featurize_dataset(data, encoder, "interaction", on_progress=on_embed_progress)
        if name == "wmt":
            out[name] = run_wmt(data, rows, encoder, aware=aware, test_fraction=test_fraction, seeds=seeds,
                                n_resamples=n_resamples, on_fit=on_fit, ray=ray, device=device)
        else:
            out[name] = run_convabuse(data, rows, encoder, test_fraction=test_fraction, seeds=seeds,
                                      n_resamples=n_resamples, on_fit=on_fit, ray=ray, device=device)
    return out


def fits_per_seed(sets: Sequence[str], aware: Sequence[str]) -> int:
    """How many fits one seed of the real-data part makes (for the progress bar)."""
    return sum(len(wmt_learners(aware)) if name == "wmt" else 1 for name in sets)


def _verdict(difference: dict[str, Any], higher_is_better: bool = True) -> str:
    """What a paired CI says, with no target: better, worse, or no difference resolved."""
    low, high = difference["ci_low"], difference["ci_high"]
    if not higher_is_better:
        low, high = -high, -low
    return "better" if low > 0 else "worse" if high < 0 else "no difference resolved (CI includes 0)"


def _evidence(stat: dict[str, Any], digits: int = 3) -> str:
    d, m, b = stat["difference"], stat["model"], stat["baseline"]
    return (f"{m['value']:.{digits}f} vs {b['value']:.{digits}f}, difference {d['value']:+.{digits}f} "
            f"[{d['ci_low']:+.{digits}f}, {d['ci_high']:+.{digits}f}], n = {d['n']}")


def real_findings(real: dict[str, Any]) -> list[dict[str, str]]:
    """One line per real-data question, read from the paired CIs (no targets are set where the truth is unknown)."""
    out = []
    wmt = real.get("wmt")
    if wmt:
        for learner, stats in wmt["against_unimodal"].items():
            for key in ("macro", "worst"):
                out.append({"claim": f"WMT MQM: {learner} vs unimodal BT, {key} per-rater accuracy",
                            "verdict": _verdict(stats[key]["difference"]), "evidence": _evidence(stats[key])})
    abuse = real.get("convabuse")
    if abuse:
        for metric, label in (("exact", "exact-level accuracy"), ("log_likelihood", "log-likelihood")):
            stat = abuse["metrics"][metric]["macro"]
            out.append({"claim": f"ConvAbuse: per-annotator thresholds vs pooled thresholds, macro {label}",
                        "verdict": _verdict(stat["difference"]), "evidence": _evidence(stat)})
        if abuse["calibration"]:
            out.append({"claim": "ConvAbuse: predicted rating distribution vs the observed split of labels (total "
                                 "variation; lower is better), with vs without annotators",
                        "verdict": _verdict(abuse["calibration"]["difference"], higher_is_better=False),
                        "evidence": _evidence(abuse["calibration"])})
    return out
