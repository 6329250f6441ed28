"""Run entries over a family and store their predictions (``results/predictions/<name>.parquet``).

Black-box entries (model and sampler-only tiers) run once per budget of the ladder
:data:`~snrbench.predict.contract.BUDGETS`, white-box entries once at the full budget; the rows carry
their ``budget``. An entry's rows at one budget are stored only when every cell succeeded; a failing
entry leaves every stored file untouched. A stored (entry, family, budget) is skipped when its rows
cover the family's current cells and were made by the same source (SHA-256 of the entry's file):
long jobs resume per entry and budget.

With a Dask ``scheduler`` the cells of each (entry, family, budget) run on the cluster's workers
(:func:`_run_on_cluster`): each worker runs :func:`~snrbench.predict.runner.run_chunk` on a chunk
of cells, the sandbox and its limits applying there as they do here; the results come back to this
process, which merges them in the suite's order and stores them as a local run does.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from .. import store
from .registry import Entry
from ..store.schema import arrow_schema
from .contract import BUDGET, BUDGETS
from .runner import DEFAULT_TIME_LIMIT, MAX_FAILURES, CellResult, EntryRun, run_chunk, run_entry, skipped_cell
from .seeds import folder_key
from ..families import Cell, get, load_suite

__all__ = ["predictions_path", "is_current", "store_runs", "predict_entries", "check_names", "budgets_of",
           "chunks_of", "DASK_CHUNK_CELLS"]

#: Cells per chunk on a Dask cluster. A chunk is one task: one sandboxed worker and one sampler
#: process started on a Dask worker for its cells, in order. A start costs about 2–3 s, as much as a
#: cell at the middle budgets, and the first cell of a worker also pays the entry's warm-up in its
#: ``seconds``/``cpu_seconds`` (pilot-q: about 0.4 CPU s over the cells after it). Four cells share
#: each start and keep that warm-up to at most a quarter of the cells, so the median cost the
#: leaderboard shows stays a cell's own cost; the 36–60-cell exact suites still make 9–15 tasks per
#: (entry, family, budget) to spread over the workers, and a lost worker costs at most 4 cells rerun.
DASK_CHUNK_CELLS = 4


def budgets_of(access: str) -> tuple[int, ...]:
    """The budgets an entry of tier ``access`` runs at: the ladder for black-box tiers, the full one for white-box."""
    return (BUDGET,) if access == "white-box" else BUDGETS


def predictions_path(name: str) -> str:
    """``predictions/<name>.parquet``; a name outside the entry-name rule is refused (no paths)."""
    from .registry import NAME_RULE, RegistryError

    if not isinstance(name, str) or not NAME_RULE.fullmatch(name) or name in (".", ".."):
        raise RegistryError(f"entry name {name!r} must match {NAME_RULE.pattern} in full")
    return f"predictions/{name}.parquet"


def _stored(root: Path, name: str) -> pd.DataFrame | None:
    path = Path(root) / predictions_path(name)
    if not path.exists():
        return None
    return store.read_table(Path(root), predictions_path(name)).to_pandas()


def is_current(root: Path, entry: Entry, family: str, cells, budget: int = BUDGET) -> bool:
    """True when the stored rows of ``entry`` on ``family`` at ``budget`` cover exactly ``cells`` from the same source."""
    try:
        df = _stored(root, entry.name)
    except store.ResultsError:
        return False
    if df is None:
        return False
    mine = df[(df.access == entry.access) & (df.family == family) & (df.budget == budget)]
    return (len(mine) > 0 and set(mine.source_sha256) == {entry.source_sha256}
            and set(mine.cell_id) == {c.cell_id for c in cells})


def _rows(run: EntryRun, suite: str) -> pd.DataFrame:
    e, grid = run.entry, get(run.family).t_grid(load_suite(run.family)[1][0].spec)
    nT = len(grid)
    recs = []
    for r in run.results:
        recs.append(pd.DataFrame(dict(
            suite=suite, family=run.family, cell_id=r.cell_id, label=r.label, predictor=e.name, access=e.access,
            budget=np.int64(run.budget), T=grid, log10_q=np.asarray(r.log10_q, dtype=np.float64),
            tau=np.nan if r.tau is None else r.tau, grad_norm2=np.nan if r.grad_norm2 is None else r.grad_norm2,
            sweeps=np.int64(r.sweeps), seconds=float(r.seconds), cpu_seconds=float(r.cpu_seconds), source=_portable(e.source),
            source_sha256=e.source_sha256), index=range(nT)))
    return pd.concat(recs, ignore_index=True)


def _portable(source: str) -> str:
    """``predictors/x.py::Cls`` for built-ins, and a path relative to the project root for any other
    file inside it (``examples/x.py::Cls``): no machine-specific absolute path, so a clone of the
    repository owns the names its files stored."""
    from ..store.locations import project_root
    from .registry import predictors_dir

    base = str(predictors_dir().resolve())
    if source.startswith(base + os.sep):
        return "predictors" + source[len(base):]
    root = str(project_root().resolve())
    return source[len(root) + 1:] if source.startswith(root + os.sep) else source


def _source_path(source: str) -> str:
    """The file part of an entry's source (``path.py::Cls`` → ``path.py``; entry points as they are)."""
    return source.rsplit("::", 1)[0]


def check_names(root: Path, new: list[Entry], known: list[Entry], replace: bool = False) -> None:
    """Refuse names that belong to someone else (RegistryError naming the entry and the owner).

    A name is taken, in every tier, by a built-in or installed entry of another source, and by any
    stored predictions of another source file; stored predictions of the *same* file are replaced
    only with ``replace`` (``snrbench submit --replace``)."""
    from .registry import RegistryError

    owners = {}
    for e in known:
        owners.setdefault(e.name, set()).add(_source_path(_portable(e.source)))
    for e in new:
        mine = _source_path(_portable(e.source))
        other = owners.get(e.name, set()) - {mine}
        if other:
            raise RegistryError(f"entry name {e.name!r} is taken by {', '.join(sorted(other))} "
                                "(names are unique across tiers); pick another name")
        try:
            stored = _stored(Path(root), e.name)
        except store.ResultsError as exc:
            raise RegistryError(f"entry name {e.name!r}: its stored predictions are damaged ({exc})") from None
        if stored is None:
            continue
        paths = {_source_path(s) for s in stored.source}
        if paths - {mine}:
            raise RegistryError(f"entry name {e.name!r} is already stored by {', '.join(sorted(paths - {mine}))}; "
                                "pick another name")
        if not replace:
            raise RegistryError(f"entry name {e.name!r} is already stored by this file ({mine}); "
                                "resubmit with --replace to replace its predictions")


def store_runs(root: Path, runs: list[EntryRun], suite: str) -> list[Path]:
    """Write the rows of successful runs, grouped by entry name, merged with other stored rows."""
    root = Path(root)
    out = []
    for name in sorted({r.entry.name for r in runs}):
        mine = [r for r in runs if r.entry.name == name]
        if any(r.failures for r in mine):
            raise ValueError(f"refusing to store {name}: it failed on some cells")
        new = pd.concat([_rows(r, suite) for r in mine], ignore_index=True)
        old = _stored(root, name)
        if old is not None:
            replaced = {(r.entry.access, r.family, r.budget) for r in mine}
            keep = [key not in replaced for key in zip(old.access, old.family, old.budget)]
            new = pd.concat([old[keep], new], ignore_index=True)
        new = new.sort_values(["family", "access", "budget", "label", "T"], kind="stable").reset_index(drop=True)
        schema = arrow_schema("predictions")  # pa.array keeps NaN as NaN (from_pandas would make nulls)
        table = pa.table({f.name: pa.array(new[f.name].to_numpy(), type=f.type) for f in schema}, schema=schema)
        out.append(store.write_table(root, predictions_path(name), "predictions", table,
                                     suite=suite, entry=name, sources=sorted(set(new.source))))
    return out


def predict_entries(root: Path, entries: list[Entry], families, force: bool = False, workers: int = 1,
                    time_limit: float = DEFAULT_TIME_LIMIT, progress: bool = True, store_results: bool = True,
                    suite_files: dict | None = None, limits: dict | None = None,
                    budgets: tuple[int, ...] | None = None, scheduler: str | None = None,
                    blocked=(), key: bytes | None = None) -> list[EntryRun]:
    """Run every entry on every cell of ``families`` at each of its budgets (:func:`budgets_of`, or
    ``budgets`` where given, white-box entries still at the full one); store successful runs (see the
    module doc).

    Returns the runs (skipped ones are not included). An entry runs only on families that offer
    its tier (:attr:`snrbench.families.Family.tiers`). ``scheduler`` (``"tcp://HOST:PORT"``,
    ``"local:N"``; :func:`snrbench.jobs.executor.map_cells`) runs the cells on Dask workers, whose
    filesystem must hold the entry's source and ``root`` at the same absolute paths (``workers`` is
    then unused: each Dask worker thread runs one sandboxed worker). ``blocked``: folders the
    entries' workers may not touch besides ``root`` and the other stores
    (:func:`~snrbench.predict.runner.blocked_paths`). ``key``: the sampler key of the cells' seeds
    (:mod:`.seeds`); by default the one of ``root``, made there before the first cell runs.
    """
    from tqdm.auto import tqdm

    root = Path(root)
    if scheduler is not None:
        from ..jobs.executor import parse_scheduler

        if parse_scheduler(scheduler)[0] == "processes":  # ValueError for a malformed address, before any work
            scheduler = None
    runs = []
    for family in families:
        header, cells = load_suite((suite_files or {}).get(family) or family)
        for entry in entries:
            if entry.access not in get(family).tiers:
                continue
            ladder = budgets_of(entry.access) if budgets is None or entry.access == "white-box" else budgets
            for budget in ladder:
                if not force and store_results and is_current(root, entry, family, cells, budget):
                    continue
                key = folder_key(root) if key is None else key
                desc = f"{entry} on {family} at {budget:,}"
                with tqdm(total=len(cells), desc=desc, unit="cell", disable=not progress) as bar:
                    if scheduler is None:
                        run = run_entry(entry, family, cells, root, time_limit=time_limit, workers=workers,
                                        progress=bar.update, limits=limits, budget=budget, blocked=blocked, key=key)
                    else:
                        run = _run_on_cluster(entry, family, cells, root, scheduler, time_limit=time_limit,
                                              limits=limits, budget=budget, progress=bar.update, blocked=blocked,
                                              key=key)
                runs.append(run)
                if run.failures:
                    break  # an entry that fails at one budget is not run at the others
                if store_results:
                    store_runs(root, [run], header["suite"])
    return runs


#: Seconds a Dask map of an entry's cells may take beyond cells × time limit (workers starting,
#: the sampler loading cells); past that the map is cancelled and the run fails.
DASK_MARGIN = 600.0


def chunks_of(cells, size: int = DASK_CHUNK_CELLS) -> list[tuple[str, ...]]:
    """The cells' specs in chunks of ``size`` consecutive cells (the last one shorter)."""
    size = max(1, int(size))
    return [tuple(c.spec_json for c in cells[i:i + size]) for i in range(0, len(cells), size)]


def _run_on_cluster(entry: Entry, family: str, cells, root: Path, scheduler: str, *, time_limit: float,
                    limits: dict | None, budget: int, progress=None,
                    max_failures: int = MAX_FAILURES, blocked=(), key: bytes | None = None) -> EntryRun:
    """:func:`run_entry` with the cells sent to Dask workers in :func:`chunks_of` chunks, each run
    there by :func:`~snrbench.predict.runner.run_chunk`; the same EntryRun as a local run.

    A failed cell is a result, so a chunk that *raises* is not retried (``retries=0``: the runner
    itself failed on that worker, e.g. the entry's source is not on its filesystem; the error ends
    the run); a chunk whose worker is lost is rerun by the scheduler, and each cell is kept once (by
    ``cell_id``). After ``max_failures`` failed cells the chunks not yet finished are cancelled and
    their cells reported skipped, as a local run skips them (a failure counts unless the runner
    flagged it ``skipped``; its text, which an entry writes, decides nothing). ``key``: the sampler
    key (:mod:`.seeds`; by default ``root``'s), sent with each chunk to the Dask worker's runner, so
    a cell has the seed there that it has here; a task's name holds a digest of it, never the key.
    """
    from contextlib import closing
    from functools import partial

    from ..jobs import executor

    results_root = str(Path(root).resolve())  # the workers block this path: never relative to their cwd
    args = dict(results_root=results_root, time_limit=time_limit, limits=limits, budget=budget,
                max_failures=max_failures, blocked=sorted(str(Path(p).resolve()) for p in blocked))
    secret = folder_key(root) if key is None else key
    fn = partial(run_chunk, entry, family, key=secret, **args)
    named = dict(args, key=hashlib.sha256(secret).hexdigest())

    def task_key(chunk: tuple[str, ...]) -> str:  # names the whole computation: equal keys, equal tasks
        blob = json.dumps([asdict(entry), family, list(chunk), named], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    wanted = {c.cell_id for c in cells}
    got: dict[str, CellResult] = {}
    failed = 0
    deadline = len(cells) * time_limit + DASK_MARGIN  # one cell after another, were there one Dask worker
    with closing(executor.map_cells(fn, chunks_of(cells), scheduler=scheduler, key=task_key, retries=0, deadline=deadline,
                                    name=f"predict-{entry.name}-{family}-{budget}")) as finished:
        for chunk, results in finished:
            ids = [r.cell_id for r in results]
            if ids != [Cell(s).cell_id for s in chunk]:
                raise RuntimeError(f"{entry} on {family}: a Dask worker answered for cells {ids}, not its chunk's")
            new = [r for r in results if r.cell_id in wanted and r.cell_id not in got]
            for r in new:
                got[r.cell_id] = r
                failed += not r.ok and not r.skipped  # the runner's flag: an entry's text cannot set it
            if progress:
                for _ in new:
                    progress()
            if failed >= max_failures:
                break  # closing the map cancels the chunks still queued or running
    out = [got.get(c.cell_id) or skipped_cell(c, max_failures) for c in cells]
    return EntryRun(entry, family, out, budget)
