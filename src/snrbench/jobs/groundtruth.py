"""Ground-truth generation for a family: every cell solved, stored, resumable.

Three tables per family: the stationary curves (``<family>.parquet``), the mode spectrum
(``<family>.spectrum.parquet``) and the operational curves (``<family>.operational.parquet``: burn-in B
from a uniform or data start, bias included; :mod:`snrbench.operational`).

Each finished cell is first written to ``results/.partial/<family>/<cell_id>.*.parquet`` (atomic);
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

from . import exact, operational, store
from .schema import arrow_schema
from .spectral import T_GRID
from .ising import IsingModel
from .tasks import MNIST_FAMILIES, Cell, build_data, build_model, load_suite

__all__ = ["solve_cell", "generate", "ground_truth_paths", "is_current"]

PRECISION = "float64 rates (relative accuracy ~1e-15); generator eigenpairs by FLINT/Arb QR at ≥ 256 bits"
PRECISION_ISING = ("float64 flip rates; generator eigenpairs by float64 eigh per spin-flip sector "
                   "(slow eigenvalues checked against their Dirichlet-form Rayleigh quotients, eig_check)")


#: The tables of a family's ground truth, in the order of :func:`ground_truth_paths`.
GT_TABLES = ("ground_truth", "spectrum", "operational")
_SUFFIX = {"ground_truth": "", "spectrum": ".spectrum", "operational": ".operational"}


#: The mnist families' tables (Monte Carlo curves; parallel-tempering ladders).
MNIST_TABLES = ("mnist_truth", "tempering")


def ground_truth_paths(family: str) -> tuple[str, ...]:
    """Relative paths of the family's ground-truth, spectrum and operational tables (mnist families:
    ground truth and tempering)."""
    if family in MNIST_FAMILIES:
        return f"ground_truth/{family}.parquet", f"ground_truth/{family}.tempering.parquet"
    return tuple(f"ground_truth/{family}{_SUFFIX[t]}.parquet" for t in GT_TABLES)


def _state_index(x: np.ndarray) -> np.ndarray:
    """Row index in :func:`snrbench.model.all_states` of each ±1 / 0-1 configuration."""
    bits = (np.asarray(x) > 0).astype(np.int64)
    return bits @ (1 << np.arange(bits.shape[1]))


def operational_curves(model, data, observables: str, sol, base: dict) -> dict:
    """Columns of the operational table for one cell: start ∈ {uniform, data} × B ∈ {0, ⌈5/γ_obs⌉}."""
    if isinstance(model, IsingModel):
        from .exact_ising import chain_modes

        modes = chain_modes(model)
    else:
        modes = exact.chain_modes(model, observables)
    n_states = modes.right.shape[0]
    data_start = np.bincount(_state_index(data), minlength=n_states) / len(data)
    starts = {"uniform": np.full(n_states, 1.0 / n_states), "data": data_start}
    rules = {"0": 0.0, "ceil(5/observable_gap)": float(np.ceil(5.0 / sol.observable_gap()))}
    stationary = sol.log10_q(T_GRID)
    nT = len(T_GRID)
    cols = {k: [] for k in ("start", "burn_in_rule", "burn_in", "T", "log10_q_op", "mse", "bias2", "log10_q")}
    for start, pi0 in starts.items():
        for rule, B in rules.items():
            mse, bias2 = operational.window_error(modes, pi0, T_GRID, B)
            cols["start"] += [start] * nT
            cols["burn_in_rule"] += [rule] * nT
            cols["burn_in"] += [B] * nT
            cols["T"] += T_GRID.tolist()
            cols["log10_q_op"] += (np.log10(sol.grad_norm2) - np.log10(mse)).tolist()
            cols["mse"] += mse.tolist()
            cols["bias2"] += bias2.tolist()
            cols["log10_q"] += stationary.tolist()
    n = len(cols["T"])
    out = {k: [v] * n for k, v in base.items()}
    out.update(cols)
    return out


def solve_cell(spec_json: str) -> dict[str, dict]:
    """Solve one cell exactly; return column dicts for the ground-truth, spectrum and operational tables."""
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
    return dict(ground_truth=curves, spectrum=spectrum,
                operational=operational_curves(rbm, data, spec["observables"], sol, base))


def _kind(kind: str):
    """(cell function, table names, relative paths, partial folder name, method) of a generation kind."""
    if kind == "exact":
        return solve_cell, GT_TABLES, ground_truth_paths, "{family}", "exact"
    if kind == "mnist":
        from .mnist_truth import solve_mnist_cell

        return solve_mnist_cell, MNIST_TABLES, ground_truth_paths, "{family}", "monte-carlo"
    if kind == "ladder":
        from . import ladder

        return ladder.ladder_cell, ("ladder",), lambda f: (ladder.ladder_path(f),), "ladder-{family}", "monte-carlo"
    raise ValueError(f"unknown generation kind {kind!r}")


def _partial_dir(root: Path, family: str, kind: str = "exact") -> Path:
    return root / ".partial" / _kind(kind)[3].format(family=family)


def _write_partial(root: Path, family: str, cell_id: str, tables: dict, kind: str = "exact") -> None:
    folder = _partial_dir(root, family, kind)
    for name in _kind(kind)[1][::-1]:  # the main table last: its presence marks the cell done
        table = pa.Table.from_pydict(tables[name], schema=arrow_schema(name))
        store.atomic_write(folder / f"{cell_id}.{name}.parquet", lambda tmp: pq.write_table(table, tmp))


def _read_partial(root: Path, family: str, cell_id: str, kind: str = "exact"):
    folder = _partial_dir(root, family, kind)
    try:
        return {name: pq.read_table(folder / f"{cell_id}.{name}.parquet") for name in _kind(kind)[1]}
    except (OSError, pa.ArrowInvalid):
        return None


def is_current(root: Path, family: str, cells: list[Cell], kind: str = "exact") -> bool:
    """True when the stored tables verify and hold exactly this suite's cells."""
    paths = _kind(kind)[2](family)
    problems = [p for p in store.verify(root)
                if p.startswith(tuple(paths) + tuple(r.replace(".parquet", ".") for r in paths) + (str(root / "manifest"),))]
    if problems or not all((root / rel).exists() for rel in paths):
        return False
    stored = set(pq.read_table(root / paths[0], columns=["cell_id"]).column("cell_id").to_pylist())
    return stored == {c.cell_id for c in cells}


def generate(family: str, root: Path | str = "results", force: bool = False, workers: int | None = None,
             progress: bool = True, suite_file: str | Path | None = None, kind: str = "exact") -> dict:
    """Generate (or resume) the family's ground truth (``kind="exact"``) or its Monte Carlo ladder
    check (``kind="ladder"``, :mod:`snrbench.ladder`); returns a summary dict with timings."""
    from tqdm.auto import tqdm

    root = Path(root)
    header, cells = load_suite(suite_file or family)
    family = header["family"]
    if family in MNIST_FAMILIES and kind == "exact":
        kind, workers = "mnist", 1  # one cell at a time: each uses every core and up to GBs of memory
    fn, names, paths, _, method = _kind(kind)
    t0 = time.perf_counter()
    if not force and is_current(root, family, cells, kind):
        return dict(family=family, cells=len(cells), computed=0, skipped=True, seconds=0.0)
    if force:
        shutil.rmtree(_partial_dir(root, family, kind), ignore_errors=True)
    todo = [c for c in cells if _read_partial(root, family, c.cell_id, kind) is None]
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    desc = f"{'ground truth' if kind == 'exact' else kind} {family}"
    bar = tqdm(total=len(cells), initial=len(cells) - len(todo), desc=desc, unit="cell", disable=not progress)
    try:
        if workers == 1:
            for c in todo:
                _write_partial(root, family, c.cell_id, fn(c.spec_json), kind)
                bar.update()
        else:
            with ProcessPoolExecutor(workers) as pool:
                futures = {pool.submit(fn, c.spec_json): c for c in todo}
                try:
                    for fut in as_completed(futures):
                        _write_partial(root, family, futures[fut].cell_id, fut.result(), kind)
                        bar.update()
                except BaseException:
                    for fut in futures:
                        fut.cancel()
                    raise
    finally:
        bar.close()
    parts = [_read_partial(root, family, c.cell_id, kind) for c in cells]
    precision = PRECISION_ISING if family == "ising" else PRECISION
    if kind == "ladder":
        from .ladder import PRECISION as precision
    if kind == "mnist":
        from .mnist_truth import PRECISION as precision
    info = dict(suite=header["suite"], family=family, method=method, precision=precision,
                suite_file=Path(header["path"]).name,
                seeds=sorted({json.loads(c.spec_json)["seed"] for c in cells}))
    for name, rel in list(zip(names, paths(family)))[::-1]:  # the main table last
        store.write_table(root, rel, name, pa.concat_tables([p[name] for p in parts]), **info)
    shutil.rmtree(_partial_dir(root, family, kind), ignore_errors=True)
    try:
        (root / ".partial").rmdir()
    except OSError:
        pass
    return dict(family=family, cells=len(cells), computed=len(todo), skipped=False,
                seconds=time.perf_counter() - t0, workers=workers)
