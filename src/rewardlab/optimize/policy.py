"""KL-regularized policy optimization through TRL against rewardlab reward models: GRPO and on-policy DPO.

Both runs train a causal LM (default SmolLM2-135M-Instruct, its GGUF de-quantised to float32) with the
real TRL trainers (`GRPOTrainer`, `DPOTrainer`) against a frozen copy of the starting policy, on
``config.device``: the CPU in float32, or a GPU (TRL/accelerate place the model; mixed precision in bf16
where the GPU has it, else fp16, with fp32 master weights). The reward models score texts on the CPU:

- **GRPO** samples ``num_generations`` completions per prompt each step and scores them with the proxy
  reward model through `RewardFunction`; ``beta`` weights TRL's KL penalty to the reference.
- **DPO** (on-policy, RM-labelled): the starting policy samples ``num_generations`` completions per
  training prompt, the proxy reward model picks best (chosen) and worst (rejected) with
  `label_on_policy_pairs`, then `DPOTrainer` runs for ``steps`` steps with ``beta`` as DPO's β.

Every ``eval_every`` steps (and at start and end) `PolicyEvaluator` samples the fixed eval prompts and
logs proxy reward, a sequence-level Monte Carlo KL(π‖π_ref) and sample texts to ``<out>/log.jsonl``, so
GRPO and DPO are measured the same way; ``<out>/summary.json`` has start → end proxy, held-out gold and
KL with bootstrap CIs, and ``<out>/policy`` the final policy (model and tokenizer).
"""

from __future__ import annotations

import dataclasses
import json
import random
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rewardlab.generate.base import ChatPrompt
from rewardlab.optimize.policy_config import DPO_DEFAULTS, GRPO_DEFAULTS, PolicyRunConfig
from rewardlab.optimize.policy_eval import EvalResult, PolicyEvaluator, PolicySampler, compare, plain_prompt
from rewardlab.optimize.policy_inputs import fit_prompts, frozen_copy, load_policy
from rewardlab.optimize.trl_rewards import PolicyError, RewardFunction, as_messages, label_on_policy_pairs
from rewardlab.rewards.model import RewardModel

OnRow = Callable[[dict[str, Any]], None]
OnStatus = Callable[[str], None]


def eval_split(available: int, wanted: int, min_train: int, method: str = "policy", fit: str = "the prompt budget") -> int:
    """How many of ``available`` prompts to hold out for evaluation: ``wanted``, or, when that would leave fewer than
    ``min_train`` to train on, about half of them (at least one), with a warning that says so and how to choose.
    Raises `PolicyError` when not even one eval prompt and ``min_train`` training prompts can be had."""
    if available - wanted >= min_train:
        return wanted
    held_out = max(1, min(available // 2, available - min_train))
    if available - held_out < min_train:
        lower = " or lower --batch-size (GRPO trains on batch_size prompts per step)" if method == "grpo" else ""
        raise PolicyError(f"{available} prompts fit in {fit}, but {method} needs at least {min_train} to train on and "
                          f"1 to evaluate: give more prompts{lower}")
    warnings.warn(f"only {available} prompts fit in {fit}: {held_out} are held out for evaluation instead of "
                  f"eval_prompts={wanted}, {available - held_out} are trained on (the eval CIs will be wide; give more "
                  "prompts, or set --eval-prompts)", stacklevel=2)
    return held_out


@dataclass
class PolicyRunResult:
    out: Path
    summary: dict[str, Any]
    rows: list[dict[str, Any]]


def _reward_function(model: RewardModel | str | Path, config: PolicyRunConfig, name: str) -> RewardFunction:
    return RewardFunction(model if isinstance(model, RewardModel) else RewardModel.load(model), config.prompt_format, name)


def _trl_config(kind: Any, config: PolicyRunConfig, workdir: Path, device: Any, **specific: Any) -> Any:
    """A TRL config: the CPU in float32 or the GPU ``device`` in mixed precision, no hub, no checkpoints, a log line
    per step, then the method's own settings and ``config.extra``. The learning rate is constant: over a few dozen
    steps a decay schedule mostly shrinks the run."""
    import torch

    from rewardlab.embed.devices import compute_dtype

    half = compute_dtype(device)
    on_gpu = device.type == "cuda"
    shared = {"output_dir": str(workdir / "trainer"), "max_steps": config.steps, "learning_rate": config.learning_rate,
            "lr_scheduler_type": "constant", "use_cpu": not on_gpu, "bf16": on_gpu and half == torch.bfloat16,
            "fp16": on_gpu and half == torch.float16, "report_to": "none",
            "logging_steps": 1, "save_strategy": "no", "disable_dropout": True,
            "seed": config.seed, "data_seed": config.seed, "disable_tqdm": True, "dataloader_num_workers": 0,
            "push_to_hub": False}
    # recomputing activations saves memory a 135M model does not need and costs CPU time; transformers 5
    # renamed the switch (the old name warns)
    names = {f.name for f in dataclasses.fields(kind)}
    shared["activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"] = False
    try:
        return kind(**{**shared, **specific, **config.extra})
    except (TypeError, ValueError) as exc:
        raise PolicyError(f"{kind.__name__}: {exc}") from exc


# ---------------------------------------------------------------------------------------------- runs

class _Run:
    """What a GRPO and a DPO run share: prompts, policy, reference, evaluator, the log and the summary."""

    def __init__(self, method: str, proxy: RewardModel | str | Path, prompts: Sequence[ChatPrompt], out: str | Path,
                 config: PolicyRunConfig, gold: RewardModel | str | Path | None, on_row: OnRow | None,
                 on_status: OnStatus | None, workdir: Path) -> None:
        config.check()
        self.method, self.config, self.workdir = method, config, workdir
        self.started = time.perf_counter()
        self.on_row, self.on_status = on_row, on_status or (lambda message: None)
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.log_path = self.out / "log.jsonl"
        self.log_path.write_text("", encoding="utf-8")
        self.rows: list[dict[str, Any]] = []
        self.proxy = _reward_function(proxy, config, "proxy")
        self.gold = None if gold is None else _reward_function(gold, config, "gold")
        self.device = _policy_device(config.device)
        self.status("loading the policy")
        self.model, self.tokenizer, self.model_id = load_policy(config.model, config.gguf_file, workdir)
        self.model.to(self.device)  # fp32 weights; on a GPU the trainer adds mixed precision
        self.sampler = PolicySampler(self.model, self.tokenizer, config.sample_batch_size)
        shuffled = list(prompts)
        random.Random(config.seed).shuffle(shuffled)
        fitted, self.too_long = fit_prompts(shuffled, self.sampler, config.max_prompt_tokens)
        held_out = eval_split(len(fitted), config.eval_prompts, config.batch_size if method == "grpo" else 1, method,
                              f"{config.max_prompt_tokens} tokens ({self.too_long} too long)")
        self.eval_set, self.train_set = fitted[:held_out], fitted[held_out:]
        self.reference = frozen_copy(self.model)
        self.evaluator = PolicyEvaluator(self.eval_set, self.reference, self.tokenizer, self.proxy, self.gold,
                                         config.eval_samples, config.max_completion_tokens, config.temperature,
                                         config.seed + 1, config.sample_batch_size)
        self.last_eval: EvalResult | None = None
        self.start_eval: EvalResult | None = None

    def status(self, message: str) -> None:
        self.on_status(message)

    def trl_prompt(self, prompt: ChatPrompt) -> Any:
        """Conversational for a model with a chat template, else HH-style text."""
        return as_messages(prompt) if getattr(self.tokenizer, "chat_template", None) else plain_prompt(prompt)

    def evaluate(self, step: int, trainer_logs: dict[str, Any] | None = None) -> None:
        result = self.evaluator.evaluate(self.model, step)
        self.last_eval = result
        if self.start_eval is None:
            self.start_eval = result
        self.record(step, trainer_logs, result)

    def record(self, step: int, trainer_logs: dict[str, Any] | None, result: EvalResult | None) -> None:
        row: dict[str, Any] = {"step": step, "elapsed_s": round(time.perf_counter() - self.started, 1)}
        if trainer_logs is not None:
            row["trainer"] = {k: v for k, v in trainer_logs.items() if isinstance(v, int | float)}
            reward = trainer_logs.get("rewards/proxy/mean")
            if reward is not None:
                row["train_reward"] = reward
        if result is not None:
            row["eval"] = {k: e.as_dict() for k, e in result.estimates().items()}
            row["samples"] = result.examples()
        self.rows.append(row)
        with self.log_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
        if self.on_row is not None:
            self.on_row(row)

    def callback(self) -> Any:
        """A transformers callback that logs a row per optimizer step and evaluates every ``eval_every`` steps and at the last."""
        from transformers import TrainerCallback

        run = self

        class StepLogger(TrainerCallback):
            """One log row per optimizer step; evaluation every ``eval_every`` steps and at the last."""

            def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
                if not logs or "loss" not in logs:
                    return  # the end-of-training summary, not a step
                step = state.global_step
                if step % run.config.eval_every == 0 or step >= state.max_steps:
                    run.evaluate(step, logs)
                else:
                    run.record(step, logs, None)

        return StepLogger()

    def train(self, trainer: Any) -> None:
        from transformers.trainer_callback import PrinterCallback, ProgressCallback

        for noisy in (PrinterCallback, ProgressCallback):
            trainer.remove_callback(noisy)
        self.status(f"{self.method}: {self.config.steps} steps")
        trainer.train()
        step = trainer.state.global_step
        if self.last_eval is None or self.last_eval.step != step:
            self.evaluate(step)

    def finish(self, extra: dict[str, Any]) -> PolicyRunResult:
        """Save the policy and tokenizer, write ``summary.json`` (config, first vs last evaluation, timing); return the result."""
        assert self.start_eval is not None and self.last_eval is not None
        self.status("saving the policy")
        policy_dir = self.out / "policy"
        self.model.save_pretrained(policy_dir)
        self.tokenizer.save_pretrained(policy_dir)
        summary = {
            "method": self.method,
            "policy_model": self.model_id,
            "proxy_model": {"kind": self.proxy.reward_model.kind, "encoder": self.proxy.reward_model.encoder.spec},
            "gold_model": None if self.gold is None else {"kind": self.gold.reward_model.kind,
                                                          "encoder": self.gold.reward_model.encoder.spec},
            "config": asdict(self.config),
            "prompts": {"train": len(self.train_set), "eval": len(self.eval_set), "too_long": self.too_long},
            **extra,
            "steps": self.last_eval.step,
            "eval_samples": int(len(self.last_eval.texts)),
            "kl_estimator": "sequence-level Monte Carlo: mean over y ~ π of Σ_t log π(y_t|·) − log π_ref(y_t|·)",
            **compare(self.start_eval, self.last_eval),
            "wall_s": round(time.perf_counter() - self.started, 1),
            "policy": str(policy_dir),
        }
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        return PolicyRunResult(self.out, summary, self.rows)


def _policy_device(spec: str) -> Any:
    """The resolved device; a GPU other than cuda:0 is made the current one, where accelerate places the model."""
    import torch

    from rewardlab.embed.devices import resolve_device

    device = resolve_device(spec)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def _require_trl() -> None:
    try:
        import datasets  # noqa: F401
        import trl  # noqa: F401
    except ImportError as exc:
        raise PolicyError(f"policy optimization needs TRL and datasets ({exc.name} is missing): "
                          "pip install 'rewardlab[policy]'") from None


def run_grpo(proxy: RewardModel | str | Path, prompts: Sequence[ChatPrompt], out: str | Path,
             config: PolicyRunConfig | None = None, gold: RewardModel | str | Path | None = None,
             on_row: OnRow | None = None, on_status: OnStatus | None = None) -> PolicyRunResult:
    """GRPO against the ``proxy`` reward model; ``gold`` (held out, never optimized) only evaluates."""
    _require_trl()
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    config = config or dataclasses.replace(GRPO_DEFAULTS)
    with tempfile.TemporaryDirectory(prefix="rewardlab-grpo-") as tmp:
        run = _Run("grpo", proxy, prompts, out, config, gold, on_row, on_status, Path(tmp))
        if len(run.train_set) < config.batch_size:
            raise PolicyError(f"GRPO needs at least batch_size={config.batch_size} training prompts, "
                              f"{len(run.train_set)} are left after the eval prompts")
        run.tokenizer.padding_side = "left"
        run.status("evaluating the starting policy")
        run.evaluate(0)
        # one prompt's group per forward/backward pass, accumulated over the step's prompts: the same update as
        # one big batch (the whole step's completions are still generated together) at about 60% of the memory
        args = _trl_config(GRPOConfig, config, run.workdir, run.device, beta=config.beta,
                           num_generations=config.num_generations, per_device_train_batch_size=config.num_generations,
                           gradient_accumulation_steps=config.batch_size,
                           max_completion_length=config.max_completion_tokens, temperature=config.temperature, top_p=1.0)
        dataset = Dataset.from_list([{"prompt": run.trl_prompt(p)} for p in run.train_set])
        trainer = GRPOTrainer(model=run.model, reward_funcs=run.proxy, args=args, train_dataset=dataset,  # type: ignore[arg-type]
                              processing_class=run.tokenizer, callbacks=[run.callback()])
        run.train(trainer)
        return run.finish({})


def run_dpo(proxy: RewardModel | str | Path, prompts: Sequence[ChatPrompt], out: str | Path,
            config: PolicyRunConfig | None = None, gold: RewardModel | str | Path | None = None,
            on_row: OnRow | None = None, on_status: OnStatus | None = None) -> PolicyRunResult:
    """On-policy DPO: pairs sampled from the starting policy and labelled by ``proxy``, then ``steps`` DPO steps."""
    _require_trl()
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    config = config or dataclasses.replace(DPO_DEFAULTS)
    with tempfile.TemporaryDirectory(prefix="rewardlab-dpo-") as tmp:
        run = _Run("dpo", proxy, prompts, out, config, gold, on_row, on_status, Path(tmp))
        run.status("evaluating the starting policy")
        run.evaluate(0)
        wanted = run.train_set[:config.steps * config.batch_size]
        run.status(f"labelling on-policy pairs: {len(wanted)} prompts × {config.num_generations} samples")
        pairs = label_on_policy_pairs(run.sampler, run.proxy, wanted, n=config.num_generations,
                                      temperature=config.temperature, max_new_tokens=config.max_completion_tokens,
                                      seed=config.seed + 2, min_margin=config.min_margin,
                                      batch_size=max(1, config.sample_batch_size // config.num_generations))
        with (run.out / "pairs.jsonl").open("w", encoding="utf-8") as handle:
            for row in pairs.rows:
                handle.write(json.dumps(row) + "\n")
        if not pairs.rows:
            raise PolicyError(f"none of {len(wanted)} prompts gave a pair: best and worst of {config.num_generations} "
                              f"samples were identical or within min_margin={config.min_margin}")
        chat = bool(getattr(run.tokenizer, "chat_template", None))

        def side(text: str) -> Any:
            return [{"role": "assistant", "content": text}] if chat else " " + text

        dataset = Dataset.from_list([{"prompt": run.trl_prompt(r["prompt"]), "chosen": side(r["chosen"]),
                                      "rejected": side(r["rejected"])} for r in pairs.rows])
        args = _trl_config(DPOConfig, config, run.workdir, run.device, beta=config.beta,
                           per_device_train_batch_size=config.batch_size,
                           max_length=config.max_prompt_tokens + config.max_completion_tokens + 16)
        trainer = DPOTrainer(model=run.model, ref_model=run.reference, args=args, train_dataset=dataset,
                             processing_class=run.tokenizer, callbacks=[run.callback()])
        run.train(trainer)
        margins = [r["chosen_reward"] - r["rejected_reward"] for r in pairs.rows]
        return run.finish({"pairs": {"labelled": len(pairs.rows), "skipped": pairs.skipped,
                                     "mean_margin": sum(margins) / len(margins), "file": str(run.out / "pairs.jsonl")}})
