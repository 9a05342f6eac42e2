"""Vectors shipped with the package: the bundled demo's texts under the default encoder, so a first quickstart needs
no encoder at all.

A cold ``rewardlab quickstart`` otherwise spends most of its time building the int8 ONNX graph and embedding the
demo's 6,867 texts (`benchmarks/shipped_embeddings.py` measures it). The vectors sit in one pack of the embedding
cache's own format (`rewardlab.embed.cache.PACK_FORMAT`, checksummed) under ``rewardlab/data/demo_embeddings/``,
named by the encoder fingerprint's hash and carrying the fingerprint itself, which `EmbeddingCache` consults after
the user's packs. The rules:

- a pack is read only under its exact fingerprint: another encoder, another onnxruntime or another recipe never
  finds it, and embeds as it always did;
- a damaged pack (a failed checksum, another fingerprint inside) is ignored with a warning and the texts are
  embedded: never garbage;
- it is never written to, moved or deleted (the user cache keeps what it embeds in its own packs);
- int8 vectors are used only on a CPU whose int8 kernels are those of the CPU that computed them (`int8_kernels`,
  recorded in the pack): ONNX Runtime multiplies u8 × s8 with exact int32 sums where the CPU has VNNI or AMX, but
  on AVX2 alone it adds pairs of products in saturating int16, so the same graph can give other vectors there.
  Elsewhere the texts are embedded, as before.

``REWARDLAB_SHIPPED_EMBEDDINGS`` points the layer at another folder, or turns it off with ``off`` (to time the
encoder, or to distrust the shipped vectors).

Rebuild the pack whenever the default encoder's fingerprint changes (an onnxruntime upgrade, a new ``RECIPE`` in
`rewardlab.embed.onnx_minilm`, other MiniLM weights, tokenizer or truncation), or the demo's texts change (the demo
file, or the default feature mode's views): until then a fresh install simply embeds as before. It embeds every text
afresh (not from any cache) and replaces the folder's packs::

    python -m rewardlab.embed.shipped --rebuild
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: where the packaged vectors live (``pyproject.toml`` ships ``data/demo_embeddings/*.safetensors``)
PACKAGED_DIR = Path(__file__).resolve().parent.parent / "data" / "demo_embeddings"
SHIPPED_ENV = "REWARDLAB_SHIPPED_EMBEDDINGS"
#: the pack's metadata key naming the int8 kernels of the CPU that computed it (`int8_kernels`)
INT8_KERNELS_KEY = "int8_kernels"
#: x86 flags with exact int8 dot products (u8 × s8 summed in int32)
EXACT_INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")

#: verified packs of this process by (path, size, mtime): each cache made for the fingerprint reuses the first read,
#: and a damaged pack is warned about once
_LOADED: dict[tuple[str, int, int], tuple[dict[bytes, int], np.ndarray] | None] = {}


def shipped_dir() -> Path | None:
    """``$REWARDLAB_SHIPPED_EMBEDDINGS`` (``off``: no shipped vectors) or the packaged folder."""
    override = os.environ.get(SHIPPED_ENV)
    if override is None or override == "":
        return PACKAGED_DIR
    return None if override.lower() == "off" else Path(override)


def int8_kernels() -> str:
    """Which int8 dot products ONNX Runtime runs here: ``x86-vnni`` (exact int32 sums: VNNI or AMX), ``x86-avx2``
    (pairs of products summed in saturating int16 first), or the machine name elsewhere (e.g. ``aarch64``)."""
    from rewardlab.embed.llm_quant import cpu_flags

    machine = platform.machine().lower()
    if machine not in ("x86_64", "amd64"):
        return machine
    return "x86-vnni" if any(flag in cpu_flags() for flag in EXACT_INT8_FLAGS) else "x86-avx2"


def applies_here(fingerprint: str, metadata: dict[str, str]) -> bool:
    """Whether a pack's vectors are what this CPU computes for ``fingerprint``: always, except int8 vectors computed
    with other int8 kernels (or by a pack that does not say which)."""
    return "int8" not in fingerprint or metadata.get(INT8_KERNELS_KEY) == int8_kernels()


def pack_name(fingerprint: str) -> str:
    """The shipped pack's file name for an encoder fingerprint (the same hash that names its user-cache folder)."""
    return hashlib.sha256(fingerprint.encode()).hexdigest()[:24] + ".safetensors"


class ShippedVectors:
    """The shipped pack of one fingerprint, read and verified at its first use."""

    def __init__(self, path: Path, fingerprint: str, dim: int) -> None:
        self.path = path
        self.fingerprint = fingerprint
        self.dim = dim

    @classmethod
    def for_fingerprint(cls, fingerprint: str, dim: int) -> ShippedVectors | None:
        """The shipped vectors of ``fingerprint``, or None when none are shipped for it."""
        directory = shipped_dir()
        if directory is None:
            return None
        path = directory / pack_name(fingerprint)
        return cls(path, fingerprint, dim) if path.is_file() else None

    def load(self) -> tuple[dict[bytes, int], np.ndarray] | None:
        """(key -> row, vectors), or None (with a warning, once) when the pack is damaged or not this fingerprint's."""
        from rewardlab.embed.cache import read_pack

        try:
            info = self.path.stat()
        except OSError:
            return None
        memo = (str(self.path), info.st_size, info.st_mtime_ns)
        if memo in _LOADED:
            return _LOADED[memo]
        pack = read_pack(self.path, self.dim)
        loaded: tuple[dict[bytes, int], np.ndarray] | None = None
        if pack is not None and pack[2].get("fingerprint") == self.fingerprint:
            keys, vectors, metadata = pack
            if applies_here(self.fingerprint, metadata):  # else another CPU's int8 vectors: embedded here instead
                loaded = ({bytes(k): row for row, k in enumerate(keys)}, vectors)
        else:
            warnings.warn(f"shipped embeddings {self.path} are damaged or not of encoder {self.fingerprint}; "
                          "ignored, so their texts are embedded", stacklevel=4)
        _LOADED[memo] = loaded
        return loaded


def write_shipped_pack(texts: Sequence[str], vectors: np.ndarray, fingerprint: str, directory: Path) -> Path:
    """Write the pack of ``fingerprint`` into ``directory`` (aside, then renamed), in the cache's format plus the
    fingerprint, and remove the folder's other packs: one encoder's vectors are shipped, the default's."""
    from safetensors.numpy import save_file

    from rewardlab.embed.cache import pack_contents

    tensors, metadata = pack_contents(texts, vectors)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / pack_name(fingerprint)
    tmp = directory / f".{final.name}.tmp"
    save_file(tensors, str(tmp), metadata=metadata | {"fingerprint": fingerprint, "texts": str(len(texts)),
                                                      INT8_KERNELS_KEY: int8_kernels()})
    os.replace(tmp, final)
    for old in directory.glob("*.safetensors"):
        if old != final:
            old.unlink()
    return final


def rebuild(directory: Path = PACKAGED_DIR) -> Path:
    """Embed the quickstart's texts (the demo, default feature mode) with the default encoder on the CPU, afresh."""
    # a maintainer's entry point: the demo's texts are the quickstart's, which data and rewards define
    from rewardlab.data.registry import load_named
    from rewardlab.embed.base import DEFAULT_ENCODER, make_encoder
    from rewardlab.embed.embedding import embed_texts
    from rewardlab.rewards.default_recipe import DEFAULT_FEATURES
    from rewardlab.rewards.features import dataset_texts

    encoder = make_encoder(DEFAULT_ENCODER, "cpu")
    texts = list(dict.fromkeys(dataset_texts(load_named("hh-harmless-demo", None), DEFAULT_FEATURES, encoder)))
    vectors, _ = embed_texts(texts, encoder, use_cache=False)
    return write_shipped_pack(texts, vectors, encoder.fingerprint(), directory)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The demo's vectors shipped with rewardlab.")
    parser.add_argument("--rebuild", action="store_true", help="Embed the demo afresh and replace the shipped pack.")
    parser.add_argument("--dir", type=Path, default=PACKAGED_DIR, help="Folder of the pack (default: the package's).")
    args = parser.parse_args(argv)
    if args.rebuild:
        path = rebuild(args.dir)
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    for path in sorted(args.dir.glob("*.safetensors")):
        from safetensors import safe_open

        with safe_open(str(path), framework="np") as handle:
            meta = handle.metadata() or {}
        print(f"{path.name}: {meta.get('texts', '?')} texts of {meta.get('fingerprint', '?')}, computed with "
              f"{meta.get(INT8_KERNELS_KEY, '?')} int8 kernels (this CPU: {int8_kernels()}), {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
