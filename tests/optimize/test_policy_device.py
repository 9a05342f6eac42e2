"""A policy run's device: checked with the config, the CPU in plain fp32 as before, mixed precision only on a GPU."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from rewardlab.errors import InvalidValueError
from rewardlab.optimize.policy import _trl_config
from rewardlab.optimize.policy_config import GRPO_DEFAULTS

trl = pytest.importorskip("trl")


def test_a_malformed_device_fails_the_config_check() -> None:
    with pytest.raises(InvalidValueError, match="expected auto, cpu, cuda or cuda:N"):
        dataclasses.replace(GRPO_DEFAULTS, device="gpu").check()
    assert GRPO_DEFAULTS.device == "auto"


def test_the_cpu_trains_in_fp32_without_mixed_precision(tmp_path: Path) -> None:
    args = _trl_config(trl.GRPOConfig, GRPO_DEFAULTS, tmp_path, torch.device("cpu"), num_generations=2,
                       per_device_train_batch_size=2)
    assert args.use_cpu and not args.bf16 and not args.fp16


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available() is False here)")
def test_a_gpu_trains_in_mixed_precision(tmp_path: Path) -> None:
    args = _trl_config(trl.GRPOConfig, GRPO_DEFAULTS, tmp_path, torch.device("cuda", 0), num_generations=2,
                       per_device_train_batch_size=2)
    assert not args.use_cpu and args.bf16 != args.fp16
