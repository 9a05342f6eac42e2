"""The card's figures, drawn from the audit record alone (so a card re-renders from ``audit.json``).

Each function takes the record's part it draws and returns a `Figure` whose ``draw`` gets ``matplotlib.pyplot``;
the renderer decides backend, resolution and closing (`rewardlab.report`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rewardlab.report import Figure

SIZE = (6.4, 3.6)
CI_COLOUR = "#1d5fa8"
FAIL_COLOUR = "#b45309"


def _nan(x: Any) -> float:
    return float("nan") if x is None else float(x)


def reliability_figure(bins: Sequence[Mapping[str, Any]]) -> Figure:
    def draw(plt: Any) -> Any:
        fig, (ax, counts) = plt.subplots(1, 2, figsize=SIZE, gridspec_kw={"width_ratios": [3, 2]})
        filled = [b for b in bins if b["n"]]
        ax.plot([0.5, 1], [0.5, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
        ax.plot([b["confidence"] for b in filled], [b["accuracy"] for b in filled], marker="o", color=CI_COLOUR,
                label="model")
        ax.set(xlim=(0.5, 1), ylim=(0, 1), xlabel="confidence max(p, 1−p)", ylabel="share the favoured side won")
        ax.legend(fontsize=8, loc="lower right")
        centres = [(b["low"] + b["high"]) / 2 for b in bins]
        counts.bar(centres, [b["n"] for b in bins], width=0.045, color=CI_COLOUR)
        counts.set(xlim=(0.5, 1), xlabel="confidence", ylabel="pairs")
        return fig

    return Figure("reliability", "Reliability diagram: how often the favoured response won, by confidence", draw)


def score_distribution_figure(dist: Mapping[str, Any]) -> Figure:
    def draw(plt: Any) -> Any:
        fig, ax = plt.subplots(figsize=SIZE)
        edges = np.asarray(dist["edges"])
        for key, colour in (("preferred", CI_COLOUR), ("rejected", FAIL_COLOUR)):
            ax.stairs(dist[key], edges, label=f"human-{key} responses", color=colour, linewidth=1.5)
        ax.set(xlabel="reward", ylabel="responses")
        ax.legend(fontsize=8)
        return fig

    return Figure("score-distribution", "Rewards of the human-preferred and the rejected responses", draw)


def _interval_plot(plt: Any, labels: Sequence[str], estimates: Sequence[Mapping[str, Any]], failed: Sequence[bool],
                   xlabel: str) -> Any:
    fig, ax = plt.subplots(figsize=(SIZE[0], 0.45 * len(labels) + 1.2))
    y = np.arange(len(labels))[::-1]
    for yi, est, bad in zip(y, estimates, failed):
        value, low, high = (_nan(est.get(k)) for k in ("value", "ci_low", "ci_high"))
        colour = FAIL_COLOUR if bad else CI_COLOUR
        ax.errorbar([value], [yi], xerr=[[max(value - low, 0)], [max(high - value, 0)]], fmt="o", color=colour,
                    capsize=3)
    ax.axvline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.set(yticks=y, yticklabels=labels, xlim=(0, 1), xlabel=xlabel)
    return fig


def probes_figure(results: Sequence[Mapping[str, Any]]) -> Figure:
    def draw(plt: Any) -> Any:
        return _interval_plot(plt, [r["name"] for r in results], [r["perturbed_preferred"] for r in results],
                              [r["verdict"] == "fails" for r in results],
                              "share of items where the perturbed response scored higher (95% CI)")

    return Figure("probes", "Perturbation probes: how often the perturbed response outscored the original "
                            "(orange: fails)", draw)


def fixed_probes_figure(results: Sequence[Mapping[str, Any]]) -> Figure:
    def draw(plt: Any) -> Any:
        return _interval_plot(plt, [r["bias"] for r in results], [r["accuracy"] for r in results],
                              [r["verdict"] == "fails" for r in results], "accuracy: the expert-preferred side scored higher")

    return Figure("fixed-probes", "Fixed probe set: accuracy per bias type (orange: fails)", draw)


def best_of_n_figure(bon: Mapping[str, Any]) -> Figure:
    def draw(plt: Any) -> Any:
        fig, ax = plt.subplots(figsize=SIZE)
        curve = bon["curve"]
        kl = np.asarray(curve["kl"])
        ax.plot(kl, curve["gold"], marker=".", color=CI_COLOUR, label="best-of-n by this reward")
        ax.plot(kl, curve["oracle"], color="grey", linestyle=":", label="oracle (best-of-n by gold)")
        ax.axhline(curve["random"], color="grey", linestyle="--", linewidth=1, label="random pick")
        fit = bon.get("gao_fit")
        if fit:
            d = np.sqrt(np.linspace(0, kl.max(), 100))
            ax.plot(d**2, curve["random"] + d * (fit["alpha"] - fit["beta"] * d), color=FAIL_COLOUR, linestyle="--",
                    label="Gao et al. fit")
        ax.set(xlabel="KL(best-of-n ‖ base) = log n − (n−1)/n (nats)", ylabel="mean gold of the pick")
        ax.legend(fontsize=8)
        return fig

    return Figure("best-of-n", "Best-of-n against gold along KL, with the Gao et al. fit", draw)


def disagreement_figure(disagreement: Mapping[str, Any]) -> Figure:
    def draw(plt: Any) -> Any:
        fig, ax = plt.subplots(figsize=SIZE)
        bins = disagreement["bins"]
        centres = [(b["reward_low"] + b["reward_high"]) / 2 for b in bins]
        values = [_nan(b["member_std"]["value"]) for b in bins]
        lows = [max(v - _nan(b["member_std"]["ci_low"]), 0) for v, b in zip(values, bins)]
        highs = [max(_nan(b["member_std"]["ci_high"]) - v, 0) for v, b in zip(values, bins)]
        ax.errorbar(centres, values, yerr=[lows, highs], marker="o", color=CI_COLOUR, capsize=3)
        ax.set(xlabel="mean reward (decile bins of the held-out responses)", ylabel="std across ensemble members")
        return fig

    return Figure("disagreement", "Ensemble disagreement along the reward scale", draw)
