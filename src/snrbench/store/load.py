"""``snrbench.load(kind, family=None)``: the stored results as a DataFrame that keeps its units.

Kinds and the files they read (under the results folder; every file checked against the manifest):

=================  ================================================================
``ground_truth``   ``ground_truth/<family>.parquet``
``spectrum``       ``ground_truth/<family>.spectrum.parquet`` (exact families)
``operational``    ``ground_truth/<family>.operational.parquet`` (exact families)
``tempering``      ``ground_truth/<family>.tempering.parquet`` (checkpoint families)
``ladder``         ``ladder/<family>.parquet``
``predictions``    ``predictions/<entry>.parquet``, all entries
``scores``         ``scores.parquet``
``onset``          ``onset.parquet``
=================  ================================================================

``family=None`` concatenates every family that has the file. The frame's ``attrs`` hold
``units`` and ``description`` per column (from the declared schema, :mod:`.schema`) and
``metadata``, the files' own metadata (code version, method, precision, …), keyed by file.
"""
from __future__ import annotations

import json
from pathlib import Path

from .results import ResultsError, read_table
from .schema import META_KEY

__all__ = ["load", "KINDS"]

KINDS = ("ground_truth", "spectrum", "operational", "tempering", "ladder", "predictions", "scores", "onset")


def _default_results() -> Path:
    from .locations import project_root

    here = Path("results")
    return here if here.is_dir() else project_root() / "results"


def _files(root: Path, kind: str, family: str | None) -> list[str]:
    if kind in ("scores", "onset"):
        return [f"{kind}.parquet"]
    if kind == "predictions":
        return sorted(f"predictions/{p.name}" for p in (root / "predictions").glob("*.parquet"))
    folder, suffix = ("ladder", "") if kind == "ladder" else ("ground_truth", "" if kind == "ground_truth" else f".{kind}")
    if family is not None:
        return [f"{folder}/{family}{suffix}.parquet"]
    names = sorted(p.name for p in (root / folder).glob(f"*{suffix}.parquet"))
    if kind == "ground_truth":  # the main tables only: <family>.parquet, no dotted suffix
        names = [n for n in names if n.count(".") == 1]
    return [f"{folder}/{n}" for n in names]


def load(kind: str, family: str | None = None, results: str | Path | None = None):
    """The stored table ``kind`` (see the module docstring) as a ``pandas.DataFrame``; ``results``:
    the results folder (default ``./results`` if it exists, else the project's stored results)."""
    import pandas as pd

    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    root = Path(results) if results is not None else _default_results()
    rels = _files(root, kind, family)
    if not rels:
        raise ResultsError(f"no {kind} tables under {root}")
    frames, units, docs, meta = [], {}, {}, {}
    for rel in rels:
        table = read_table(root, rel)
        for f in table.schema:
            md = f.metadata or {}
            units.setdefault(f.name, md.get(b"unit", b"").decode())
            docs.setdefault(f.name, md.get(b"doc", b"").decode())
        meta[rel] = json.loads((table.schema.metadata or {}).get(META_KEY, b"{}"))
        df = table.to_pandas()
        frames.append(df if family is None or "family" not in df or kind in ("ground_truth", "spectrum", "operational",
                                                                                "tempering", "ladder")
                      else df[df.family == family])
    out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)
    out.attrs.update(units=units, description=docs, metadata=meta)
    return out
