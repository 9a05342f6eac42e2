"""`rewardlab credit`: a reward model's sequence reward spread over each response's tokens (dense rewards)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rewardlab.cli.console import out, progress_bar, user_errors
from rewardlab.cli.options import FROM_CONFIG, AllowExternalEncoderOpt, CacheDir, Quiet, config_defaults
from rewardlab.errors import RewardlabError
from rewardlab.rewards.credit_config import CreditConfig
from rewardlab.rewards.credit_export import credit_record_file


@config_defaults(CreditConfig, credit_record_file)
def credit(
    model: Annotated[Path, typer.Option("--model", help="A trained reward model directory (a MiniLM encoder).")],
    out_path: Annotated[Path, typer.Option("--out", help="Per-token rewards, one row per response: .jsonl or "
                                                         ".parquet.")],
    data: Annotated[Path | None, typer.Option("--data", help="JSONL/CSV/Parquet rows with prompt and response "
                                                             "fields (prompt_id, response_id kept when present).")] = None,
    prompt: Annotated[str | None, typer.Option(help="Credit one prompt + response instead of --data.")] = None,
    response: Annotated[str | None, typer.Option(help="The response to --prompt.")] = None,
    method: Annotated[str, typer.Option(help="attention (the encoder's attention from the pooled positions × the "
                                             "reward) or gradient (integrated gradients through encoder and head, "
                                             "residual spread evenly).")] = FROM_CONFIG,
    steps: Annotated[int, typer.Option(help="gradient: integrated-gradient points.")] = FROM_CONFIG,
    html: Annotated[Path | None, typer.Option("--html", help="Also write the token heat-maps as one "
                                                             "self-contained HTML page.")] = None,
    prompt_field: Annotated[str, typer.Option(help="--data: the prompt field.")] = FROM_CONFIG,
    response_field: Annotated[str, typer.Option(help="--data: the response field.")] = FROM_CONFIG,
    cache_dir: CacheDir = None,
    allow_external_encoder: AllowExternalEncoderOpt = False,
    quiet: Quiet = False,
) -> None:
    """Spread a reward model's sequence reward over each response's tokens, summing exactly to it; write JSONL or
    Parquet for dense-reward trainers, and a heat-map page with --html."""
    from rewardlab.rewards.credit_export import credit_format, write_credit_html, write_token_credits
    from rewardlab.rewards.model import RewardModel
    from rewardlab.rewards.token_credit import summarize_credits, token_credit

    with user_errors():
        if (data is None) == (prompt is None or response is None):
            raise RewardlabError("give either --prompt and --response, or --data FILE")
        credit_format(out_path)  # a wrong suffix fails before any work
        config = CreditConfig(method=method, steps=steps)
        loaded = RewardModel.load(model, cache_dir=cache_dir, allow_external_encoder=allow_external_encoder)
        with progress_bar(f"crediting tokens ({method})", quiet) as on_progress:
            if data is not None:
                credits = credit_record_file(loaded, data, config, prompt_field=prompt_field,
                                             response_field=response_field, on_progress=on_progress)
            else:
                assert prompt is not None and response is not None
                credits = token_credit(loaded, [prompt], [response], config=config, on_progress=on_progress)
        written = write_token_credits(credits, out_path)
        summary = summarize_credits(credits)
        noun = "response" if len(credits) == 1 else "responses"
        out.print(f"credited {len(credits)} {noun} by {method} through {credits[0].attributed_with} → {written}",
                  highlight=False)
        out.print(f"|twin − model reward| {summary['twin_gap']}, top token's share of |credit| {summary['top_share']}, "
                  f"evenly spread residual {summary['residual']} (means, 95% CI by prompt, n={len(credits)})",
                  highlight=False)
        if html is not None:
            out.print(f"heat-maps → {write_credit_html(credits, html)}", highlight=False)
