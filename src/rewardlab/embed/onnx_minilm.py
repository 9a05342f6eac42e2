"""all-MiniLM-L6-v2 on ONNX Runtime: fp32 (exact, fused) and per-channel int8 (the fast default).

The graph is built once, at first use, from the same weights the torch encoder loads: exported with
eager attention and with mean pooling and L2 normalisation inside the graph, fused by ONNX Runtime's
transformer optimizer (attention, GELU, skip-layer-norm), and for ``int8`` dynamically quantised per
channel. Two parts stay fp32 because quantising them costs far more accuracy than speed: the embedding
table, and the first layer's FFN output projection, whose post-GELU inputs have outliers that a
per-tensor activation scale flattens (quantising it too is ~5% faster but drops the worst-case cosine to
fp32 from 0.983 to 0.967 on the benchmark corpus; keeping layer 1's as well costs another ~10% for 0.985).
The result lives in the cache directory under a key made of the source weights' hash, the onnxruntime
version and this recipe, with a checksum; a missing or damaged file is rebuilt. Building needs torch and
onnx; running needs only onnxruntime, tokenizers and numpy.

Each text runs on its own (no padding at all), one per CPU core at a time, each run single-threaded:
on two cores that is ~25% faster than batches with two intra-op threads, and it matters for int8:
dynamic quantisation picks one activation scale per tensor, so in a batch a text's vector would depend
on its batch mates. On its own, a text always gets the same vector.

This is the CPU route. On a GPU, `rewardlab.embed.base.make_encoder` runs ``minilm:int8`` as torch fp16 and
``minilm:onnx`` as torch fp32 (`rewardlab.embed.minilm`): ONNX Runtime's CUDA provider would need the
``onnxruntime-gpu`` build and has no GPU kernels for the dynamically quantised int8 graph, while torch on the
GPU computes the same network in batches.
"""

from __future__ import annotations

import logging
import os
import shutil
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.embed.built_dir import build_directory, is_intact
from rewardlab.embed.cache import default_cache_dir
from rewardlab.embed.digest import file_digest
from rewardlab.embed.minilm import DIM, MAX_TOKENS, MiniLMTokens, load_minilm_tokenizer, minilm_identity, minilm_path
from rewardlab.errors import EncoderError

ONNX_PRECISIONS = ("fp32", "int8")
RECIPE = "r4"  # bump when export, fusion or quantisation settings change: old files are then not reused
FP32_FFN_OUTPUT_LAYERS = (0,)  # layers whose FFN output projection stays unquantised
OPSET = 17


def default_models_dir() -> Path:
    """``$REWARDLAB_MODELS_DIR`` or ``models/`` in the cache directory: where built ONNX graphs are kept."""
    override = os.environ.get("REWARDLAB_MODELS_DIR")
    return Path(override) if override else default_cache_dir() / "models"


def onnxruntime_version() -> str:
    """The installed onnxruntime's version (part of the fingerprint: it can change the vectors), or an `EncoderError`."""
    try:
        import onnxruntime
    except ImportError:
        raise EncoderError("onnxruntime is not installed (pip install onnxruntime)") from None
    return str(onnxruntime.__version__)


class OnnxMiniLMEncoder(MiniLMTokens):
    def __init__(self, precision: str = "int8", max_tokens: int = MAX_TOKENS, models_dir: str | Path | None = None,
                 workers: int | None = None) -> None:
        if precision not in ONNX_PRECISIONS:
            raise EncoderError(f"minilm ONNX precision {precision!r}: choose one of {', '.join(ONNX_PRECISIONS)}")
        self.precision = precision
        self.spec = "minilm:int8" if precision == "int8" else "minilm:onnx"
        self.dim = DIM
        self.max_tokens = max_tokens
        self.workers = workers or max(1, os.cpu_count() or 1)
        self.path = minilm_path()
        self.ort_version = onnxruntime_version()
        self.models_dir = Path(models_dir) if models_dir is not None else default_models_dir()
        self._session: Any = None
        self._tokenizer: Any = None

    def fingerprint(self) -> str:
        # the onnxruntime version is part of it: kernels and the quantiser can change the vectors
        identity = minilm_identity(self.path, self.max_tokens)
        return f"minilm-onnx-{self.precision}-{RECIPE}-ort{self.ort_version}-{identity}"

    @property
    def model_dir(self) -> Path:
        """Where the built graph is kept: named by the weights' hash, the onnxruntime version, the precision and `RECIPE`."""
        weights = file_digest(self.path / "model.safetensors")[:16]
        return self.models_dir / f"minilm-{weights}-ort{self.ort_version}-{self.precision}-{RECIPE}"

    def model_file(self) -> Path:
        """The built ``model.onnx``, building (or rebuilding a damaged one) first when needed."""
        directory = self.model_dir
        if not _is_intact(directory):
            if directory.exists():
                warnings.warn(f"ONNX model in {directory} is incomplete or corrupted; rebuilding it", stacklevel=2)
                shutil.rmtree(directory, ignore_errors=True)
            build_onnx_model(self.path, self.precision, directory)
        return directory / "model.onnx"

    def _load(self) -> None:
        if self._session is not None:
            return
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # parallel across texts instead (see the module docstring)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self._session = ort.InferenceSession(str(self.model_file()), options, providers=["CPUExecutionProvider"])
        self._tokenizer = load_minilm_tokenizer(self.path, self.max_tokens)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self._load()
        encodings = self._tokenizer.encode_batch(list(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)

        def embed_one(index: int) -> None:
            ids = np.asarray([encodings[index].ids], dtype=np.int64)
            out[index] = self._session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0][0]

        # onnxruntime releases the GIL inside run(); similar lengths side by side keep the workers in step
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")
        with ThreadPoolExecutor(self.workers) as pool:
            list(pool.map(embed_one, order))
        return out


#: the file `manifest.json` checks, by manifest key
CHECKED = {"sha256": "model.onnx"}


def _is_intact(directory: Path) -> bool:
    return is_intact(directory, CHECKED)


def build_onnx_model(source: Path, precision: str, directory: Path) -> None:
    """Export, fuse and (for int8) quantise MiniLM into ``directory`` atomically (build aside, then rename)."""
    try:
        import onnx  # noqa: F401
        import torch  # noqa: F401
        from onnxruntime.transformers.optimizer import optimize_model
    except ImportError as exc:
        raise EncoderError(f"building the ONNX encoder needs torch, onnx and onnxruntime ({exc.name} is missing)") from None

    def build(work: Path) -> dict[str, Any]:
        exported = work / "exported.onnx"
        _export(source, exported)
        fused = optimize_model(str(exported), model_type="bert", num_heads=12, hidden_size=DIM, opt_level=1)
        final = work / "model.onnx"
        if precision == "fp32":
            fused.save_model_to_file(str(final))
        else:
            fused_path = work / "fused.onnx"
            fused.save_model_to_file(str(fused_path))
            _quantize(fused_path, final)
        for leftover in work.iterdir():
            if leftover.name != "model.onnx":
                leftover.unlink()
        return {"source": str(source), "precision": precision, "recipe": RECIPE, "opset": OPSET,
                "onnxruntime": onnxruntime_version()}

    build_directory(directory, build, CHECKED)


def _export(source: Path, target: Path) -> None:
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    bert = AutoModel.from_pretrained(str(source), attn_implementation="eager").eval()

    class MeanPooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                               token_type_ids=torch.zeros_like(input_ids))[0]
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    example = torch.ones((2, 16), dtype=torch.long)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer chatter about Python-side shape checks
        torch.onnx.export(
            MeanPooled(), (example, example), str(target), input_names=["input_ids", "attention_mask"],
            output_names=["embedding"], opset_version=OPSET, dynamo=False,
            dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                          "embedding": {0: "batch"}},
        )


def _quantize(fused: Path, target: Path) -> None:
    import onnx
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(fused), load_external_data=False).graph
    keep_fp32 = [node.name for node in graph.node if node.op_type == "MatMul"
                 and any(f"layer.{i}/output/dense/" in node.name for i in FP32_FFN_OUTPUT_LAYERS)]
    if len(keep_fp32) != len(FP32_FFN_OUTPUT_LAYERS):
        raise EncoderError(f"ONNX recipe {RECIPE}: expected the FFN output projections of layers "
                           f"{FP32_FFN_OUTPUT_LAYERS}, found {keep_fp32}; the exported node names changed")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs advice about static pre-processing on the root logger
    try:
        quantize_dynamic(str(fused), str(target), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul", "Attention"], nodes_to_exclude=keep_fp32,
                         extra_options={"DefaultTensorType": TensorProto.FLOAT})
    finally:
        root.setLevel(level)
