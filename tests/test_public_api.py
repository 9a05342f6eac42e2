"""The entry points a Python user is told about are importable from `rewardlab` and its subpackages."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import rewardlab


@pytest.mark.parametrize("package", ["rewardlab", "rewardlab.optimize", "rewardlab.evaluate", "rewardlab.data",
                                     "rewardlab.embed", "rewardlab.rewards"])
def test_every_exported_name_resolves(package: str) -> None:
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"


def test_the_main_entry_points_are_at_the_top() -> None:
    for name in ("RewardModel", "load_named", "evaluate_model", "cross_validate", "best_of_n", "RewardFunction",
                 "PromptRewardModel", "make_encoder"):
        assert name in rewardlab.__all__ and callable(getattr(rewardlab, name))


def test_unknown_names_are_attribute_errors() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        rewardlab.nope  # noqa: B018


def test_importing_rewardlab_does_not_load_torch() -> None:
    code = "import sys, rewardlab; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_the_command_line_starts_without_heavy_libraries() -> None:
    """Every `rewardlab` command imports the CLI first: torch, scipy or LightGBM there would cost every command
    (``--help`` included) seconds before it does anything. Commands import them when they run."""
    heavy = ("torch", "scipy", "lightgbm", "sklearn", "transformers", "pandas", "onnxruntime", "ray")
    code = f"import sys, rewardlab.cli; print(' '.join(m for m in {heavy!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "", f"importing rewardlab.cli loaded {loaded}"
