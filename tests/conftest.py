"""Shared fixtures: an isolated embedding cache per test, the shared data dir, a tiny random GPT-2 with a
locally trained BPE tokenizer (real transformers generation and training in milliseconds), and an
OpenAI-compatible server over it."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def built_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built ONNX encoders, shared by the whole session: a build takes seconds, so tests build once."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, built_models_dir: Path) -> Path:
    """Every test gets its own embedding cache, so no test reads another's (or the user's) cache."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("REWARDLAB_CACHE_DIR", str(cache))
    monkeypatch.setenv("REWARDLAB_MODELS_DIR", str(built_models_dir))
    return cache


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One local Ray instance of 2 CPUs per test module; the code under test reuses the connection it finds."""
    ray = pytest.importorskip("ray", reason="Ray is an optional extra (pip install 'rewardlab[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="error",
             _temp_dir=str(tmp_path_factory.mktemp("ray")))
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture
def shared_data() -> Path:
    path = Path(os.environ.get("REWARDLAB_DATA_DIR", REPO.parent / "shared" / "data"))
    if not path.exists():
        pytest.skip(f"shared data folder {path} is absent (set REWARDLAB_DATA_DIR); CI always has it")
    return path


SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A reward model scores responses to prompts.",
    "Best of n sampling picks the highest scoring candidate.",
    "What is the capital of France? Paris is the capital of France.",
    "Write a short poem about the sea and the sky.",
    "Numbers like 1 2 3 4 5 6 7 8 9 0 appear in math questions.",
]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_model(folder: Path, chat_template: str | None = CHAT_TEMPLATE) -> Path:
    """Save a 2-layer, 32-wide GPT-2 and its tokenizer (vocabulary of a few hundred) to ``folder``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(SENTENCES, trainers.BpeTrainer(vocab_size=300, special_tokens=specials,
                                                           initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                        bos_token="<|endoftext|>", additional_special_tokens=["<|im_start|>"])
    if chat_template:
        tokenizer.chat_template = chat_template
    tokenizer.save_pretrained(folder)

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=128, n_embd=32, n_layer=2, n_head=2,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id)
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-gpt2"))


@pytest.fixture(scope="session")
def tiny_model_plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same kind of model with no chat template: prompts go in as plain text."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-gpt2-plain"), chat_template=None)


@pytest.fixture(scope="session")
def tiny_server(tiny_model: Path) -> Iterator[str]:
    """`generate serve`'s app over the tiny model, on a free 127.0.0.1 port; yields the base URL (…/v1)."""
    import uvicorn

    from rewardlab.collect.local_postgres import free_port
    from rewardlab.generate.local import LocalGenerator
    from rewardlab.generate.server import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(LocalGenerator(tiny_model).load(), "tiny"), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    thread.join(timeout=10)
