"""Results storage: atomic Parquet writes, a checksum manifest, and verification.

Layout under ``results/``: ``ground_truth/<family>.parquet`` and
``ground_truth/<family>.spectrum.parquet``, listed in ``manifest.json`` with their SHA-256. Every
write goes to a temporary file in the same folder and is renamed into place, so an interrupted
run never leaves a half-written or missing result; the manifest is updated the same way.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .schema import META_KEY, SCHEMA_VERSION, arrow_schema, file_metadata

__all__ = ["ResultsError", "atomic_write", "write_table", "read_table", "verify", "sha256_file", "save_figure", "MANIFEST"]

MANIFEST = "manifest.json"


class ResultsError(RuntimeError):
    """A stored result is missing, damaged, or does not match its declared schema."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _load_manifest(root: Path) -> dict:
    path = root / MANIFEST
    if not path.exists():
        return {"schema_version": SCHEMA_VERSION, "files": {}}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: manifest is not valid JSON ({exc})") from None


def _save_manifest(root: Path, manifest: dict) -> None:
    text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    atomic_write(root / MANIFEST, lambda tmp: tmp.write_text(text))


def write_table(root: Path, rel: str, table_name: str, data: dict | pa.Table, **info) -> Path:
    """Validate ``data`` against the declared schema, write ``root/rel`` atomically, update the manifest."""
    root = Path(root)
    schema = arrow_schema(table_name)
    try:
        table = pa.Table.from_pydict(data, schema=schema) if isinstance(data, dict) else data.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError, ValueError) as exc:
        raise ResultsError(f"{rel}: data does not match the {table_name!r} schema ({exc})") from None
    table = table.replace_schema_metadata(file_metadata(table_name, **info))
    path = root / rel
    atomic_write(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))
    manifest = _load_manifest(root)
    manifest["files"][rel] = dict(sha256=sha256_file(path), bytes=path.stat().st_size, table=table_name,
                                  rows=table.num_rows)
    manifest["schema_version"] = SCHEMA_VERSION
    _save_manifest(root, manifest)
    return path


def read_table(root: Path, rel: str, check: bool = True) -> pa.Table:
    """Read ``root/rel``; with ``check`` the checksum and schema must match the manifest."""
    root = Path(root)
    path = root / rel
    if not path.exists():
        raise ResultsError(f"missing result file: {path} (run `snrbench groundtruth` to generate it)")
    if check:
        problems = _check_entry(root, rel, _load_manifest(root)["files"].get(rel))
        if problems:
            raise ResultsError("; ".join(problems))
    return pq.read_table(path)


def _check_entry(root: Path, rel: str, entry: dict | None) -> list[str]:
    path = root / rel
    if entry is None:
        return [f"{rel}: not listed in {MANIFEST} (unknown or hand-made file)"]
    if not path.exists():
        return [f"{rel}: listed in {MANIFEST} but missing"]
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        return [f"{rel}: checksum mismatch (file is damaged or was edited by hand): "
                f"sha256 {digest[:12]}… ≠ manifest {entry['sha256'][:12]}…"]
    try:
        pf = pq.ParquetFile(path)
        schema = pf.schema_arrow
    except Exception as exc:  # pyarrow raises several types for corrupt files
        return [f"{rel}: not a readable Parquet file ({exc})"]
    declared = arrow_schema(entry["table"])
    problems = []
    if [(f.name, f.type) for f in schema] != [(f.name, f.type) for f in declared]:
        problems.append(f"{rel}: columns do not match the declared {entry['table']!r} schema")
    meta = json.loads((schema.metadata or {}).get(META_KEY, b"{}"))
    if meta.get("schema_version") != SCHEMA_VERSION:
        problems.append(f"{rel}: schema version {meta.get('schema_version')!r} ≠ {SCHEMA_VERSION!r}")
    if pf.metadata.num_rows != entry["rows"]:
        problems.append(f"{rel}: {pf.metadata.num_rows} rows, manifest says {entry['rows']}")
    return problems


def verify(root: Path) -> list[str]:
    """Every problem found under ``root`` (empty list: all files intact and as declared)."""
    root = Path(root)
    if not (root / MANIFEST).exists():
        stray = sorted(str(p.relative_to(root)) for p in root.rglob("*.parquet") if ".partial" not in p.parts)
        return [f"{root / MANIFEST}: missing" + (f" ({len(stray)} unlisted Parquet files)" if stray else "")]
    try:
        manifest = _load_manifest(root)
    except ResultsError as exc:
        return [str(exc)]
    problems = []
    for rel, entry in sorted(manifest["files"].items()):
        problems += _check_entry(root, rel, entry)
    nested = sorted(p.parent for p in root.rglob(MANIFEST) if p.parent != root)  # e.g. fresh/<seed>/: stores of their own
    for p in sorted(root.rglob("*.parquet")):
        rel = str(p.relative_to(root))
        if ".partial" not in p.parts and rel not in manifest["files"] and not any(d in p.parents for d in nested):
            problems.append(f"{rel}: not listed in {MANIFEST} (unknown or hand-made file)")
    for d in nested:
        if not any(o in d.parents for o in nested):
            problems += [f"{d.relative_to(root)}/{x}" for x in verify(d)]
    return problems


def save_figure(fig, out: Path | str, dpi: int = 100) -> Path:
    """Write a pyplot figure to ``out`` through a temporary file and a rename (no timestamps); close it."""
    import matplotlib.pyplot as plt

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=dpi, metadata={"Software": None})
    plt.close(fig)
    tmp.replace(out)
    return out
