"""A directory of derived model files (an ONNX graph, converted LLM weights) that later runs trust, built once.

It is built in a temporary sibling and renamed into place, so a reader never sees half of it; two processes may race,
and the loser keeps the winner's directory when that one is whole. Its ``manifest.json`` records the SHA-256 of each
file that matters, and `is_intact` checks them all, so a damaged file is found (and rebuilt by the caller), never used.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rewardlab.embed.digest import file_digest

MANIFEST_FILE = "manifest.json"


def is_intact(directory: Path, checked: Mapping[str, str], required: tuple[str, ...] = ()) -> bool:
    """True when ``manifest.json``, every file in ``required`` and every file of ``checked`` (manifest key -> file
    name) are there, and each checked file's SHA-256 equals the one its key records."""
    manifest_path = directory / MANIFEST_FILE
    names = (MANIFEST_FILE, *required, *checked.values())
    if not all((directory / name).is_file() for name in names):
        return False
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and all(manifest.get(key) == file_digest(directory / name, memoised=False)
                                              for key, name in checked.items())


def build_directory(directory: Path, build: Callable[[Path], dict[str, Any]], checked: Mapping[str, str],
                    required: tuple[str, ...] = ()) -> None:
    """``build(work)`` fills a temporary sibling and returns the manifest's descriptive fields; the SHA-256 of each
    ``checked`` file is added under its key, the manifest written, and the sibling renamed to ``directory``."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=directory.parent))
    work.chmod(0o755)
    try:
        manifest = build(work)
        manifest |= {key: file_digest(work / name, memoised=False) for key, name in checked.items()}
        (work / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        try:
            os.replace(work, directory)
        except OSError:  # another process finished first (the target is a non-empty directory): use theirs
            if not is_intact(directory, checked, required):
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
