"""`rewardlab demo-reward`: rewards from demonstrations alone (train the discriminator, fine-tune a policy on them)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rewardlab.cli.console import out, progress_bar, user_errors
from rewardlab.cli.generate import load_generator
from rewardlab.cli.options import (
    FROM_CONFIG,
    BatchOpt,
    CacheDir,
    DeviceOpt,
    EncoderOpt,
    FeaturesOpt,
    GgufOpt,
    ModelOpt,
    Quiet,
    SeedOpt,
    config_defaults,
)
from rewardlab.embed.base import DEFAULT_ENCODER
from rewardlab.embed.devices import DEFAULT_DEVICE
from rewardlab.optimize.sft import SftConfig

demo_reward_app = typer.Typer(no_args_is_help=True, help="Rewards from demonstrations alone (a discriminator vs policy "
                                                         "samples), and fine-tuning a policy on demonstrations.")

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
    seed: SeedOpt = 0,
    cache_dir: CacheDir = None,
    device: DeviceOpt = DEFAULT_DEVICE,
    quiet: Quiet = False,
) -> None:
    """Train a discriminator reward (positive vs negative); its score is the logit log D/(1 − D)."""
    from rewardlab.embed import make_encoder
    from rewardlab.embed.devices import resolve_device
    from rewardlab.rewards.demonstrations import read_samples, train_demonstration_reward

    with user_errors():
        resolve_device(device)  # a GPU that is not here: one line, before any file is read
        positives = read_samples(positive, "positive")
        negatives = read_samples(negative, "negative")
        with progress_bar(f"embedding ({encoder})", quiet) as on_progress:
            model = train_demonstration_reward(positives, negatives, learner, encoder=make_encoder(encoder, device),
                                               features=features, seed=seed, cache_dir=cache_dir,
                                               on_progress=on_progress, device=device)
        model.save(output)
        out.print(f"{learner} discriminator on {len(positives)} positives vs {len(negatives)} negatives → {output}",
                  highlight=False)


@demo_reward_app.command("sft")
@config_defaults(SftConfig)
def sft(
    demonstrations: Annotated[Path, typer.Argument(help="{prompt, response} rows (HH dialogue prompts become chat turns).")],
    output: Annotated[Path, typer.Option("--out", help="Folder for the fine-tuned model (loads with --model).")],
    model: ModelOpt = None,
    gguf: GgufOpt = None,
    steps: Annotated[int, typer.Option(help="Optimizer steps.")] = FROM_CONFIG,
    batch_size: BatchOpt = FROM_CONFIG,
    learning_rate: Annotated[float, typer.Option(help="Learning rate.")] = FROM_CONFIG,
    trainable_layers: Annotated[int, typer.Option(help="Top decoder blocks that learn (0 = all parameters).")] = FROM_CONFIG,
    max_prompt_tokens: Annotated[int, typer.Option(help="Prompts keep their last N tokens.")] = FROM_CONFIG,
    max_response_tokens: Annotated[int, typer.Option(help="Responses keep their first N tokens.")] = FROM_CONFIG,
    seed: SeedOpt = FROM_CONFIG,
    quiet: Quiet = False,
) -> None:
    """Fine-tune a local causal LM on demonstrations (loss on response tokens only), on the CPU."""
    from rewardlab.data.hh_rlhf import chat_turns
    from rewardlab.generate.factory import local_generator
    from rewardlab.optimize.sft import fine_tune_on_demonstrations
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
