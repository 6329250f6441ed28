"""Ground-truth generation for a family: every cell solved, stored, resumable.

Each finished cell is first written to ``results/.partial/<family>/<cell_id>.parquet`` (atomic);
a re-run skips those, so an interrupted generation resumes where it stopped. Only when every cell
is done are the family's files written (atomically, with the manifest) and the partials removed:
the previous files stay intact until then.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import exact, store
from .schema import arrow_schema
from .spectral import T_GRID
from .tasks import Cell, build_data, build_model, load_suite

__all__ = ["solve_cell", "generate", "ground_truth_paths", "is_current"]

PRECISION = "float64 rates (relative accuracy ~1e-15); generator eigenpairs by FLINT/Arb QR at ≥ 256 bits"


def ground_truth_paths(family: str) -> tuple[str, str]:
    return f"ground_truth/{family}.parquet", f"ground_truth/{family}.spectrum.parquet"


def solve_cell(spec_json: str) -> tuple[dict, dict]:
    """Solve one cell exactly; return column dicts for the ground-truth and spectrum tables."""
    cell = Cell(spec_json)
    spec = cell.spec
    rbm, data = build_model(cell), build_data(cell)
    sol = exact.solve(rbm, data, spec["observables"])
    nT = len(T_GRID)
    base = dict(suite=spec["suite"], family=spec["family"], cell_id=cell.cell_id, label=cell.label)
    curves = {k: [v] * nT for k, v in base.items()}
    curves.update(
        n_visible=[spec["n_visible"]] * nT, n_hidden=[spec["n_hidden"]] * nT, beta=[spec["beta"]] * nT,
        symmetric=[spec["symmetric"]] * nT, seed=[spec["seed"]] * nT, T=T_GRID.tolist(),
        log10_q=sol.log10_q(T_GRID).tolist(), trace_cov=sol.trace_cov(T_GRID).tolist(),
        grad_norm2=[sol.grad_norm2] * nT, total_variance=[sol.total_variance] * nT,
        tau_grad=[sol.tau_grad] * nT, tau_m=[sol.tau_m] * nT, tau_gap=[sol.tau_gap] * nT,
        spectral_gap=[sol.spectral_gap] * nT, observable_gap=[sol.observable_gap()] * nT,
        gap_method=[sol.method] * nT, model_sha256=[rbm.sha256] * nT, spec_json=[spec_json] * nT,
    )
    order = np.argsort(sol.gaps, kind="stable")
    K = len(order)
    spectrum = {k: [v] * K for k, v in base.items()}
    spectrum.update(
        mode=list(range(1, K + 1)), sector=sol.sectors[order].tolist(), gap=sol.gaps[order].tolist(),
        lam=(1.0 - sol.gaps[order]).tolist(), weight=sol.weights[order].tolist(),
        weight_fraction=(sol.weights[order] / sol.total_variance).tolist(),
        weight_m=sol.weights_m[order].tolist(), gap_method=[sol.method] * K,
    )
    return curves, spectrum


def _partial_dir(root: Path, family: str) -> Path:
    return root / ".partial" / family


def _write_partial(root: Path, family: str, cell_id: str, curves: dict, spectrum: dict) -> None:
    folder = _partial_dir(root, family)
    for suffix, name, cols in (("spectrum", "spectrum", spectrum), ("curves", "ground_truth", curves)):
        table = pa.Table.from_pydict(cols, schema=arrow_schema(name))
        store.atomic_write(folder / f"{cell_id}.{suffix}.parquet", lambda tmp: pq.write_table(table, tmp))


def _read_partial(root: Path, family: str, cell_id: str):
    folder = _partial_dir(root, family)
    try:
        return (pq.read_table(folder / f"{cell_id}.curves.parquet"),
                pq.read_table(folder / f"{cell_id}.spectrum.parquet"))
    except (OSError, pa.ArrowInvalid):
        return None


def is_current(root: Path, family: str, cells: list[Cell]) -> bool:
    """True when the stored ground truth verifies and holds exactly this suite's cells."""
    rel, rel_s = ground_truth_paths(family)
    problems = [p for p in store.verify(root) if p.startswith(("ground_truth/" + family + ".", str(root / "manifest")))]
    if problems or not (root / rel).exists() or not (root / rel_s).exists():
        return False
    stored = set(pq.read_table(root / rel, columns=["cell_id"]).column("cell_id").to_pylist())
    return stored == {c.cell_id for c in cells}


def generate(family: str, root: Path | str = "results", force: bool = False, workers: int | None = None,
             progress: bool = True, suite_file: str | Path | None = None) -> dict:
    """Generate (or resume) the family's ground truth; returns a summary dict with timings."""
    from tqdm.auto import tqdm

    root = Path(root)
    header, cells = load_suite(suite_file or family)
    family = header["family"]
    t0 = time.perf_counter()
    if not force and is_current(root, family, cells):
        return dict(family=family, cells=len(cells), computed=0, skipped=True, seconds=0.0)
    if force:
        shutil.rmtree(_partial_dir(root, family), ignore_errors=True)
    todo = [c for c in cells if _read_partial(root, family, c.cell_id) is None]
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    bar = tqdm(total=len(cells), initial=len(cells) - len(todo), desc=f"ground truth {family}", unit="cell",
               disable=not progress)
    try:
        if workers == 1:
            for c in todo:
                _write_partial(root, family, c.cell_id, *solve_cell(c.spec_json))
                bar.update()
        else:
            with ProcessPoolExecutor(workers) as pool:
                futures = {pool.submit(solve_cell, c.spec_json): c for c in todo}
                try:
                    for fut in as_completed(futures):
                        _write_partial(root, family, futures[fut].cell_id, *fut.result())
                        bar.update()
                except BaseException:
                    for fut in futures:
                        fut.cancel()
                    raise
    finally:
        bar.close()
    parts = [_read_partial(root, family, c.cell_id) for c in cells]
    curves = pa.concat_tables([p[0] for p in parts])
    spectrum = pa.concat_tables([p[1] for p in parts])
    info = dict(suite=header["suite"], family=family, method="exact", precision=PRECISION,
                suite_file=Path(header["path"]).name,
                seeds=sorted({json.loads(c.spec_json)["seed"] for c in cells}))
    rel, rel_s = ground_truth_paths(family)
    store.write_table(root, rel_s, "spectrum", spectrum, **info)
    store.write_table(root, rel, "ground_truth", curves, **info)
    shutil.rmtree(_partial_dir(root, family), ignore_errors=True)
    try:
        (root / ".partial").rmdir()
    except OSError:
        pass
    return dict(family=family, cells=len(cells), computed=len(todo), skipped=False,
                seconds=time.perf_counter() - t0, workers=workers)
