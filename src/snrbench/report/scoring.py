"""Scores of leaderboard entries against the exact ground truth (pure functions of ``results/``).

Per cell and entry, with ``err(T) = |log10 Q_pred(T) − log10 Q_true(T)|`` (dex) on the cell's T grid:

- ``max_err = max_T err``, ``median_err = median_T err``; the cell is **tracked** when
  ``max_err ≤ TRACK_TOL = log10 2`` (the prediction is within a factor 2 of Q at every T);
- timing: ``T*(1)``, the window (sweeps) at which Q first reaches 1 (:func:`snrbench.spectral.t_star`),
  and ``timing_ratio = T*_pred(1) / T*_true(1)``;
- ``log10 Q`` of both at :data:`T_REF`, the input of the Spearman rank correlation across a family's cells;
- ``grad_norm2_err = |log10 ‖g‖²_pred − log10 ‖g‖²_true|`` (dex; NaN when the entry reports no ‖g‖²);
- the entry's cost on the cell (chain-sweeps, wall and CPU seconds), copied from its prediction rows.

Scores are kept per budget of the ladder (:data:`snrbench.predict.BUDGETS`). :func:`family_summary`
and :func:`overall_summary` aggregate the per-cell scores at the full budget into leaderboard rows;
:func:`budget_summary` gives the tracked fraction at every budget, its area over log-budget and the
smallest budget that tracks 90% of the cells.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from .. import store
from ..store.schema import TABLES
from ..families import get
from ..core.spectral import t_star
from ..truth.onset import trusted
from ..predict.contract import BUDGET, BUDGETS

__all__ = ["T_REF", "TRACK_TOL", "SCORES_REL", "score_cells", "score", "sort_scores", "prediction_files",
           "read_predictions", "read_ground_truth", "family_summary", "overall_summary", "budget_summary",
           "frontier_area", "TRACK_GOAL", "at_largest_budget", "track_z_interval", "stable_floats",
           "SIGNIFICANT_DIGITS"]

#: Window (sweeps) at which log10 Q is compared across cells for the Spearman rank correlation.
#: An interior point of the suite grid 2^0 … 2^16 (2^10): at T = 1 every chain gives
#: Q(1) = ‖g‖²/V, so the ranking there says nothing about mixing, and at the top of the grid the
#: ranking of slow cells hinges on the last few windows; mid-grid the curves of fast and slow
#: cells are already separated by their dynamics. Off-grid it is interpolated linearly in log T.
T_REF = 1024
#: Significant digits of every float stored in the scores (:func:`stable_floats`; DESIGN §6).
SIGNIFICANT_DIGITS = 10
#: Tracking tolerance (dex): a cell is tracked when ``max_T err ≤ log10 2``.
TRACK_TOL = float(np.log10(2.0))
#: Absolute slack on the tracking test, so that an error of exactly log10 2 computed with
#: rounding (e.g. a curve multiplied by 2) counts as tracked.
_TRACK_SLACK = 1e-12

SCORES_REL = "scores.parquet"
_PRED_DIR = "predictions/"
_SCORE_COLUMNS = [c.name for c in TABLES["scores"]]
_ENTRY_KEYS = ["predictor", "access", "budget", "family", "cell_id"]
#: The share of a family's cells an entry must track for :func:`budget_summary`'s smallest budget.
TRACK_GOAL = 0.9
_SUMMARY_COLUMNS = ["family", "access", "predictor", "n_cells", "tracked", "median_max_err", "max_max_err",
                    "median_timing_ratio", "worst_timing_factor", "spearman", "median_grad_norm2_err",
                    "median_sweeps", "median_seconds", "median_cpu_seconds"]


def _timing_ratio(t_pred: float, t_true: float) -> float:
    """``T*_pred / T*_true``; ``inf`` when only the truth reaches Q = 1 on the grid, ``0`` when only
    the prediction does, and ``1`` when neither does (both agree: no crossing within the grid)."""
    if np.isinf(t_pred) and np.isinf(t_true):
        return 1.0
    return float(t_pred / t_true)


def _constant(values: np.ndarray, what: str, where: str) -> float:
    """The one value of a per-cell column (NaN-aware); ValueError if the rows disagree."""
    v = np.asarray(values, dtype=np.float64)
    finite = v[~np.isnan(v)]
    if finite.size and (finite.size != v.size or np.any(finite != finite[0])):
        raise ValueError(f"{where}: {what} differs between the T rows of one cell ({np.unique(v).tolist()})")
    return float(finite[0]) if finite.size else float("nan")


def score_cells(truth: pd.DataFrame, pred: pd.DataFrame) -> pd.DataFrame:
    """Per-cell scores of every (predictor, access, family, cell_id) in ``pred``.

    ``truth`` has the ground-truth columns (at least family, cell_id, label, suite, T, log10_q,
    grad_norm2), ``pred`` the prediction columns (at least predictor, access, family, cell_id, T,
    log10_q, grad_norm2, sweeps, seconds, cpu_seconds). Rows are joined on (family, cell_id, T); a prediction must
    cover every T of the truth's grid for the cell, exactly once. Returns the columns of the
    ``scores`` table (suite and label from the truth), one row per entry and cell, in input order.

    Raises ValueError, naming the entry and the cell, when a prediction names a cell that is not in
    the ground truth, misses or repeats a T, has T values off the grid, or is not finite.
    """
    truth_cells = {key: g.sort_values("T") for key, g in truth.groupby(["family", "cell_id"], sort=False)}
    rows = []
    for (name, access, budget, family, cell_id), p in pred.groupby(_ENTRY_KEYS, sort=False):
        where = f"entry {name!r} ({access}, budget {budget:,}), family {family!r}, cell {cell_id}"
        t = truth_cells.get((family, cell_id))
        if t is None:
            raise ValueError(f"{where}: cell_id not in the ground truth of family {family!r}")
        label = t["label"].iloc[0]
        where = f"entry {name!r} ({access}, budget {budget:,}), family {family!r}, cell {label} ({cell_id})"
        T = t["T"].to_numpy(np.int64)
        Tp = p["T"].to_numpy(np.int64)
        missing = sorted(set(T.tolist()) - set(Tp.tolist()))
        extra = sorted(set(Tp.tolist()) - set(T.tolist()))
        if missing or extra or len(Tp) != len(T):
            raise ValueError(f"{where}: prediction does not cover the cell's T grid exactly once "
                             f"(missing T={missing}, off-grid T={extra}, {len(Tp)} rows for {len(T)} T values)")
        p = p.sort_values("T")
        lq_pred = p["log10_q"].to_numpy(np.float64)
        lq_true = t["log10_q"].to_numpy(np.float64)
        if not np.all(np.isfinite(lq_pred)):
            raise ValueError(f"{where}: predicted log10_q is not finite at T={Tp[~np.isfinite(lq_pred)].tolist()}")
        err = np.abs(lq_pred - lq_true)
        max_err = float(err.max())
        z_low, z_high = track_z_interval(lq_pred, lq_true, *(t[c].to_numpy(np.float64) if c in t else None
                                                             for c in ("ci_low", "ci_high")))
        ts_pred, ts_true = t_star(lq_pred, T), t_star(lq_true, T)
        lT, lT_ref = np.log10(T.astype(np.float64)), np.log10(T_REF)
        g_pred = _constant(p["grad_norm2"].to_numpy(), "grad_norm2", where)
        g_true = _constant(t["grad_norm2"].to_numpy(), "grad_norm2 (ground truth)", where)
        rows.append(dict(
            suite=t["suite"].iloc[0], family=family, cell_id=cell_id, label=label, predictor=name, access=access,
            budget=int(budget), max_err=max_err, median_err=float(np.median(err)), tracked=bool(max_err <= TRACK_TOL + _TRACK_SLACK),
            track_z_low=z_low, track_z_high=z_high,
            t_star_pred=ts_pred, t_star_true=ts_true, timing_ratio=_timing_ratio(ts_pred, ts_true),
            log10_q_pred_ref=float(np.interp(lT_ref, lT, lq_pred)),
            log10_q_true_ref=float(np.interp(lT_ref, lT, lq_true)),
            grad_norm2_err=abs(math.log10(g_pred) - math.log10(g_true)) if np.isfinite(g_pred)
            else float("nan"),
            sweeps=int(_constant(p["sweeps"].to_numpy(), "sweeps", where)),
            seconds=_constant(p["seconds"].to_numpy(), "seconds", where),
            cpu_seconds=_constant(p["cpu_seconds"].to_numpy(), "cpu_seconds", where),
        ))
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in _SCORE_COLUMNS})
    return pd.DataFrame(rows, columns=_SCORE_COLUMNS)


def track_z_interval(lq_pred, lq_true, ci_low=None, ci_high=None) -> tuple[float, float]:
    """The truth shifts ``z`` (standard deviations of its CI) at which the cell stays tracked: ``[z_low, z_high]``.

    The truth moved by ``z`` is ``log10 Q_true(T) + z·s(T)`` at every T at once, with
    ``s = (ci_high − log10 Q_true)/1.96`` for ``z ≥ 0`` and ``(log10 Q_true − ci_low)/1.96`` for ``z < 0``
    (the 95% CI read as ±1.96 standard deviations, one draw for the whole curve). The cell is tracked at
    ``z`` when ``|log10 Q_pred − log10 Q_true − z·s| ≤ log10 2`` at every T; each T allows an interval of z
    (``z·s`` is increasing in z) and the cell allows their intersection. Without a CI (exact truth, or NaN)
    ``s = 0``: ``(−inf, inf)`` when tracked, an interval holding no finite z when not (``z_low > z_high``,
    or both ``+inf`` or both ``−inf``). So
    ``tracked ⇔ z_low ≤ 0 ≤ z_high``.
    """
    a = np.asarray(lq_pred, np.float64) - np.asarray(lq_true, np.float64)
    up = down = np.zeros_like(a)
    if ci_low is not None and ci_high is not None:
        up = np.nan_to_num((np.asarray(ci_high, np.float64) - lq_true) / 1.96, nan=0.0).clip(0.0)
        down = np.nan_to_num((np.asarray(lq_true, np.float64) - ci_low) / 1.96, nan=0.0).clip(0.0)
    tol = TRACK_TOL + _TRACK_SLACK

    def inverse(y):  # the z with z·s(z) = y, per T (±inf where s = 0 on that side)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(y > 0, np.where(up > 0, y / up, np.inf),
                            np.where(y < 0, np.where(down > 0, y / down, -np.inf), 0.0))

    return float(inverse(a - tol).max()), float(inverse(a + tol).min())


def _manifest_files(root: Path) -> dict:
    path = root / store.MANIFEST
    if not path.exists():
        raise store.ResultsError(f"{path}: missing (no stored results under {root})")
    try:
        return json.loads(path.read_text())["files"]
    except (json.JSONDecodeError, KeyError) as exc:
        raise store.ResultsError(f"{path}: not a valid manifest ({exc})") from None


def prediction_files(root: Path | str) -> list[str]:
    """Relative paths of the prediction files: those listed in the manifest plus any stray
    ``predictions/*.parquet`` on disk (which :func:`store.read_table` then refuses as unlisted)."""
    root = Path(root)
    listed = {rel for rel in _manifest_files(root) if rel.startswith(_PRED_DIR) and rel.endswith(".parquet")}
    on_disk = {f"{_PRED_DIR}{p.name}" for p in (root / _PRED_DIR).glob("*.parquet")}
    return sorted(listed | on_disk)


def read_predictions(root: Path | str) -> pd.DataFrame:
    """All stored predictions (checksums verified), concatenated in file order."""
    root = Path(root)
    rels = prediction_files(root)
    if not rels:
        raise store.ResultsError(f"nothing to score: no {_PRED_DIR}*.parquet under {root}")
    frames = []
    for rel in rels:
        if not (root / rel).exists():
            raise store.ResultsError(f"{rel}: listed in {store.MANIFEST} but missing under {root}")
        frames.append(store.read_table(root, rel).to_pandas())
    return pd.concat(frames, ignore_index=True)


def read_ground_truth(root: Path | str, families) -> pd.DataFrame:
    """The ground-truth curves of ``families`` (checksums verified); ResultsError if one is missing."""
    root = Path(root)
    frames = []
    for family in sorted(set(families)):
        rel = get(family).truth_paths()[0]
        if not (root / rel).exists():
            raise store.ResultsError(f"missing ground truth {root / rel}: generate it with "
                                     f"`snrbench groundtruth --family {family}`")
        frames.append(store.read_table(root, rel).to_pandas())
    return pd.concat(frames, ignore_index=True)


def scorable(truth: pd.DataFrame, pred: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ground truth and the predictions that entries are scored on: all, except the Monte Carlo cells
    whose truth is not trusted (:func:`~snrbench.truth.onset.trusted`): stored with ``equilibrated =
    False`` (its two groups of tempering starts disagree) or ``certified = False`` (no two start
    generators of independent method agree, DESIGN §2.4). A curve that may still remember its
    initialisation is no truth to score against."""
    keep = trusted(truth)
    left_out = set(zip(truth.family[~keep], truth.cell_id[~keep]))
    drop = np.fromiter((key in left_out for key in zip(pred.family, pred.cell_id)), bool, len(pred))
    return truth[keep], pred[~drop]


def sort_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Deterministic order: family, access, predictor, budget, label (cell_id breaks label ties)."""
    keys = ["family", "access", "predictor", "budget", "label", "cell_id"]
    return scores.sort_values(keys, kind="stable", ignore_index=True)


def score(root: Path | str) -> Path:
    """Score every stored prediction against its family's ground truth; write ``root/scores.parquet``.

    The file's metadata records the SHA-256 of every input file (``inputs``), so a leaderboard can
    tell when the scores are older than the predictions or the ground truth they came from.
    """
    root = Path(root)
    store.recover(root)  # the manifest below must be the one of the last whole commit
    pred = read_predictions(root)
    families = sorted(set(pred["family"]))
    every_cell = read_ground_truth(root, families)
    truth, scored = scorable(every_cell, pred)
    scores = sort_scores(score_cells(truth, scored))
    manifest = _manifest_files(root)
    rels = sorted(prediction_files(root) + [get(f).truth_paths()[0] for f in families])
    inputs = {rel: manifest[rel]["sha256"] for rel in rels}
    data = {c: stable_floats(scores[c].to_numpy()) for c in _SCORE_COLUMNS}
    prov = _provenance(root, inputs)
    tables = {SCORES_REL: ("scores", data, dict(families=families, inputs=inputs, t_ref=T_REF, track_tol=TRACK_TOL,
                                                significant_digits=SIGNIFICANT_DIGITS, **prov))}
    trained = [f for f in families if get(f).onset]
    if trained:
        from ..truth.onset import ONSET_REL, onset_table

        full = pred[pred.family.isin(trained) & (pred.budget == BUDGET)]
        onsets = onset_table(every_cell[every_cell.family.isin(trained)], full)
        tables[ONSET_REL] = ("onset", {c: onsets[c].to_numpy() for c in onsets.columns},
                             dict(families=trained, inputs=inputs, **prov))
    return store.commit(root, tables)[SCORES_REL]  # the scores and the onsets from the same inputs, together


def stable_floats(x: np.ndarray) -> np.ndarray:
    """Float columns rounded to :data:`SIGNIFICANT_DIGITS` significant digits (decimal, correctly rounded
    by Python's ``format``), other columns unchanged: what scoring stores, so that a last-bit difference
    between CPUs (vectorised ``log10`` differs with the SIMD width) leaves the stored bytes alone."""
    if x.dtype.kind != "f":
        return x
    return np.array([float(f"{v:.{SIGNIFICANT_DIGITS}g}") for v in x.tolist()], dtype=x.dtype)


_KEPT = ("code_commit", "scored_on", "code_version", "hardware", "python")


def _provenance(root: Path, inputs: dict) -> dict:
    """``code_commit`` (the project checkout's git commit, "not a git checkout" otherwise) and
    ``scored_on`` (UTC date) of this scoring; kept, with the code version, hardware and Python version
    recorded in the file, from the stored scores when their inputs are the same, so rescoring unchanged
    results on any machine rewrites the same bytes."""
    import datetime
    import subprocess

    import pyarrow.parquet as pq

    from ..store.locations import project_root

    if (root / SCORES_REL).exists():
        old = json.loads((pq.read_schema(root / SCORES_REL).metadata or {}).get(b"snrbench", b"{}"))
        if old.get("inputs") == inputs and "scored_on" in old:
            return {k: old[k] for k in _KEPT if k in old}
    try:
        commit = subprocess.run(["git", "-C", str(project_root()), "rev-parse", "--short=12", "HEAD"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return dict(code_commit=commit or "not a git checkout",
                scored_on=datetime.datetime.now(datetime.timezone.utc).date().isoformat())


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``x``, ties sharing their mean rank (``scipy.stats.rankdata``'s "average"): exact
    half-integers, whichever way they are computed."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    new = np.r_[True, xs[1:] != xs[:-1]]
    group = np.cumsum(new)  # 1-based tie group of each sorted position
    bounds = np.r_[np.flatnonzero(new), len(x)]  # where each group starts, then n
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = 0.5 * (bounds[group - 1] + 1 + bounds[group])
    return ranks


def _spearman(x, y) -> float:
    """Spearman ρ of x vs y; NaN with fewer than 3 points or when either side is constant or not finite
    (where scipy would warn and return NaN). ρ is ``scipy.stats.spearmanr``'s, computed as it does (the
    correlation matrix of the average ranks, ``np.corrcoef``), without importing scipy.stats (a second
    per page build)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.size < 3 or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))) or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    ranked = np.column_stack((_average_ranks(x), _average_ranks(y)))
    return float(np.corrcoef(ranked, rowvar=False)[1, 0])


def _median_reported(x) -> float:
    """Median over the finite-or-inf entries (NaN = not reported); NaN when none is reported."""
    x = np.asarray(x, dtype=np.float64)
    x = x[~np.isnan(x)]
    return float(np.median(x)) if x.size else float("nan")


def _aggregate(g: pd.DataFrame) -> dict:
    r = g["timing_ratio"].to_numpy(np.float64)
    with np.errstate(divide="ignore"):
        factor = np.maximum(r, 1.0 / r)  # r = 0 or inf → inf
    return dict(
        n_cells=len(g), tracked=int(g["tracked"].sum()),
        median_max_err=float(np.median(g["max_err"])), max_max_err=float(np.max(g["max_err"])),
        median_timing_ratio=float(np.median(r)), worst_timing_factor=float(np.max(factor)),
        median_grad_norm2_err=_median_reported(g["grad_norm2_err"]),
        median_sweeps=float(np.median(g["sweeps"])), median_seconds=float(np.median(g["seconds"])),
        median_cpu_seconds=float(np.median(g["cpu_seconds"])),
    )


def at_largest_budget(scores: pd.DataFrame) -> pd.DataFrame:
    """Each (family, access, predictor)'s rows at the largest budget it was scored at (the full one,
    unless only lower rungs were run)."""
    if "budget" not in scores or scores.empty:
        return scores
    top = scores.groupby(["family", "access", "predictor"])["budget"].transform("max")
    return scores[scores["budget"] == top]


def family_summary(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per (family, access, predictor) at its largest budget (normally the full one), sorted by those keys.

    Columns: n_cells; tracked (count of tracked cells); median_max_err, max_max_err (dex);
    median_timing_ratio (T*_pred/T*_true); worst_timing_factor = max over cells of max(r, 1/r)
    (1 = perfect; inf when some cell crosses Q = 1 on only one side); spearman = Spearman ρ across the
    family's cells of log10 Q_pred vs log10 Q_true at T_REF (NaN with < 3 cells or a constant side);
    median_grad_norm2_err (dex, over cells where the entry reports ‖g‖²; NaN if none);
    median_sweeps (chain-sweeps), median_seconds (wall), median_cpu_seconds (the worker's CPU; s).
    """
    rows = []
    for (family, access, name), g in at_largest_budget(scores).groupby(["family", "access", "predictor"], sort=True):
        rows.append(dict(family=family, access=access, predictor=name, **_aggregate(g),
                         spearman=_spearman(g["log10_q_pred_ref"], g["log10_q_true_ref"])))
    return pd.DataFrame(rows, columns=_SUMMARY_COLUMNS)


def overall_summary(scores: pd.DataFrame) -> pd.DataFrame:
    """The :func:`family_summary` columns aggregated over all families per (access, predictor).

    Counts and medians/maxima run over all the entry's cells; ``spearman`` is the mean of the
    per-family values that are defined (rank correlations across different families are not
    comparable, so they are not pooled); ``n_families`` counts the families the entry covers.
    """
    fam = family_summary(scores)
    rows = []
    for (access, name), g in at_largest_budget(scores).groupby(["access", "predictor"], sort=True):
        rho = fam.loc[(fam.access == access) & (fam.predictor == name), "spearman"].to_numpy(np.float64)
        rho = rho[~np.isnan(rho)]
        rows.append(dict(access=access, predictor=name, n_families=int(g["family"].nunique()), **_aggregate(g),
                         spearman=float(rho.mean()) if rho.size else float("nan")))
    return pd.DataFrame(rows, columns=["access", "predictor", "n_families"] + _SUMMARY_COLUMNS[3:])


def frontier_area(budgets, fractions) -> float:
    """Area under the tracked fraction over ``log2 budget``, divided by the ladder's span: the mean
    fraction over log-budget by the trapezoid rule, in [0, 1] (one budget: that fraction)."""
    x, y = np.log2(np.asarray(budgets, dtype=np.float64)), np.asarray(fractions, dtype=np.float64)
    if x.size == 1:
        return float(y[0])
    return float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(x)) / (x[-1] - x[0]))


def budget_summary(scores: pd.DataFrame, by_family: bool = True) -> pd.DataFrame:
    """The tracked fraction against budget, one row per (family,) access, predictor and budget.

    Columns: n_cells, tracked, fraction = tracked / n_cells at that budget; ``area`` =
    :func:`frontier_area` over the entry's budgets (the same on each of its rows); ``budget_90`` =
    the smallest budget whose fraction ≥ :data:`TRACK_GOAL` (NaN: none). With ``by_family=False``
    the cells of every family an entry runs on are pooled (family = "all"). Only entries scored at
    every budget of :data:`BUDGETS` get an area and a budget_90 (white-box entries run at one). Pooled,
    an entry counts only the families where it ran its longest ladder, so each budget's fraction is
    over the same cells.
    """
    keys = ["family", "access", "predictor"]
    if not by_family:  # pool only the families where an entry ran its longest ladder: the same cells at every budget
        rungs = scores.groupby(["access", "predictor", "family"])["budget"].nunique()
        full = rungs[rungs == rungs.groupby(level=[0, 1]).transform("max")].reset_index()[["access", "predictor", "family"]]
        scores = scores.merge(full, on=["access", "predictor", "family"])
    s = scores if by_family else scores.assign(family="all")
    rows = []
    for key, g in s.groupby(keys, sort=True):
        per = g.groupby("budget", sort=True)["tracked"].agg(["size", "sum"])
        frac = (per["sum"] / per["size"]).to_numpy(np.float64)
        ladder = tuple(per.index) == BUDGETS
        area = frontier_area(per.index, frac) if ladder else float("nan")
        hit = [b for b, f in zip(per.index, frac) if f >= TRACK_GOAL - 1e-12]
        b90 = float(hit[0]) if ladder and hit else float("nan")
        for (b, row), f in zip(per.iterrows(), frac):
            rows.append(dict(zip(keys, key), budget=int(b), n_cells=int(row["size"]), tracked=int(row["sum"]),
                             fraction=float(f), area=area, budget_90=b90))
    return pd.DataFrame(rows, columns=keys + ["budget", "n_cells", "tracked", "fraction", "area", "budget_90"])
