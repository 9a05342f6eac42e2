"""How far do demonstrations alone get a reward model? HH-RLHF harmless, where pairs give the ground truth.

Protocol (the issue's): split the pairs by prompt. On the training prompts, keep only the ``chosen``
responses as demonstrations — the rejected ones are never seen. Sample the base policy (SmolLM2-135M by
default) once per training prompt, and fine-tune a copy of it on the demonstrations and sample that too.
Then fit, on the same frozen-encoder features:

- ``bt``: Bradley-Terry on the training prompts' pairs (it sees chosen *and* rejected: the reference);
- ``demo-vs-base``: discriminator, demonstrations vs base samples;
- ``sft-vs-base``: discriminator, fine-tuned-policy samples vs base samples;
- ``length``: "the longer response wins", the bias a sceptic checks first; ``shorter``: "the shorter one wins";
- ``length-only``: Bradley-Terry on log-length alone, fitted on the training prompts' pairs (`fit_length_head_on`).

and score every held-out pair: accuracy = how often the chosen response gets the higher reward, with
a prompt-cluster bootstrap CI, and paired differences against ``bt`` on the same resamples. Each learned reward is
also read against length (`rewardlab.evaluate.length_controls`): its accuracy minus the length-only head's (paired),
its length-balanced accuracy, and the Spearman correlation of its reward with length over the held-out responses.

Samples and the fine-tuned policy are cached in the output folder and reused when their settings
match, since sampling is the slow part on a CPU.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.hh_rlhf import chat_turns, read_hh_rlhf
from rewardlab.data.registry import shared_data_dir
from rewardlab.embed.base import DEFAULT_ENCODER
from rewardlab.evaluate.bootstrap import GroupBootstrap
from rewardlab.evaluate.length_controls import (
    PairLengths,
    fit_length_head_on,
    length_audit,
    length_controls,
    response_lengths,
    reward_length_spearman,
)
from rewardlab.evaluate.pairwise import pairwise_correct
from rewardlab.evaluate.ray_tasks import EncoderHandle
from rewardlab.optimize.sft import SftConfig
from rewardlab.report import Report, Section, Table, difference, estimate, number
from rewardlab.rewards.demonstrations import Sample
from rewardlab.rewards.model import RewardModel
from rewardlab.rewards.training_set import OUTCOME_TARGET
from rewardlab.studies.demo_reward_fits import DemoFitJob, fit_rewards
from rewardlab.studies.device import study_device, study_encoder

HH_HARMLESS = "hh-rlhf-harmless-base-test/test.jsonl.gz"
Stage = Callable[[str], None]


@dataclass
class DemoRewardConfig:
    data: str = ""  # an HH-RLHF file; empty = the shared harmless-base set
    train_prompts: int = 500  # training prompts used (demonstrations, samples, and the BT pairs)
    test_size: float = 0.5
    model: str | None = None  # policy: a HF folder or .gguf; None = SmolLM2-135M-Instruct
    max_new_tokens: int = 64
    prompt_turns: int = 3  # the policy sees the dialogue's last turns (what the answer responds to); 0 = all
    temperature: float = 0.7
    top_p: float = 0.95
    batch_size: int = 32
    sft: SftConfig = field(default_factory=SftConfig)
    learner: str = "outcome-logistic"
    bt_learner: str = "bt-mlp"
    encoder: str = DEFAULT_ENCODER
    features: str = "interaction"
    seed: int = 0
    bootstrap: int = 2000
    #: where the encoder runs and the BT head and the discriminators fit (auto, cpu, cuda, cuda:N; None: the CPU);
    #: Ray tasks use the CPU.
    device: str | None = None

    def data_path(self) -> Path:
        """The HH-RLHF file to use: ``data`` if set, else the shared harmless-base test set."""
        return Path(self.data) if self.data else shared_data_dir() / HH_HARMLESS

    def sampling(self) -> dict[str, Any]:
        """The settings the policy's samples depend on; cached samples are reused only when these match."""
        return {"model": self.model, "max_new_tokens": self.max_new_tokens, "prompt_turns": self.prompt_turns,
                "temperature": self.temperature,
                "top_p": self.top_p, "batch_size": self.batch_size, "seed": self.seed}


def training_prompts(train: FeedbackDataset, limit: int, seed: int) -> FeedbackDataset:
    """A seeded random subset of ``limit`` training prompts, with their pairs."""
    ids = sorted(train.prompts)
    keep = [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))[:limit]]
    return train.subset(set(keep), f"{train.name}[{len(keep)} prompts]")


def demonstrations(train: FeedbackDataset) -> list[Sample]:
    """The chosen side of each training pair; the rejected side is deliberately thrown away."""
    out = []
    for comp in train.comparisons:
        winner = comp.a if comp.outcome == "a" else comp.b if comp.outcome == "b" else None
        if winner is not None:
            out.append(Sample(train.prompts[comp.prompt_id].text, train.responses[winner].text, "demonstration"))
    return out


def policy_prompt(text: str, turns: int) -> list[dict[str, str]]:
    """The chat turns a policy answers: the last ``turns`` of the dialogue (a long red-teaming transcript
    padded into a batch of 32 costs more than the answer)."""
    chat = chat_turns(text)
    return chat[-turns:] if turns else chat


def sample_policy(generator: Any, prompts: Sequence[str], config: DemoRewardConfig, path: Path,
                  settings: dict[str, Any], on_progress: Callable[[int, int], None] | None = None) -> list[Sample]:
    """One sample per prompt (HH dialogue text in, chat turns to the model), cached at ``path``.

    Prompts are batched shortest first, so a batch is padded to similar lengths; the result keeps
    the order of ``prompts``. An interrupted run resumes: batches already in the file are not sampled again.
    """
    meta = path.with_suffix(".settings.json")
    wanted = {**settings, "prompts": len(prompts), "first": prompts[0][:200] if prompts else ""}
    sampled: dict[str, Sample] = {}
    if path.exists() and meta.exists() and json.loads(meta.read_text(encoding="utf-8")) == wanted:
        for line in path.read_text(encoding="utf-8").splitlines():  # a complete file, or the batches an interrupted run wrote
            row = json.loads(line)
            sampled[row["prompt"]] = Sample(row["prompt"], row["response"], row["source"])
    else:
        path.write_text("", encoding="utf-8")
        meta.write_text(json.dumps(wanted), encoding="utf-8")
    by_length = sorted(prompts, key=lambda p: (sum(len(t["content"]) for t in policy_prompt(p, config.prompt_turns)), p))
    with path.open("a", encoding="utf-8") as f:
        for k, start in enumerate(range(0, len(by_length), config.batch_size)):
            chunk = by_length[start:start + config.batch_size]
            if all(p in sampled for p in chunk):
                continue  # batch k keeps seed seed + k, so a resumed run samples what an uninterrupted one would
            turns = [policy_prompt(p, config.prompt_turns) for p in chunk]
            texts = generator.generate(turns, n=1, temperature=config.temperature, top_p=config.top_p,
                                       max_new_tokens=config.max_new_tokens, seed=config.seed + k)
            for prompt, (text,) in zip(chunk, texts):
                sampled[prompt] = Sample(prompt, text.strip() or "(empty)", generator.id)
                f.write(json.dumps(asdict(sampled[prompt]), ensure_ascii=False) + "\n")
            f.flush()
            if on_progress:
                on_progress(min(start + config.batch_size, len(prompts)), len(prompts))
    if on_progress:
        on_progress(len(prompts), len(prompts))  # also when everything came from the cache
    return [sampled[p] for p in prompts]


def fine_tuned_policy(config: DemoRewardConfig, demos: list[Sample], out: Path,
                      on_step: Callable[[int, int, float], None] | None = None) -> tuple[Any, dict[str, Any]]:
    """The base policy fine-tuned on the demonstrations (reused from ``out`` when trained the same way)."""
    from rewardlab.generate.local import LocalGenerator
    from rewardlab.optimize.sft import fine_tune_on_demonstrations

    folder = out / "sft-policy"
    info_path = folder / "rewardlab_sft.json"
    if info_path.exists():
        info = json.loads(info_path.read_text(encoding="utf-8"))
        same = (info["config"], info["examples"], info.get("base_model"), info.get("prompt_turns"))
        if same == (asdict(config.sft), len(demos), config.model, config.prompt_turns):
            return LocalGenerator(folder, batch_size=config.batch_size), info
    generator = LocalGenerator(config.model, batch_size=config.batch_size)
    examples = [(policy_prompt(d.prompt, config.prompt_turns), d.response) for d in demos]
    fine_tune_on_demonstrations(generator, examples, folder, config.sft, on_step)
    info = json.loads(info_path.read_text(encoding="utf-8"))
    info["base_model"], info["prompt_turns"] = config.model, config.prompt_turns
    info_path.write_text(json.dumps(info, indent=2), encoding="utf-8")
    return generator, info


def held_out_scores(model: RewardModel, test: FeedbackDataset) -> tuple[np.ndarray, np.ndarray]:
    """The model's scores for side a and side b of every test comparison."""
    prompts = [test.prompts[c.prompt_id].text for c in test.comparisons]
    a = model.score(prompts, [test.responses[c.a].text for c in test.comparisons])
    b = model.score(prompts, [test.responses[c.b].text for c in test.comparisons])
    return a, b


def run_study(config: DemoRewardConfig, out: Path, on_stage: Stage | None = None,
              on_progress: Callable[[str], Callable[[int, int], None]] | None = None,
              ray: str | None = None) -> dict[str, Any]:
    """Run everything and return the record; ``out`` keeps the samples and the fine-tuned policy for the next run.
    ``ray`` (a Ray address): the texts the reward models embed are embedded on that cluster first, and the three
    reward models are fitted and scored there as Ray tasks (`demo_reward_fits`); the numbers are the same.

    Write it with ``rewardlab.report.write_report(build_report(record), out, record)``.
    """
    from rewardlab.generate.local import LocalGenerator

    stage = on_stage or (lambda _: None)

    def progress(name: str) -> Callable[[int, int], None] | None:
        return on_progress(name) if on_progress else None

    started = time.perf_counter()
    device = study_device(config.device, ray)  # a GPU that is not here fails before any work
    timing: dict[str, float] = {}
    out.mkdir(parents=True, exist_ok=True)

    dataset = read_hh_rlhf(config.data_path(), on_empty="skip")
    train_all, test = dataset.split(by="prompt", test_size=config.test_size, seed=config.seed)
    train = training_prompts(train_all, config.train_prompts, config.seed)
    demos = demonstrations(train)
    prompts = sorted({d.prompt for d in demos})

    clock = time.perf_counter()
    stage(f"sampling the base policy on {len(prompts)} training prompts")
    base_generator = LocalGenerator(config.model, batch_size=config.batch_size)
    base = sample_policy(base_generator, prompts, config, out / "samples-base.jsonl", {"policy": "base", **config.sampling()},
                         progress("base samples"))
    del base_generator
    timing["base_samples"] = time.perf_counter() - clock

    clock = time.perf_counter()
    stage(f"fine-tuning the policy on {len(demos)} demonstrations")
    sft_bar = progress("SFT steps")
    sft_generator, sft_info = fine_tuned_policy(config, demos, out,
                                                None if sft_bar is None else lambda step, steps, _loss: sft_bar(step, steps))
    timing["sft"] = time.perf_counter() - clock
    clock = time.perf_counter()
    stage("sampling the fine-tuned policy")
    sft = sample_policy(sft_generator, prompts, config, out / "samples-sft.jsonl",
                        {"policy": "sft", "sft": asdict(config.sft), **config.sampling()}, progress("SFT samples"))
    del sft_generator
    timing["sft_samples"] = time.perf_counter() - clock

    clock = time.perf_counter()
    stage("fitting reward models and scoring the held-out pairs" + (f" on Ray ({ray})" if ray else ""))
    job = DemoFitJob(config, train, test, {"demonstrations": demos, "base": base, "sft": sft},
                     EncoderHandle(study_encoder(config.encoder, device), device))
    held_out = fit_rewards(job, ray, progress("embedding on Ray") if ray else None)
    timing["fit"] = time.perf_counter() - clock

    clock = time.perf_counter()
    stage(f"accuracy on {len(test.comparisons)} held-out pairs")
    scored = held_out_accuracy(held_out, train, test, config.bootstrap, config.seed)
    timing["score"] = time.perf_counter() - clock
    timing["total"] = time.perf_counter() - started
    record = {
        "kind": "demo-reward",
        "config": {**asdict(config), "data": str(config.data_path())},
        "data": {"train_prompts": len(train.prompts), "train_pairs": len(train.comparisons), "demonstrations": len(demos),
                 "test_prompts": len(test.prompts), "test_pairs": scored.pop("test_pairs"), "notes": dataset.notes},
        "policy_samples": {"base": _sample_stats(base), "sft": _sample_stats(sft), "demonstrations": _sample_stats(demos)},
        "sft": {k: sft_info[k] for k in ("trainable_parameters", "examples") if k in sft_info}
        | {"loss_first": sft_info["losses"][0], "loss_last": float(np.mean(sft_info["losses"][-5:]))},
        **scored,
        "examples": {"base": [asdict(s) for s in base[:3]], "sft": [asdict(s) for s in sft[:3]]},
        "timing_seconds": {k: round(v, 1) for k, v in timing.items()},
    }
    return record


#: how the length-only head was fitted, as `LengthControls.length_only_fit` records it
LENGTH_ONLY_FIT = "training prompts' pairs"


def held_out_accuracy(scores: Mapping[str, tuple[np.ndarray, np.ndarray]], train: FeedbackDataset,
                      test: FeedbackDataset, draws: int, seed: int) -> dict[str, Any]:
    """Accuracy on ``test``'s pairs of each reward's (side a, side b) scores beside the length rules (longer wins,
    shorter wins, the length-only head fitted on ``train``'s pairs), differences against ``bt`` (when scored) and
    sft-vs-base minus demo-vs-base (when both are), and each reward's length audit; all on one prompt bootstrap, so
    every difference is paired. Returns the record's entries, and ``test_pairs``: the decided pairs counted."""
    comparisons = test.comparisons
    target = np.array([OUTCOME_TARGET[c.outcome] for c in comparisons])
    groups = test.prompt_groups()
    bootstrap = GroupBootstrap(np.array([groups[c.prompt_id] for c in comparisons]), draws, seed)
    decided = target != 0.5
    ids_a, ids_b = [c.a for c in comparisons], [c.b for c in comparisons]
    length_a, length_b = response_lengths(test, ids_a), response_lengths(test, ids_b)
    head = fit_length_head_on(train)
    pairs = PairLengths(length_a, length_b, target, head.score(length_a), head.score(length_b))
    correct = {name: pairwise_correct(a, b, target) for name, (a, b) in scores.items()}
    correct["length"] = pairwise_correct(length_a, length_b, target)
    correct["shorter"] = pairwise_correct(-length_a, -length_b, target)
    correct["length-only"] = pairs.length_only_correct()
    audit = {name: length_audit(a, b, pairs, bootstrap,
                                reward_length_spearman(ids_a, ids_b, a, b, length_a, length_b)).as_dict()
             for name, (a, b) in scores.items()}
    out: dict[str, Any] = {
        "test_pairs": int(decided.sum()),
        "accuracy": {name: bootstrap.mean(c, decided).as_dict() for name, c in correct.items()},
    }
    if "bt" in correct:
        out["minus_bt"] = {name: bootstrap.mean(c - correct["bt"], decided).as_dict()
                           for name, c in correct.items() if name != "bt"}
    if "sft-vs-base" in correct and "demo-vs-base" in correct:
        out["sft_minus_demo"] = bootstrap.mean(correct["sft-vs-base"] - correct["demo-vs-base"], decided).as_dict()
    out["length_controls"] = length_controls(pairs, bootstrap, [head.weight], LENGTH_ONLY_FIT).as_dict()
    out["length_audit"] = audit
    return out


def _sample_stats(samples: Sequence[Sample]) -> dict[str, float]:
    lengths = np.array([len(s.response) for s in samples], float)
    return {"n": len(samples), "mean_chars": round(float(lengths.mean()), 1) if len(lengths) else 0.0}


SOURCES = {"demo-vs-base": "{demonstrations} demonstrations vs base samples",
           "sft-vs-base": "samples of the policy fine-tuned on them vs base samples",
           "length": "nothing (longer wins)",
           "shorter": "nothing (shorter wins)",
           "length-only": "log-length of the {train_pairs} training pairs (BT, one weight)"}


def build_report(record: dict[str, Any]) -> Report:
    """Held-out pairwise accuracy of each reward with CIs and paired differences against BT, the policy samples
    the discriminators saw, and timing (written as results.md)."""
    data, cfg, accuracy = record["data"], record["config"], record["accuracy"]
    rows = [["bt", f"{data['train_pairs']} pairs (chosen + rejected)", estimate(accuracy["bt"]), "—"]]
    rows += [[name, what.format(**data), estimate(accuracy[name]), estimate(record["minus_bt"][name])]
             for name, what in SOURCES.items() if name in accuracy]  # a record from before the length-only rows
    results = Section("Held-out pairwise accuracy", [
        Table(["reward", "learns from", "held-out pairwise accuracy [95% CI]", "minus BT (paired)"], rows),
        f"{data['test_pairs']} held-out pairs over {data['test_prompts']} prompts (split by prompt, seed {cfg['seed']}); "
        f"CIs resample prompts ({cfg['bootstrap']} draws). sft-vs-base minus demo-vs-base: "
        f"{estimate(record['sft_minus_demo'])}."])
    sections = [results]
    if "length_audit" in record:
        sections.append(_length_section(record))
    samples, sft = record["policy_samples"], record["sft"]
    policy = Section("What the discriminators saw", [
        Table(["side", "responses", "mean characters"],
              [[name, str(samples[name]["n"]), number(samples[name]["mean_chars"], 1)]
               for name in ("demonstrations", "base", "sft") if name in samples]),
        f"The fine-tuned policy: {sft.get('examples', '?')} demonstrations, {sft.get('trainable_parameters', '?')} "
        f"trainable parameters, response-token loss {number(sft.get('loss_first'))} → {number(sft.get('loss_last'))} "
        "(mean of the last five steps)."])
    timing = Section("Timing", ["\n".join(f"- {name.replace('_', ' ')}: {number(float(seconds), 1)} s"
                                          for name, seconds in record["timing_seconds"].items())])
    return Report("Rewards from demonstrations alone vs Bradley-Terry",
                  [*sections, policy, timing], settings=cfg, filename="results.md")


def _length_section(record: dict[str, Any]) -> Section:
    """Each learned reward read against length: Δ vs the length-only head (paired), accuracy on the pairs where the
    chosen response is the longer / the shorter one and their mean, and Spearman(reward, length)."""
    controls = record["length_controls"]
    rows = []
    for name, audit in record["length_audit"].items():
        rho = audit["spearman_reward_length"]
        rows.append([name, difference(audit["accuracy_minus_length_only"]), estimate(audit["accuracy_longer_wins"]),
                     estimate(audit["accuracy_shorter_wins"]), estimate(audit["length_balanced_accuracy"]),
                     f"{number(rho['value'])} (n = {rho['n_responses']})"])
    weights = ", ".join(number(float(w)) for w in controls["length_only_weights"])
    return Section("Length controls", [
        Table(["reward", "minus length-only (paired)", "chosen is longer", "chosen is shorter",
               "length-balanced accuracy", "Spearman(reward, length)"], rows),
        f"Length in {controls['unit']}. The length-only head is r = w · log(1 + length), fitted on the "
        f"{controls['length_only_fit']} (w = {weights}; w > 0: longer wins): "
        f"{estimate(controls['length_only'])} held-out accuracy. Of the decided held-out pairs, the chosen response is "
        f"the longer one in {controls['pairs_longer_wins']} and the shorter one in {controls['pairs_shorter_wins']}; "
        f"{controls['pairs_equal_length_excluded']} of equal length are left out of the length-balanced accuracy (the "
        "mean of the two columns before it). **Bold**: the paired 95% CI excludes 0. Spearman: over the distinct "
        "held-out responses a reward scored."])
