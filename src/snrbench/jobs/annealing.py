"""Population-annealing truth of the checkpoint families: the side table ``<family>.annealing.parquet``.

For each hidden size of a checkpoint family, ``runs`` independent population-annealing runs of
``n_particles`` go from exact samples of the base-rate model through every checkpoint of the
training run in update order (:func:`snrbench.truth.annealing.anneal_trajectory`, steps placed by
the conditional ESS between the shipped checkpoints). At each checkpoint they give ``log Z`` (its
error from the spread of the runs), ESS, families and the health verdict; ``R`` starts drawn evenly
from the runs' equally weighted stations (distinct runs share no ancestor) feed the same Monte
Carlo estimator as the stored truth (:func:`snrbench.truth.mc_scale.scale_q_curve`, ``‖g‖²`` exact
for m ≤ 20), giving ``log10 Q(T)`` with its 95% bootstrap CI.

Resumable below the cell: each finished annealing run is kept in
``results/.partial/annealing-<family>/`` (its stations' statistics and bit-packed states, one
``.npz`` per run), each finished cell's rows there as a Parquet piece; a re-run reuses both. An
unfinished run keeps, after every checkpoint, its stations and its weighted population in
``…-run<r>.part.npz`` and goes on from there, bit for bit the run it would have been. The
stored table is rewritten (through :func:`snrbench.store.commit`) after every cell, so finished
cells are committed as they come; its key is ``(cell_id, n_particles, sweeps_per_step, T)``, so
runs at 2× and 4× the population, or with more sweeps per step, sit beside each other (the names
of the partial files carry every setting, :meth:`Config.tag`). :func:`strongest` picks, per cell,
the generation the certification uses. The table is opt-in (``snrbench anneal``): ``snrbench run``
neither needs nor computes it. The runs, then the cells' Q(T), run side by side on ``workers``
processes (default: the cores this process may use), each on one torch thread, so the rows are the
same bytes for any number of processes; memory grows with the processes (each holds its run's
population: about 2 GB at m = 64 and 5 GB at m = 256 with 4,096 particles).
"""
from __future__ import annotations

import os
import time
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from .. import store
from ..core.observables import mean_gradient_observables
from ..core.tempered import base_rate_bias
from ..families import Cell, get, load_suite
from ..store.schema import arrow_schema
from ..truth import hidden_enum
from ..truth.annealing import FAMILIES_FLOOR, ESS_FLOOR, Snapshot, Station, anneal_trajectory, combine, health
from ..truth.mc_scale import scale_q_curve
from . import executor

__all__ = ["annealing_path", "anneal_family", "Config", "strongest"]


def annealing_path(family: str) -> str:
    """Where the side table of ``family`` is stored, relative to the results root."""
    return f"ground_truth/{family}.annealing.parquet"


def strongest(ann: pd.DataFrame) -> pd.DataFrame:
    """The rows of one generation per cell (a generation is one ``(n_particles, sweeps_per_step)``):
    a healthy one before an unhealthy one, then the most effective families (the least correlated
    starts), then the most chain-sweeps. The choice looks at the health of the population only,
    never at its Q(T), so it cannot favour the curve that agrees with tempering."""
    if ann.empty:
        return ann
    gen = ann.groupby(["cell_id", "n_particles", "sweeps_per_step"], as_index=False).agg(
        healthy=("healthy", "first"), eff_families=("eff_families", "first"), sweeps=("sweeps", "first"))
    best = gen.sort_values(["healthy", "eff_families", "sweeps"], ascending=False).drop_duplicates("cell_id")
    keep = set(zip(best.cell_id, best.n_particles, best.sweeps_per_step))
    return ann[[k in keep for k in zip(ann.cell_id, ann.n_particles, ann.sweeps_per_step)]]


class Config(dict):
    """The annealing settings of one side-table generation (keys: n_particles, runs, sweeps_per_step,
    station_sweeps, cess_target, resample_below); the name of its partial files."""

    def tag(self, m: int) -> str:
        return (f"m{m}-P{self['n_particles']}-s{self['sweeps_per_step']}-w{self['station_sweeps']}"
                f"-c{self['cess_target']:g}-r{self['resample_below']:g}")


def _partial(root: Path, family: str) -> Path:
    return Path(root) / ".partial" / f"annealing-{family}"


def _save_run(path: Path, stations: list[Station], snap: Snapshot | None = None) -> None:
    """One run's stations (statistics and bit-packed states) in one ``.npz``; with ``snap`` also the
    population after the last station, so that an unfinished run can go on from there."""
    arrays = dict(**{k: np.array([getattr(s, k) for s in stations]) for k in
                  ("position", "log_z", "ess", "min_ess", "families", "eff_families", "steps", "sweeps")},
                  states=np.stack([np.packbits(s.states > 0.5, axis=1) for s in stations]),
                  n_visible=np.array(stations[0].states.shape[1]))
    if snap is not None:
        arrays.update(pop_v=np.packbits(snap.v > 0.5, axis=1), pop_logw=snap.logw, pop_ancestors=snap.ancestors,
                      pop_log_z=np.array(snap.log_z), pop_sweeps=np.array(snap.sweeps))

    def write(tmp):
        with open(tmp, "wb") as fh:  # a file object: np.savez would add ".npz" to a temporary name
            np.savez(fh, **arrays)

    store.atomic_write(path, write)


def _load_snapshot(path: Path, units: str) -> Snapshot | None:
    """The :class:`Snapshot` kept by an unfinished run (``None`` if none is readable)."""
    stations = _load_run(path)
    try:
        z = np.load(path)
        v = np.unpackbits(z["pop_v"], axis=1)[:, : int(z["n_visible"])].astype(np.float64)
        return Snapshot(stations, 2.0 * v - 1.0 if units == "spin" else v, z["pop_logw"], z["pop_ancestors"],
                        float(z["pop_log_z"]), int(z["pop_sweeps"])) if stations else None
    except (OSError, KeyError, ValueError):
        return None


def _load_run(path: Path, only: int | None = None) -> list[Station] | None:
    """The stations kept in a run's ``.npz`` (``only``: just the one at that index, in a list of one)."""
    try:
        z = np.load(path)
        n = int(z["n_visible"])
        which = range(len(z["position"])) if only is None else [only]
        return [Station(int(z["position"][i]), float(z["log_z"][i]), float(z["ess"][i]), float(z["min_ess"][i]),
                        int(z["families"][i]), float(z["eff_families"][i]), int(z["steps"][i]), int(z["sweeps"][i]),
                        np.unpackbits(z["states"][i], axis=1)[:, :n].astype(np.float64))
                for i in which]
    except (OSError, KeyError, ValueError, IndexError):
        return None


def _run_path(root: Path, family: str, cfg: Config, m: int, r: int) -> Path:
    return _partial(root, family) / f"{cfg.tag(m)}-run{r}.npz"


def _one_run(family: str, specs: list[dict], cfg: Config, root: Path, device, progress: bool, r: int) -> int:
    """Compute (or resume) annealing run ``r`` of one hidden size and keep it in the partial folder; module
    level, so a process pool can run it. Its seed is ``1000·m + r`` whichever process runs it."""
    with executor.one_torch_thread():
        return _anneal_run(family, specs, cfg, root, device, progress, r)


def _anneal_run(family: str, specs: list[dict], cfg: Config, root: Path, device, progress: bool, r: int) -> int:
    fam = get(family)
    models = [fam.build_model(s) for s in specs]
    a0 = base_rate_bias(fam.build_data(specs[0]))
    path = _run_path(root, family, cfg, specs[0]["n_hidden"], r)
    part = path.with_suffix(".part.npz")  # an unfinished run, after its last station
    t0 = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    snap = _load_snapshot(part, models[0].units) if part.exists() else None
    if snap is not None and progress:
        print(f"  annealing run {r + 1}/{cfg['runs']} of m = {specs[0]['n_hidden']}: resumed after "
              f"{len(snap.stations)} of {len(specs)} checkpoints", flush=True)
    run = anneal_trajectory(models, a0, cfg["n_particles"], cess_target=cfg["cess_target"],
                            resample_below=cfg["resample_below"], sweeps_per_step=cfg["sweeps_per_step"],
                            station_sweeps=cfg["station_sweeps"], seed=1000 * specs[0]["n_hidden"] + r,
                            device=device, progress=False, resume=snap,
                            on_station=lambda sn: _station_done(part, sn, r, len(specs), cfg, t0, progress))
    _save_run(path, run.stations)
    part.unlink(missing_ok=True)
    if progress:
        print(f"  annealing run {r + 1}/{cfg['runs']} of m = {specs[0]['n_hidden']}: "
              f"{time.perf_counter() - t0:.0f} s, {run.sweeps:,} chain-sweeps", flush=True)
    return r


def _station_done(part: Path, snap: Snapshot, r: int, n: int, cfg: Config, t0: float, progress: bool) -> None:
    """Keep an unfinished run after a station, and say where it is (one line per station: the runs of
    several processes interleave)."""
    _save_run(part, snap.stations, snap)
    if progress:
        done = len(snap.stations)
        print(f"  annealing run {r + 1}/{cfg['runs']}: checkpoint {done}/{n} after {time.perf_counter() - t0:.0f} s, "
              f"effective families {snap.stations[-1].eff_families:.0f}", flush=True)


def _runs(family: str, specs: list[dict], cfg: Config, root: Path, device, progress: bool, workers: int) -> None:
    """Finish the ``cfg['runs']`` annealing runs of one hidden size in the partial folder: those not
    finished there run side by side on ``workers`` processes, each on one torch thread (so the rows
    are the same bytes for any number of processes)."""
    m = specs[0]["n_hidden"]

    def finished(r):  # not missing, nor run only up to an earlier checkpoint
        return _load_run(_run_path(root, family, cfg, m, r), only=len(specs) - 1) is not None

    todo = [r for r in range(cfg["runs"]) if not finished(r)]
    workers = 1 if device != "cpu" else max(1, min(workers, len(todo) or 1))
    for _ in executor.map_cells(partial(_one_run, family, specs, cfg, root, device, progress), todo,
                                workers=workers):
        pass


def _cell_piece(family: str, cfg: Config, root: Path, device, job: tuple[str, int]) -> str:
    """Compute the side table's rows of one cell (``job``: its spec JSON and its index ``j`` among the
    checkpoints of its hidden size) from the finished runs' stations ``j`` and keep them as a Parquet
    piece in the partial folder; module level, so a process pool can run it. Returns the cell's id."""
    with executor.one_torch_thread():
        return _cell_rows_piece(family, cfg, root, device, job)


def _cell_rows_piece(family: str, cfg: Config, root: Path, device, job: tuple[str, int]) -> str:
    spec_json, j = job
    cell = Cell(spec_json)
    m = cell.spec["n_hidden"]
    stations = [_load_run(_run_path(root, family, cfg, m, r), only=j)[0] for r in range(cfg["runs"])]
    rows = _cell_rows(get(family), cell, stations, cfg, device)
    table = pa.Table.from_pydict(rows, schema=arrow_schema("annealing"))
    store.atomic_write(_piece_path(root, family, cfg, cell), lambda tmp: pq.write_table(table, tmp))
    return cell.cell_id


def _piece_path(root: Path, family: str, cfg: Config, cell: Cell) -> Path:
    return _partial(root, family) / f"{cell.cell_id}-{cfg.tag(cell.spec['n_hidden'])}.parquet"


def _cell_rows(family, cell: Cell, stations: list[Station], cfg: Config, device) -> dict[str, list]:
    """Rows of the side table for one checkpoint (one per T), from each run's station there."""
    spec = cell.spec
    rbm, data = family.build_model(spec), family.build_data(spec)
    obs, R, T = spec["observables"], spec["n_replicates"], family.t_grid(spec)
    # a seed of its own: with the stored truth's seed the chains would share its uniforms and couple with
    # its chains within a few sweeps of a weakly coupled model, and the comparison would not be independent
    seed = (int(cell.cell_id[:8], 16) + 0x5EED) % 2**31
    rng = np.random.default_rng(seed)
    take = np.array_split(np.arange(R), len(stations))  # R starts, evenly from the runs
    v0 = np.vstack([s.states[rng.choice(len(s.states), len(k), replace=False)] for s, k in zip(stations, take)])
    exact = rbm.n_hidden <= hidden_enum.MAX_HIDDEN
    g2 = hidden_enum.grad_norm2(rbm, data, obs) if exact else None
    t0 = time.perf_counter()
    curve = scale_q_curve(rbm, mean_gradient_observables(rbm, data, obs), v0, T, obs, seed=seed,
                          grad_norm2_exact=g2, device=device)
    seconds = time.perf_counter() - t0
    log_z, err = combine([s.log_z for s in stations])
    verdicts = [health(s) for s in stations]
    why = "; ".join(sorted({w for ok, w in verdicts if not ok}))
    per_cell = dict(suite=spec["suite"], family=spec["family"], cell_id=cell.cell_id, label=cell.label,
                    n_hidden=rbm.n_hidden, update=spec["update"], n_particles=cfg["n_particles"], runs=len(stations),
                    sweeps_per_step=cfg["sweeps_per_step"],
                    log_z=log_z, log_z_err=err,
                    log_z_exact=hidden_enum.log_partition(rbm) if exact else float("nan"),
                    ess=min(s.ess for s in stations), min_ess=min(s.min_ess for s in stations),
                    families=min(s.families for s in stations), eff_families=min(s.eff_families for s in stations),
                    steps=stations[0].steps, sweeps=sum(s.sweeps for s in stations),
                    healthy=all(ok for ok, _ in verdicts), health=why,
                    grad_norm2=curve.grad_norm2_used, n_replicates=R, seconds=seconds)
    nT = len(T)
    cols = {k: [v] * nT for k, v in per_cell.items()}
    cols.update(T=T.tolist(), log10_q=curve.log10_q.tolist(), ci_low=curve.ci_low.tolist(),
                ci_high=curve.ci_high.tolist(), trace_cov=curve.trace_cov.tolist())
    return {c.name: cols[c.name] for c in arrow_schema("annealing")}


def _commit(root: Path, family: str, header: dict) -> None:
    """Rewrite the side table: the stored rows of no piece, plus every finished piece in the partial
    folder (so two processes annealing one family at different populations lose nothing: whichever
    commits last includes both)."""
    rel = annealing_path(family)
    pieces = sorted(_partial(root, family).glob("*.parquet"))
    new = pa.concat_tables([pq.read_table(p) for p in pieces]).to_pandas()
    if (Path(root) / rel).exists():
        old = store.read_table(root, rel).to_pandas()
        key = set(zip(new.cell_id, new.n_particles, new.sweeps_per_step))
        old = old[[k not in key for k in zip(old.cell_id, old.n_particles, old.sweeps_per_step)]]
        new = pd.concat([old, new], ignore_index=True)
    new = new.sort_values(["n_hidden", "update", "n_particles", "sweeps_per_step", "T"]).reset_index(drop=True)
    table = pa.Table.from_pydict(new.to_dict("list"), schema=arrow_schema("annealing"))  # NaN stays NaN, not null
    info = dict(suite=header["suite"], family=family, method="population annealing",
                precision=f"float32 chains, float64 log-weights; families floor {FAMILIES_FLOOR:g}, ESS floor {ESS_FLOOR:g}",
                suite_file=Path(header["path"]).name)
    store.commit(root, {rel: ("annealing", table, info)})


def anneal_family(family: str, root="results", hidden=None, labels=None, n_particles: int = 1024, runs: int = 4,
                  sweeps_per_step: int = 10, station_sweeps: int = 20, cess_target: float = 0.95,
                  resample_below: float = 0.5, device: str | None = None, progress: bool = True,
                  workers: int | None = None) -> pd.DataFrame:
    """Compute (or resume) the side table's rows of ``family`` for the hidden sizes ``hidden`` (default
    all) or the cells ``labels``, at population ``n_particles``; commit after every cell; return the
    rows of this call's cells (module docstring). ``workers`` processes (default: all cores) run the
    independent runs, then the cells' Q(T), side by side; the rows are the same bytes for any count."""
    root = Path(root)
    header, cells = load_suite(family)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    workers = workers or len(os.sched_getaffinity(0))
    cfg = Config(n_particles=int(n_particles), runs=int(runs), sweeps_per_step=int(sweeps_per_step),
                 station_sweeps=int(station_sweeps), cess_target=float(cess_target),
                 resample_below=float(resample_below))
    if cfg["runs"] < 2 or cfg["n_particles"] * cfg["runs"] < cells[0].spec["n_replicates"]:
        raise ValueError(f"anneal: need runs ≥ 2 and runs × n_particles ≥ R = {cells[0].spec['n_replicates']} "
                         f"(the starts are drawn from the runs), got {runs} × {n_particles}")
    sizes = sorted({c.spec["n_hidden"] for c in cells})
    unknown = sorted(set(hidden or []) - set(sizes)) + sorted(set(labels or []) - {c.label for c in cells})
    if unknown:
        raise ValueError(f"{family}: no hidden size or cell {unknown}; hidden sizes {sizes}, "
                         f"cells {[c.label for c in cells]}")
    done = []
    for m in sizes:
        mine = sorted((c for c in cells if c.spec["n_hidden"] == m), key=lambda c: c.spec["update"])
        chosen = [c for c in mine if (hidden is None or m in hidden) and (labels is None or c.label in labels)]
        if (hidden is not None or labels is not None) and not chosen:
            continue
        chosen = chosen or mine
        last = max(mine.index(c) for c in chosen)
        _runs(family, [c.spec for c in mine[: last + 1]], cfg, root, device, progress, workers)
        todo = [(c.spec_json, mine.index(c)) for c in chosen if not _piece_path(root, family, cfg, c).exists()]
        n = 1 if device != "cpu" else max(1, min(workers, len(todo) or 1))
        t0 = time.perf_counter()
        for _, cell_id in executor.map_cells(partial(_cell_piece, family, cfg, root, device),
                                             todo, workers=n):
            _commit(root, family, header)  # finished cells are committed as they come
            if progress:
                c = next(c for c in chosen if c.cell_id == cell_id)
                healthy = pq.read_table(_piece_path(root, family, cfg, c), columns=["healthy"]).column(0)[0].as_py()
                print(f"  {family} {c.label}: Q(T) from annealing starts ({time.perf_counter() - t0:.0f} s into "
                      f"{len(todo)} cell(s) on {n} process(es)), healthy={healthy}", flush=True)
        done += [_piece_path(root, family, cfg, c) for c in chosen]
    if done:
        _commit(root, family, header)
    return pd.concat([pq.read_table(p).to_pandas() for p in done], ignore_index=True) if done else pd.DataFrame()
