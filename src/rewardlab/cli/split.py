"""`rewardlab split`: one leak-free train/test split by prompt, written as two feedback folders any command reads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from rewardlab.cli.console import out, user_errors
from rewardlab.cli.options import DATA_OPTIONS, FROM_CONFIG, DataArg, SeedOpt, config_defaults, with_options
from rewardlab.data.dataset import FeedbackDataset
from rewardlab.errors import RewardlabError


@config_defaults(FeedbackDataset.split)
@with_options(DATA_OPTIONS)
def split(
    data: DataArg,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write train/ and test/ into (Parquet, lossless).")],
    test_size: Annotated[float, typer.Option(help="Share of prompts held out for test/.")] = FROM_CONFIG,
    by: Annotated[str, typer.Option(help="The unit kept on one side: prompt (the only one offered: pairs of one prompt "
                                         "on both sides would leak).")] = FROM_CONFIG,
    seed: SeedOpt = FROM_CONFIG,
    overwrite: Annotated[bool, typer.Option(help="Replace existing train/ and test/ folders.")] = False,
    **data_options: Any,
) -> None:
    """Split feedback by prompt (duplicated prompts stay on one side) into OUT/train and OUT/test, so a model can be
    trained on one and evaluated or audited on data it has not seen."""
    import shutil

    from rewardlab.cli.pipeline import load_data
    from rewardlab.data.parquet import write_parquet

    with user_errors():
        dataset = load_data(data, **data_options)
        train, test = dataset.split(by=by, test_size=test_size, seed=seed)
        for part in ("train", "test"):
            target = out_dir / part
            if target.exists() and any(target.iterdir()):
                if not overwrite:
                    raise RewardlabError(f"{target} exists; pass --overwrite to replace it")
                shutil.rmtree(target)
        for part, subset in (("train", train), ("test", test)):
            write_parquet(subset, out_dir / part)
            summary = subset.summary()
            sizes = ", ".join(f"{v:,} {k}" for k, v in summary.items() if v)
            out.print(f"{out_dir / part}: {sizes} (fingerprint {subset.fingerprint()})", highlight=False)
