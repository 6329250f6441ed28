"""Ground-truth generation for a family: every cell solved, stored, resumable.

The family declares its tables (:attr:`snrbench.families.Family.tables`) and solves one cell at a
time (:meth:`~snrbench.families.Family.solve_cell`: spec in, column dicts out); the exact families
write the stationary curves, the mode spectrum and the operational curves, the checkpoint families
the Monte Carlo curves and their tempering ladders. ``kind="ladder"`` runs the Monte Carlo ladder
check instead (:mod:`.ladder`).

Each finished cell is first written to ``results/.partial/<family>/<cell_id>.*.parquet`` (atomic);
a re-run skips those, so an interrupted generation resumes where it stopped. Only when every cell
is done are the family's files written, in one store commit (:func:`snrbench.store.commit`) with
their manifest entries and the removal of the partials: after a kill at any instant the store holds
either all the previous tables or all the new ones. Partial files of cells not in the suite are
removed with the others and reported (``removed_partials``).
"""
from __future__ import annotations

import json
import os
import shutil
import time
from contextlib import closing
from functools import partial
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .. import store
from ..families import Cell, get, load_suite
from ..store.schema import arrow_schema
from . import executor, ladder

__all__ = ["solve_cell", "generate", "ground_truth_paths", "is_current"]


def ground_truth_paths(family: str) -> tuple[str, ...]:
    """Relative paths of the family's ground-truth tables (:meth:`~snrbench.families.Family.truth_paths`)."""
    return get(family).truth_paths()


def solve_cell(family: str, spec_json: str) -> dict[str, dict]:
    """The ground-truth tables of one cell of ``family`` (a pure task: spec in, column dicts out)."""
    return get(family).solve_cell(Cell(spec_json))


def _kind(kind: str, family: str):
    """(cell function, table names, relative paths, partial folder name, method, precision) of a
    generation kind ("truth": the family's ground truth; "ladder": the Monte Carlo ladder check)."""
    if kind == "truth":
        fam = get(family)
        return (solve_cell, tuple(fam.tables), fam.truth_paths(), family, fam.method, fam.precision)
    if kind == "ladder":
        return (ladder.ladder_cell, ("ladder",), (ladder.ladder_path(family),), f"ladder-{family}", "monte-carlo",
                ladder.precision())
    raise ValueError(f"unknown generation kind {kind!r}")


def _run_cell(kind: str, family: str, spec_json: str) -> dict[str, dict]:
    """One cell of a generation kind (module level, so a process pool or a Dask worker can run it)."""
    return _kind(kind, family)[0](family, spec_json)


def _partial_dir(root: Path, family: str, kind: str = "truth") -> Path:
    return root / ".partial" / _kind(kind, family)[3]


def _write_partial(root: Path, family: str, cell_id: str, tables: dict, kind: str = "truth") -> None:
    folder = _partial_dir(root, family, kind)
    for name in _kind(kind, family)[1][::-1]:  # the main table last: its presence marks the cell done
        table = pa.Table.from_pydict(tables[name], schema=arrow_schema(name))
        store.atomic_write(folder / f"{cell_id}.{name}.parquet", lambda tmp: pq.write_table(table, tmp))


def _read_partial(root: Path, family: str, cell_id: str, kind: str = "truth"):
    folder = _partial_dir(root, family, kind)
    try:
        return {name: pq.read_table(folder / f"{cell_id}.{name}.parquet") for name in _kind(kind, family)[1]}
    except (OSError, pa.ArrowInvalid):
        return None


def is_current(root: Path, family: str, cells: list[Cell], kind: str = "truth") -> bool:
    """True when the stored tables verify and hold exactly this suite's cells."""
    paths = _kind(kind, family)[2]
    problems = [p for p in store.verify(root)
                if p.startswith(tuple(paths) + tuple(r.replace(".parquet", ".") for r in paths) + (str(root / "manifest"),))]
    if problems or not all((root / rel).exists() for rel in paths):
        return False
    stored = set(pq.read_table(root / paths[0], columns=["cell_id"]).column("cell_id").to_pylist())
    return stored == {c.cell_id for c in cells}


def generate(family: str, root: Path | str = "results", force: bool = False, workers: int | None = None,
             progress: bool = True, suite_file: str | Path | None = None, kind: str = "truth",
             scheduler: str | None = None) -> dict:
    """Generate (or resume) the family's ground truth (``kind="truth"``) or its Monte Carlo ladder
    check (``kind="ladder"``, :mod:`.ladder`); returns a summary dict with timings.

    ``scheduler`` is where the cells run (:func:`.executor.map_cells`): None, local processes
    (``workers`` of them); ``"local:N"``, a Dask LocalCluster; ``"tcp://HOST:PORT"``, an existing
    Dask cluster. The results come back here, where each cell's partial is written once."""
    from tqdm.auto import tqdm

    root = Path(root)
    header, cells = load_suite(suite_file or family)
    family = header["family"]
    if kind == "truth" and not get(family).parallel:
        workers = 1
    _, names, paths, _, method, precision = _kind(kind, family)
    t0 = time.perf_counter()
    if not force and is_current(root, family, cells, kind):
        return dict(family=family, cells=len(cells), computed=0, skipped=True, seconds=0.0)
    if force:
        shutil.rmtree(_partial_dir(root, family, kind), ignore_errors=True)
    todo = [c for c in cells if _read_partial(root, family, c.cell_id, kind) is None]
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    desc = f"{'ground truth' if kind == 'truth' else kind} {family}"
    bar = tqdm(total=len(cells), initial=len(cells) - len(todo), desc=desc, unit="cell", disable=not progress)
    try:
        sched = None if kind == "truth" and not get(family).parallel and executor.is_local(scheduler) else scheduler
        done = set()  # each cell's partial is written once, here in the client, whoever computed it
        with closing(executor.map_cells(partial(_run_cell, kind, family), [c.spec_json for c in todo],
                                        workers=workers, scheduler=sched, key=lambda s: Cell(s).cell_id,
                                        name=f"{kind}-{family}")) as results:
            for spec_json, tables in results:
                cell_id = Cell(spec_json).cell_id
                if cell_id not in done:
                    done.add(cell_id)
                    _write_partial(root, family, cell_id, tables, kind)
                    bar.update()
    finally:
        bar.close()
    parts = [_read_partial(root, family, c.cell_id, kind) for c in cells]
    info = dict(suite=header["suite"], family=family, method=method, precision=precision,
                suite_file=Path(header["path"]).name,
                seeds=sorted({json.loads(c.spec_json)["seed"] for c in cells}))
    folder = _partial_dir(root, family, kind)
    mine = {f"{c.cell_id}.{name}.parquet" for c in cells for name in names}
    stale = sorted(p.name for p in folder.iterdir() if p.name not in mine) if folder.is_dir() else []
    tables = {rel: (name, pa.concat_tables([p[name] for p in parts]), info) for name, rel in zip(names, paths)}
    # one commit: the family's tables, their manifest entries (grouped) and the removal of its partials
    store.commit(root, tables, remove=[folder.relative_to(root).as_posix()], group=_kind(kind, family)[3])
    return dict(family=family, cells=len(cells), computed=len(todo), skipped=False,
                seconds=time.perf_counter() - t0, workers=workers, reused=len(cells) - len(todo),
                removed_partials=stale)
