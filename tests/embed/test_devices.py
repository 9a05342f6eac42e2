"""Device specs (`rewardlab.embed.devices`) and token-budget batching: what every model's ``--device`` goes through."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rewardlab.embed.batching import length_sorted_batches
from rewardlab.embed.devices import compute_dtype, cuda_count, parse_device_spec, resolve_device
from rewardlab.errors import InvalidValueError, RewardlabError

NO_GPU = "needs a CUDA GPU (torch.cuda.is_available() is False here)"


@pytest.mark.parametrize(("spec", "parsed"), [("auto", ("auto", None)), ("cpu", ("cpu", None)),
                                              ("cuda", ("cuda", None)), ("cuda:3", ("cuda", 3)),
                                              (" CUDA:0 ", ("cuda", 0))])
def test_device_specs_parse(spec: str, parsed: tuple[str, int | None]) -> None:
    assert parse_device_spec(spec) == parsed


@pytest.mark.parametrize("spec", ["gpu", "cuda:", "cuda:-1", "cuda:x", "cpu:0", "auto:1", "", "mps", "cuda:0:1"])
def test_malformed_device_specs_are_one_clear_error(spec: str) -> None:
    with pytest.raises(InvalidValueError, match="expected auto, cpu, cuda or cuda:N") as info:
        resolve_device(spec)
    assert "\n" not in str(info.value) and isinstance(info.value, RewardlabError)


def test_cpu_is_always_there() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert compute_dtype(torch.device("cpu")) == torch.float32


def test_auto_takes_cuda_only_when_present() -> None:
    expected = torch.device("cuda", 0) if cuda_count() else torch.device("cpu")
    assert resolve_device("auto") == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "cuda:7"])
def test_cuda_without_a_gpu_is_one_line(spec: str) -> None:
    with pytest.raises(InvalidValueError) as info:
        resolve_device(spec)
    message = str(info.value)
    assert "\n" not in message and spec in message and "--device cpu" in message


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)
def test_a_gpu_index_past_the_last_is_refused_naming_the_devices() -> None:
    count = cuda_count()
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device(f"cuda:{count - 1}") == torch.device("cuda", count - 1)
    with pytest.raises(InvalidValueError, match=f"no CUDA device {count}; this machine has {count}"):
        resolve_device(f"cuda:{count}")
    assert compute_dtype(torch.device("cuda", 0)) in (torch.float16, torch.bfloat16)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_token_budget_batches_keep_every_index_once_and_respect_the_budget(seed: int) -> None:
    lengths = np.random.default_rng(seed).integers(1, 300, size=200).tolist()
    budget, cap = 1024, 64
    batches = length_sorted_batches(lengths, cap, token_budget=budget)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(lengths)))  # every text exactly once
    for batch in batches:
        longest = max(lengths[i] for i in batch)
        assert len(batch) <= cap
        assert len(batch) * longest <= budget or len(batch) == 1  # one text longer than the budget goes alone
    # results written back by index come out in input order
    out = np.zeros(len(lengths))
    for batch in batches:
        out[batch] = np.asarray(lengths)[batch]
    assert out.tolist() == lengths


def test_token_budget_lets_short_texts_travel_in_bigger_batches() -> None:
    lengths = [4] * 50 + [200] * 10
    batches = length_sorted_batches(lengths, 64, token_budget=800)
    sizes = {max(lengths[i] for i in b): len(b) for b in batches}
    assert sizes[4] == 50 and all(len(b) <= 4 for b in batches if lengths[b[0]] == 200)


def test_a_cpu_only_torch_build_is_read_without_importing_torch() -> None:
    """`auto` on a CPU-only torch costs no torch import (seconds) for encoders that do not need it (ONNX, hashing)."""
    import subprocess
    import sys

    code = ("import sys; from rewardlab.embed.devices import cpu_only_torch, gpu_or_none; answer = cpu_only_torch(); "
            "gpu = gpu_or_none('auto') if answer else 'skipped'; imported = 'torch' in sys.modules; import torch; "
            "print(answer == (torch.version.cuda is None), not (answer and imported), gpu in (None, 'skipped'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["True", "True", "True"]
