"""What CLI tests share: running `rewardlab` in-process, and slices of the bundled HH-RLHF demo file."""

from __future__ import annotations

import gzip

from typer.testing import CliRunner

from rewardlab.cli import app
from rewardlab.data import demo_path

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    """`rewardlab ARGS` in-process: its exit code and everything it printed."""
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def demo_lines(n: int) -> list[str]:
    """The first ``n`` raw JSONL lines (HH-RLHF format) of the bundled demo file."""
    with gzip.open(demo_path(), "rt", encoding="utf-8") as src:
        return [next(src) for _ in range(n)]
