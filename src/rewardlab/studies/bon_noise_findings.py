"""The best-of-n noise study's verdicts on the published claims, computed from its record's paired differences.

Apart from the study's run (`rewardlab.studies.bon_noise`) because they read only the JSON record: a verdict
can be recomputed from a saved results.json, with the same rule, without rerunning anything.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _tally(diffs: list[dict[str, Any]]) -> tuple[int, int, float]:
    """(significantly better, significantly worse, mean difference) over paired rows."""
    better = sum(1 for d in diffs if d["diff"]["ci_low"] > 0)
    worse = sum(1 for d in diffs if d["diff"]["ci_high"] < 0)
    return better, worse, float(np.mean([d["diff"]["value"] for d in diffs])) if diffs else float("nan")


def _verdict(better: int, worse: int, mean_diff: float, conditions: int) -> str:
    """"reproduced" needs the claimed sign on average and a significant win in at least half the conditions;
    "not reproduced" needs more significant losses than wins and the opposite sign; anything else is a tie."""
    if mean_diff > 0 and better > worse and 2 * better >= conditions:
        return "reproduced"
    if mean_diff < 0 and worse > better:
        return "not reproduced"
    return "inconclusive"


#: the n the verdicts are read at: 16 (KL ≈ 1.8, where learners differ most) and the whole pool
FINDING_NS = ("16", "max")


def findings(record: dict[str, Any]) -> list[dict[str, str]]:
    """Plain-language verdicts on the published claims, computed from the paired differences.

    Each verdict counts conditions whose paired 95% CI excludes 0 (see `_verdict`).
    """
    out = []
    paired = record["paired"]
    for comparison in sorted({d["comparison"] for d in paired if d["comparison"] != "cross-prompt - same-prompt"}):
        for n in FINDING_NS:
            noisy = [d for d in paired if d["comparison"] == comparison and d["n"] == n and d["beta"] <= 1.0]
            if not noisy:
                continue
            better, worse, mean_diff = _tally(noisy)
            clean = _tally([d for d in paired if d["comparison"] == comparison and d["n"] == n and d["beta"] > 1.0])
            out.append({"claim": f"classification beats Bradley-Terry when labels are noisy ({comparison}, β ≤ 1, n = {n})",
                        "verdict": _verdict(better, worse, mean_diff, len(noisy)),
                        "evidence": f"{better} of {len(noisy)} conditions significantly better, {worse} significantly "
                                    f"worse, mean {mean_diff:+.4f} gold; with cleaner labels (β > 1): {clean[0]} better, "
                                    f"{clean[1]} worse, mean {clean[2]:+.4f}"})
    for n in FINDING_NS:
        rows = [d for d in paired if d["comparison"] == "cross-prompt - same-prompt" and d["n"] == n]
        if rows:
            better, worse, mean_diff = _tally(rows)
            out.append({"claim": f"cross-prompt pairs beat same-prompt pairs at the same budget (n = {n})",
                        "verdict": _verdict(better, worse, mean_diff, len(rows)),
                        "evidence": f"{better} of {len(rows)} learner × β × budget conditions significantly better, "
                                    f"{worse} significantly worse; mean {mean_diff:+.4f} gold"})
    ens = record["ensembles"]
    if ens:
        diffs = [{"diff": e["diff_vs_single_at_max"][how]} for e in ens for how in ("min", "lcb")]
        better, worse, mean_diff = _tally(diffs)
        turn_single = sum(1 for e in ens if e["peak_n"]["single"] < e["curves"]["single"]["n"][-1])
        turn_cons = sum(1 for e in ens for how in ("min", "lcb") if e["peak_n"][how] < e["curves"][how]["n"][-1])
        out.append({"claim": "conservative ensembles (min, mean − λ·std) beat a single model at high KL",
                    "verdict": _verdict(better, worse, mean_diff, len(diffs)),
                    "evidence": f"at n = max, {better} of {len(diffs)} conservative picks significantly better than "
                                f"the single model, {worse} worse, mean {mean_diff:+.4f} gold; best-of-n gold turns down "
                                f"before the end of the pool for {turn_single} of {len(ens)} single models and "
                                f"{turn_cons} of {len(diffs)} conservative ones"})
    return out
