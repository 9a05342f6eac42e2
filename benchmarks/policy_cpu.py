"""GRPO on SmolLM2-135M-Instruct against a learned reward model, on a 2-core CPU, checked by a held-out gold reward.

The set-up follows Gao et al. (2022), "Scaling laws for reward model overoptimization": the policy
optimizes a *proxy* reward model while a *gold* reward model it never sees tells whether the gains are
real. Data: Anthropic HH-RLHF harmless-base test (shared data, 2,312 human preference pairs), split by
prompt (duplicates kept together) into three disjoint parts:

- **proxy** (45% of prompts): one BT-MLP on minilm:int8 embeddings — the reward GRPO optimizes;
- **gold** (45%): a 5-member BT-MLP ensemble (mean score) on the *other* half of the human labels. It
  encodes the same human preference from data the proxy never saw, so a gain that comes from the proxy's
  own quirks (its training noise, its seed's MLP) does not carry over to it. The ensemble lowers the
  gold's own variance at no extra embedding cost (embeddings are shared and cached). Caveats: both share
  the encoder, so exploits of its blind spots are invisible to gold; and with ~1k pairs each both are
  weak (their held-out accuracy is printed), so gold is a held-out referee, not the truth;
- **policy prompts** (10%): the eval prompts (proxy, gold and KL measured on fixed samples) and the GRPO
  training prompts; neither reward model was trained on them.

The baseline in the same run is the starting policy (step 0): the table shows proxy, gold and the
sequence-level Monte Carlo KL(π‖π_ref) at start, every ``--eval-every`` steps, and at the end, each with
a bootstrap 95% CI over eval prompts, plus the paired change end − start. Short completions and few
steps keep the whole run (reward models included) under 20 minutes on 2 cores. Writes JSON; the run
directory (log.jsonl, summary.json, the 0.5 GB policy) goes to a temporary folder unless ``--run-dir``.

    python benchmarks/policy_cpu.py [--steps 16] [--lr 2e-5] [--beta 0.04] [--out benchmarks/results/policy_cpu.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from rewardlab.data import load_named
from rewardlab.data.dataset import FeedbackDataset
from rewardlab.evaluate.holdout import evaluate_model
from rewardlab.optimize.policy import PolicyRunConfig, run_grpo
from rewardlab.rewards.model import RewardModel


def split_three(dataset: FeedbackDataset, seed: int) -> tuple[FeedbackDataset, FeedbackDataset, FeedbackDataset]:
    """(proxy, gold, policy) parts, disjoint by prompt group: 45% / 45% / 10%."""
    rest, policy = dataset.split(by="prompt", test_size=0.10, seed=seed)
    proxy, gold = rest.split(by="prompt", test_size=0.5, seed=seed + 1)
    return proxy, gold, policy


def fmt(part: dict[str, Any]) -> str:
    return f"{part['value']:+.3f} [{part['ci_low']:+.3f}, {part['ci_high']:+.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--beta", type=float, default=0.04)
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=4, help="prompts per step")
    parser.add_argument("--max-prompt-tokens", type=int, default=128)
    parser.add_argument("--max-completion-tokens", type=int, default=40)
    parser.add_argument("--eval-prompts", type=int, default=24)
    parser.add_argument("--eval-samples", type=int, default=2)
    parser.add_argument("--eval-every", type=int, default=4)
    parser.add_argument("--encoder", default="minilm:int8")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-dir", type=Path, default=None, help="keep the run directory here (default: temporary)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/policy_cpu.json"))
    args = parser.parse_args()
    started = time.perf_counter()

    data = load_named("hh-rlhf-harmless-base-test")
    proxy_data, gold_data, policy_data = split_three(data, args.seed)
    print(f"HH-RLHF harmless: {len(data.comparisons)} pairs → proxy {len(proxy_data.comparisons)}, "
          f"gold {len(gold_data.comparisons)}, policy prompts {len(policy_data.prompts)} (disjoint by prompt)", flush=True)

    rm_started = time.perf_counter()
    proxy = RewardModel.create("bt-mlp", encoder=args.encoder, seed=args.seed).fit(proxy_data)
    gold = RewardModel.create("bt-mlp", encoder=args.encoder, seed=args.seed + 100, ensemble=5).fit(gold_data)
    accuracy = {name: evaluate_model(model, policy_data).metrics["accuracy"].as_dict() for name, model in
                (("proxy", proxy), ("gold", gold))}
    rm_s = time.perf_counter() - rm_started
    print(f"reward models in {rm_s:.0f}s; held-out accuracy on the policy prompts' human pairs: "
          f"proxy {fmt(accuracy['proxy'])}, gold {fmt(accuracy['gold'])}", flush=True)

    config = PolicyRunConfig(steps=args.steps, learning_rate=args.lr, beta=args.beta, num_generations=args.generations,
                             batch_size=args.batch_size, max_prompt_tokens=args.max_prompt_tokens,
                             max_completion_tokens=args.max_completion_tokens, eval_prompts=args.eval_prompts,
                             eval_samples=args.eval_samples, eval_every=args.eval_every, seed=args.seed)
    prompts = [[{"role": m.role, "content": m.content} for m in p.messages or ()] for p in policy_data.prompts.values()]

    def show(row: dict[str, Any]) -> None:
        train = row.get("train_reward")
        line = f"step {row['step']:>3}  {row['elapsed_s']:>6.0f}s  train reward {'—' if train is None else f'{train:+.3f}'}"
        if "eval" in row:
            line += "  " + "  ".join(f"{k} {fmt(row['eval'][k])}" for k in ("proxy", "gold", "kl"))
        print(line, flush=True)

    with tempfile.TemporaryDirectory(prefix="policy-cpu-") as tmp:
        run_dir = args.run_dir or Path(tmp)
        policy_started = time.perf_counter()
        result = run_grpo(proxy, prompts, run_dir, config, gold=gold, on_row=show,
                          on_status=lambda message: print(f"  … {message}", flush=True))
        policy_s = time.perf_counter() - policy_started
    summary = result.summary
    total_s = time.perf_counter() - started

    evals = [{"step": r["step"], **{k: r["eval"][k] for k in ("proxy", "gold", "kl")}} for r in result.rows if "eval" in r]
    print()
    print(f"{'step':>5}  {'proxy [95% CI]':>26}  {'gold [95% CI]':>26}  {'KL(π‖π_ref) [95% CI]':>26}")
    for row in evals:
        print(f"{row['step']:>5}  {fmt(row['proxy']):>26}  {fmt(row['gold']):>26}  {fmt(row['kl']):>26}")
    print()
    print(f"{'':<8}{'start':>10}{'end':>10}  {'change end − start [95% CI]':>30}")
    for key in ("proxy", "gold", "kl"):
        part = summary[key]
        print(f"{key:<8}{part['start']['value']:>+10.3f}{part['end']['value']:>+10.3f}  {fmt(part['change']):>30}")
    print(f"prompts: {summary['prompts']}; GRPO {args.steps} steps × {args.batch_size} prompts × {args.generations} "
          f"samples, ≤ {args.max_completion_tokens} tokens; policy run {policy_s:.0f}s, reward models {rm_s:.0f}s, "
          f"total wall {total_s:.0f}s")
    starts = [r for r in result.rows if "samples" in r]
    record = {
        "benchmark": "policy_cpu", "machine": {"cpus": _cpus(), "python": platform.python_version()},
        "data": {"pairs": len(data.comparisons), "proxy_pairs": len(proxy_data.comparisons),
                 "gold_pairs": len(gold_data.comparisons), "policy_prompts": len(policy_data.prompts)},
        "reward_models": {"encoder": args.encoder, "proxy": "bt-mlp", "gold": "bt-mlp ensemble of 5 (mean)",
                          "heldout_accuracy": accuracy, "seconds": round(rm_s, 1)},
        "config": summary["config"], "prompts": summary["prompts"],
        "start_end": {k: summary[k] for k in ("proxy", "gold", "kl")}, "evals": evals,
        "samples": {"start": starts[0]["samples"], "end": starts[-1]["samples"]},
        "seconds": {"reward_models": round(rm_s, 1), "policy_run": round(policy_s, 1), "total": round(total_s, 1)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"wrote {args.out}")


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


if __name__ == "__main__":
    main()
