"""Results storage: transactional Parquet writes, a checksum manifest, and verification.

Layout under ``results/``: ``ground_truth/<family>.parquet`` and its sibling tables
(``.spectrum``, ``.operational``, ``.tempering``), ``predictions/<entry>.parquet``, ``scores.parquet``,
listed in ``manifest.json`` with their SHA-256, row count, table name and (for tables written
together, e.g. a family's ground truth) their ``group`` and ``cell_set`` (a digest of the cells of
the generation that wrote them).

Every write is a commit (:mod:`.transaction`): its tables and the manifest change together or not at
all, whatever instant the writing process is killed at; :func:`read_table` and :func:`verify` first
finish an interrupted commit (:func:`~snrbench.store.transaction.recover`), so they never see half of one.
:func:`verify` therefore writes when, and only when, an interrupted commit or a stray temporary file
is left: it reports the store that the next command will see.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from . import transaction as _tx
from ._files import MANIFEST, ResultsError, atomic_write, load_manifest as _load_manifest, sha256_file
from .schema import META_KEY, SCHEMA_VERSION, arrow_schema

__all__ = ["ResultsError", "atomic_write", "write_table", "read_table", "verify", "sha256_file", "save_figure", "MANIFEST"]


def write_table(root: Path, rel: str, table_name: str, data: dict | pa.Table, **info) -> Path:
    """Validate ``data`` against the declared schema and write ``root/rel`` with its manifest entry, as one
    commit (:func:`snrbench.store.transaction.commit`; the entry keeps its ``group``)."""
    return _tx.commit(root, {rel: (table_name, data, info)})[rel]


def read_table(root: Path, rel: str, check: bool = True) -> pa.Table:
    """Read ``root/rel``; with ``check`` the checksum and schema must match the manifest."""
    root = Path(root)
    _tx.recover(root, sweep=False)
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


def verify(root: Path, groups: Mapping[str, Iterable[str]] | None = None, recover: bool = True) -> list[str]:
    """Every problem found under ``root`` (empty list: all files intact and as declared).

    ``recover`` (default): first finish an interrupted commit and delete stray temporary files
    (:func:`snrbench.store.transaction.recover`), so the answer is about the store the next command sees;
    ``recover=False`` looks at the files as they lie.

    The tables of one group must be one generation: those committed with a ``group`` carry the digest of
    the generation's cells (``cell_set``: every ``cell_id`` of the group's tables in that commit), which
    must be the same in all of them; and for ``groups`` (name → relative paths, the first the main table
    that holds every cell, e.g. a family's declared tables; this also covers manifests written before
    groups were recorded) no table may hold a cell that the main one lacks. A sibling table may hold
    fewer cells than the main one (the mnist tempering table has rows only for the tempered cells).
    A mixture is one problem naming every table and its number of cells.
    """
    root = Path(root)
    if recover:
        try:
            _tx.recover(root)
        except (ResultsError, OSError) as exc:
            return [f"{root}: an interrupted commit could not be finished ({exc})"]
    if not (root / MANIFEST).exists():
        stray = sorted(str(p.relative_to(root)) for p in root.rglob("*.parquet") if ".partial" not in p.parts)
        return [f"{root / MANIFEST}: missing" + (f" ({len(stray)} unlisted Parquet files)" if stray else "")]
    try:
        manifest = _load_manifest(root)
    except ResultsError as exc:
        return [str(exc)]
    problems, damaged = [], set()
    for rel, entry in sorted(manifest["files"].items()):
        found = _check_entry(root, rel, entry)
        problems += found
        if found:
            damaged.add(rel)
    problems += _check_groups(root, manifest["files"], groups or {}, damaged)
    nested = sorted(p.parent for p in root.rglob(MANIFEST) if p.parent != root)  # e.g. fresh/<seed>/: stores of their own
    for p in sorted(root.rglob("*.parquet")):
        rel = str(p.relative_to(root))
        if ".partial" not in p.parts and rel not in manifest["files"] and not any(d in p.parents for d in nested):
            problems.append(f"{rel}: not listed in {MANIFEST} (unknown or hand-made file)")
    for d in nested:
        if not any(o in d.parents for o in nested):
            problems += [f"{d.relative_to(root)}/{x}" for x in verify(d, groups, recover=False)]
    return problems


def _check_groups(root: Path, files: dict, groups: Mapping[str, Iterable[str]], damaged: set) -> list[str]:
    """A problem for each group whose intact tables are not one generation (see :func:`verify`)."""
    recorded, declared = defaultdict(list), {}
    for rel, entry in sorted(files.items()):
        if entry.get("group") is not None and entry.get("cell_set") is not None:
            recorded[entry["group"]].append(rel)
    for name, rels in groups.items():
        declared[name] = list(rels)
    problems = []
    for name in sorted(set(recorded) | set(declared)):
        rels = [r for r in dict.fromkeys(declared.get(name, []) + recorded.get(name, [])) if r in files
                and r not in damaged and "cell_id" in arrow_schema(files[r]["table"]).names]
        if len(rels) < 2:
            continue
        cells = {r: set(pq.read_table(root / r, columns=["cell_id"]).column("cell_id").to_pylist()) for r in rels}
        digests = {files[r]["cell_set"] for r in recorded.get(name, []) if r in cells}
        main = (declared.get(name) or [None])[0]
        outside = main in cells and any(not c <= cells[main] for c in cells.values())
        if len(digests) > 1 or outside:
            problems.append(", ".join(f"{r}: {len(cells[r])} cells" for r in sorted(cells))
                            + f" (the {name!r} tables disagree on their cells: not written by one generation)")
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
