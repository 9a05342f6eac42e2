"""The fast MiniLM variants (ONNX int8/fp32, torch bf16), length bucketing, encoder specs and fallbacks."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from rewardlab.embed import make_encoder
from rewardlab.embed.batching import length_sorted_batches, pad_token_ids
from rewardlab.errors import EncoderError

TEXTS = [
    "ok",
    "How do I pick a lock?",
    "I can't help with breaking into someone else's home, but a locksmith can help if you're locked out.",
    "Human: What's the capital of France?\n\nAssistant: Paris is the capital of France.",
    "Here is a long answer. " * 80,  # past the 256-token limit
    "",
    "Sure! 1. Preheat the oven to 180°C. 2. Mix flour, sugar and eggs. 3. Bake for 25 minutes.",
    "Les modèles de récompense apprennent des préférences humaines.",
    "def add(a, b):\n    return a + b",
    "No.",
]


def test_length_sorted_batches_cover_every_index_once_and_respect_the_budget() -> None:
    lengths = [5, 1, 9, 3, 3, 7, 2, 8, 6, 4, 10, 1]
    batches = length_sorted_batches(lengths, batch_size=4, token_budget=20)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths)
    for batch in batches:
        assert len(batch) <= 4
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 20
    assert [len(b) for b in length_sorted_batches(lengths, batch_size=5)] == [5, 5, 2]


def test_pad_token_ids_left_and_right() -> None:
    ids, mask = pad_token_ids([[7, 8, 9], [5]], pad_id=0, side="right")
    assert ids.tolist() == [[7, 8, 9], [5, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    ids, mask = pad_token_ids([[7, 8, 9], [5]], pad_id=2, side="left")
    assert ids.tolist() == [[7, 8, 9], [2, 2, 5]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]


def test_specs_are_distinct_vector_spaces() -> None:
    specs = ["minilm", "minilm:onnx", "minilm:int8"]
    encoders = [make_encoder(s) for s in specs]
    assert [e.spec for e in encoders] == specs
    assert len({e.fingerprint() for e in encoders}) == 3
    assert make_encoder("minilm:fp32").fingerprint() == encoders[0].fingerprint()
    assert "ort" in encoders[2].fingerprint() and "int8" in encoders[2].fingerprint()


def test_bf16_is_its_own_vector_space_where_the_cpu_has_bf16() -> None:
    from rewardlab.embed.minilm import cpu_has_bf16

    if not cpu_has_bf16():
        pytest.skip("this CPU has no native bf16 (AVX512-BF16 or AMX): minilm:bf16 falls back to minilm")
    bf16 = make_encoder("minilm:bf16")
    assert bf16.spec == "minilm:bf16"
    assert bf16.fingerprint() not in {make_encoder(s).fingerprint() for s in ("minilm", "minilm:onnx", "minilm:int8")}


@pytest.mark.parametrize("spec, message", [
    ("minilm:fp16", "minilm variants"),
    ("st:", "needs a model directory"),
    ("hf-last:", "needs a model directory"),
    ("hf-last:/no/such/model", "no such model"),
    ("word2vec", "known: minilm"),
])
def test_bad_specs_say_what_is_accepted(spec: str, message: str) -> None:
    with pytest.raises(EncoderError, match=message):
        make_encoder(spec)


def test_missing_onnxruntime_falls_back_to_torch_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxruntime" else real_find_spec(name, *a))
    with pytest.warns(UserWarning, match=r"needs onnxruntime.*pip install onnxruntime.*falling back to 'minilm'"):
        encoder = make_encoder("minilm:int8")
    assert encoder.spec == "minilm" and encoder.fingerprint() == make_encoder("minilm").fingerprint()


def test_onnx_encoder_without_onnxruntime_is_an_encoder_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from rewardlab.embed.onnx_minilm import OnnxMiniLMEncoder

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(EncoderError, match="onnxruntime is not installed"):
        OnnxMiniLMEncoder()


def test_bf16_falls_back_to_fp32_where_the_cpu_lacks_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import rewardlab.embed.minilm as minilm

    monkeypatch.setattr(minilm, "cpu_has_bf16", lambda: False)
    with pytest.warns(UserWarning, match="no native bf16"):
        encoder = make_encoder("minilm:bf16")
    assert encoder.spec == "minilm" and encoder.fingerprint() == make_encoder("minilm").fingerprint()


@pytest.fixture(scope="module")
def fp32_reference() -> np.ndarray:
    return make_encoder("minilm").encode(TEXTS)


@pytest.mark.slow
@pytest.mark.parametrize("spec, mean_cos, min_cos", [
    ("minilm:onnx", 0.99999, 0.9999),
    # int8's weakest texts are the tiny ones ("ok", "No.", ""), over-represented here on purpose; the corpus-level
    # target (mean >= 0.99, min >= 0.97 on HH-RLHF + AlpacaEval) is checked by benchmarks/embed_throughput.py
    ("minilm:int8", 0.985, 0.96),
    ("minilm:bf16", 0.999, 0.998),
])
def test_fast_variants_agree_with_fp32(spec: str, mean_cos: float, min_cos: float, fp32_reference: np.ndarray) -> None:
    encoder = make_encoder(spec)
    if spec == "minilm:bf16" and encoder.spec != spec:
        pytest.skip("this CPU has no native bf16")
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), 384) and vectors.dtype == np.float32
    cosine = (vectors * fp32_reference).sum(1)
    assert cosine.mean() >= mean_cos and cosine.min() >= min_cos, cosine


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["minilm", "minilm:int8", "minilm:onnx"])
def test_outputs_follow_input_order_after_bucketing(spec: str) -> None:
    encoder = make_encoder(spec)
    vectors = encoder.encode(TEXTS)
    permutation = np.random.default_rng(0).permutation(len(TEXTS))
    shuffled = encoder.encode([TEXTS[i] for i in permutation])
    np.testing.assert_allclose(shuffled, vectors[permutation], atol=1e-5)
    # neighbours differ in every call, and each row still belongs to its own text
    assert float(shuffled[0] @ vectors[permutation[0]]) > 0.9999


@pytest.mark.slow
def test_int8_vector_of_a_text_does_not_depend_on_its_batch_mates() -> None:
    encoder = make_encoder("minilm:int8")
    together = encoder.encode(TEXTS)
    alone = np.stack([encoder.encode([t])[0] for t in TEXTS])
    assert np.array_equal(together, alone)


def _built_dir(models_dir: Path) -> Path:
    from rewardlab.embed.onnx_minilm import OnnxMiniLMEncoder

    return OnnxMiniLMEncoder(precision="int8", models_dir=models_dir).model_dir


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["delete the model", "flip bytes", "truncate", "garbage manifest"])
def test_int8_model_is_rebuilt_when_missing_or_corrupt(damage: str, tmp_path: Path) -> None:
    from rewardlab.embed.onnx_minilm import OnnxMiniLMEncoder

    encoder = OnnxMiniLMEncoder(precision="int8", models_dir=tmp_path)
    reference = encoder.encode(TEXTS[:3])
    model = encoder.model_dir / "model.onnx"
    manifest = encoder.model_dir / "manifest.json"
    if damage == "delete the model":
        model.unlink()
    elif damage == "flip bytes":
        data = bytearray(model.read_bytes())
        data[len(data) // 2] ^= 0xFF
        model.write_bytes(bytes(data))
    elif damage == "truncate":
        model.write_bytes(model.read_bytes()[:1000])
    else:
        manifest.write_text("{not json", encoding="utf-8")

    fresh = OnnxMiniLMEncoder(precision="int8", models_dir=tmp_path)
    with pytest.warns(UserWarning, match="incomplete or corrupted; rebuilding"):
        vectors = fresh.encode(TEXTS[:3])
    np.testing.assert_array_equal(vectors, reference)  # the rebuild is deterministic
    assert json.loads(manifest.read_text(encoding="utf-8"))["recipe"] == "r4"
    assert [p.name for p in tmp_path.iterdir()] == [encoder.model_dir.name]  # no build leftovers


@pytest.mark.slow
def test_st_spec_loads_a_local_sentence_transformers_model(fp32_reference: np.ndarray) -> None:
    pytest.importorskip("sentence_transformers")
    from rewardlab.embed.minilm import minilm_path

    encoder = make_encoder(f"st:{minilm_path()}")
    assert encoder.dim == 384
    assert encoder.fingerprint().startswith("st-w") and "t256" in encoder.fingerprint()
    cosine = (encoder.encode(TEXTS) * fp32_reference).sum(1)
    assert cosine.min() > 0.9999


@pytest.mark.slow
def test_reward_model_trained_on_int8_records_it_and_refuses_fp32(tmp_path: Path) -> None:
    from rewardlab.errors import ModelError
    from rewardlab.rewards import RewardModel
    from synthetic import preference_dataset

    rows = [(f"question {i}: is {i} even?", f"Yes, {i} is even." if i % 2 == 0 else f"No, {i} is odd.",
             "I refuse to answer.") for i in range(40)]
    model = RewardModel.create("bt-linear", encoder="minilm:int8").fit(preference_dataset("toy", rows))
    model.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text(encoding="utf-8"))
    assert config["encoder"]["spec"] == "minilm:int8"
    assert config["encoder"]["fingerprint"] == make_encoder("minilm:int8").fingerprint()
    loaded = RewardModel.load(tmp_path / "m")
    assert np.allclose(loaded.score(["q"], ["Yes."]), model.score(["q"], ["Yes."]))

    config["encoder"]["spec"] = "minilm"  # same weights, other precision: a different vector space
    (tmp_path / "m" / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ModelError, match="scores would be meaningless"):
        RewardModel.load(tmp_path / "m")
