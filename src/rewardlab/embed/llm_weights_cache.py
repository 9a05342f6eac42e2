"""De-quantised GGUF weights, converted once and kept in the cache directory as fp32 safetensors.

transformers turns a GGUF into a float32 torch model by de-quantising every tensor in Python at each
load, which takes minutes on a small shared CPU. The result depends only on the GGUF's bytes and on
the converter, so we store it: ``<models dir>/gguf-<stem>-<GGUF sha256[:16]>-tf<transformers>-<RECIPE>/``
holds ``config.json``, ``model.safetensors``, the tokenizer (converting it from the GGUF vocabulary
takes seconds too) and a ``manifest.json`` with the SHA-256 of the weights and of ``tokenizer.json``.
The directory is built aside and renamed into place (two processes may race; either result is whole),
and the checksum is verified at every load: a damaged file is reported, removed and rebuilt, never used.

The transformers version is in the key because its converter decides the values (name mapping,
the Q/K row permutation of Llama GGUFs); a new version converts again rather than trusting old files.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rewardlab.embed import built_dir
from rewardlab.embed.digest import file_digest
from rewardlab.errors import EncoderError

RECIPE = "w1"  # bump when what is stored (or how) changes: old directories are then not reused
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"


def default_models_dir() -> Path:
    """``$REWARDLAB_MODELS_DIR`` or ``models/`` in the rewardlab cache directory (shared with the ONNX builds)."""
    from rewardlab.embed.onnx_minilm import default_models_dir as models_dir

    return models_dir()


def transformers_version() -> str:
    import transformers

    return str(transformers.__version__)


def weights_dir(gguf_path: Path, models_dir: Path | None = None) -> Path:
    """Where the fp32 weights converted from ``gguf_path`` live: named by its content, not its path."""
    digest = file_digest(gguf_path)[:16]
    root = models_dir if models_dir is not None else default_models_dir()
    return root / f"gguf-{Path(gguf_path).stem}-{digest}-tf{transformers_version()}-{RECIPE}"


#: the files `manifest.json` checks, by manifest key; config.json must be there too
CHECKED = {"sha256": WEIGHTS_FILE, "tokenizer_sha256": TOKENIZER_FILE}
REQUIRED = ("config.json",)


def is_intact(directory: Path) -> bool:
    """True when the manifest, config, weights and tokenizer are all there and the checksummed files match."""
    return built_dir.is_intact(directory, CHECKED, REQUIRED)


def save_weights(model: Any, tokenizer: Any, gguf_path: Path, directory: Path) -> None:
    """Write ``model``'s fp32 state, its config and the tokenizer into ``directory`` atomically (aside, then rename)."""
    from safetensors.torch import save_file

    def build(work: Path) -> dict[str, Any]:
        state, stored = {}, set()
        for name, tensor in model.state_dict().items():
            if tensor.data_ptr() in stored:  # a tied head shares the embeddings' memory: loading ties it again
                continue
            stored.add(tensor.data_ptr())
            state[name] = tensor.detach().float().contiguous()
        save_file(state, str(work / WEIGHTS_FILE), metadata={"format": "pt"})
        config = model.config.to_dict()
        config.pop("quantization_config", None)  # the stored weights are plain fp32, not a GGUF
        (work / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        tokenizer.save_pretrained(str(work))
        return {"source": str(gguf_path), "source_sha256": file_digest(gguf_path), "recipe": RECIPE,
                "transformers": transformers_version(), "dtype": "float32"}

    built_dir.build_directory(directory, build, CHECKED, REQUIRED)


def load_weights(directory: Path, causal_lm: bool = False) -> tuple[Any, Any]:
    """(fp32 torch model, tokenizer) stored in ``directory`` (checked by the caller with `is_intact`).

    ``causal_lm`` loads the model with its language-model head (for generation) rather than the bare
    decoder (for embeddings). Either kind reads a directory written from either: transformers adds or
    strips the base model's prefix, and the head of a model with tied embeddings is the embedding matrix.
    """
    import torch
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    hf_logging.disable_progress_bar()
    model_class = AutoModelForCausalLM if causal_lm else AutoModel
    try:
        return (model_class.from_pretrained(str(directory), dtype=torch.float32),
                AutoTokenizer.from_pretrained(str(directory)))
    except (OSError, ValueError) as exc:
        raise EncoderError(f"{directory}: cannot load the cached converted weights: {exc}") from exc


def has_language_model_head(directory: Path) -> bool:
    """Whether generation can use the stored weights: the head is stored, or tied to the stored embeddings.

    An encoder stores the bare decoder; for a model with an untied head that is not enough to generate
    (transformers would initialise the missing head at random), so the generator converts the GGUF itself.
    """
    from safetensors import safe_open

    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    if config.get("tie_word_embeddings", True):
        return True
    with safe_open(str(directory / WEIGHTS_FILE), framework="pt") as weights:
        return any(name.endswith("lm_head.weight") for name in weights.keys())  # noqa: SIM118 (not a dict)


def cached_gguf_model(gguf_path: Path, convert: Callable[[], tuple[Any, Any]],
                      models_dir: Path | None = None, causal_lm: bool = False) -> tuple[Any, Any, bool]:
    """(fp32 model, tokenizer, from the cache?): the stored conversion, or ``convert()``'s stored for next time.

    A directory that fails its checksums is reported with a warning, removed and converted again.
    ``causal_lm`` as in `load_weights`: the encoder and the generator share one stored conversion.
    """
    directory = weights_dir(gguf_path, models_dir)
    intact = is_intact(directory)
    if intact and (not causal_lm or has_language_model_head(directory)):
        model, tokenizer = load_weights(directory, causal_lm)
        return model, tokenizer, True
    if directory.exists() and not intact:
        warnings.warn(f"converted GGUF weights in {directory} are incomplete or corrupted; converting again",
                      stacklevel=2)
        shutil.rmtree(directory, ignore_errors=True)
    model, tokenizer = convert()
    if intact:  # stored by an encoder without the untied head generation needs: keep it, convert each time
        return model, tokenizer, False
    try:
        save_weights(model, tokenizer, gguf_path, directory)
    except OSError as exc:  # a read-only or full cache must not stop embedding: it only costs the next load
        warnings.warn(f"could not store converted GGUF weights in {directory}: {exc}", stacklevel=2)
    return model, tokenizer, False
