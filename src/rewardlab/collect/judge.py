"""An LLM judge as an annotator (RLAIF): pairwise preferences or ratings from a model, as ordinary feedback.

- **Backends**: any OpenAI-compatible server through `OpenAIGenerator` (``rewardlab generate serve``, vLLM,
  llama.cpp, hosted APIs), or a `LocalGenerator` in-process. A local model is read off its next-token
  distribution (one forward pass per prompt: the probability of "A" against "B", or of each score digit); a server
  is asked for ``logprobs`` and, where it returns none, its answer text is parsed.
- **Position bias**: each pair is judged in both orders. With probabilities, P(x ≻ y) is the mean of the two
  orders' probabilities (P(A) as shown first, 1 − P(A) as shown second); with text answers the orders must agree,
  and a disagreement (or an unreadable answer) is a tie.
- **Principles**: each principle is its own question; per pair the principles' P(x ≻ y) (1 / ½ / 0 for text
  verdicts) are averaged, and the mean decides (½ exactly is a tie). Ratings average over principles.
- **Cache**: every answer is stored on disk under a hash of (model, template, the exact messages, settings), so a
  re-run with the same inputs sends no request. Files are written aside and renamed into place.
- **Output**: a `FeedbackDataset` with ``annotator_id = judge:<model>``; write it with `write_parquet` and every
  learner trains on it.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from rewardlab.collect import judge_prompts as tp
from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.types import Comparison, Rating
from rewardlab.errors import InvalidValueError
from rewardlab.generate.base import Chat, GenerationError, SamplingParams

MODES = ("pairwise", "rating")
CACHE_CHUNK = 16  # chats asked per round between cache writes


@dataclass(frozen=True)
class JudgeConfig:
    """How the judge asks. ``principles`` empty: one question, `DEFAULT_PRINCIPLE` (or the rating default)."""

    mode: str = "pairwise"
    principles: tuple[str, ...] = ()
    scale: tuple[int, int] = (1, 5)
    logprobs: bool = True  # read option probabilities where the backend gives them
    max_new_tokens: int = 8  # text answers only
    max_chars: int = 2000  # each prompt / response is clipped to this many characters in the judge's prompt
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InvalidValueError(f"judge mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        low, high = self.scale
        if not (isinstance(low, int) and isinstance(high, int) and low < high):
            raise InvalidValueError(f"rating scale must be two whole numbers low < high, not {self.scale}")
        if self.max_chars < 100 or self.max_new_tokens < 1:
            raise InvalidValueError("max_chars must be at least 100 and max_new_tokens at least 1")

    def questions(self) -> tuple[str, ...]:
        default = tp.DEFAULT_PRINCIPLE if self.mode == "pairwise" else tp.DEFAULT_RATING_PRINCIPLE
        return self.principles or (default,)

    def options(self) -> tuple[str, ...]:
        """The answers whose probabilities are read: A/B, or each score where every score is one digit."""
        if self.mode == "pairwise":
            return tp.PAIRWISE_OPTIONS
        low, high = self.scale
        return tuple(str(k) for k in range(low, high + 1)) if 0 <= low and high <= 9 else ()


@dataclass(frozen=True)
class Verdict:
    """One answer of the judge: its text, and the options' probabilities (renormalised) when they were read."""

    text: str
    probs: dict[str, float] | None = None


class JudgeBackend(Protocol):
    """What the judge asks: ``model`` names it (annotator ``judge:<model>``), ``cache_id`` identifies it to the
    cache; ``ask`` answers every chat."""

    @property
    def model(self) -> str: ...

    @property
    def cache_id(self) -> str: ...

    def ask(self, chats: Sequence[Chat], options: tuple[str, ...], config: JudgeConfig,
            on_done: Callable[[int], None] | None = None) -> list[Verdict]: ...


def _normalised(probs: dict[str, float]) -> dict[str, float] | None:
    total = sum(probs.values())
    return {k: v / total for k, v in probs.items()} if total > 0 and math.isfinite(total) else None


class LocalJudge:
    """A `LocalGenerator`'s model read directly: option probabilities at the first answer token (or greedy text
    when ``config.logprobs`` is off or there are no single-token options)."""

    def __init__(self, generator: Any, batch_size: int = 4) -> None:
        self.generator = generator
        self.batch_size = batch_size

    @property
    def model(self) -> str:
        return str(self.generator.id).removeprefix("local:")

    @property
    def cache_id(self) -> str:
        """The model's location: two local models with one file name are still two models to the cache."""
        return f"local:{Path(self.generator.model_dir).resolve() / (self.generator.gguf_file or '')}"

    def _option_ids(self, options: tuple[str, ...]) -> dict[str, list[int]]:
        tokenizer = self.generator.tokenizer
        ids: dict[str, list[int]] = {}
        for option in options:
            found = {tuple(tokenizer.encode(form, add_special_tokens=False)) for form in (option, f" {option}")}
            ids[option] = sorted({t[0] for t in found if len(t) == 1})
        return ids

    def ask(self, chats: Sequence[Chat], options: tuple[str, ...], config: JudgeConfig,
            on_done: Callable[[int], None] | None = None) -> list[Verdict]:
        ids = self._option_ids(options) if options else {}
        if not config.logprobs or not ids or not all(ids.values()):
            params = SamplingParams(n=1, temperature=0.0, max_new_tokens=config.max_new_tokens, seed=config.seed)
            return [Verdict(row[0].text) for row in self.generator.complete(list(chats), params, on_done)]
        import torch

        generator = self.generator.load()
        tokenizer, model = generator.tokenizer, generator._model  # the generator's own loaded model, read only
        templated = bool(getattr(tokenizer, "chat_template", None))
        forward_parameters = inspect.signature(model.forward).parameters
        verdicts: list[Verdict] = []
        with torch.inference_mode():
            for start in range(0, len(chats), self.batch_size):
                texts = [generator.render(chat) for chat in chats[start:start + self.batch_size]]
                inputs = tokenizer(texts, padding=True, truncation=True, max_length=generator.context_length,
                                   add_special_tokens=not templated, return_tensors="pt").to(model.device)
                # left padding: positions count from each row's first real token, so a prompt's answer does not
                # depend on what it was batched with
                positions = (inputs["attention_mask"].cumsum(-1) - 1).clamp(min=0)
                kwargs = {"logits_to_keep": 1} if "logits_to_keep" in forward_parameters else {}  # no full-vocab
                logits = model(**inputs, position_ids=positions, **kwargs).logits[:, -1, :]  # logits per position
                probs = torch.softmax(logits.float(), dim=-1)
                for row in probs:
                    mass = {o: float(row[ids[o]].sum()) for o in options}
                    normal = _normalised(mass)
                    verdicts.append(Verdict(max(mass, key=mass.__getitem__), normal))
                if on_done:
                    on_done(len(verdicts))
        return verdicts


class OpenAIJudge:
    """An OpenAI-compatible server through `OpenAIGenerator`'s client: greedy answers, with ``logprobs`` asked for
    (top 20 of the first token) when ``config.logprobs``; a server that refuses or ignores them is read as text."""

    def __init__(self, generator: Any) -> None:
        self.generator = generator
        self._logprobs_refused = False

    @property
    def model(self) -> str:
        return str(self.generator.model)

    @property
    def cache_id(self) -> str:
        """The model name the server knows (the same name on another URL is taken to be the same model)."""
        return f"openai:{self.generator.model}"

    def _ask_one(self, chat: Chat, options: tuple[str, ...], config: JudgeConfig) -> Verdict:
        openai = self.generator._openai
        client = self.generator._client  # the generator's configured client (URL, key, timeout, retries)
        want = config.logprobs and bool(options) and not self._logprobs_refused
        kwargs: dict[str, Any] = {"model": self.generator.model, "messages": chat, "temperature": 0.0,
                                  "max_tokens": config.max_new_tokens, "seed": config.seed, "n": 1}
        try:
            try:
                response = client.chat.completions.create(**kwargs, **({"logprobs": True, "top_logprobs": 20}
                                                                       if want else {}))
            except openai.BadRequestError:
                if not want:
                    raise
                self._logprobs_refused = True  # e.g. a server without logprobs support: ask for text from now on
                response = client.chat.completions.create(**kwargs)
        except openai.OpenAIError as exc:
            raise GenerationError(f"{self.generator.base_url or 'OpenAI API'} ({self.model}): {exc}") from exc
        if not response.choices:
            raise GenerationError(f"{self.generator.base_url} ({self.model}): the server returned no choices")
        choice = response.choices[0]
        text = choice.message.content or ""
        probs = None
        content = getattr(choice.logprobs, "content", None) if want else None
        if content:
            mass = dict.fromkeys(options, 0.0)
            for candidate in content[0].top_logprobs or []:
                token = candidate.token.strip()
                if token in mass:
                    mass[token] += math.exp(candidate.logprob)
            probs = _normalised(mass)
        return Verdict(text, probs)

    def ask(self, chats: Sequence[Chat], options: tuple[str, ...], config: JudgeConfig,
            on_done: Callable[[int], None] | None = None) -> list[Verdict]:
        verdicts: list[Verdict] = []
        with ThreadPoolExecutor(max(1, int(self.generator.concurrency))) as pool:
            for verdict in pool.map(lambda chat: self._ask_one(chat, options, config), chats):
                verdicts.append(verdict)
                if on_done:
                    on_done(len(verdicts))
        return verdicts


def judge_backend(generator: Any, batch_size: int = 4) -> JudgeBackend:
    """The backend for a generator from `make_generator`: a server client or a local model."""
    from rewardlab.generate.openai_client import OpenAIGenerator

    return OpenAIJudge(generator) if isinstance(generator, OpenAIGenerator) else LocalJudge(generator, batch_size)


class JudgementCache:
    """Answers on disk, one JSON file per (model, template, messages, settings) hash; None: no cache."""

    def __init__(self, directory: str | Path | None) -> None:
        self.directory = None if directory is None else Path(directory)

    @staticmethod
    def key(model: str, template: str, chat: Chat, options: tuple[str, ...], config: JudgeConfig) -> str:
        settings = {"logprobs": config.logprobs, "max_new_tokens": config.max_new_tokens, "seed": config.seed,
                    "options": list(options)}
        blob = json.dumps([model, template, chat, settings], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()

    def _path(self, key: str) -> Path:
        assert self.directory is not None
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> Verdict | None:
        if self.directory is None:
            return None
        try:
            data = json.loads(self._path(key).read_text(encoding="utf-8"))
            probs = data.get("probs")
            return Verdict(str(data["text"]), None if probs is None else {str(k): float(v) for k, v in probs.items()})
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None  # missing or damaged: ask again (and overwrite)

    def put(self, key: str, verdict: Verdict) -> None:
        if self.directory is None:
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"text": verdict.text, "probs": verdict.probs}, handle)
        os.replace(tmp, path)


@dataclass
class JudgeReport:
    """The judged feedback and what it took: requests sent vs answered from the cache, and answer quality."""

    dataset: FeedbackDataset
    annotator: str
    requests: int = 0
    cached: int = 0
    unreadable: int = 0  # answers that named no option (text answers only)
    counts: dict[str, float] = field(default_factory=dict)  # pairwise: consistent, inconsistent, ties, margin; rating

    def as_dict(self) -> dict[str, Any]:
        return {"annotator": self.annotator, "feedback_rows": len(self.dataset), "requests": self.requests,
                "cached": self.cached, "unreadable": self.unreadable, **self.counts}


def _ask_all(backend: JudgeBackend, chats: list[Chat], template: str, options: tuple[str, ...], config: JudgeConfig,
             cache: JudgementCache, report: JudgeReport, on_progress: Callable[[int, int], None] | None
             ) -> list[Verdict]:
    """Every chat answered: from the cache where it can, else by the backend (then cached)."""
    keys = [cache.key(backend.cache_id, template, chat, options, config) for chat in chats]
    verdicts: list[Verdict | None] = [cache.get(k) for k in keys]
    missing = [i for i, v in enumerate(verdicts) if v is None]
    report.cached += len(chats) - len(missing)
    report.requests += len(missing)
    done_before = len(chats) - len(missing)
    if on_progress:
        on_progress(done_before, len(chats))
    for start in range(0, len(missing), CACHE_CHUNK):  # answers are stored as they come: a stopped run resumes
        chunk = missing[start:start + CACHE_CHUNK]
        before = done_before + start
        answers = backend.ask([chats[i] for i in chunk], options, config, _offset(on_progress, before, len(chats)))
        for i, verdict in zip(chunk, answers):
            verdicts[i] = verdict
            cache.put(keys[i], verdict)
    return [v for v in verdicts if v is not None]


def _offset(on_progress: Callable[[int, int], None] | None, before: int, total: int) -> Callable[[int], None] | None:
    """A backend's ``on_done(k)`` for a round that starts after ``before`` answers, as ``on_progress(done, total)``."""
    if on_progress is None:
        return None
    return lambda k: on_progress(before + k, total)


def _chat(text: str) -> Chat:
    return [{"role": "system", "content": tp.SYSTEM}, {"role": "user", "content": text}]


def _p_first(verdict: Verdict) -> float | None:
    """P(the response shown first is better): from probabilities, else 1 / 0 / ½ from the text, None if unreadable."""
    if verdict.probs is not None:
        return verdict.probs.get("A", 0.0)
    choice = tp.parse_choice(verdict.text)
    return None if choice is None else {"A": 1.0, "B": 0.0, "tie": 0.5}[choice]


def judge_pairs(source: FeedbackDataset, backend: JudgeBackend, config: JudgeConfig | None = None,
                cache: JudgementCache | None = None, limit: int | None = None,
                on_progress: Callable[[int, int], None] | None = None) -> JudgeReport:
    """Judge every distinct pair of ``source``'s comparisons (in its stored orientation) in both orders."""
    config = config or JudgeConfig()
    cache = cache or JudgementCache(None)
    seen: set[tuple[str, frozenset[str]]] = set()
    unique = []  # each pair once, in the orientation it was first stored in
    for c in source.comparisons:
        if (c.prompt_id, frozenset((c.a, c.b))) not in seen:
            seen.add((c.prompt_id, frozenset((c.a, c.b))))
            unique.append((c.prompt_id, c.a, c.b))
    unique = unique[:limit] if limit is not None else unique
    if not unique:
        raise InvalidValueError(f"{source.name}: no comparisons to judge (pairwise mode judges the pairs of a "
                                "comparison dataset)")
    name, template = tp.PAIRWISE_TEMPLATE
    questions, clip = config.questions(), config.max_chars
    chats = []
    for pid, a, b in unique:
        prompt = tp.clip(source.prompts[pid].text, clip)
        texts = {a: tp.clip(source.responses[a].text, clip), b: tp.clip(source.responses[b].text, clip)}
        for question in questions:
            for first, second in ((a, b), (b, a)):
                chats.append(_chat(template.format(prompt=prompt, first=texts[first], second=texts[second],
                                                   principle=question)))
    annotator = f"judge:{backend.model}"
    report = JudgeReport(FeedbackDataset(f"{source.name} judged by {backend.model}"), annotator)
    verdicts = _ask_all(backend, chats, f"{name}\n{tp.SYSTEM}\n{template}", config.options(), config, cache, report,
                        on_progress)
    # per (pair, principle): both orders named the same winner / the winner flipped with the order / an answer
    # named no option; and per pair: ties after aggregation
    counts: dict[str, float] = dict.fromkeys(("consistent", "inconsistent", "unreadable_pairs", "ties"), 0)
    margins = []
    out = report.dataset
    for k, (pid, a, b) in enumerate(unique):
        per_question: list[float] = []
        for q in range(len(questions)):
            forward, backward = verdicts[(k * len(questions) + q) * 2: (k * len(questions) + q) * 2 + 2]
            p1, p2 = _p_first(forward), _p_first(backward)
            report.unreadable += (p1 is None) + (p2 is None)
            if p1 is None or p2 is None:
                per_question.append(0.5)
                counts["unreadable_pairs"] += 1
                continue
            agree = (p1 > 0.5 and p2 < 0.5) or (p1 < 0.5 and p2 > 0.5) or (p1 == p2 == 0.5)
            counts["consistent" if agree else "inconsistent"] += 1
            both_probs = forward.probs is not None and backward.probs is not None
            # P(a ≻ b) from the two orders: their mean with probabilities; text verdicts must agree, else a tie
            per_question.append((p1 + 1.0 - p2) / 2 if both_probs or agree else 0.5)
        p = sum(per_question) / len(per_question)
        margins.append(abs(p - 0.5))
        outcome = "a" if p > 0.5 else "b" if p < 0.5 else "tie"
        counts["ties"] += outcome == "tie"
        new_pid = out.add_prompt(source.prompts[pid].text, source.prompts[pid].messages)
        ra = out.add_response(new_pid, source.responses[a].text, source.responses[a].source)
        rb = out.add_response(new_pid, source.responses[b].text, source.responses[b].source)
        meta: dict[str, Any] = {"p_a": round(p, 6), "template": name}
        if len(questions) > 1:
            meta["principles"] = {question: round(v, 6) for question, v in zip(questions, per_question)}
        out.add(Comparison(new_pid, ra, rb, outcome, annotator_id=annotator, meta=meta))  # type: ignore[arg-type]
    counts["mean_margin"] = round(sum(margins) / len(margins), 6)  # mean |P(a ≻ b) − ½|: how decided the judge is
    report.counts = counts
    out.notes.append(f"{annotator}: {len(unique)} pairs × {len(questions)} principle(s) × 2 orders; "
                     f"{counts['inconsistent']} of {len(unique) * len(questions)} judgements flipped with the order "
                     f"(position bias), {counts['ties']} ties, {report.unreadable} unreadable answers, mean |P(a ≻ b) − ½| "
                     f"{counts['mean_margin']:.3f}")
    return report


def judge_ratings(source: FeedbackDataset, backend: JudgeBackend, config: JudgeConfig | None = None,
                  cache: JudgementCache | None = None, limit: int | None = None,
                  on_progress: Callable[[int, int], None] | None = None) -> JudgeReport:
    """Rate every response of ``source`` on ``config.scale`` (the mean over principles; expected score from
    probabilities where they were read). Responses with no readable answer get no rating (counted in notes)."""
    config = config or JudgeConfig(mode="rating")
    cache = cache or JudgementCache(None)
    responses = list(source.responses.values())[:limit] if limit is not None else list(source.responses.values())
    if not responses:
        raise InvalidValueError(f"{source.name}: no responses to rate")
    name, template = tp.RATING_TEMPLATE
    low, high = config.scale
    questions, options = config.questions(), config.options()
    chats = [_chat(template.format(prompt=tp.clip(source.prompts[r.prompt_id].text, config.max_chars),
                                   response=tp.clip(r.text, config.max_chars), principle=q, low=low, high=high))
             for r in responses for q in questions]
    annotator = f"judge:{backend.model}"
    report = JudgeReport(FeedbackDataset(f"{source.name} rated by {backend.model}"), annotator)
    verdicts = _ask_all(backend, chats, f"{name}\n{tp.SYSTEM}\n{template}", options, config, cache, report,
                        on_progress)
    out, rated = report.dataset, 0
    for k, response in enumerate(responses):
        scores = []
        for verdict in verdicts[k * len(questions):(k + 1) * len(questions)]:
            if verdict.probs is not None:
                scores.append(sum(float(o) * p for o, p in verdict.probs.items()))
            elif (score := tp.parse_score(verdict.text, low, high)) is not None:
                scores.append(score)
            else:
                report.unreadable += 1
        if not scores:
            continue
        prompt = source.prompts[response.prompt_id]
        pid = out.add_prompt(prompt.text, prompt.messages)
        rid = out.add_response(pid, response.text, response.source)
        out.add(Rating(rid, sum(scores) / len(scores), (low, high), annotator_id=annotator,
                       meta={"template": name, "principles_read": len(scores)}))
        rated += 1
    report.counts = {"rated": rated, "unrated": len(responses) - rated}
    out.notes.append(f"{annotator}: {rated} of {len(responses)} responses rated, {report.unreadable} unreadable "
                     "answers")
    return report


def judge(source: FeedbackDataset, backend: JudgeBackend, config: JudgeConfig | None = None,
          cache: JudgementCache | None = None, limit: int | None = None,
          on_progress: Callable[[int, int], None] | None = None) -> JudgeReport:
    """`judge_pairs` or `judge_ratings`, by ``config.mode``."""
    config = config or JudgeConfig()
    run = judge_pairs if config.mode == "pairwise" else judge_ratings
    return run(source, backend, config, cache, limit, on_progress)


def agreement_with_labels(report: JudgeReport, source: FeedbackDataset, n_resamples: int = 1000,
                          seed: int = 0) -> dict[str, Any] | None:
    """How the judge's labels agree with the labels ``source`` already has (e.g. human preferences), on the same
    pairs or responses: `compare_labels` (judge ties count as disagreements), the agreement on the pairs the judge
    decided, and — pairwise — the trivial prefer-the-longer-response control on the same pairs. None when the
    source has no labels of that kind."""
    from rewardlab.collect.agreement import compare_sources
    from rewardlab.collect.annotation_stats import compare_labels, dataset_labels

    table = "comparisons" if report.dataset.comparisons else "ratings"
    if not source.table(table) or not report.dataset.table(table):
        return None
    ours, theirs = dataset_labels(report.dataset, table), dataset_labels(source, table)
    result = compare_labels(ours, theirs, None, n_resamples, seed)
    if table == "comparisons":
        decided = [j for j in ours.shared if j.value != 0.0]
        if decided:
            result["decided"] = compare_sources(decided, theirs.shared, "ordinal", n_resamples, seed)["agreement"]
        result["prefer_longer"] = compare_sources(_prefer_longer(report.dataset), theirs.shared, "ordinal",
                                                  n_resamples, seed)["agreement"]
    return result


def _prefer_longer(dataset: FeedbackDataset) -> list[Any]:
    """The trivial control's labels for ``dataset``'s pairs, keyed as `dataset_labels` keys pairs for comparing
    sources (sorted response ids): the longer response wins, equal lengths tie."""
    from rewardlab.collect.agreement import Judgement

    labels = []
    for c in dataset.comparisons:
        low, high = sorted((c.a, c.b))
        gap = len(dataset.responses[low].text) - len(dataset.responses[high].text)
        labels.append(Judgement(f"{c.prompt_id}:{low}:{high}", "prefer-longer", float((gap > 0) - (gap < 0))))
    return labels
