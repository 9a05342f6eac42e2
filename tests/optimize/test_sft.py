"""Supervised fine-tuning on demonstrations: response-only loss, frozen lower blocks, a folder that loads back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rewardlab.generate.base import GenerationError
from rewardlab.generate.local import LocalGenerator
from rewardlab.optimize.sft import (
    IGNORE_INDEX,
    SftConfig,
    fine_tune_on_demonstrations,
    freeze_below,
    memorisation_warning,
    tokenize_example,
)

DEMO = "Paris is the capital of France."


def test_only_response_tokens_are_targets(tiny_model: Path) -> None:
    generator = LocalGenerator(tiny_model).load()
    ids, labels = tokenize_example(generator, "What is the capital of France?", DEMO, SftConfig())
    prompt_len = len(generator._encode([generator.render("What is the capital of France?")], None)["input_ids"][0])
    assert labels[:prompt_len] == [IGNORE_INDEX] * prompt_len
    assert labels[prompt_len:] == ids[prompt_len:] and ids[-1] in generator._eos_ids  # a finished answer ends the turn
    # the tiny model's 128-token window: a long prompt keeps its end, the sequence fits
    ids, labels = tokenize_example(generator, "word " * 400, DEMO, SftConfig(max_prompt_tokens=500))
    assert len(ids) <= 128 and labels[-1] != IGNORE_INDEX


def test_freeze_below_leaves_only_the_top_blocks_trainable(tiny_model: Path) -> None:
    model = LocalGenerator(tiny_model).load()._model
    total = sum(p.numel() for p in model.parameters())
    top = freeze_below(model, 1)
    assert 0 < top < total
    assert not model.transformer.h[0].attn.c_attn.weight.requires_grad and model.transformer.h[1].attn.c_attn.weight.requires_grad
    assert freeze_below(model, 0) == total


def test_fine_tuning_learns_the_demonstration_and_saves_a_loadable_model(tiny_model: Path, tmp_path: Path) -> None:
    generator = LocalGenerator(tiny_model)
    examples = [("What is the capital of France?", DEMO)] * 4
    before = {k: v.clone() for k, v in generator.load()._model.state_dict().items()}
    with pytest.warns(UserWarning, match=r"each of the 4 demonstrations was seen about 30 times: the model has most "
                                         r"likely memorised them"):
        result = fine_tune_on_demonstrations(generator, examples, tmp_path / "sft",
                                             SftConfig(steps=60, batch_size=2, learning_rate=1e-2, trainable_layers=0))
    assert result.losses[-1] < 0.5 * result.losses[0]
    info = json.loads((tmp_path / "sft" / "rewardlab_sft.json").read_text(encoding="utf-8"))
    assert info["examples"] == 4 and len(info["losses"]) == 60
    tuned = LocalGenerator(tmp_path / "sft")
    greedy = tuned.generate(["What is the capital of France?"], temperature=0, max_new_tokens=12)[0][0]
    assert greedy.startswith("Paris is the capital")
    changed = [k for k, v in tuned.load()._model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed


def test_bad_settings_are_refused() -> None:
    with pytest.raises(GenerationError):
        SftConfig(steps=0)
    with pytest.raises(GenerationError):
        SftConfig(learning_rate=0)


@pytest.mark.slow
def test_a_model_from_gguf_fine_tunes_and_saves_as_plain_weights(tmp_path: Path) -> None:
    """transformers refuses to save a GGUF-loaded model; the fine-tuned SmolLM2 must still land on disk and load."""
    from rewardlab.generate.local import default_model_path

    try:
        default_model_path()
    except GenerationError as exc:
        pytest.skip(str(exc))
    generator = LocalGenerator()
    result = fine_tune_on_demonstrations(generator, [("Say hi", "Hi!")], tmp_path / "sft",
                                         SftConfig(steps=1, batch_size=1, trainable_layers=1))
    reloaded = LocalGenerator(result.path).load()
    assert "quantization_config" not in json.loads((result.path / "config.json").read_text(encoding="utf-8"))
    assert reloaded.generate(["Say hi"], temperature=0, max_new_tokens=4)[0][0] == \
        generator.generate(["Say hi"], temperature=0, max_new_tokens=4)[0][0]


def test_memorisation_warning_needs_many_passes_and_a_collapsed_loss() -> None:
    """`demo-reward sft` took 8 demonstrations from loss 3.46 to 0.008 and said nothing."""
    config = SftConfig(steps=60, batch_size=8)
    collapsed = [3.46, 1.2, 0.3, 0.01, 0.009, 0.008, 0.008, 0.008]
    assert "from 3.46 to 0.009 while each of the 8 demonstrations was seen about 60 times" in str(
        memorisation_warning(collapsed, 8, config))
    assert memorisation_warning(collapsed, 500, config) is None  # about one pass over 500: a falling loss is learning
    assert memorisation_warning([3.46, 2.9, 2.5, 2.4, 2.3, 2.2], 8, config) is None  # many passes, no collapse

