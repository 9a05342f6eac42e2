"""Prompt optimization from logs as library calls: logs → a fitted `PromptRewardModel`, new queries → a prompt each.

`rewardlab prompt-opt train` and `select` are `train_prompt_model` and `select_prompts_for_queries` plus
printing, so a Python user gets exactly what the commands do; the Prompt-OIRL study embeds its logs with
the same `embed_logs`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from rewardlab.data.prompt_logs import PromptLogs
from rewardlab.embed.base import DEFAULT_ENCODER, Encoder, make_encoder
from rewardlab.embed.embedding import embed_texts
from rewardlab.errors import DataError, ModelError

if TYPE_CHECKING:  # the prompt models need torch; `prompt-opt train` reads this module's defaults at start-up
    from rewardlab.optimize.prompts import PromptRewardModel

Progress = Callable[[int, int], None]


def embed_logs(logs: PromptLogs, encoder: str | Encoder = DEFAULT_ENCODER, on_progress: Progress | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """(query vectors, prompt vectors) of the logs, embedded in one pass by one encoder (and cached)."""
    encoder = make_encoder(encoder) if isinstance(encoder, str) else encoder
    vectors, _ = embed_texts(list(logs.queries) + list(logs.prompts), encoder, on_progress=on_progress)
    return vectors[: len(logs.queries)], vectors[len(logs.queries):]


def train_prompt_model(logs: PromptLogs, head: str = "knn", tune: bool = True, encoder: str | Encoder = DEFAULT_ENCODER,
                       seed: int = 0, on_progress: Progress | None = None) -> PromptRewardModel:
    """P(correct | query, prompt) fitted on the logs' training rows, over every prompt labelled there.

    knn with ``tune`` chooses its settings by cross-validation on those rows (folds by question) and stays
    query-agnostic (the best single prompt for every query) unless per-query selection beat it by more than one
    standard error; ``fit_log["knn_tuning"]`` records both scores. Every prompt of the logs, also one never
    run on a training row, becomes a default candidate for `select_prompts_for_queries`.
    """
    rows = logs.rows("train")
    if not len(rows):
        raise DataError("no training rows in these logs", source=logs.name)
    from rewardlab.optimize.prompt_tuning import fit_tuned_knn
    from rewardlab.optimize.prompts import PromptRewardModel

    model = PromptRewardModel(head=head, seed=seed)  # checks the head before the (slow) embedding
    encoder = make_encoder(encoder) if isinstance(encoder, str) else encoder
    queries, prompts = embed_logs(logs, encoder, on_progress)
    labelled = [j for j in range(len(logs.prompts)) if not np.isnan(logs.correct[rows, j]).all()]
    fit_args = (queries[rows], prompts[labelled], logs.correct[np.ix_(rows, np.asarray(labelled))],
                [logs.prompts[j] for j in labelled], logs.question_groups()[rows])
    model = fit_tuned_knn(*fit_args, seed=seed) if head == "knn" and tune else model.fit(*fit_args)
    model.encoder = encoder.spec
    model.candidate_prompts = list(logs.prompts)
    model.train_info = {"logs": logs.name, "rows": int(len(rows)), "prompts": len(labelled),
                        "encoder_fingerprint": encoder.fingerprint()}
    return model


def select_prompts_for_queries(model: PromptRewardModel, queries: Sequence[str], candidates: Sequence[str] | None = None,
                               only_trained: bool = False, threshold: float = 0.5, on_progress: Progress | None = None
                               ) -> list[dict[str, Any]]:
    """A prompt for each query, without calling the LLM; JSON-ready rows of query, prompt and predicted p_correct.

    Per query, the trained candidate with the highest predicted P(correct) wins; when it is predicted below
    ``threshold`` and untrained candidates exist (scored from their text alone), the best of those is taken
    instead. ``candidates`` default to the model's ``candidate_prompts`` (every prompt of its logs), else the
    prompts it was trained on; ``only_trained`` drops the rest.
    """
    from rewardlab.optimize.prompts import select_prompts

    pool = list(candidates) if candidates is not None else list(model.candidate_prompts or model.known_prompts)
    if only_trained:
        pool = [c for c in pool if c in model.known_prompts]
    if not pool:
        raise ModelError("no candidate prompts to choose from")
    encoder = make_encoder(model.encoder)
    expected = model.train_info.get("encoder_fingerprint")
    if expected and encoder.fingerprint() != expected:
        raise ModelError(f"the prompt model was fitted on embeddings from encoder {expected}, but '{model.encoder}' here "
                         f"is {encoder.fingerprint()}; its predictions would be meaningless")
    texts = list(queries)
    vectors, _ = embed_texts(texts + pool, encoder, on_progress=on_progress)
    prob = model.predict_proba(vectors[: len(texts)], vectors[len(texts):], pool)
    trained = [j for j, c in enumerate(pool) if c in model.known_prompts]
    others = [j for j, c in enumerate(pool) if c not in model.known_prompts]
    choice = select_prompts(prob, trained or others, others if trained and others else None, threshold)
    return [{"query": query, "prompt": pool[choice[i]], "p_correct": round(float(prob[i, choice[i]]), 6)}
            for i, query in enumerate(texts)]
