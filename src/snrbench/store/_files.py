"""File primitives of the results store: checksums, temporary names, fsync, the manifest file.

Every temporary file the store writes is named ``.<name>.<pid>.tmp`` beside its final path
(:func:`tmp_path`), so recovery (:func:`snrbench.store.transaction.recover`) can tell a stray one, left
by a process that no longer runs, from a live writer's.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from .schema import SCHEMA_VERSION

__all__ = ["MANIFEST", "ResultsError", "sha256_file", "tmp_path", "tmp_owner", "fsync_file", "fsync_dir",
           "atomic_write", "load_manifest", "manifest_text"]

MANIFEST = "manifest.json"
_TMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>[0-9]+)\.tmp$")


class ResultsError(RuntimeError):
    """A stored result is missing, damaged, or does not match its declared schema."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tmp_path(path: Path) -> Path:
    """The temporary name of ``path`` for this process: ``.<name>.<pid>.tmp`` in the same folder."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def tmp_owner(name: str) -> int | None:
    """The process id in a temporary file's name (:func:`tmp_path`), or None for any other name."""
    m = _TMP.match(name)
    return int(m["pid"]) if m else None


def fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def fsync_dir(path: Path) -> None:
    """Make the renames inside folder ``path`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, write) -> None:
    """``write(tmp)``, fsync, rename to ``path``: one file replaced whole or not at all (no manifest
    update: for files the manifest does not list; manifest-listed tables go through
    :func:`snrbench.store.transaction.commit`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(path)
    try:
        write(tmp)
        fsync_file(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_manifest(root: Path) -> dict:
    path = Path(root) / MANIFEST
    if not path.exists():
        return {"schema_version": SCHEMA_VERSION, "files": {}}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: manifest is not valid JSON ({exc})") from None


def manifest_text(manifest: dict) -> str:
    return json.dumps(manifest, indent=1, sort_keys=True) + "\n"
