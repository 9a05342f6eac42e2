"""`rewardlab prompt-opt`: train a prompt reward model on logs, select prompts for new queries, regenerate the table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer

from rewardlab.cli.console import console, out, progress_bar, user_errors
from rewardlab.cli.options import EncoderOpt, Quiet, SeedOpt
from rewardlab.embed.base import DEFAULT_ENCODER
from rewardlab.errors import DataError, RewardlabError

if TYPE_CHECKING:
    from rewardlab.data.prompt_logs import PromptLogs

prompt_opt_app = typer.Typer(no_args_is_help=True, help="Query-dependent prompt optimization (Prompt-OIRL).")

HeadOpt = Annotated[str, typer.Option(help="Prompt-model head: knn, mlp, logistic or lgbm.")]
LogsArg = Annotated[str, typer.Argument(help="gsm8k, svamp or mawps (Prompt-OIRL release), or a JSONL/CSV of "
                                             "query, prompt, correct[, split] rows.")]


def _load_logs(logs: str) -> PromptLogs:
    from rewardlab.data.prompt_logs import PROMPT_OIRL_DATASETS, read_prompt_logs, read_prompt_oirl
    from rewardlab.data.registry import shared_data_dir

    if logs in PROMPT_OIRL_DATASETS and not Path(logs).exists():
        return read_prompt_oirl(logs, shared_data_dir() / "prompt-oirl")
    return read_prompt_logs(logs)


@prompt_opt_app.command("train")
def train(
    logs: LogsArg,
    out_dir: Annotated[Path, typer.Option("--out", help="Model directory to write.")],
    head: HeadOpt = "knn",
    tune: Annotated[bool, typer.Option(help="knn: choose neighbours / shrinkage / temperature by 5-fold CV on the "
                                            "training queries (folds by question), as the docs' table does, and "
                                            "fall back to the best single prompt unless selection beats it by > 1 s.e.")] = True,
    encoder: EncoderOpt = DEFAULT_ENCODER,
    seed: SeedOpt = 0,
    quiet: Quiet = False,
) -> None:
    """Fit P(correct | query, prompt) on the training rows of the logs (every prompt with labels there)."""
    from rewardlab.experiments.prompt_oirl import embed_logs
    from rewardlab.optimize.prompts import PromptRewardModel, fit_tuned_knn

    with user_errors():
        data = _load_logs(logs)
        rows = data.rows("train")
        if not len(rows):
            raise DataError("no training rows in these logs", source=logs)
        with progress_bar("embedding", quiet) as on_progress:
            q, p = embed_logs(data, encoder, on_progress)
        labelled = [j for j in range(len(data.prompts)) if not np.isnan(data.correct[rows, j]).all()]
        fit_args = (q[rows], p[labelled], data.correct[np.ix_(rows, labelled)], [data.prompts[j] for j in labelled],
                    data.question_groups()[rows])
        if head == "knn" and tune:
            model = fit_tuned_knn(*fit_args, seed=seed)
        else:
            model = PromptRewardModel(head=head, seed=seed).fit(*fit_args)
        model.save(out_dir, {"encoder": encoder, "logs": logs, "candidate_prompts": list(data.prompts)})
        tuned = model.fit_log.get("knn_tuning")
        settings = ("" if not tuned else "; query-agnostic: the best single prompt for every query"
                    if tuned["query_agnostic"] else
                    f"; tuned k={tuned['neighbours']}, w={tuned['prior_weight']}, T={tuned['similarity_temperature']}")
        out.print(f"prompt model ({head}) on {len(rows)} queries × {len(labelled)} prompts → {out_dir}{settings}",
                  highlight=False)
        if tuned:
            gain = tuned["cv_success"] - tuned["best_prompt_cv_success"]
            out.print(f"cross-validated success on training queries: per-query selection {tuned['cv_success']:.3f}, "
                      f"best single prompt {tuned['best_prompt_cv_success']:.3f} (gain {gain:+.3f} ± "
                      f"{tuned['cv_gain_se']:.3f} s.e.)", highlight=False)
            if tuned["query_agnostic"]:
                console.print("[yellow]warning:[/] no query-dependent signal in these logs (the cross-validated "
                              "gain is within one standard error), so the model picks the best single prompt for "
                              "every query", highlight=False)


@prompt_opt_app.command("select")
def select(
    model_dir: Annotated[Path, typer.Argument(help="A model directory from `prompt-opt train`.")],
    queries: Annotated[Path, typer.Option(help="A .txt (one query per line) or a record file with --field.")],
    output: Annotated[Path, typer.Option(help="JSONL: query, chosen prompt, predicted P(correct).")],
    field: str = "query",
    prompts: Annotated[Path | None, typer.Option(help="Candidate prompts (.txt lines); default: the training prompts "
                                                      "and every other prompt in the logs.")] = None,
    only_trained: Annotated[bool, typer.Option(help="Choose among the trained prompts only.")] = False,
) -> None:
    """Pick a prompt for each new query without calling the LLM."""
    from rewardlab.data.records import read_texts
    from rewardlab.embed import embed_texts, make_encoder
    from rewardlab.optimize.prompts import PromptRewardModel, select_prompts

    with user_errors():
        model, config = PromptRewardModel.load(model_dir)
        texts = read_texts(queries, field)
        candidates = read_texts(prompts) if prompts else list(config.get("candidate_prompts") or model.known_prompts)
        if only_trained:
            candidates = [c for c in candidates if c in model.known_prompts]
        if not candidates:
            raise RewardlabError("no candidate prompts")
        encoder = make_encoder(config.get("encoder", DEFAULT_ENCODER))
        vectors, _ = embed_texts(texts + candidates, encoder)
        prob = model.predict_proba(vectors[: len(texts)], vectors[len(texts):], candidates)
        trained = [j for j, c in enumerate(candidates) if c in model.known_prompts]
        others = [j for j, c in enumerate(candidates) if c not in model.known_prompts]
        choice = select_prompts(prob, trained or others, others if trained and others else None)
        output.parent.mkdir(parents=True, exist_ok=True)
        with output.open("w", encoding="utf-8") as f:
            for i, query in enumerate(texts):
                f.write(json.dumps({"query": query, "prompt": candidates[choice[i]],
                                    "p_correct": round(float(prob[i, choice[i]]), 6)}, ensure_ascii=False) + "\n")
        out.print(f"{len(texts)} queries → {output}", highlight=False)


@prompt_opt_app.command("table")
def table(
    out_dir: Annotated[Path, typer.Option("--out", help="Where table.md and results.json go.")] = Path("docs/prompt-oirl"),
    datasets: str = "gsm8k,svamp,mawps",
    head: HeadOpt = "knn",
    encoder: EncoderOpt = DEFAULT_ENCODER,
    seed: SeedOpt = 0,
    quiet: Quiet = False,
) -> None:
    """Regenerate the paper-vs-rewardlab comparison: every dataset, both splits, every k and subset."""
    from rewardlab.experiments.prompt_oirl import OirlConfig, run_table, write_table

    with user_errors():
        config = OirlConfig(datasets=tuple(d.strip() for d in datasets.split(",") if d.strip()), head=head,
                            encoder=encoder, seed=seed)
        with progress_bar("subset models", quiet) as on_progress:
            record = run_table(config, lambda _, done, total: on_progress(done, total))
        path = write_table(record, out_dir)
        out.print(f"table: {path} ({record['seconds']:.0f}s)", highlight=False)
