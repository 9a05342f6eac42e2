"""Saved-model directories a later run trusts: written aside and swapped into place, checksummed, read defensively.

- `replace_directory` writes a whole directory under a temporary sibling name, fsyncs it, and renames it into place
  (an atomic exchange with the old directory where the kernel offers one), so a reader sees the old model or the new
  one, never a mix; an interrupted save leaves the old one intact.
- `file_digests` / `verify_digests`: SHA-256 of each weights file, recorded in ``config.json`` and checked on load,
  so a bit-flipped or truncated file is refused instead of scored with.
- `read_json_object`: a config file parsed or one `ModelError` naming it (bad UTF-8, bad JSON, too deeply nested,
  not an object).
- `check_encoder_location`: an encoder spec in a model's config that names a path outside the model directory is
  refused unless the user allows it.
"""

from __future__ import annotations

import ctypes
import errno
import glob
import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from rewardlab.errors import ModelError

#: the key in a model's config.json holding {relative path: sha256} of its weight files
DIGESTS_KEY = "weights_sha256"

_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _share_like_new_files(root: Path) -> None:
    """Give every file under ``root`` the permissions a newly created file gets (0644 under the usual umask): some
    writers (safetensors) create owner-only files, which would keep a model folder from being shared."""
    mode = 0o666 & ~_current_umask()
    for current, _, files in os.walk(root):
        for name in files:
            os.chmod(os.path.join(current, name), mode)


def _fsync_tree(root: Path) -> None:
    """fsync every file under ``root``, then every directory (deepest first), so the contents are on disk before the
    rename that publishes them."""
    directories = []
    for current, _, files in os.walk(root):
        directories.append(current)
        for name in files:
            fd = os.open(os.path.join(current, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    for directory in reversed(directories):
        _fsync_dir(directory)


def _fsync_dir(directory: str | Path) -> None:
    with suppress(OSError):  # some filesystems do not fsync directories; the files themselves are synced
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EPERM):
        return False
    raise OSError(code, os.strerror(code), str(b))


def replace_directory(target: str | Path, write: Callable[[Path], None], *, marker: str = "config.json") -> Path:
    """Write a directory as one unit: ``write(tmp)`` fills a fresh temporary sibling of ``target``, which is fsynced and
    renamed into place; an existing ``target`` is replaced whole (atomically exchanged where Linux allows, else
    moved aside first) and then deleted. If ``write`` fails, the temporary directory is removed and ``target`` is
    untouched; a process killed mid-write leaves only a hidden ``.NAME.saving-*`` sibling, never a half-written
    ``target``.

    An existing non-empty ``target`` without a ``marker`` file is not something this code wrote, so it is refused
    (`ModelError`) rather than deleted.
    """
    target = Path(target)
    if target.exists() or target.is_symlink():
        if not target.is_dir():
            raise ModelError(f"{target} exists and is not a directory")
        if any(target.iterdir()) and not (target / marker).is_file():
            raise ModelError(f"{target} exists and is not a saved model (no {marker}); refusing to replace it")
    parent = target.absolute().parent
    tmp = parent / f".{target.name}.saving-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(parent, target.name)
        tmp.mkdir()
    except OSError as exc:
        raise ModelError(f"{target}: cannot save here ({exc.strerror or exc})") from exc
    try:
        write(tmp)
        _share_like_new_files(tmp)
        _fsync_tree(tmp)
        if target.exists():
            if _exchange(tmp, target):
                shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old directory
            else:
                old = parent / f".{target.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
                os.rename(target, old)
                try:
                    os.rename(tmp, target)
                except OSError:
                    os.rename(old, target)  # put the old model back
                    raise
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
        _fsync_dir(parent)
    except OSError as exc:  # a full disk, a read-only folder: the old model (if any) is untouched
        shutil.rmtree(tmp, ignore_errors=True)
        raise ModelError(f"{target}: cannot save ({exc.strerror or exc}); any model already there is unchanged") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _remove_stale(parent: Path, name: str) -> None:
    """Temporary siblings left by saves that were killed (their process is gone) are removed; a save still running
    in another process keeps its own."""
    for path in parent.glob(f".{glob.escape(name)}.saving-*"):
        match = re.fullmatch(rf"\.{re.escape(name)}\.saving-(\d+)-[0-9a-f]+", path.name)
        if match is None or not path.is_dir():
            continue
        pid = int(match.group(1))
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except (PermissionError, OverflowError, OSError):
            pass  # another user's process, or a pid we cannot ask about: leave it


# ---------------------------------------------------------------------- checksums
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_digests(root: Path, under: str) -> dict[str, str]:
    """SHA-256 of every file below ``root/under``, keyed by its path relative to ``root`` (with ``/``)."""
    base = root / under
    files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
    return {p.relative_to(root).as_posix(): _sha256(p) for p in files}


_HEX64 = re.compile(r"[0-9a-f]{64}")


def verify_digests(root: Path, recorded: Any, config_path: Path) -> None:
    """Every file ``recorded`` ({relative path: sha256}, from config.json) exists inside ``root`` and hashes to its
    digest, or a `ModelError` naming the file."""
    if not isinstance(recorded, dict) or not recorded:
        raise ModelError(f"{config_path}: '{DIGESTS_KEY}' must be an object of file -> sha256")
    resolved_root = root.resolve()
    for name, digest in recorded.items():
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise ModelError(f"{config_path}: '{DIGESTS_KEY}' entry {str(name)[:200]!r} is not a sha256 digest")
        if "\x00" in name:
            raise ModelError(f"{config_path}: '{DIGESTS_KEY}' names a file with a NUL character")
        path = root / name
        if not path.resolve().is_relative_to(resolved_root) or Path(name).is_absolute():
            raise ModelError(f"{config_path}: '{DIGESTS_KEY}' names {str(name)[:200]!r}, outside the model directory")
        if not path.is_file():
            raise ModelError(f"{path}: missing (config.json lists it among the model's weights)")
        if _sha256(path) != digest:
            raise ModelError(f"{path}: the file does not match the checksum in {config_path.name} (damaged or "
                             "edited since it was saved); retrain or restore the model")


# ---------------------------------------------------------------------- reading configs
def read_json_object(path: Path, what: str = "model config") -> dict[str, Any]:
    """``path`` parsed as a JSON object, or one `ModelError` naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ModelError(f"{path}: not a valid {what} (bytes at offset {exc.start} are not UTF-8)") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    try:
        value = json.loads(text)
    except RecursionError:
        raise ModelError(f"{path}: not a valid {what} (JSON nested too deeply)") from None
    except ValueError as exc:  # JSONDecodeError, or an integer past Python's digit limit
        raise ModelError(f"{path}: not a valid {what} (broken JSON: {str(exc)[:200]})") from None
    if not isinstance(value, dict):
        raise ModelError(f"{path}: not a valid {what} (expected a JSON object, got {type(value).__name__})")
    return value


# ---------------------------------------------------------------------- encoder locations
#: encoder kinds whose argument is a file or directory (or, for st:, a Hugging Face hub name)
_PATH_KINDS = ("hf-last", "st")
_HUB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?")


def encoder_path(spec: str) -> Path | None:
    """The local path an encoder spec names, or None for a registered short spec (``minilm:int8``, ``hashing:64``,
    ``hf-last:smollm2``, the SmolLM2 GGUF that spec resolves to) or a hub model name (``st:org/name``)."""
    kind, _, arg = spec.partition(":")
    if kind not in _PATH_KINDS or not arg:
        return None
    if kind == "hf-last":
        if arg == "smollm2":
            return None
        with suppress(Exception):  # the bundled SmolLM2 GGUF is a registered encoder, wherever it is installed
            from rewardlab.embed.last_token import smollm2_gguf_path

            if Path(arg).expanduser().resolve() == smollm2_gguf_path().resolve():
                return None
    elif _HUB_NAME.fullmatch(arg) and ".." not in arg and not os.path.lexists(arg):
        return None  # a sentence-transformers hub name, e.g. st:sentence-transformers/all-MiniLM-L6-v2
    return Path(arg).expanduser()


def check_encoder_location(spec: Any, model_dir: Path, config_path: Path, allow_external: bool) -> None:
    """Refuse (`ModelError`) an encoder spec naming a path outside ``model_dir`` unless ``allow_external``."""
    if not isinstance(spec, str) or not spec:
        raise ModelError(f"{config_path}: the encoder spec must be a non-empty string, not {str(spec)[:100]!r}")
    if allow_external:
        return
    path = encoder_path(spec)
    if path is None:
        return
    with suppress(OSError, RuntimeError, ValueError):
        if path.resolve().is_relative_to(model_dir.resolve()):
            return
    raise ModelError(
        f"{config_path}: the encoder spec {spec[:300]!r} names a path outside the model directory; a model from "
        "elsewhere should not point at files on this machine. If you trust it, pass allow_external_encoder=True "
        "(CLI: --allow-external-encoder)")
