"""Process vs outcome rewards on the shipped GSM8K pools: best-of-4 accuracy of PRM aggregations, ORM, majority vote.

Runs `rewardlab.studies.prm.compare_on_gsm8k` (questions split in half by prompt; PRMs on automatic step labels,
the ORM on outcome labels; paired bootstrap CIs by question), prints the table and the labeller's reach, and writes
the JSON record. Embeddings come from the user cache (``minilm:int8`` by default): the first run embeds ~25k
solution prefixes, later runs only train and score.

    .venv/bin/python benchmarks/prm_gsm8k.py [--limit N] [--encoder minilm:int8] [--out benchmarks/results/prm_gsm8k.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from rewardlab.data.candidates import load_candidates
from rewardlab.studies.prm import LIGHTMAN_ANCHOR, PRMStudyConfig, compare_on_gsm8k, comparison_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="First N questions only (default: all 1319).")
    parser.add_argument("--encoder", default=PRMStudyConfig.encoder)
    parser.add_argument("--head", default=PRMStudyConfig.head)
    parser.add_argument("--split", default=PRMStudyConfig.split, choices=("line", "sentence"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/prm_gsm8k.json"))
    args = parser.parse_args()
    started = time.perf_counter()
    sets = load_candidates("gsm8k", args.limit)
    config = PRMStudyConfig(encoder=args.encoder, head=args.head, split=args.split, seed=args.seed)
    result = compare_on_gsm8k(sets, config, log=lambda line: print(f"[{time.perf_counter() - started:6.1f}s] {line}",
                                                                    flush=True))
    print(f"\nbest-of-4 on {result.questions['test']} held-out GSM8K questions (trained on {result.questions['train']}); "
          "accuracy = the pick is correct (expected over ties); 95% CIs by question, differences paired")
    header = ("rule", "best-of-4 accuracy", "minus ORM", "minus majority vote")
    rows = comparison_rows(result)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))
    reach = result.labeller
    print(f"\nauto-labeller: {reach['checked_steps']} of {reach['steps']} steps checked ({reach['statements']} statements); "
          f"{reach['flagged_solutions']} of {reach['solutions']} solutions flagged; flagged share of correct solutions "
          f"{reach['flag_rate_correct']['value']:.3f} [{reach['flag_rate_correct']['ci_low']:.3f}, "
          f"{reach['flag_rate_correct']['ci_high']:.3f}] (n={reach['flag_rate_correct']['n']}) vs incorrect "
          f"{reach['flag_rate_incorrect']['value']:.3f} [{reach['flag_rate_incorrect']['ci_low']:.3f}, "
          f"{reach['flag_rate_incorrect']['ci_high']:.3f}] (n={reach['flag_rate_incorrect']['n']})")
    for name, info in result.training.items():
        if "held_out_step_separation" in info:
            sep = info["held_out_step_separation"]
            diff = sep["good_minus_wrong"]
            print(f"{name}: mean P(good) on held-out steps the checker passed minus those it flagged "
                  f"{diff['value']:+.3f} [{diff['ci_low']:+.3f}, {diff['ci_high']:+.3f}] "
                  f"({sep['good_steps']} passed, {sep['wrong_steps']} flagged)")
    print(f"anchor (Lightman et al. 2023, best-of-1860, GPT-4 scale, MATH): {LIGHTMAN_ANCHOR}")
    elapsed = time.perf_counter() - started
    print(f"total {elapsed:.0f}s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {**result.as_dict(), "wall_seconds": round(elapsed, 1), "machine": platform.processor() or platform.machine()}
    args.out.write_text(json.dumps(record, indent=2), encoding="utf-8")
    print(f"record: {args.out}")


if __name__ == "__main__":
    main()
