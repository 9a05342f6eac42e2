"""`LocalGenerator` on a device: the CPU as before, a missing GPU as one clear error, a GPU smoke run where present."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rewardlab.errors import InvalidValueError
from rewardlab.generate.factory import make_generator
from rewardlab.generate.local import LocalGenerator

NO_GPU = "needs a CUDA GPU (torch.cuda.is_available() is False here)"


def test_auto_samples_what_the_cpu_samples_without_a_gpu(tiny_model: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("auto means the GPU on this machine")
    cpu = LocalGenerator(tiny_model, device="cpu").generate(["hello there"], n=2, max_new_tokens=6, seed=3)
    auto = make_generator(tiny_model).generate(["hello there"], n=2, max_new_tokens=6, seed=3)
    assert auto == cpu and len(cpu[0]) == 2


def test_a_bad_device_spec_is_refused_before_any_model_loads(tiny_model: Path) -> None:
    with pytest.raises(InvalidValueError, match="expected auto, cpu, cuda or cuda:N"):
        LocalGenerator(tiny_model, device="gpu0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
def test_a_missing_gpu_is_one_line_when_the_model_loads(tiny_model: Path) -> None:
    generator = make_generator(tiny_model, device="cuda:7")
    with pytest.raises(InvalidValueError, match="'cuda:7'") as info:
        generator.generate(["hi"], max_new_tokens=2)
    assert "\n" not in str(info.value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)
def test_generator_smoke_run_on_the_gpu(tiny_model: Path) -> None:
    generator = LocalGenerator(tiny_model, device="cuda")
    first = generator.generate(["hello there", "hi"], n=2, max_new_tokens=8, seed=0)
    again = generator.generate(["hello there", "hi"], n=2, max_new_tokens=8, seed=0)
    assert generator.device.type == "cuda" and next(generator._model.parameters()).is_cuda
    assert first == again and [len(row) for row in first] == [2, 2]  # a seed fixes the texts on one device
