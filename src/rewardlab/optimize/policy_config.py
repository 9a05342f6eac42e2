"""What a policy-optimization run trains and how: `PolicyRunConfig` and each method's defaults.

Kept apart from the TRL bridge (`rewardlab.optimize.policy`) so that reading the defaults, as the CLI does at
start-up, does not load torch, transformers or TRL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rewardlab.embed.devices import DEFAULT_DEVICE, parse_device_spec
from rewardlab.optimize.trl_rewards import PolicyError, check_prompt_format


@dataclass
class PolicyRunConfig:
    """What to train and how. ``batch_size`` counts prompts per step (GRPO: × ``num_generations`` completions;
    DPO: pairs). ``num_generations`` is also the number of samples per prompt that DPO's pairs are picked from."""

    model: str | None = None  # a Hugging Face folder or a .gguf file; None: SmolLM2-135M-Instruct GGUF
    gguf_file: str | None = None  # with ``model`` a folder: the .gguf file's name in it
    steps: int = 20
    learning_rate: float = 1e-5
    beta: float = 0.05
    num_generations: int = 4
    batch_size: int = 4
    max_prompt_tokens: int = 256
    max_completion_tokens: int = 64
    temperature: float = 1.0
    seed: int = 0
    eval_prompts: int = 16
    eval_samples: int = 2  # samples per eval prompt
    eval_every: int = 1
    prompt_format: str = "hh"  # how chat prompts become the reward model's prompt text: "hh" or "last-user"
    min_margin: float = 0.0  # DPO: a pair's rewards must differ by more than this
    sample_batch_size: int = 16  # sequences per forward pass when sampling or scoring log-probabilities
    device: str = DEFAULT_DEVICE  # auto, cpu, cuda or cuda:N: where the policy trains (mixed bf16/fp16 on a GPU)
    extra: dict[str, Any] = field(default_factory=dict)  # more TRL config fields, e.g. {"loss_type": "dr_grpo"}

    def check(self) -> None:
        positive = {"steps": self.steps, "num_generations": self.num_generations, "batch_size": self.batch_size,
                    "max_prompt_tokens": self.max_prompt_tokens, "max_completion_tokens": self.max_completion_tokens,
                    "eval_prompts": self.eval_prompts, "eval_samples": self.eval_samples,
                    "eval_every": self.eval_every, "sample_batch_size": self.sample_batch_size}
        for name, value in positive.items():
            if value < 1:
                raise PolicyError(f"{name} must be at least 1, not {value}")
        if self.num_generations < 2:
            raise PolicyError(f"num_generations must be at least 2 (GRPO compares samples of one prompt), "
                              f"not {self.num_generations}")
        if self.learning_rate <= 0 or self.beta < 0 or self.temperature <= 0 or self.min_margin < 0:
            raise PolicyError("learning_rate and temperature must be > 0, beta and min_margin >= 0")
        check_prompt_format(self.prompt_format)
        parse_device_spec(self.device)


#: GRPO's defaults are the dataclass's; DPO's differ where the method needs it (its β scales an implicit reward,
#: and a DPO step moves the policy further than a GRPO step at the same learning rate).
GRPO_DEFAULTS = PolicyRunConfig()
DPO_DEFAULTS = PolicyRunConfig(learning_rate=1e-6, beta=0.1)
