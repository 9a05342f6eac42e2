"""Feature modes side by side: does embedding prompt and response together (``joint``) beat embedding them apart?

Each mode is cross-validated (k folds by prompt, the same folds for every mode) with the same heads on the
bundled HH-RLHF harmless demo, and shown beside its trivial control: the length-only head fitted on the same
training folds (its accuracy is the same for every mode). Columns: pairwise accuracy [95% CI], Δ accuracy vs
the length-only head [CI] (paired), length-balanced accuracy [CI], and embedding seconds.

Baseline in the same run: the ``response`` mode (what a head learns from the answer alone). Embedding seconds
are cold (a fresh cache), per view, on this machine: the response texts, the prompt tails and the joint texts
are each embedded once, and a mode costs the sum of the views it uses (joint includes building the joint texts
with the tokenizer); the ratio column divides by the ``response`` mode's.

    python benchmarks/feature_modes.py [--encoder minilm:int8] [--limit N] [--k 5] [--heads bt-mlp,clf-mlp]
                                       [--modes response,interaction,joint,joint-only]
                                       [--out benchmarks/results/feature_modes.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from machine import describe_cpu

from rewardlab.data.registry import REGISTRY
from rewardlab.embed import embed_texts, make_encoder
from rewardlab.evaluate.crossval import LearnerSpec, cross_validate
from rewardlab.rewards.features import MODE_PARTS, joint_texts, prompt_view


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", default="minilm:int8")
    parser.add_argument("--limit", type=int, default=None, help="demo rows to use (default: all)")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--heads", default="bt-mlp,clf-mlp")
    parser.add_argument("--modes", default="response,prompt+response,interaction,joint,joint-only")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/feature_modes.json"))
    args = parser.parse_args()

    dataset = REGISTRY["hh-harmless-demo"].load()
    if args.limit:
        dataset = dataset.subset(set(list(dataset.prompts)[: args.limit]))
    encoder = make_encoder(args.encoder)
    encoder.encode(["warm-up"])  # load (or build) the model outside the timings
    modes = args.modes.split(",")
    learners = [LearnerSpec(kind, kind) for kind in args.heads.split(",")]

    ids = list(dataset.responses)
    prompts = [dataset.prompts[dataset.responses[rid].prompt_id].text for rid in ids]
    responses = [dataset.responses[rid].text for rid in ids]
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as cache_dir:
        view_seconds: dict[str, float] = {}
        started = time.perf_counter()
        embed_texts(responses, encoder, cache_dir=cache_dir)
        view_seconds["r"] = time.perf_counter() - started
        started = time.perf_counter()
        embed_texts([prompt_view(p) for p in prompts], encoder, cache_dir=cache_dir)
        view_seconds["p"] = time.perf_counter() - started
        started = time.perf_counter()
        joint = joint_texts(prompts, responses, encoder)
        build_s = time.perf_counter() - started
        embed_texts(joint, encoder, cache_dir=cache_dir)
        view_seconds["j"] = time.perf_counter() - started
        view_seconds["r*p"] = 0.0
        print(f"views embedded cold: responses {view_seconds['r']:.1f}s, prompt tails {view_seconds['p']:.1f}s, "
              f"joint texts {view_seconds['j']:.1f}s (of which building them {build_s:.2f}s)", flush=True)

        control: dict[str, object] = {}
        for mode in modes:
            result = cross_validate(dataset, learners, encoder, features=mode, k=args.k, seed=args.seed,
                                    cache_dir=cache_dir)
            assert result.length is not None
            control = {"length_only": result.length.length_only.as_dict(),
                       "prefer_longer": result.length.prefer_longer.as_dict()}
            embed_s = sum(view_seconds[part] for part in set(MODE_PARTS[mode]))
            for spec in learners:
                audit = result.length_audit[spec.name]
                rows.append({"mode": mode, "head": spec.name, "accuracy": result.metrics[spec.name]["accuracy"].as_dict(),
                             "minus_length_only": audit.minus_length_only.as_dict(),
                             "length_balanced": audit.balanced.as_dict(), "embed_seconds": embed_s,
                             "fit_seconds": result.fit_seconds[spec.name]})
            print(f"  {mode}: done", flush=True)

    base_s = next((float(r["embed_seconds"]) for r in rows if r["mode"] == "response"), None)  # type: ignore[arg-type]
    n_pairs = rows[0]["accuracy"]["n"] if rows else 0  # type: ignore[index]
    print(f"\nhh-harmless-demo: {len(dataset.prompts)} prompts, {n_pairs} pairs; {args.k}-fold CV by prompt; "
          f"encoder {encoder.spec}; CPU {describe_cpu()}")
    length_only = control.get("length_only", {})
    print(f"length-only head accuracy: {_fmt(length_only)}")  # type: ignore[arg-type]
    print(f"{'mode':<16}{'head':<9}{'accuracy [95% CI]':<24}{'Δ vs length-only':<26}{'length-balanced':<24}"
          f"{'embed s':>8}{'× resp':>8}")
    for r in rows:
        ratio = float(r["embed_seconds"]) / base_s if base_s else float("nan")  # type: ignore[arg-type]
        print(f"{r['mode']:<16}{r['head']:<9}{_fmt(r['accuracy']):<24}{_fmt(r['minus_length_only'], True):<26}"  # type: ignore[arg-type]
              f"{_fmt(r['length_balanced']):<24}{float(r['embed_seconds']):>8.1f}{ratio:>8.2f}")  # type: ignore[arg-type]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"data": "hh-harmless-demo", "encoder": encoder.spec, "k": args.k, "seed": args.seed,
                                    "cpu": describe_cpu(), "controls": control, "results": rows}, indent=2))
    print(f"wrote {args.out}")


def _fmt(estimate: dict[str, float], signed: bool = False) -> str:
    if not estimate:
        return "-"
    sign = "+" if signed else ""
    return f"{estimate['value']:{sign}.3f} [{estimate['ci_low']:{sign}.3f}, {estimate['ci_high']:{sign}.3f}]"


if __name__ == "__main__":
    main()
