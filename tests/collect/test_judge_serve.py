"""End to end: `rewardlab generate serve` (SmolLM2-135M, a real process on 127.0.0.1) judges a handful of HH-RLHF
pairs through `rewardlab judge --base-url`; the output is feedback with annotator judge:<model>, and a re-run is
answered from the cache. (How well a 135M judge agrees with people is measured in the README, not asserted.)"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from rewardlab.cli import app
from rewardlab.collect.local_postgres import free_port
from rewardlab.data.parquet import read_parquet

runner = CliRunner()


@pytest.fixture(scope="module")
def smollm2_server() -> Iterator[str]:
    from rewardlab.generate.base import GenerationError
    from rewardlab.generate.local import default_model_path

    try:
        default_model_path()
    except GenerationError as exc:
        pytest.skip(str(exc))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "rewardlab.cli", "generate", "serve", "--port", str(port),
                             "--model-name", "smollm2"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, (proc.stderr.read().decode()[-2000:] if proc.stderr else "server exited")
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "generate serve did not start"
            time.sleep(0.2)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_smollm2_judges_hh_pairs_through_generate_serve(smollm2_server: str, tmp_path: Path) -> None:
    args = ["judge", "hh-harmless-demo", "--limit", "4", "--out", str(tmp_path / "judged"), "--base-url",
            smollm2_server, "--model-name", "smollm2", "--cache-dir", str(tmp_path / "cache"), "--max-chars", "1200",
            "--quiet", "--json", "--resamples", "50"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["requests"] == 8 and report["cached"] == 0  # 4 pairs × 2 orders
    assert report["consistent"] + report["inconsistent"] + report["unreadable_pairs"] == 4
    assert report["agreement_with_source"]["agreement"]["n"] == 4
    judged = read_parquet(tmp_path / "judged")
    assert judged.annotators() == {"judge:smollm2": 4}
    assert all(c.outcome in ("a", "b", "tie") and 0 <= c.meta["p_a"] <= 1 for c in judged.comparisons)
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and json.loads(again.output)["requests"] == 0
