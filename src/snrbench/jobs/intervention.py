"""The intervention runs of a checkpoint family's plateau onsets: ``<family>.intervention.parquet``.

For every onset of the stored truth (:func:`~snrbench.families._trained_report.true_onsets`, searched
over the trusted checkpoints), training resumes from the checkpoint before the onset and from the
one at it, ``N = u_at − u_before`` updates each, with the recipe's chains and with ``factor`` times
as many, ``seeds`` seeds per arm (:func:`snrbench.truth.train.resume_pcd`), and the log-likelihood
gain of each run is stored (exact for m ≤ 20, AIS with the checkpoints' own settings otherwise; the
start is measured the same way). :func:`~snrbench.truth.intervention.summary` turns the stored rows
into one verdict per onset. Seeds: ``s`` before the onset and ``1000 + s`` at it (:func:`seed_of`),
so the two sides share no random numbers. Each finished run is kept under
``results/.partial/intervention-<family>/`` and reused; the table is committed once all are done.
The runs are independent and run side by side on ``workers`` processes.
"""
from __future__ import annotations

import json
import time
from dataclasses import fields
from functools import partial
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from .. import store
from ..families import Cell, get, load_suite
from ..families._trained_report import true_onsets
from ..store.schema import arrow_schema
from ..truth.intervention import summary
from ..truth.train import TrainConfig, log_likelihood, resume_pcd
from . import executor

__all__ = ["intervention_path", "intervene_family", "summary", "seed_of"]


def intervention_path(family: str) -> str:
    """Where the intervention table of ``family`` is stored, relative to the results root."""
    return f"ground_truth/{family}.intervention.parquet"


def _recipe(family, spec: dict) -> tuple[TrainConfig, dict]:
    """The checkpoint's training recipe and its metadata (log-likelihood measured when it was saved)."""
    meta = json.loads(family.checkpoint_path(spec).with_suffix(".json").read_text())
    hp = meta["hyper_parameters"]
    return TrainConfig(**{f.name: hp[f.name] for f in fields(TrainConfig) if f.name in hp}), meta


def seed_of(side: str, s: int) -> int:
    """The seed of run ``s`` of a side: ``s`` before the onset, ``1000 + s`` at it."""
    return int(s) + (1000 if side == "after" else 0)


def _one_run(family: str, root: Path, job: tuple) -> Path:
    """One resumed training run and its log-likelihood gain, kept as a one-row Parquet piece (on one
    torch thread; the caller's thread count is restored)."""
    with executor.one_torch_thread():
        return _measure(family, root, job)


def _measure(family: str, root: Path, job: tuple) -> Path:
    spec_json, onset_update, side, factor, updates, seed = job
    fam, cell = get(family), Cell(spec_json)
    rbm, data = fam.build_model(cell.spec), fam.build_data(cell.spec)
    cfg, start = _recipe(fam, cell.spec)  # its log-likelihood was measured by log_likelihood when it was saved
    end_model = resume_pcd(rbm, data, cfg, cell.spec["update"], updates, factor * cfg.chains, seed)
    end = log_likelihood(end_model, data, cfg)
    row = dict(suite=cell.spec["suite"], family=family, cell_id=cell.cell_id, label=cell.label,
               n_hidden=rbm.n_hidden, update=cell.spec["update"], onset_update=onset_update, side=side,
               chains=factor * cfg.chains, chains_factor=factor, train_k=cfg.k, updates=updates, seed=seed,
               log_likelihood_start=start["log_likelihood"], log_likelihood_end=end["log_likelihood"],
               gain=end["log_likelihood"] - start["log_likelihood"], log_likelihood_method=end["log_likelihood_method"])
    table = pa.Table.from_pylist([row], schema=arrow_schema("intervention"))
    path = _piece(root, family, job)
    store.atomic_write(path, lambda tmp: pq.write_table(table, tmp))
    return path


def _piece(root: Path, family: str, job: tuple) -> Path:
    spec_json, onset, side, factor, updates, seed = job
    name = f"{Cell(spec_json).cell_id}-onset{onset}-{side}-N{updates}-x{factor}-s{seed}.parquet"
    return Path(root) / ".partial" / f"intervention-{family}" / name


def _jobs(family: str, root: Path, factor: int, seeds: int) -> list[tuple]:
    fam = get(family)
    _, cells = load_suite(family)
    by = {(c.spec["n_hidden"], c.spec["update"]): c for c in cells}
    jobs = []
    for onset in true_onsets(fam.summary(root)).itertuples():
        updates_m = sorted(u for m, u in by if m == onset.m)
        if onset.onset_update not in updates_m or updates_m.index(onset.onset_update) < 1:
            continue  # no onset, or none with a checkpoint before it
        at = int(onset.onset_update)
        before = updates_m[updates_m.index(at) - 1]
        for side, u in (("before", before), ("after", at)):
            for f in (1, int(factor)):
                jobs += [(by[(onset.m, u)].spec_json, at, side, f, int(at - before), seed_of(side, s))
                         for s in range(int(seeds))]
    return jobs


def intervene_family(family: str, root="results", factor: int = 10, seeds: int = 4, workers: int | None = None,
                     progress: bool = True) -> pd.DataFrame:
    """Run (or reuse) every intervention run of ``family``'s onsets and commit the table; returns it."""
    root = Path(root)
    header, _ = load_suite(family)
    if int(factor) < 2 or int(seeds) < 2:
        raise ValueError(f"intervene: need --factor ≥ 2 and --seeds ≥ 2 (a spread per arm), got {factor}, {seeds}")
    jobs = _jobs(family, root, factor, seeds)
    if not jobs:
        raise ValueError(f"{family}: the stored truth has no plateau onset with a checkpoint before it")
    todo = [j for j in jobs if not _piece(root, family, j).exists()]
    t0 = time.perf_counter()
    for k, _ in enumerate(executor.map_cells(partial(_one_run, family, root), todo, workers=workers), 1):
        if progress:
            print(f"  intervention {family}: {k}/{len(todo)} runs ({time.perf_counter() - t0:.0f} s)", flush=True)
    table = pa.concat_tables([pq.read_table(_piece(root, family, j)) for j in jobs])
    summary(table.to_pandas())  # every onset has both sides and both arms, or nothing is committed
    info = dict(suite=header["suite"], family=family, method="resumed PCD training (truth.train.resume_pcd)",
                precision="log-likelihood exact for m ≤ 20, AIS with the checkpoints' settings otherwise",
                suite_file=Path(header["path"]).name)
    store.commit(root, {intervention_path(family): ("intervention", table, info)})
    return table.to_pandas()
