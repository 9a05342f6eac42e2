"""Content-addressed on-disk embedding cache.

Layout: ``<root>/<encoder fingerprint>/packs/*.safetensors``. A pack holds the SHA-256 of each text
(the key) and its vector, plus a checksum over both. Packs are written to a temporary name and renamed
into place, so two processes can fill the same cache at once: readers only ever see whole packs and a
text embedded twice is merely stored twice. A pack whose checksum fails is moved aside as
``*.corrupt`` and its texts are embedded again — a damaged cache never returns garbage.

After the user's packs, a lookup consults the vectors shipped with the package for the same fingerprint
(`rewardlab.embed.shipped`: the bundled demo's texts under the default encoder), read-only: a fresh install's
quickstart finds every vector there and never builds or runs its encoder.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rewardlab.errors import InvalidValueError

PACK_FORMAT = "rewardlab.embeddings/1"


def default_cache_dir() -> Path:
    """``$REWARDLAB_CACHE_DIR`` or the user cache directory (e.g. ``~/.cache/rewardlab``)."""
    override = os.environ.get("REWARDLAB_CACHE_DIR")
    if override:
        return Path(override)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("rewardlab"))


def text_key(text: str) -> bytes:
    """The SHA-256 digest of a text: its key in the packs."""
    return hashlib.sha256(text.encode("utf-8")).digest()


def _checksum(keys: np.ndarray, vectors: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(keys).tobytes())
    h.update(np.ascontiguousarray(vectors).tobytes())
    return h.hexdigest()


def pack_contents(texts: Sequence[str], vectors: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(tensors, metadata) of a pack holding ``vectors`` (float32, one row per text) under the texts' keys."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    keys = np.frombuffer(b"".join(text_key(t) for t in texts), dtype=np.uint8).reshape(len(texts), 32)
    return {"keys": keys, "vectors": vectors}, {"format": PACK_FORMAT, "checksum": _checksum(keys, vectors)}


def read_pack(path: Path, dim: int) -> tuple[np.ndarray, np.ndarray, dict[str, str]] | None:
    """(keys, vectors, metadata) of the pack at ``path`` when it is a whole, checksummed pack of ``dim``-wide float32
    vectors; None otherwise (a truncated or overwritten file, a FIFO). It only reads: what to do with a bad pack is
    the caller's (the user cache moves it aside; the shipped layer, read-only, ignores it)."""
    from safetensors import safe_open

    try:
        # O_NONBLOCK: should a pack have been swapped for a FIFO since it was listed, opening it must not block
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
        finally:
            os.close(fd)
        with safe_open(str(path), framework="np") as handle:
            meta = handle.metadata() or {}
            keys = handle.get_tensor("keys")
            vectors = handle.get_tensor("vectors")
        ok = (
            meta.get("format") == PACK_FORMAT
            and meta.get("checksum") == _checksum(keys, vectors)
            and keys.shape == (len(keys), 32)
            and vectors.shape == (len(keys), dim)
            and vectors.dtype == np.float32
        )
    except Exception:  # a truncated or overwritten file fails in many ways inside safetensors
        return None
    return (keys, vectors, meta) if ok else None


def copy_hits(index: dict[bytes, int], vectors: np.ndarray, wanted: dict[bytes, list[int]], out: np.ndarray | None,
              found: np.ndarray) -> int:
    """Copy the vector of each key of ``wanted`` that ``index`` (key -> row of ``vectors``) holds into its rows of
    ``out``, mark them in ``found`` and take the key out of ``wanted``; returns how many keys were found."""
    smaller = [k for k in index if k in wanted] if len(index) < len(wanted) else [k for k in wanted if k in index]
    hits = [(wanted.pop(key), index[key]) for key in smaller]
    if hits:
        targets = np.concatenate([np.asarray(rows, dtype=np.int64) for rows, _ in hits])
        sources = np.concatenate([np.full(len(rows), source, dtype=np.int64) for rows, source in hits])
        if out is not None:
            out[targets] = vectors[sources]
        found[targets] = True
    return len(hits)


class EmbeddingCache:
    """Vectors of one encoder (identified by its fingerprint) keyed by exact text."""

    def __init__(self, fingerprint: str, dim: int, root: str | Path | None = None, *, shipped: bool = True) -> None:
        """``shipped=False``: the user's packs only, without the vectors shipped with the package."""
        from rewardlab.embed.shipped import ShippedVectors

        self.fingerprint = fingerprint
        self.dim = dim
        safe = hashlib.sha256(fingerprint.encode()).hexdigest()[:24]
        self.directory = Path(root) if root is not None else default_cache_dir() / "embeddings"
        self.directory = self.directory / safe
        self.packs_dir = self.directory / "packs"
        self.packs_dir.mkdir(parents=True, exist_ok=True)
        info = self.directory / "encoder.json"
        if not info.exists():
            tmp = info.with_name(f".{uuid.uuid4().hex}.tmp")
            tmp.write_text(json.dumps({"fingerprint": fingerprint, "dim": dim}), encoding="utf-8")
            os.replace(tmp, info)
        #: pack name -> key -> row, for packs already read in this process (packs never change)
        self._index: dict[str, dict[bytes, int]] = {}
        self._ignored: set[str] = set()  # names of non-regular files already warned about
        self.corrupt_packs = 0
        #: the read-only vectors shipped for this fingerprint (None: none are), and how many keys were found there
        self.shipped = ShippedVectors.for_fingerprint(fingerprint, dim) if shipped else None
        self.shipped_hits = 0

    def _pack_paths(self) -> list[Path]:
        """The packs: regular files named ``*.safetensors``. Anything else with that name (a FIFO, a socket, a device,
        a directory, a link to one) is not a pack and is ignored with a warning; opening a FIFO would block forever."""
        packs = []
        for path in sorted(self.packs_dir.glob("*.safetensors")):
            try:
                regular = stat.S_ISREG(path.stat().st_mode)
            except OSError:  # removed meanwhile, or a dangling link
                continue
            if regular:
                packs.append(path)
            elif path.name not in self._ignored:
                self._ignored.add(path.name)
                warnings.warn(f"embedding cache: {path} is not a regular file, so not a pack; ignored", stacklevel=3)
        return packs

    def _read_pack(self, path: Path) -> tuple[np.ndarray, np.ndarray] | None:
        pack = read_pack(path, self.dim)
        if pack is None:
            self._quarantine(path)
            return None
        keys, vectors, _ = pack
        return keys, vectors

    def _quarantine(self, path: Path) -> None:
        self.corrupt_packs += 1
        warnings.warn(f"embedding cache pack {path} is corrupted; moved aside and its texts will be re-embedded",
                      stacklevel=3)
        try:
            os.replace(path, path.with_suffix(".corrupt"))
        except OSError:
            pass  # another process moved it first

    def get_many(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Cached vectors for whichever of ``texts`` are present, one array per text (`lookup` fills one matrix)."""
        unique = list(dict.fromkeys(texts))
        vectors = np.empty((len(unique), self.dim), dtype=np.float32)
        found = self.lookup(unique, vectors)
        return {unique[row]: vectors[row].copy() for row in np.flatnonzero(found).tolist()}

    def lookup(self, texts: Sequence[str], out: np.ndarray | None = None) -> np.ndarray:
        """Copy the cached vector of each of ``texts`` that is present into the same row of ``out`` (shape
        (len(texts), dim)); returns which rows were found (``out=None``: only which are cached). Unlike `get_many`,
        no array per text is made, and each pack is matched by its own keys, so the cost is one pass over the cache
        and memory stays ``out`` plus one pack: the way to read a few hundred thousand vectors."""
        if out is not None and out.shape != (len(texts), self.dim):
            raise InvalidValueError(f"expected an output of shape {(len(texts), self.dim)}, got {out.shape}")
        wanted: dict[bytes, list[int]] = {}
        for row, text in enumerate(texts):
            wanted.setdefault(text_key(text), []).append(row)
        found = np.zeros(len(texts), dtype=bool)
        for path in self._pack_paths():
            if not wanted:
                break
            index = self._index.get(path.name)
            if index is not None and not any(k in wanted for k in index):
                continue  # an indexed pack with none of the wanted keys: no need to read it again
            pack = self._read_pack(path)
            if pack is None:
                continue
            keys, vectors = pack
            if index is None:
                index = {bytes(k): row for row, k in enumerate(keys)}
                self._index[path.name] = index
            copy_hits(index, vectors, wanted, out, found)
        if wanted and self.shipped is not None:
            shipped = self.shipped.load()
            if shipped is not None:
                self.shipped_hits += copy_hits(*shipped, wanted, out, found)
        return found

    def put_many(self, texts: Sequence[str], vectors: np.ndarray) -> Path:
        """Store a batch as one new pack (atomic: written aside, then renamed into place)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(texts), self.dim):
            raise InvalidValueError(f"expected vectors of shape {(len(texts), self.dim)}, got {vectors.shape}")
        from safetensors.numpy import save_file

        name = f"{os.getpid()}-{uuid.uuid4().hex}"
        tmp = self.packs_dir / f".{name}.tmp"
        tensors, metadata = pack_contents(texts, vectors)
        save_file(tensors, str(tmp), metadata=metadata)
        final = self.packs_dir / f"{name}.safetensors"
        os.replace(tmp, final)
        return final

    def clear(self) -> int:
        """Delete every file in this encoder's packs folder (never the shipped vectors); returns how many were removed."""
        removed = 0
        for path in self.packs_dir.iterdir():
            path.unlink()
            removed += 1
        self._index.clear()
        return removed
