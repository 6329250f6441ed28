"""The cells' sampler seeds: a keyed hash of the cell id under a secret key that no worker receives.

A cell's sampler seed is the default seed of every sampler an entry makes (the same for every
entry: common random numbers) and, on cells with more than 512 gradient observables, the seed of the
subset entries see. It used to be ``int(cell_id[:8], 16)``, a public function of the cell: an entry
that recognised its cell (the cell ids are in the published suite) could rebuild the sampler's
initial states and its whole random stream, and search a fresh draw's seeds. It is now
``HMAC-SHA-256(key, cell_id)`` (63 bits), with a key of :data:`KEY_BYTES` random bytes.

The key of a results folder is the file :data:`KEY_NAME` in it (mode 0600, never published: the
repository ignores it). Every worker is barred from the results folder
(:func:`snrbench.predict.runner.blocked_paths`), and the key and the seeds travel only from the
runner to its sampler processes (their own pipe, outside the worker's sandbox); the worker's task
carries neither. Predictions stored in a folder are therefore reproducible by whoever holds the
folder, and by no entry. ``snrbench predict`` creates the key with the folder's first run;
``snrbench submit`` uses the folder's key, or a new one that publication stores with the results
(a rejected submission changes nothing, the key included).
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

__all__ = ["KEY_NAME", "KEY_BYTES", "new_key", "read_key", "store_key", "folder_key", "cell_seed"]

#: The file of a results folder that holds its sampler key.
KEY_NAME = ".sampler-key"
#: Bytes of a sampler key.
KEY_BYTES = 32
_DOMAIN = b"snrbench sampler seed\0"


def new_key() -> bytes:
    """A new sampler key: :data:`KEY_BYTES` bytes from :mod:`secrets`."""
    return secrets.token_bytes(KEY_BYTES)


def read_key(root: Path | str) -> bytes | None:
    """The sampler key stored in the results folder ``root``, or None when it has none.
    ValueError when the file is not a key (damaged: its seeds cannot be trusted to reproduce)."""
    path = Path(root) / KEY_NAME
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        return None
    if len(key) != KEY_BYTES:
        raise ValueError(f"{path}: a sampler key has {KEY_BYTES} bytes, this file {len(key)}; it is damaged "
                         f"(remove it to start a new key: the stored predictions then no longer reproduce)")
    return key


def store_key(root: Path | str, key: bytes) -> bytes:
    """Store ``key`` as the sampler key of ``root`` (created if missing) unless it already has one;
    returns the key ``root`` holds now. The file appears whole or not at all (a hard link of a
    finished temporary file), so concurrent runners agree on one key."""
    if len(key) != KEY_BYTES:
        raise ValueError(f"a sampler key has {KEY_BYTES} bytes, got {len(key)}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f"{KEY_NAME}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, root / KEY_NAME)
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)
    return read_key(root)


def folder_key(root: Path | str) -> bytes:
    """The sampler key of the results folder ``root``, made and stored there on first use."""
    return read_key(root) or store_key(root, new_key())


def cell_seed(cell_id: str, key: bytes) -> int:
    """The sampler seed of the cell ``cell_id`` under ``key``: 63 bits of HMAC-SHA-256, in [0, 2^63)."""
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        raise ValueError(f"a sampler key is {KEY_BYTES} bytes, got {type(key).__name__}")
    digest = hmac.new(key, _DOMAIN + cell_id.encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") >> 1
