"""Checks of the tempered starts of the checkpoint families, against an independent route.

* :func:`trajectory_vs_exact` — on the ``m ≤ 20`` checkpoints, whose stored ground truth starts from
  exact samples, solve each cell again from trajectory-tempering starts (the suite's own ``[tempering]``
  table, the trajectory of the same hidden size) and compare the two ``log10 Q(T)`` curves point by
  point. Both are Monte Carlo estimates with their own 95% bootstrap CI, so a point agrees when
  ``|Δ| ≤ √(h_exact² + h_ptt²)``, ``h`` the half-width of each CI on its side of the difference (the
  95% interval of a difference of two independent estimates).
* :func:`trajectory_vs_temperature` — on the ``m > 20`` checkpoints, whose stored ground truth starts
  from trajectory tempering, run temperature PT on the same chain-sweep budget per group (rounds
  chosen so that ``K · (adapt + rounds) · sweeps · R/2`` matches the stored trajectory ladder's
  ``sweeps``) and tabulate round trips per 1000 chain-sweeps (``1000 · trips / sweeps``, summed over
  both groups), the four-z equilibration verdict of each, and how far apart the two curves are
  (``Δ = log10 Q_PT − log10 Q_PTT``, dex: mean and largest |Δ| over T). Two runs can each pass their
  own check and still disagree: the check compares two start groups of one method, so a bias both
  groups share is invisible to it. Against the scoring tolerance (a factor 2, 0.301 dex) the size
  of Δ says whether such a disagreement can change a score.

Both take ``labels`` to re-check chosen cells only (``snrbench check-starts --cell LABEL``).
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from .. import store
from ..families import Cell, get, load_suite

__all__ = ["trajectory_vs_exact", "trajectory_vs_temperature", "with_trajectory", "annealing_vs_stored",
           "ladder_diagnostics"]


def with_trajectory(cells: list[Cell], cell: Cell, tempering: dict) -> Cell:
    """``cell`` with ``tempering`` and the trajectory of its hidden size up to it (from ``cells``)."""
    spec = cell.spec
    earlier = sorted((c.spec for c in cells if c.spec["n_hidden"] == spec["n_hidden"]
                      and c.spec["update"] < spec["update"]), key=lambda s: s["update"])
    spec.update(tempering=tempering, trajectory=[dict(update=s["update"], checkpoint=s["checkpoint"],
                                                      checkpoint_sha256=s["checkpoint_sha256"]) for s in earlier])
    return Cell.from_spec(spec)


def _suite_tempering(cells: list[Cell], method: str) -> dict:
    found = [c.spec["tempering"] for c in cells if c.spec.get("tempering")]
    if not found or found[0]["method"] != method:
        raise ValueError(f"the suite's [tempering] method is not {method!r}")
    return found[0]


def _stored(root, family: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    fam = get(family)
    truth, pt = (store.read_table(root, p).to_pandas() for p in fam.truth_paths()[:2])
    return truth, pt


def _agree(ref: pd.DataFrame, got: pd.DataFrame, n_tests: int = 1) -> np.ndarray:
    """Per T: do two ``log10 Q`` curves with 95% CIs agree, ``|Δ| ≤ c·√(h_ref² + h_got²)`` (module
    docstring)? ``c = 1`` for one point (``n_tests = 1``); for a verdict over ``n_tests`` points at once,
    ``c = z(1 − 0.025/n_tests)/z(0.975)`` widens each half-width to the Bonferroni level, so that two
    unbiased curves pass at every point with probability ≥ 95% (normal approximation of the CIs)."""
    from scipy.stats import norm

    a, b = ref.log10_q.to_numpy(), got.log10_q.to_numpy()
    half_a = np.where(b > a, ref.ci_high - a, a - ref.ci_low)
    half_b = np.where(b > a, b - got.ci_low, got.ci_high - b)
    c = norm.ppf(1 - 0.025 / n_tests) / norm.ppf(0.975)
    return np.abs(b - a) <= c * np.hypot(half_a, half_b)


def _chosen(cells: list[Cell], labels) -> list[Cell]:
    if labels is None:
        return cells
    unknown = sorted(set(labels) - {c.label for c in cells})
    if unknown:
        raise ValueError(f"no cell {', '.join(unknown)} in the suite; cells: {', '.join(c.label for c in cells)}")
    return [c for c in cells if c.label in set(labels)]


def _verdict(truth: dict) -> dict:
    z = [truth[f"{k}_z_{q}"][0] for k in ("start", "drift") for q in ("variance", "gradient")]
    return dict(equilibrated=bool(truth["equilibrated"][0]), max_abs_z=float(np.nanmax(np.abs(z))))


def trajectory_vs_exact(family: str, root, progress: bool = False, labels=None) -> pd.DataFrame:
    """One row per (m ≤ 20 cell, T): exact-start and PTT-start ``log10 Q``, their CIs, and ``inside``
    (module docstring); plus the PTT verdict and seconds per cell."""
    fam = get(family)
    _, cells = load_suite(family)
    tempering = _suite_tempering(cells, "trajectory")
    truth, _ = _stored(root, family)
    rows = []
    for cell in _chosen(cells, labels):
        if cell.spec["tempering"] is not None:
            continue
        ref = truth[truth.cell_id == cell.cell_id].sort_values("T")
        if ref.empty:
            raise ValueError(f"{family}: no stored ground truth for {cell.label} (run `snrbench groundtruth`)")
        t0 = time.perf_counter()
        out = fam.solve_cell(with_trajectory(cells, cell, tempering), progress=progress)["mnist_truth"]
        seconds = time.perf_counter() - t0
        got = pd.DataFrame(out).sort_values("T")
        inside = _agree(ref, got)
        for j, T in enumerate(ref["T"]):
            rows.append(dict(label=cell.label, T=int(T), log10_q_exact=ref.log10_q.iloc[j], log10_q_ptt=got.log10_q.iloc[j],
                             ci_exact=(ref.ci_low.iloc[j], ref.ci_high.iloc[j]),
                             ci_ptt=(got.ci_low.iloc[j], got.ci_high.iloc[j]), inside=bool(inside[j]),
                             seconds=seconds, **_verdict(out)))
    return pd.DataFrame(rows)


def trajectory_vs_temperature(family: str, root, n_rungs: int = 16, adapt_rounds: int = 100,
                              sweeps_per_round: int = 2, progress: bool = False, labels=None) -> pd.DataFrame:
    """One row per tempered cell: trajectory (stored) against temperature PT (run here, ``n_rungs``
    rungs with ``β_min = 0``, adapting for ``adapt_rounds`` or a quarter of the rounds the budget
    allows, whichever is fewer) on the same chain-sweeps per group; round trips per 1000 chain-sweeps,
    verdicts, ``mean_delta`` and ``max_abs_delta`` (PT − PTT, dex), and, where both pass, the share of T
    whose two ``log10 Q`` agree within their CIs. ``table.attrs["curves"]``: both curves per (cell, T),
    with their 95% CIs."""
    fam = get(family)
    _, cells = load_suite(family)
    truth, pt = _stored(root, family)
    rows, curves = [], []
    for cell in _chosen(cells, labels):
        spec = cell.spec
        if spec["tempering"] is None:
            continue
        ladders = pt[(pt.cell_id == cell.cell_id) & (pt.method == "trajectory")]
        ref = truth[truth.cell_id == cell.cell_id].sort_values("T")
        if ladders.empty or ref.empty:
            raise ValueError(f"{family}: no stored trajectory-tempering truth for {cell.label}")
        groups = ladders.groupby("start").agg(sweeps=("sweeps", "first"), trips=("round_trips", "first"),
                                             K=("rung", "size"))
        per_group = int(groups.sweeps.max())
        R2 = spec["n_replicates"] // 2
        total = int(round(per_group / (n_rungs * sweeps_per_round * R2)))
        adapt = min(adapt_rounds, total // 4)  # a short budget adapts for a quarter of it
        rounds = total - adapt
        if rounds < 2:
            raise ValueError(f"{cell.label}: the trajectory budget ({per_group} chain-sweeps per group) does not "
                             f"cover 2 rounds of {n_rungs} rungs")
        spec.pop("trajectory", None)
        spec["tempering"] = dict(method="temperature", rungs=n_rungs, beta_min=0.0, adapt_rounds=adapt,
                                 rounds=rounds, sweeps_per_round=sweeps_per_round)
        t0 = time.perf_counter()
        out = fam.solve_cell(Cell.from_spec(spec), progress=progress)
        seconds = time.perf_counter() - t0
        tpt = pd.DataFrame(out["tempering"]).groupby("start").agg(sweeps=("sweeps", "first"),
                                                                  trips=("round_trips", "first"))
        other = pd.DataFrame(out["mnist_truth"]).sort_values("T")
        ptt_ok, pt_ok = bool(ref.equilibrated.iloc[0]), bool(out["mnist_truth"]["equilibrated"][0])
        agree = np.nan
        if ptt_ok and pt_ok:
            agree = float(np.mean(_agree(ref, other)))
        delta = other.log10_q.to_numpy() - ref.log10_q.to_numpy()
        z_ptt = [ref[f"{k}_z_{q}"].iloc[0] for k in ("start", "drift") for q in ("variance", "gradient")]
        rows.append(dict(
            label=cell.label, ptt_rungs=int(groups.K.max()), ptt_sweeps=int(groups.sweeps.sum()),
            ptt_trips_per_1000=1000 * groups.trips.sum() / groups.sweeps.sum(), ptt_max_abs_z=float(np.nanmax(np.abs(z_ptt))),
            ptt_equilibrated=ptt_ok, pt_rungs=n_rungs, pt_sweeps=int(tpt.sweeps.sum()),
            pt_trips_per_1000=1000 * tpt.trips.sum() / tpt.sweeps.sum(), pt_max_abs_z=_verdict(out["mnist_truth"])["max_abs_z"],
            pt_equilibrated=pt_ok, pt_seconds=seconds, q_agree_share=agree, mean_delta=float(np.mean(delta)),
            max_abs_delta=float(np.max(np.abs(delta)))))
        curves.append(pd.DataFrame(dict(label=cell.label, T=ref["T"].to_numpy(), ptt=ref.log10_q.to_numpy(),
                                        ptt_low=ref.ci_low.to_numpy(), ptt_high=ref.ci_high.to_numpy(),
                                        pt=other.log10_q.to_numpy(), pt_low=other.ci_low.to_numpy(),
                                        pt_high=other.ci_high.to_numpy())))
    table = pd.DataFrame(rows)
    table.attrs["curves"] = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()
    return table


def annealing_vs_stored(family: str, root, n_particles: int | None = None,
                        sweeps_per_step: int | None = None) -> pd.DataFrame:
    """One row per (cell, T) of the annealing side table (at ``n_particles`` and ``sweeps_per_step``,
    default the generation :func:`~snrbench.jobs.annealing.strongest` picks per cell) beside the stored truth: both ``log10 Q`` with their CIs, ``delta`` (annealing −
    stored, dex), ``inside`` (the two agree within their 95% CIs, :func:`_agree`), the stored
    truth's ``start``, and the annealing ``log_z`` against ``log_z_exact`` (``log_z_ok``: within
    ``max(0.1 nats, 3 log_z_err)``; NaN where there is no exact log Z)."""
    from .annealing import annealing_path, strongest

    ann = store.read_table(root, annealing_path(family)).to_pandas()
    if n_particles is not None:
        ann = ann[ann.n_particles == int(n_particles)]
    if sweeps_per_step is not None:
        ann = ann[ann.sweeps_per_step == int(sweeps_per_step)]
    ann = strongest(ann)
    truth, _ = _stored(root, family)
    rows = []
    for cell_id, got in ann.groupby("cell_id", sort=False):
        ref = truth[truth.cell_id == cell_id].sort_values("T")
        got = got.sort_values("T")
        if ref.empty or list(ref["T"]) != list(got["T"]):
            raise ValueError(f"{family}: the annealing rows of {got.label.iloc[0]} have no stored truth on the same T grid")
        inside = _agree(ref, got)
        first = got.iloc[0]
        off = abs(first.log_z - first.log_z_exact)
        log_z_ok = bool(off <= max(0.1, 3 * first.log_z_err)) if np.isfinite(first.log_z_exact) else np.nan
        for j in range(len(got)):
            rows.append(dict(label=first.label, n_hidden=int(first.n_hidden), update=int(first["update"]),
                             n_particles=int(first.n_particles), sweeps_per_step=int(first.sweeps_per_step),
                             T=int(got["T"].iloc[j]),
                             log10_q_annealing=got.log10_q.iloc[j], log10_q_stored=ref.log10_q.iloc[j],
                             delta=got.log10_q.iloc[j] - ref.log10_q.iloc[j], inside=bool(inside[j]),
                             stored_start=ref.start.iloc[0], stored_equilibrated=bool(ref.equilibrated.iloc[0]),
                             log_z=first.log_z, log_z_err=first.log_z_err, log_z_exact=first.log_z_exact,
                             log_z_ok=log_z_ok, ess=first.ess, min_ess=first.min_ess,
                             eff_families=first.eff_families, healthy=bool(first.healthy), health=first.health))
    return pd.DataFrame(rows).sort_values(["n_hidden", "update", "T"]).reset_index(drop=True)


def ladder_diagnostics(family: str, root) -> pd.DataFrame:
    """One row per stored tempering run (cell and group of ladders) with the non-reversible bound of
    :func:`snrbench.truth.tempering.round_trip_bound`: rungs ``K``, ``Lambda`` = Σ (1 − acceptance),
    the lowest pair acceptance, the measured round trips, the bound ``ladders · rounds / (2 + 2Λ)``
    and their ratio; ``min_acceptance_q10``, the lowest over pairs of the 10% quantile over ladders of
    each ladder's own acceptance (the spread across chains; NaN for runs stored before it was
    recorded, which kept only each pair's mean over ladders)."""
    from ..truth.tempering import round_trip_bound

    pt = store.read_table(root, get(family).truth_paths()[1]).to_pandas()
    ladders = {c.cell_id: c.spec["n_replicates"] for c in load_suite(family)[1]}
    rows = []
    for (cell_id, start), g in pt.groupby(["cell_id", "start"], sort=False):
        g = g.sort_values("rung")
        chains = int(ladders[cell_id]) // 2
        lam, bound = round_trip_bound(g.swap_acceptance.to_numpy()[:-1], chains, int(g.rounds.iloc[0]))
        rows.append(dict(label=g.label.iloc[0], start=start, method=g.method.iloc[0], K=len(g), chains=chains,
                         rounds=int(g.rounds.iloc[0]), Lambda=lam, min_acceptance=float(np.nanmin(g.swap_acceptance)),
                         round_trips=int(g.round_trips.iloc[0]), bound=bound,
                         ratio=int(g.round_trips.iloc[0]) / bound,
                         min_acceptance_q10=float(np.nanmin(g.swap_acceptance_q10)) if g.swap_acceptance_q10.notna().any()
                         else np.nan))
    out = pd.DataFrame(rows)
    out["update"] = out.label.str.extract(r"-u(\d+)$")[0].astype(int)
    out["n_hidden"] = out.label.str.extract(r"^m(\d+)-")[0].astype(int)
    return out.sort_values(["n_hidden", "update", "start"]).drop(columns=["update", "n_hidden"]).reset_index(drop=True)
