"""SHA-256 of weight files, memoised per (path, size, mtime) so each is hashed once per process but an
overwritten file is hashed again: fingerprints must follow the bytes, not the file name."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=64)
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_digest(path: Path, *, memoised: bool = True) -> str:
    """Hex SHA-256 of a file; ``memoised=False`` always reads it (integrity checks of files that may be damaged)."""
    path = Path(path).resolve()
    if not memoised:
        return _sha256.__wrapped__(path, 0, 0)
    stat = path.stat()
    return _sha256(path, stat.st_size, stat.st_mtime_ns)
