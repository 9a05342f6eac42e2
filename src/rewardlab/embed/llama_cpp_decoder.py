"""A decoder LLM's last-token embedding run natively by llama.cpp: ``hf-last:<file.gguf|smollm2>:gguf`` and friends.

The torch and ONNX routes (`rewardlab.embed.last_token`, `rewardlab.embed.onnx_decoder`) first convert a GGUF's
quantised weights to fp32; llama.cpp (through ``llama-cpp-python``, built from source by ``make setup-llama``)
computes with the quantised blocks themselves, so the weights load in under a second (the tokenizer, read through
transformers, is most of the load). Tokenisation and truncation are the torch encoder's, which this wraps: the same
token ids go in, so the vectors differ from fp32 only by arithmetic.

Three weight formats, by suffix (see `LLAMA_CPP_FORMATS`):

* ``gguf``: the file's own blocks as stored (SmolLM2's are Q4_1);
* ``gguf-q8``: requantised once to Q8_0 (8-bit blocks of 32), kept in the models directory;
* ``gguf-f16``: converted once to float16.

Q4_1 has no batched (tinyBLAS) kernel in llama.cpp on x86, so a prompt runs as many matrix-vector products; Q8_0 and
F16 have one. Measured on a busy 2-core AMD EPYC (Zen 4, AVX-512 VNNI), 24 HH texts: Q4_1 0.93 texts per CPU-second,
Q8_0 1.66, F16 1.52, against torch fp32's 1.26 and ONNX int8's 4.30 (cosine to fp32: mean 0.9997, 0.9996, 1.0000).
So on that CPU llama.cpp is the most faithful fast route, not the fastest; README (``benchmarks/llm_embed.py``) has
the table.

Each text runs on its own (one sequence per decode), so its vector never depends on what it was batched with, and
``workers`` contexts (one thread each, sharing the weights' memory map) run side by side: ctypes releases the GIL
inside llama.cpp. The fingerprint names the format, llama.cpp's build and `RECIPE`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import threading
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.embed.built_dir import build_directory, is_intact
from rewardlab.embed.last_token import HFLastTokenEncoder, RunsLastTokenNetworkElsewhere
from rewardlab.embed.onnx_minilm import default_models_dir
from rewardlab.errors import EncoderError

#: spec suffix -> (weight format named in the fingerprint, llama.cpp file type to convert to or None: as stored)
LLAMA_CPP_FORMATS: dict[str, tuple[str, str | None]] = {
    "gguf": ("stored", None),
    "gguf-q8": ("q8_0", "LLAMA_FTYPE_MOSTLY_Q8_0"),
    "gguf-f16": ("f16", "LLAMA_FTYPE_MOSTLY_F16"),
}
RECIPE = "l1"  # bump when the conversion or the pooling changes: old conversions are then not reused
MODEL_FILE = "model.gguf"
CHECKED = {"sha256": MODEL_FILE}
INSTALL_HINT = "llama-cpp-python is not installed: run `make setup-llama` (it builds llama.cpp from source)"


def llama_cpp_version() -> str:
    """The installed llama-cpp-python's version (it pins the llama.cpp build), or an `EncoderError`."""
    try:
        import llama_cpp
    except ImportError:
        raise EncoderError(INSTALL_HINT) from None
    return str(llama_cpp.__version__)


@contextlib.contextmanager
def _quiet_native_logs() -> Iterator[None]:
    """llama.cpp prints its loader and context chatter straight to fd 2; keep it off the user's terminal."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class LlamaCppLastTokenEncoder(RunsLastTokenNetworkElsewhere):
    """`HFLastTokenEncoder`'s vectors computed by llama.cpp from a GGUF's (possibly requantised) weights."""

    def __init__(self, path: str | Path, weight_format: str = "gguf", max_tokens: int = 512,
                 models_dir: str | Path | None = None, workers: int | None = None) -> None:
        if weight_format not in LLAMA_CPP_FORMATS:
            raise EncoderError(f"llama.cpp weight format {weight_format!r}: choose one of "
                               f"{', '.join(LLAMA_CPP_FORMATS)}")
        self.weight_format = weight_format
        self.torch_encoder = HFLastTokenEncoder(path, max_tokens=max_tokens, models_dir=models_dir)
        if self.torch_encoder.gguf_file is None:
            raise EncoderError(f"{path}: hf-last:…:{weight_format} runs a .gguf file natively; this is a model "
                               f"directory (use :onnx or :int8 for it)")
        self.models_dir = Path(models_dir) if models_dir is not None else None
        self.workers = workers or max(1, os.cpu_count() or 1)
        self.spec = f"{self.torch_encoder.spec}:{weight_format}"
        self._contexts: list[Any] = []
        self._lock = threading.Lock()

    # -- identity -------------------------------------------------------------------------------

    def fingerprint(self) -> str:
        """The torch fp32 fingerprint (source weights, tokenizer, truncation, pooling) with llama.cpp's tag for fp32."""
        stored_as = LLAMA_CPP_FORMATS[self.weight_format][0]
        tag = f"llamacpp-{stored_as}-lcpp{llama_cpp_version()}-{RECIPE}"
        return self.torch_encoder.fingerprint().replace("hf-last-fp32-", f"hf-last-{tag}-", 1)

    def source_file(self) -> Path:
        assert self.torch_encoder.gguf_file is not None
        return self.torch_encoder.model_dir / self.torch_encoder.gguf_file

    def model_file(self) -> Path:
        """The GGUF llama.cpp loads: the source itself, or its conversion in the models directory."""
        if LLAMA_CPP_FORMATS[self.weight_format][1] is None:
            return self.source_file()
        root = self.models_dir if self.models_dir is not None else default_models_dir()
        return root / re.sub(r"-t\d+-", "-", self.fingerprint(), count=1) / MODEL_FILE  # truncation: same weights

    # -- running --------------------------------------------------------------------------------

    def _load(self) -> None:
        if self._contexts:
            return
        with self._lock:
            if self._contexts:
                return
            llama_cpp_version()
            model_file = self.model_file()
            if model_file != self.source_file() and not is_intact(model_file.parent, CHECKED):
                if model_file.parent.exists():
                    warnings.warn(f"the llama.cpp weights in {model_file.parent} are incomplete or corrupted; "
                                  "converting them again", stacklevel=3)
                    shutil.rmtree(model_file.parent, ignore_errors=True)
                self._convert(model_file.parent)
            self.torch_encoder._load_tokenizer()
            self._contexts = [self._open(model_file) for _ in range(self.workers)]

    def _open(self, model_file: Path) -> Any:
        import llama_cpp

        context_tokens = self.torch_encoder.max_tokens
        try:
            with _quiet_native_logs():
                return llama_cpp.Llama(
                    model_path=str(model_file), embedding=True, pooling_type=llama_cpp.LLAMA_POOLING_TYPE_LAST,
                    n_ctx=context_tokens, n_batch=context_tokens, n_ubatch=context_tokens, n_seq_max=1,
                    n_threads=1, n_threads_batch=1, verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise EncoderError(f"{model_file}: llama.cpp could not load it ({exc})") from None

    def _convert(self, directory: Path) -> None:
        """Requantise the source GGUF into ``directory`` (atomically, with a checksum)."""
        import llama_cpp

        file_type = LLAMA_CPP_FORMATS[self.weight_format][1]
        assert file_type is not None

        def build(work: Path) -> dict[str, Any]:
            params = llama_cpp.llama_model_quantize_default_params()
            params.ftype = getattr(llama_cpp, file_type)
            params.allow_requantize = True
            params.nthread = max(1, os.cpu_count() or 1)
            with _quiet_native_logs():
                status = llama_cpp.llama_model_quantize(str(self.source_file()).encode(),
                                                        str(work / MODEL_FILE).encode(), ctypes.byref(params))
            if status != 0:
                raise EncoderError(f"{self.source_file()}: llama.cpp could not convert it to "
                                   f"{self.weight_format} (status {status})")
            return {"source": self.torch_encoder.spec, "format": self.weight_format, "recipe": RECIPE,
                    "llama_cpp_python": llama_cpp_version()}

        build_directory(directory, build, CHECKED)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self._load()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        rows = self.torch_encoder._token_ids(texts)
        free = list(self._contexts)
        free_lock = threading.Lock()

        def embed_one(index: int) -> None:
            with free_lock:
                llm = free.pop()
            try:
                out[index] = _last_token_vector(llm, rows[index], self.dim)
            finally:
                with free_lock:
                    free.append(llm)

        order = np.argsort([len(r) for r in rows], kind="stable")  # similar lengths side by side keep workers in step
        with ThreadPoolExecutor(len(self._contexts)) as pool:
            list(pool.map(embed_one, order))
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, np.finfo(np.float32).tiny)


def _last_token_vector(llm: Any, token_ids: list[int], dim: int) -> np.ndarray:
    """One sequence through ``llm`` (its KV cache cleared first); the pooled hidden state of its last token."""
    import llama_cpp

    llm._ctx.kv_cache_clear()
    llm._batch.add_sequence(token_ids, 0, True)  # every token an output, as pooling needs
    try:
        llm._ctx.decode(llm._batch)
    except RuntimeError as exc:
        raise EncoderError(f"llama.cpp failed on a text of {len(token_ids)} tokens ({exc})") from None
    finally:
        llm._batch.reset()
    pointer = llama_cpp.llama_get_embeddings_seq(llm._ctx.ctx, 0)
    if not pointer:
        raise EncoderError("llama.cpp returned no pooled embedding (is this a decoder model?)")
    return np.ctypeslib.as_array(pointer, shape=(dim,)).copy()
