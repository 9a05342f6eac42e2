"""`rewardlab demo-reward`: rewards from demonstrations alone (train the discriminator, fine-tune a policy on
demonstrations), and `rewardlab experiment demo-reward`, the HH-RLHF check against Bradley-Terry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from rewardlab.cli_generate import BatchOpt, GgufOpt, ModelOpt, load_generator
from rewardlab.cli_support import CacheDir, EncoderOpt, Quiet, console, out, progress_bar, progress_bars, user_errors
from rewardlab.embed.base import DEFAULT_ENCODER

demo_reward_app = typer.Typer(no_args_is_help=True, help="Rewards from demonstrations alone (a discriminator vs policy "
                                                         "samples), and fine-tuning a policy on demonstrations.")

FeaturesOpt = Annotated[str, typer.Option(help="response, prompt+response or interaction.")]
LearnerOpt = Annotated[str, typer.Option(help="The discriminator head: outcome-logistic, outcome-mlp or outcome-lgbm.")]


@demo_reward_app.command("train")
def train(
    positive: Annotated[Path, typer.Option(help="The target side: demonstrations ({prompt, response} rows) or samples of "
                                                "a policy fine-tuned on them (candidate JSONL).")],
    negative: Annotated[Path, typer.Option(help="Base-policy samples: candidate JSONL from `rewardlab generate run`, or "
                                                "{prompt, response} rows.")],
    output: Annotated[Path, typer.Option("--out", help="Reward model directory to write.")],
    learner: LearnerOpt = "outcome-logistic",
    encoder: EncoderOpt = DEFAULT_ENCODER,
    features: FeaturesOpt = "interaction",
    seed: int = 0,
    cache_dir: CacheDir = None,
    quiet: Quiet = False,
) -> None:
    """Train a discriminator reward (positive vs negative); its score is the logit log D/(1 − D)."""
    from rewardlab.rewards.demonstrations import read_samples, train_demonstration_reward

    with user_errors():
        positives = read_samples(positive, "positive")
        negatives = read_samples(negative, "negative")
        with progress_bar(f"embedding ({encoder})", quiet) as on_progress:
            model = train_demonstration_reward(positives, negatives, learner, encoder=encoder, features=features,
                                               seed=seed, cache_dir=cache_dir, on_progress=on_progress)
        model.save(output)
        out.print(f"{learner} discriminator on {len(positives)} positives vs {len(negatives)} negatives → {output}",
                  highlight=False)


@demo_reward_app.command("sft")
def sft(
    demonstrations: Annotated[Path, typer.Argument(help="{prompt, response} rows (HH dialogue prompts become chat turns).")],
    output: Annotated[Path, typer.Option("--out", help="Folder for the fine-tuned model (loads with --model).")],
    model: ModelOpt = None,
    gguf: GgufOpt = None,
    steps: int = 60,
    batch_size: BatchOpt = 8,
    learning_rate: float = 1e-4,
    trainable_layers: Annotated[int, typer.Option(help="Top decoder blocks that learn (0 = all parameters).")] = 8,
    max_prompt_tokens: int = 96,
    max_response_tokens: int = 64,
    seed: int = 0,
    quiet: Quiet = False,
) -> None:
    """Fine-tune a local causal LM on demonstrations (loss on response tokens only), on the CPU."""
    from rewardlab.cli_generate import local_generator
    from rewardlab.data.hh_rlhf import chat_turns
    from rewardlab.optimize.sft import SftConfig, fine_tune_on_demonstrations
    from rewardlab.rewards.demonstrations import read_samples

    with user_errors():
        config = SftConfig(steps, batch_size, learning_rate, trainable_layers, max_prompt_tokens, max_response_tokens, seed)
        examples = [(chat_turns(s.prompt), s.response) for s in read_samples(demonstrations)]
        generator = local_generator(model, gguf, batch_size)
        load_generator(generator, quiet)
        with progress_bar("fine-tuning", quiet) as on_progress:
            result = fine_tune_on_demonstrations(generator, examples, output, config,
                                                 lambda step, total, _loss: on_progress(step, total))
        out.print(f"{len(examples)} demonstrations, {steps} steps, {result.trainable_parameters:,} trainable parameters: "
                  f"loss {result.losses[0]:.3f} → {sum(result.losses[-5:]) / len(result.losses[-5:]):.3f}; "
                  f"model → {output}", highlight=False)


def experiment(
    train_prompts: Annotated[int, typer.Option(help="Training prompts (their chosen responses are the demonstrations).")]
    = 500,
    test_size: Annotated[float, typer.Option(help="Share of prompts held out.")] = 0.5,
    data: Annotated[str, typer.Option(help="An HH-RLHF file (default: the shared harmless-base set).")] = "",
    model: Annotated[str | None, typer.Option(help="Policy: a model folder or .gguf (default SmolLM2-135M).")] = None,
    max_new_tokens: int = 64,
    temperature: float = 0.7,
    sft_steps: int = 60,
    sft_layers: int = 8,
    learner: LearnerOpt = "outcome-logistic",
    bt_learner: Annotated[str, typer.Option(help="The pairwise reference.")] = "bt-mlp",
    encoder: EncoderOpt = DEFAULT_ENCODER,
    seed: int = 0,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for samples, the fine-tuned policy and results.")]
    = Path("runs/demo-reward"),
    quiet: Quiet = False,
) -> None:
    """Demonstration-only rewards vs Bradley-Terry on HH-RLHF harmless: held-out pairwise accuracy with CIs."""
    from rewardlab.experiments.demo_reward import DemoRewardConfig, run_study
    from rewardlab.optimize.sft import SftConfig

    with user_errors():
        config = DemoRewardConfig(data=data, train_prompts=train_prompts, test_size=test_size, model=model,
                                  max_new_tokens=max_new_tokens, temperature=temperature,
                                  sft=SftConfig(steps=sft_steps, trainable_layers=sft_layers, seed=seed),
                                  learner=learner, bt_learner=bt_learner, encoder=encoder, seed=seed)
        with progress_bars(quiet) as bars:
            record = run_study(config, out_dir, on_stage=None if quiet else lambda s: console.print(s, highlight=False),
                               on_progress=bars.bar)
        table = Table(title="held-out pairwise accuracy (95% CI, prompts resampled)", title_justify="left")
        for column in ("reward", "accuracy", "minus BT (paired)"):
            table.add_column(column)
        for name, estimate in record["accuracy"].items():
            diff = record["minus_bt"].get(name)
            table.add_row(name, _fmt(estimate), "—" if diff is None else _fmt(diff))
        out.print(table)
        out.print(f"results: {out_dir / 'results.md'} ({record['timing_seconds']['total']:.0f}s)", highlight=False)


def _fmt(e: dict[str, float]) -> str:
    return f"{e['value']:.3f} [{e['ci_low']:.3f}, {e['ci_high']:.3f}]"
