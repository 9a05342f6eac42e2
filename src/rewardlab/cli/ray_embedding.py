"""`--ray ADDRESS` for the commands where embedding is the cost: the texts a command will embed are sent through
a Ray cluster into the cache first, so the command itself then finds every vector cached. The commands keep one
embedding path (the serial one reads the cache), and Ray is imported only when the option is given. Where a command
also fits (a cross-validation, a study), `ray_connected` keeps one connection for both, and the fits run as Ray tasks
(`rewardlab.evaluate.ray_tasks`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rewardlab.cli.console import console, progress_bar
from rewardlab.embed.base import Encoder
from rewardlab.errors import RewardlabError


@contextmanager
def ray_connected(address: str | None) -> Iterator[None]:
    """With ``--ray``: one Ray connection for the whole command, so its embedding and its fits share it (a local
    instance starts once, not once per step); without: nothing."""
    if address is None:
        yield
        return
    from rewardlab.embed.ray_embed import ray_session

    with ray_session(address):
        yield


def embed_on_ray(texts: Sequence[str], encoder: Encoder, address: str, cache_dir: str | Path | None,
                 quiet: bool = False) -> Any:
    """Embed ``texts`` on the Ray cluster at ``address`` into the cache; one summary line on stderr (stdout may be a
    command's data, e.g. score's JSONL); returns the stats."""
    from rewardlab.embed.ray_embed import embed_texts_ray

    with progress_bar(f"embedding on Ray ({encoder.spec})", quiet) as on_progress:
        _, stats = embed_texts_ray(texts, encoder, address=address, cache_dir=cache_dir, on_progress=on_progress)
    if stats.misses:
        workers = f"{stats.workers} worker{'s' if stats.workers != 1 else ''}"
        console.print(f"Ray ({address}): {stats.misses} texts embedded by {workers} in {stats.seconds:.1f}s "
                  f"({stats.misses / stats.seconds:.1f} texts/s, start-up included); {stats.hits} were cached",
                  highlight=False)
    else:
        console.print(f"Ray: all {stats.unique} texts were already cached; nothing sent to the cluster", highlight=False)
    return stats


def warm_dataset_on_ray(dataset: Any, encoder: Encoder, features: str, address: str | None,
                        cache_dir: str | Path | None, quiet: bool = False) -> None:
    """With ``--ray``: fill the cache with every text featurizing ``dataset`` in ``features`` needs; else nothing."""
    if address is None:
        return
    from rewardlab.rewards.features import dataset_texts

    embed_on_ray(dataset_texts(dataset, features, encoder), encoder, address, cache_dir, quiet)


def warm_pairs_on_ray(prompts: Sequence[str], responses: Sequence[str], model: Any, address: str | None,
                      quiet: bool = False) -> None:
    """With ``--ray``: fill ``model``'s cache with every text featurizing these (prompt, response) pairs needs."""
    if address is None:
        return
    from rewardlab.rewards.features import feature_texts

    texts = feature_texts(prompts, responses, model.features, model.encoder)
    embed_on_ray(texts, model.encoder, address, model.cache_dir, quiet)


def record_file_pairs(path: str | Path, prompt_field: str, response_field: str) -> tuple[list[str], list[str]]:
    """The (prompt, response) pairs `score --input` will score, read leniently: this only decides what to embed
    ahead, so a row it cannot read is left out here and reported, with file, row and field, by the scoring pass."""
    from rewardlab.data.records import iter_records

    prompts: list[str] = []
    responses: list[str] = []
    try:
        for _, record in iter_records(path):
            prompt = record.get(prompt_field)
            if not isinstance(prompt, str):
                continue
            if response_field not in record and isinstance(record.get("responses"), list):
                texts = [item.get("text") if isinstance(item, dict) else item for item in record["responses"]]
            else:
                texts = [record.get(response_field)]
            for text in texts:
                if isinstance(text, str):
                    prompts.append(prompt)
                    responses.append(text)
    except RewardlabError:
        pass  # the scoring pass reads the file again and says what is wrong with it
    return prompts, responses
