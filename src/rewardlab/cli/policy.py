"""`rewardlab policy`: optimize a policy (a causal LM) against a reward model through TRL, on the CPU or a GPU."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rewardlab.cli.console import console, out, user_errors
from rewardlab.cli.options import (
    FROM_CONFIG,
    AllowExternalEncoderOpt,
    DeviceOpt,
    FieldOpt,
    GgufOpt,
    LimitPromptsOpt,
    Quiet,
    SeedOpt,
    config_defaults,
    format_estimate,
    option,
    with_options,
)
from rewardlab.optimize.policy_config import DPO_DEFAULTS, GRPO_DEFAULTS

if TYPE_CHECKING:
    from rewardlab.optimize.policy import PolicyRunConfig, PolicyRunResult

policy_app = typer.Typer(no_args_is_help=True, help="Optimize a policy against a reward model (TRL, CPU or GPU): GRPO, "
                                                    "on-policy DPO; logs proxy reward, KL and a held-out gold reward.")

RewardModelOpt = Annotated[Path, typer.Option("--reward-model", help="The proxy reward model directory (optimized).")]
PromptsOpt = Annotated[str, typer.Option("--prompts", help="A dataset name (`rewardlab datasets`), a preference file "
                                                           "(its prompts), a .txt (one per line) or records with --field.")]
OutOpt = Annotated[Path, typer.Option("--out", help="Run directory: log.jsonl, summary.json, policy/.")]

#: what GRPO and DPO share; each takes the defaults of its own config (GRPO_DEFAULTS / DPO_DEFAULTS)
RUN_OPTIONS = (
    option("gold_model", Annotated[Path | None, typer.Option("--gold-model", help="A held-out reward model directory: "
                                                                                  "only evaluates, never optimized.")],
           None),
    option("model", Annotated[Path | None, typer.Option("--model", help="The policy: a Hugging Face model folder or "
                                                                        "a .gguf file (default: SmolLM2-135M-Instruct "
                                                                        "GGUF).")], None),
    option("gguf", GgufOpt, None),
    option("steps", Annotated[int, typer.Option(help="Optimizer steps.")], FROM_CONFIG),
    option("lr", Annotated[float, typer.Option("--lr", help="Learning rate (constant).")], FROM_CONFIG),
    option("beta", Annotated[float, typer.Option(help="KL coefficient (GRPO's KL penalty, DPO's β).")], FROM_CONFIG),
    option("generations", Annotated[int, typer.Option("--generations", help="Samples per prompt (GRPO group size; "
                                                                            "DPO: best and worst of these make a "
                                                                            "pair).")], FROM_CONFIG),
    option("batch_size", Annotated[int, typer.Option(help="Prompts per step (GRPO) or pairs per step (DPO).")],
           FROM_CONFIG),
    option("max_prompt_tokens", Annotated[int, typer.Option(help="Longer prompts lose their earliest turns; those "
                                                                 "that still do not fit are left out (counted).")],
           FROM_CONFIG),
    option("max_completion_tokens", Annotated[int, typer.Option(help="Most new tokens per sample.")], FROM_CONFIG),
    option("temperature", Annotated[float, typer.Option(help="Sampling temperature.")], FROM_CONFIG),
    option("eval_prompts", Annotated[int, typer.Option(help="Prompts held out to measure proxy, gold and KL.")],
           FROM_CONFIG),
    option("eval_samples", Annotated[int, typer.Option(help="Samples per eval prompt.")], FROM_CONFIG),
    option("eval_every", Annotated[int, typer.Option(help="Evaluate every N steps (and at the start and the end).")],
           FROM_CONFIG),
    option("prompt_format", Annotated[str, typer.Option(help="How a chat prompt becomes the reward model's prompt "
                                                             "text: hh (HH-RLHF dialogue text) or last-user.")],
           FROM_CONFIG),
    option("field", FieldOpt, "prompt"),
    option("limit", LimitPromptsOpt, None),
    option("seed", SeedOpt, FROM_CONFIG),
    option("device", DeviceOpt, FROM_CONFIG),
    option("allow_external_encoder", AllowExternalEncoderOpt, False),
    option("quiet", Quiet, False),
)
#: option name -> `PolicyRunConfig` field, where they differ
RENAMED = {"lr": "learning_rate", "generations": "num_generations"}


def _config(options: dict[str, Any]) -> PolicyRunConfig:
    """The run's config from the command's options (those that are not settings of the run are left out)."""
    from rewardlab.optimize.policy_config import PolicyRunConfig

    settings = {RENAMED.get(k, k): v for k, v in options.items() if k not in {"gold_model", "field", "limit", "quiet",
                                                                                    "allow_external_encoder"}}
    model = settings.pop("model")
    return PolicyRunConfig(model=None if model is None else str(model), gguf_file=settings.pop("gguf"), **settings)


def _fmt(estimate: dict[str, Any] | None, ci: bool = True) -> str:
    return format_estimate(estimate, signed=True, ci=ci)


def _print_row(row: dict[str, Any], method: str) -> None:
    """One line of the running table: step, the trainer's own number, then the eval (proxy, KL, gold)."""
    if method == "grpo":
        trained = row.get("train_reward")
    else:
        trained = row.get("trainer", {}).get("loss")
    evaluated = row.get("eval", {})
    trainer = "—" if trained is None else f"{trained:+.3f}"
    out.print(f"{row['step']:>5}  {trainer:>10}  {_fmt(evaluated.get('proxy')):>26}  {_fmt(evaluated.get('kl')):>26}  "
              f"{_fmt(evaluated.get('gold')):>26}  {row['elapsed_s']:>7.0f}", highlight=False)


def _run(method: str, reward_model: Path, prompts: str, output: Path, options: dict[str, Any]) -> None:
    from rewardlab.optimize import policy, policy_inputs
    from rewardlab.rewards.model import RewardModel

    with user_errors(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # transformers / TRL deprecations a user cannot act on
        _quiet_libraries()
        config = _config(options)
        prompt_list = policy_inputs.load_prompts(prompts, options["field"], options["limit"])
        # loaded here (not by the runner) to pass --allow-external-encoder, and to fail before any LLM loads
        allow = options["allow_external_encoder"]
        proxy = RewardModel.load(reward_model, allow_external_encoder=allow)
        gold = None if options["gold_model"] is None else RewardModel.load(options["gold_model"],
                                                                          allow_external_encoder=allow)
        out.print(f"{'step':>5}  {'train rwd' if method == 'grpo' else 'loss':>10}  {'proxy [95% CI]':>26}  "
                  f"{'KL(π‖π_ref) [95% CI]':>26}  {'gold [95% CI]':>26}  {'time s':>7}", highlight=False)
        runner = policy.run_grpo if method == "grpo" else policy.run_dpo
        quiet = options["quiet"]
        result = runner(proxy, prompt_list, output, config, gold,
                        lambda row: _print_row(row, method),
                        None if quiet else lambda message: console.print(f"[dim]{message} …[/]", highlight=False))
        _print_summary(result)


def _quiet_libraries() -> None:
    """transformers' and datasets' own progress bars would interleave with the table."""
    import datasets
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    datasets.disable_progress_bars()


def _print_summary(result: PolicyRunResult) -> None:
    summary = result.summary
    for key, label in (("proxy", "proxy reward"), ("gold", "gold reward (held out)"), ("kl", "KL(π‖π_ref)")):
        if key in summary:
            part = summary[key]
            out.print(f"{label:<23} {_fmt(part['start'], ci=False)} → {_fmt(part['end'])}   "
                      f"change {_fmt(part['change'])}", highlight=False)
    prompts = summary["prompts"]
    notes = [f"{prompts['train']} training and {prompts['eval']} eval prompts"]
    if prompts["too_long"]:
        notes.append(f"{prompts['too_long']} prompts left out as too long")
    if "pairs" in summary:
        notes.append(f"{summary['pairs']['labelled']} on-policy pairs ({summary['pairs']['skipped']} prompts skipped: "
                     "best and worst too close)")
    out.print(f"{'; '.join(notes)}; {summary['steps']} steps in {summary['wall_s']:.0f}s → {result.out}", highlight=False)


@policy_app.command("grpo")
@config_defaults(GRPO_DEFAULTS, **RENAMED)
@with_options(RUN_OPTIONS)
def grpo(reward_model: RewardModelOpt, prompts: PromptsOpt, output: OutOpt = Path("policy-grpo"),
         **options: Any) -> None:
    """GRPO (TRL) against the proxy reward model, with a KL penalty to the starting policy."""
    _run("grpo", reward_model, prompts, output, options)


@policy_app.command("dpo")
@config_defaults(DPO_DEFAULTS, **RENAMED)
@with_options(RUN_OPTIONS)
def dpo(
    reward_model: RewardModelOpt,
    prompts: PromptsOpt,
    output: OutOpt = Path("policy-dpo"),
    min_margin: Annotated[float, typer.Option(help="A pair's rewards must differ by more than this (else the prompt "
                                                   "is skipped, counted).")] = FROM_CONFIG,
    **options: Any,
) -> None:
    """On-policy DPO (TRL): pairs sampled from the starting policy, best vs worst by the proxy reward model."""
    _run("dpo", reward_model, prompts, output, dict(options, min_margin=min_margin))
