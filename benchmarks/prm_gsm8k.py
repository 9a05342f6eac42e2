"""Process vs outcome rewards on the shipped GSM8K pools: best-of-4 accuracy of PRM aggregations, ORM, majority vote.

The protocol is `rewardlab experiment prm`'s: this script runs the same library function
(`rewardlab.studies.prm.run_study`), prints the study's own tables (`rewardlab.studies.prm_report`) as plain text and
writes the JSON record, without the report folder; use it to time the study or to try a setting quickly. Embeddings
come from the user cache (``minilm:int8`` by default): the first run embeds ~25k solution prefixes, later runs only
train and score.

    .venv/bin/python benchmarks/prm_gsm8k.py [--limit N] [--encoder minilm:int8] [--out benchmarks/results/prm_gsm8k.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rewardlab.report import Table
from rewardlab.studies.prm import PRMStudyConfig, make_config, run_study
from rewardlab.studies.prm_report import accuracy_table, anchor_reading, anchor_table, reach_table


def print_table(table: Table) -> None:
    rows = [list(table.header), *[list(r) for r in table.rows]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.replace("**", "").ljust(w) for cell, w in zip(row, widths)))
    print()


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
    config = make_config({"limit": args.limit, "encoder": args.encoder, "head": args.head, "split": args.split,
                          "seed": args.seed})
    record = run_study(config, log=lambda line: print(f"[{time.perf_counter() - started:6.1f}s] {line}", flush=True))
    print(f"\nbest-of-{record['pool_size']} on {record['questions']['test']} held-out questions (trained on "
          f"{record['questions']['train']}); 95% CIs by question, differences paired\n")
    print_table(accuracy_table(record))
    print_table(anchor_table(record))
    print(anchor_reading(record).replace("**", "") + "\n")
    print_table(reach_table(record))
    print(f"total {record['timing']['total_seconds']:.0f}s on {record['timing']['cpu']} ({record['timing']['cores']} cores)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2), encoding="utf-8")
    print(f"record: {args.out}")


if __name__ == "__main__":
    main()
