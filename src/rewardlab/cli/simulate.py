"""`rewardlab simulate`: label candidate pairs with simulated annotators (a collection feature, for studies and tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rewardlab.cli.best_of_n import load_sets
from rewardlab.cli.console import out, user_errors
from rewardlab.cli.options import CandidatesArg, ExcludeOpt, LimitPromptsOpt, SeedOpt, split_list
from rewardlab.errors import DataError, RewardlabError


def simulate(
    candidates: CandidatesArg,
    output: Annotated[Path, typer.Option(help="Directory for the feedback dataset (rewardlab Parquet format).")],
    pairs: Annotated[int, typer.Option(help="Annotation budget: how many comparisons.")] = 5000,
    beta: Annotated[str, typer.Option(help="Rationality β (inf = noiseless); comma-separated = one annotator each.")] = "1",
    flip_rate: Annotated[float, typer.Option(help="Probability of flipping each label.")] = 0.0,
    position_bias: Annotated[float, typer.Option(help="Logit in favour of the response shown first.")] = 0.0,
    length_bias: Annotated[float, typer.Option(help="Logit per std of log-length difference, for the longer one.")] = 0.0,
    pairing: Annotated[str, typer.Option(help="same-prompt or cross-prompt.")] = "same-prompt",
    seed: SeedOpt = 0,
    limit: LimitPromptsOpt = None,
    exclude_sources: ExcludeOpt = "",
) -> None:
    """Label pairs of candidates with simulated annotators (Bradley-Terry noise, flips, biases) from their gold."""
    from rewardlab.collect.simulate import SimulatedAnnotator, agreement_with_gold, simulate_comparisons
    from rewardlab.data.parquet import write_parquet

    with user_errors():
        sets = load_sets(candidates, limit, exclude_sources)
        if any(s.gold is None for s in sets):
            raise DataError("simulated annotators need gold scores for every candidate set", source=candidates)
        try:
            team = [SimulatedAnnotator(f"sim-{i}-beta{b:g}", beta=b, flip_rate=flip_rate, position_bias=position_bias,
                                       length_bias=length_bias) for i, b in enumerate(split_list(beta, float, "--beta"))]
            dataset = simulate_comparisons(sets, pairs, team, pairing=pairing, seed=seed,
                                           name=f"simulated-{Path(candidates).stem}")
        except ValueError as exc:
            raise RewardlabError(str(exc)) from None
        write_parquet(dataset, output)
        out.print(f"{len(dataset.comparisons)} {pairing} comparisons over {len(dataset.prompts)} prompts → {output}; "
                  f"{agreement_with_gold(dataset, sets):.1%} of labels agree with gold (gold ties left out)", highlight=False)
