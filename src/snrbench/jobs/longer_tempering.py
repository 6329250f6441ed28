"""A longer tempering run of chosen checkpoints: their stored truth replaced by one whose ladders ran
``rounds_factor`` times the recipe's production rounds (``snrbench temper``).

Certification (:mod:`snrbench.jobs.certify`) asks every group of ladders for at least
:data:`~snrbench.jobs.certify.ROUND_TRIP_FLOOR` round trips; a late checkpoint's recipe makes a
handful. A replica's round trip takes a roughly fixed number of rounds at a given ladder, so ``F``
times the rounds make about ``F`` times the round trips. The cell's spec (and so its ``cell_id``,
and every prediction made on it) is unchanged: only the run is longer (:func:`~snrbench.families.
_trained.solve_checkpoint_cell` with ``rounds_factor``). Its truth rows (``start`` names the factor,
e.g. ``trajectory tempering, 6× rounds``) and its tempering rows (``rounds``, ``round_trips``,
``sweeps`` as run) replace the stored ones in one commit per cell; ``certified`` is False until ``snrbench certify`` runs. A cell whose stored run is
already at least ``F`` times its recipe is skipped, so the command resumes. Inside a cell, a
trajectory-tempering run keeps its progress in ``results/.partial/temper-<family>/<cell_id>-x<F>/``
(the placed ladder, each finished group of ladders, the group in progress every 200 rounds) and the
same command goes on from there, bit for bit the run that was not stopped, so a stop loses at most
200 rounds (and a group's short annealing pass); a kept piece that is unreadable or was kept by
another run is named in a warning and computed again; the folder is removed once the cell is committed. (Temperature PT, which mnist-large
uses, keeps nothing: its cells restart.)
"""
from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pandas as pd

from .. import store
from ..families import get, load_suite
from ..store.schema import arrow_schema
from .certify import _info, _read

__all__ = ["temper_longer", "stored_factor"]


def stored_factor(start: str) -> int:
    """The rounds factor a stored truth's ``start`` names (1 when it names none)."""
    got = re.search(r", (\d+)× rounds$", start)
    return int(got.group(1)) if got else 1


def _replace(old: pd.DataFrame, cell_id: str, new: dict) -> pd.DataFrame:
    """``old`` with the rows of ``cell_id`` replaced by ``new`` (a column dict), in the same place."""
    at = old.index[old.cell_id == cell_id]
    new = pd.DataFrame(new)[list(old.columns)]
    head, tail = old.loc[: at.min() - 1], old.loc[at.max() + 1:]
    return pd.concat([head, new, tail], ignore_index=True)


def temper_longer(family: str, root, labels: list[str], rounds_factor: int, device: str | None = None,
                  progress: bool = True) -> pd.DataFrame:
    """Re-run the tempering of the cells ``labels`` of ``family`` with ``rounds_factor`` × the
    recipe's production rounds and store it in place of the stored run (module docstring). Returns
    one row per cell: round trips per group before and after, the four-z verdict, seconds."""
    if int(rounds_factor) < 2:
        raise ValueError(f"temper: --rounds-factor must be an integer ≥ 2, got {rounds_factor}")
    fam = get(family)
    _, cells = load_suite(family)
    by_label = {c.label: c for c in cells}
    unknown = sorted(set(labels) - set(by_label))
    if unknown:
        raise ValueError(f"{family}: no cell {unknown}; cells {sorted(by_label)}")
    rel, pt_rel = fam.truth_paths()[:2]
    rows = []
    for label in labels:
        cell = by_label[label]
        truth, _ = _read(root, rel, "mnist_truth")
        pt, _ = _read(root, pt_rel, "tempering")
        before = truth[truth.cell_id == cell.cell_id]
        if before.empty or before.start.iloc[0] == "exact":
            raise ValueError(f"{family} {label}: no tempered truth stored (exact starts need no ladder)")
        trips = " + ".join(str(t) for t in pt[pt.cell_id == cell.cell_id].groupby("start", sort=False).round_trips.first())
        if stored_factor(before.start.iloc[0]) >= rounds_factor:
            rows.append(dict(label=label, factor=stored_factor(before.start.iloc[0]), round_trips_before=trips,
                             round_trips=trips, equilibrated=bool(before.equilibrated.iloc[0]), seconds=0.0,
                             note="already stored"))
            continue
        t0 = time.perf_counter()
        if progress:
            print(f"  {family} {label}: tempering with {rounds_factor}× the recipe's rounds "
                  f"(stored: {trips} round trips)", flush=True)
        keep = Path(root) / ".partial" / f"temper-{family}" / f"{cell.cell_id}-x{int(rounds_factor)}"
        if progress and keep.is_dir():
            print(f"  {family} {label}: resuming the run kept in {keep}", flush=True)
        got = fam.solve_cell(cell, device=device, progress=progress, rounds_factor=int(rounds_factor), keep=keep)
        truth = _replace(truth, cell.cell_id, got["mnist_truth"])
        pt = _replace(pt, cell.cell_id, got["tempering"])
        cols = {name: [c.name for c in arrow_schema(name)] for name in ("mnist_truth", "tempering")}
        store.commit(root, {rel: ("mnist_truth", truth[cols["mnist_truth"]].to_dict("list"), _info(root, rel)),
                            pt_rel: ("tempering", pt[cols["tempering"]].to_dict("list"), _info(root, pt_rel))})
        shutil.rmtree(keep, ignore_errors=True)
        new = pd.DataFrame(got["tempering"]).groupby("start", sort=False).round_trips.first()
        rows.append(dict(label=label, factor=int(rounds_factor), round_trips_before=trips,
                         round_trips=" + ".join(str(t) for t in new), equilibrated=bool(got["mnist_truth"]["equilibrated"][0]),
                         seconds=time.perf_counter() - t0, note="stored; run `snrbench certify` next"))
    return pd.DataFrame(rows)
