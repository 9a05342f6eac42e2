"""A decoder LLM's last-token embedding on ONNX Runtime: ``hf-last:<model>:onnx`` (fp32) and ``:onnx-int8``.

The torch route (`rewardlab.embed.last_token`) runs batches through eager PyTorch; this one exports the
same fp32 decoder once, with the last-token pooling and L2 normalisation inside the graph, and runs each
text on its own (no padding), one per core, each run single-threaded, as the MiniLM graph does
(`rewardlab.embed.onnx_minilm`). Measured on 48 HH texts (141 tokens each on average) on a busy 2-core
AMD EPYC (Zen 4): ONNX fp32 gives the torch fp32 vectors (cosine 1.00000) at about 2.7× its throughput.

``onnx-int8`` quantises the weight matrices dynamically (int8 weights per output channel, one activation
scale per tensor). Three kinds of matrix product stay fp32 because a per-tensor scale ruins them: the
attention products (activations on both sides), every FFN down projection (its SwiGLU inputs have
outliers hundreds of times the rest) and the whole first and last layers. Measured on the same texts:
all weights int8 cosine to fp32 mean 0.943 / min 0.873; down projections fp32 0.993 / 0.988; this
recipe 0.996 / 0.994 at about 1.7× ONNX fp32's throughput (VNNI on that CPU; on AVX2 alone int8 gains
less, as MiniLM's did).

The graph is built at first use from the same weights the torch encoder reads (a GGUF's cached fp32
conversion) and kept in the models directory under a key made of the encoder's fingerprint, the
onnxruntime version and `RECIPE`, with a checksum; a damaged file is rebuilt, never used. On a GPU,
`rewardlab.embed.base.make_encoder` runs these specs as torch (fp32, and fp16 for int8).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.embed.built_dir import build_directory, is_intact
from rewardlab.embed.last_token import HFLastTokenEncoder, RunsLastTokenNetworkElsewhere
from rewardlab.embed.onnx_minilm import default_models_dir, onnxruntime_version
from rewardlab.errors import EncoderError

#: spec suffix -> what the graph computes
ONNX_DECODER_PRECISIONS = {"onnx": "fp32", "onnx-int8": "int8"}
RECIPE = "d1"  # bump when export or quantisation settings change: old graphs are then not reused
OPSET = 17
MODEL_FILE = "model.onnx"
CHECKED = {"sha256": MODEL_FILE}
#: matrix products kept fp32 in the int8 graph, by a part of their exported node name
FP32_PRODUCTS = ("self_attn/MatMul", "mlp/down_proj/")


class OnnxLastTokenEncoder(RunsLastTokenNetworkElsewhere):
    """`HFLastTokenEncoder`'s vectors computed by an exported ONNX graph, one text per run.

    Tokenisation, truncation (keeping the BOS prefix and the end) and the weights are the torch encoder's,
    which this wraps; only the forward pass moves to ONNX Runtime.
    """

    def __init__(self, path: str | Path, precision: str = "onnx", max_tokens: int = 512,
                 models_dir: str | Path | None = None, workers: int | None = None) -> None:
        if precision not in ONNX_DECODER_PRECISIONS:
            raise EncoderError(f"ONNX decoder precision {precision!r}: choose one of "
                               f"{', '.join(ONNX_DECODER_PRECISIONS)}")
        self.precision = precision
        self.torch_encoder = HFLastTokenEncoder(path, max_tokens=max_tokens, models_dir=models_dir)
        self.models_dir = Path(models_dir) if models_dir is not None else None
        self.workers = workers or max(1, os.cpu_count() or 1)
        self.spec = f"{self.torch_encoder.spec}:{precision}"
        self._session: Any = None

    # -- identity -------------------------------------------------------------------------------

    def fingerprint(self) -> str:
        """The torch fp32 fingerprint (weights, tokenizer, truncation, pooling) with this graph's tag in place of fp32."""
        tag = f"onnx{ONNX_DECODER_PRECISIONS[self.precision]}-ort{onnxruntime_version()}-{RECIPE}"
        return self.torch_encoder.fingerprint().replace("hf-last-fp32-", f"hf-last-{tag}-", 1)

    def model_dir(self) -> Path:
        """Where this graph is kept: named by everything that decides its vectors."""
        root = self.models_dir if self.models_dir is not None else default_models_dir()
        return root / re.sub(r"-t\d+-", "-", self.fingerprint(), count=1)  # truncation does not change the graph

    # -- running --------------------------------------------------------------------------------

    def _load(self) -> None:
        if self._session is not None:
            return
        try:
            import onnxruntime as ort
        except ImportError:
            raise EncoderError(f"{self.spec} needs onnxruntime (pip install onnxruntime)") from None
        directory = self.model_dir()
        if not is_intact(directory, CHECKED):
            if directory.exists():
                warnings.warn(f"the ONNX graph in {directory} is incomplete or corrupted; building it again",
                              stacklevel=3)
                shutil.rmtree(directory, ignore_errors=True)
            self._build(directory)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # parallel across texts instead
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self._session = ort.InferenceSession(str(directory / MODEL_FILE), options,
                                             providers=["CPUExecutionProvider"])
        self.torch_encoder._load_tokenizer()

    def _build(self, directory: Path) -> None:
        """Export the torch encoder's fp32 decoder (and quantise it for int8) into ``directory`` atomically."""
        self.torch_encoder._load()
        model = self.torch_encoder._model

        def build(work: Path) -> dict[str, Any]:
            exported = work / "exported.onnx"
            export_last_token_graph(model, exported)
            if self.precision == "onnx":
                exported.rename(work / MODEL_FILE)
            else:
                quantize_decoder(exported, work / MODEL_FILE)
                exported.unlink()
            return {"source": self.torch_encoder.spec, "precision": self.precision, "recipe": RECIPE,
                    "opset": OPSET, "onnxruntime": onnxruntime_version()}

        try:
            build_directory(directory, build, CHECKED)
        finally:
            self.torch_encoder._model = None  # the graph replaces it; free the fp32 weights

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self._load()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        rows = self.torch_encoder._token_ids(texts)

        def embed_one(index: int) -> None:
            ids = np.asarray([rows[index]], dtype=np.int64)
            out[index] = self._session.run(None, {"input_ids": ids})[0][0]

        # onnxruntime releases the GIL inside run(); similar lengths side by side keep the workers in step
        order = np.argsort([len(r) for r in rows], kind="stable")
        with ThreadPoolExecutor(self.workers) as pool:
            list(pool.map(embed_one, order))
        return out


def export_last_token_graph(model: Any, target: Path) -> None:
    """``model`` (a torch decoder returning ``last_hidden_state``) as a graph from token ids to the L2-normalised
    hidden state of the last token; batch and length dynamic, no padding (every token is real)."""
    import torch

    class LastToken(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.decoder = model

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            # an explicit mask and positions, as the torch encoder passes them (without them transformers
            # looks for packed sequences with an op ONNX lacks)
            mask = torch.ones_like(input_ids)
            hidden = self.decoder(input_ids=input_ids, attention_mask=mask, position_ids=mask.cumsum(-1) - 1,
                                  use_cache=False).last_hidden_state
            return torch.nn.functional.normalize(hidden[:, -1].float(), p=2, dim=-1)

    example = torch.ones((1, 16), dtype=torch.long)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer chatter about Python-side shape checks
        torch.onnx.export(LastToken().eval(), (example,), str(target), input_names=["input_ids"],
                          output_names=["embedding"], opset_version=OPSET, dynamo=False,
                          dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "embedding": {0: "batch"}})


def quantize_decoder(source: Path, target: Path) -> None:
    """Per-channel int8 weights for the decoder's matrix products, except `FP32_PRODUCTS` and the first and last
    layers (see the module docstring for why and what each costs)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(source), load_external_data=False).graph
    products = [node.name for node in graph.node if node.op_type == "MatMul"]
    layers = sorted({int(name.split("layers.")[1].split("/")[0]) for name in products if "layers." in name})
    if not layers or not any("down_proj" in name for name in products):
        raise EncoderError(f"ONNX decoder recipe {RECIPE}: expected Llama-style node names (layers.N/.../down_proj), "
                           f"found {products[:4]}; this architecture needs its own int8 recipe (use :onnx)")
    edge_layers = (f"layers.{layers[0]}/", f"layers.{layers[-1]}/")
    keep_fp32 = [name for name in products if any(part in name for part in (*FP32_PRODUCTS, *edge_layers))]
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs advice about static pre-processing on the root logger
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"], nodes_to_exclude=keep_fp32)
    finally:
        root.setLevel(level)
