"""How sure a tier's ranking is: a paired, stratified bootstrap of the ranking statistic (pure functions
of the stored scores).

The statistic of an entry is its **mean tracked fraction** ``s = (1/F) Σ_f (1/n_f) Σ_{c∈f} tracked_c``
(dimensionless, in [0, 1]; :mod:`.rankings`). One bootstrap replicate of a tier:

- **cells** are resampled with replacement *within each family*, so every family keeps its weight
  ``1/F``: ``n_f − 1`` draws from the family's ``n_f`` cells, which makes the replicates' variance of a
  family's fraction ``σ²/n_f`` with the unbiased ``σ²`` (``n_f`` draws would give ``(n_f − 1)/n_f`` of it
  and intervals about 1.5 points too narrow at 40 cells, measured);
- **truth**: each cell gets one standard-normal draw ``z`` (the same for all its copies in the
  replicate); the cell counts as tracked by an entry when ``z`` lies in the entry's stored interval
  ``[track_z_low, track_z_high]`` (:func:`snrbench.report.scoring.track_z_interval`: the truth moved by
  ``z`` of its CI's standard deviations at every T). On exact cells that interval is ``(−∞, ∞)`` or
  empty, so only Monte Carlo cells near the factor-2 line change, each with its probability;
- **paired**: the resampled cells and the ``z`` draws are the same for every entry of the tier.

From ``B`` replicates (default :data:`N_BOOT` = 4,000, seed :data:`SEED`): the statistic's 95% percentile
interval; the rank interval (2.5% and 97.5% quantiles of the replicate ranks, rank = 1 + number of
entries with a larger statistic or an equal one and a better rank in the ranking itself); each entry's paired margin over ``iid`` with its 95% interval;
and **tie groups**: for each pair of entries adjacent in the ranking, the p-value of a zero paired
difference from a paired sign-flip test with the same truth draws (:func:`sign_flip_p`) is
Holm-corrected over the tier's adjacent pairs; a pair whose corrected p exceeds 0.05 (the difference is
not established: its corrected interval contains 0) shares a tie group. The **robustness** of a tier is the smallest number of cells whose removal lets
another entry reach the #1's statistic (:func:`cells_to_change_first`).

``scipy.stats.bootstrap`` does not stratify by family nor redraw the truth, so the resampling is written
out here (vectorised: multinomial counts per family, one matrix product per replicate block).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import rankings

__all__ = ["SEED", "N_BOOT", "ALPHA", "Board", "Intervals", "board_from_scores", "replicates", "intervals",
           "holm", "cells_to_change_first", "first_entry", "tier_seed", "tier_intervals", "DECIMALS", "sign_flip_p",
           "RANKING_COLUMNS", "Robustness"]

#: Seed of every tier's bootstrap (combined with the tier's name, :func:`tier_seed`).
SEED = 20261207
#: Bootstrap replicates per tier.
N_BOOT = 4000
#: Level of the intervals (95%) and of the Holm-corrected tie test.
ALPHA = 0.05
#: Decimals of every statistic, interval and margin in the rankings (CSV, README, page and figure alike).
DECIMALS = 3
_BLOCK = 500  # replicates per block (memory: block × entries × cells booleans)


@dataclass(frozen=True)
class Board:
    """One tier's scores as arrays: ``entries`` (E names, in ranking order), ``family`` (C family
    indices 0…F−1 of the cells), ``z_low``/``z_high`` (E × C, the truth draws z within which each cell
    is tracked), ``max_err`` (E × C, dex; the last tie-break of the ranking)."""

    entries: tuple
    family: np.ndarray
    z_low: np.ndarray
    z_high: np.ndarray
    max_err: np.ndarray

    @property
    def tracked(self) -> np.ndarray:
        """(E × C) tracked at the stored truth (z = 0)."""
        return (self.z_low <= 0.0) & (0.0 <= self.z_high)


def board_from_scores(scores, entries) -> Board:
    """The :class:`Board` of one tier's full-budget ``scores`` over their cells, ``entries`` in ranking order
    (every entry must be scored on the same cells; cells in (family, cell_id) order)."""
    cells = sorted(set(zip(scores["family"], scores["cell_id"])))
    col = {c: j for j, c in enumerate(cells)}
    fams = sorted({f for f, _ in cells})
    family = np.array([fams.index(f) for f, _ in cells], dtype=np.int64)
    shape = (len(entries), len(cells))
    zl, zh, me = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    row = {e: i for i, e in enumerate(entries)}
    for r in scores[["predictor", "family", "cell_id", "track_z_low", "track_z_high", "max_err"]].itertuples(index=False):
        i, j = row[r.predictor], col[(r.family, r.cell_id)]
        zl[i, j], zh[i, j], me[i, j] = r.track_z_low, r.track_z_high, r.max_err
    if np.isnan(zl).any():
        raise ValueError("every entry of a ranking must be scored on the same cells")
    return Board(tuple(entries), family, zl, zh, me)


def tier_seed(tier: str) -> np.random.SeedSequence:
    """The seed of ``tier``'s replicates: :data:`SEED` and the tier's name (the same on every machine)."""
    return np.random.SeedSequence([SEED, int.from_bytes(hashlib.sha256(tier.encode()).digest()[:8], "little")])


def replicates(board: Board, n_boot: int = N_BOOT, seed=SEED, truth_draws: bool = True) -> np.ndarray:
    """(n_boot × E) bootstrap replicates of every entry's mean tracked fraction (module doc), paired.

    ``truth_draws=False`` keeps every cell's truth at its stored value (z = 0)."""
    rng = np.random.default_rng(seed)
    fam = board.family
    F = int(fam.max()) + 1
    members = [np.flatnonzero(fam == f) for f in range(F)]
    C = fam.size
    out = np.empty((n_boot, len(board.entries)))
    for start in range(0, n_boot, _BLOCK):
        b = min(_BLOCK, n_boot - start)
        w = np.zeros((b, C))
        for idx in members:  # n_f − 1 draws within the family (n_f = 1: one), each family weighing 1/F
            m = max(idx.size - 1, 1)
            w[:, idx] = rng.multinomial(m, np.full(idx.size, 1.0 / idx.size), size=b) / (m * F)
        if truth_draws:
            z = rng.standard_normal((b, 1, C))
            hit = (board.z_low[None] <= z) & (z <= board.z_high[None])  # (b, E, C)
        else:
            hit = np.broadcast_to(board.tracked[None], (b,) + board.tracked.shape)
        out[start:start + b] = np.einsum("bec,bc->be", hit, w)
    return out


def sign_flip_p(board: Board, weight: np.ndarray, n_boot: int = N_BOOT, seed=SEED, truth_draws: bool = True) -> np.ndarray:
    """p-values of "no difference" for each pair of entries adjacent in ``board`` (E − 1 values): a paired
    sign-flip test. Under the null each cell's difference ``D_c = tracked_k − tracked_{k+1}`` is as likely
    to have either sign, so the observed ``d = Σ_c w_c D_c`` (``w_c`` the cell's weight in the statistic)
    is compared with ``n_boot`` draws of ``Σ_c w_c s_c D_c(z)``, random signs ``s_c`` and, with
    ``truth_draws``, the truth redrawn as in :func:`replicates`: ``p = (1 + #{|d*| ≥ |d|}) / (1 + n_boot)``.
    Exact when the two entries are exchangeable cell by cell; the percentile interval of the bootstrap,
    read as a test, separates such entries too often (6.4% at the 5% level on 2,000 synthetic boards,
    because its spread shrinks as the difference grows)."""
    rng = np.random.default_rng(np.random.default_rng(seed).integers(2**63))  # a stream apart from the replicates'
    E, C = board.z_low.shape
    d = (board.tracked[:-1] * 1.0 - board.tracked[1:]) @ weight
    exceed = np.zeros(E - 1)
    for start in range(0, n_boot, _BLOCK):
        b = min(_BLOCK, n_boot - start)
        sign = rng.choice(np.array([-1.0, 1.0]), size=(b, 1, C)) * weight
        if truth_draws:
            z = rng.standard_normal((b, 1, C))
            hit = ((board.z_low[None] <= z) & (z <= board.z_high[None])).astype(np.float64)
        else:
            hit = np.broadcast_to(board.tracked[None] * 1.0, (b, E, C))
        null = ((hit[:, :-1] - hit[:, 1:]) * sign).sum(axis=2)  # (b, E − 1)
        exceed += (np.abs(null) >= np.abs(d) - 1e-12).sum(axis=0)
    return (1.0 + exceed) / (1.0 + n_boot)


def holm(p) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error over the given tests)."""
    p = np.asarray(p, dtype=np.float64)
    m = p.size
    order = np.argsort(p, kind="stable")
    adj = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adj
    return out


@dataclass(frozen=True)
class Intervals:
    """Per entry (ranking order): ``statistic`` (point value), ``ci_low``/``ci_high`` (95%), ``rank_low``/
    ``rank_high``, ``tie_group`` (1, 2, … down the ranking), ``margin`` over the reference entry with
    ``margin_low``/``margin_high`` (NaN without one), the 95% interval of the paired difference from the #1
    ``behind_low``/``behind_high``; per adjacent pair ``p_adjacent`` (Holm-adjusted)."""

    statistic: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    rank_low: np.ndarray
    rank_high: np.ndarray
    tie_group: np.ndarray
    margin: np.ndarray
    margin_low: np.ndarray
    margin_high: np.ndarray
    p_adjacent: np.ndarray
    behind_low: np.ndarray
    behind_high: np.ndarray


def intervals(board: Board, reference: str | None = "iid", n_boot: int = N_BOOT, seed=SEED,
              truth_draws: bool = True, alpha: float = ALPHA) -> Intervals:
    """Intervals, rank intervals, tie groups and margins over ``reference`` of one tier (module doc).
    ``board.entries`` must be in ranking order (adjacent pairs are compared)."""
    tracked = board.tracked
    fam = board.family
    F = int(fam.max()) + 1
    weight = 1.0 / (np.bincount(fam, minlength=F)[fam] * F)
    point = tracked @ weight
    rep = replicates(board, n_boot, seed, truth_draws)
    q = [alpha / 2, 1 - alpha / 2]
    lo, hi = np.quantile(rep, q, axis=0)
    ahead = np.tril(np.ones((len(point), len(point)), bool), -1)  # ahead[e, e']: e' is ranked above e
    ranks = 1 + ((rep[:, None, :] > rep[:, :, None]) | ((rep[:, None, :] == rep[:, :, None]) & ahead)).sum(axis=2)
    rank_low = np.quantile(ranks, alpha / 2, axis=0, method="lower").astype(np.int64)
    rank_high = np.quantile(ranks, 1 - alpha / 2, axis=0, method="higher").astype(np.int64)
    p = sign_flip_p(board, weight, n_boot, seed, truth_draws)
    p_adj = holm(p) if p.size else p
    group = np.concatenate([[1], 1 + np.cumsum(p_adj <= alpha)]).astype(np.int64)
    E = len(board.entries)
    margin, m_lo, m_hi = (np.full(E, np.nan) for _ in range(3))
    if reference in board.entries:
        k = board.entries.index(reference)
        margin = point - point[k]
        m_lo, m_hi = np.quantile(rep - rep[:, [k]], q, axis=0)
    b_lo, b_hi = np.quantile(rep - rep[:, [0]], q, axis=0)
    return Intervals(point, lo, hi, rank_low, rank_high, group, margin, m_lo, m_hi, p_adj, b_lo, b_hi)


def first_entry(tracked: np.ndarray, max_err: np.ndarray, family: np.ndarray, keep: np.ndarray) -> int:
    """Index of the #1 entry over the kept cells, by the ranking rule of :mod:`.rankings`: mean tracked
    fraction over families, then Borda points, then median max err; the first index breaks a full tie
    (``board.entries`` are in name order within a tie when they come from :func:`.rankings.tier_ranking`)."""
    fams = [f for f in np.unique(family) if keep[family == f].any()]
    frac = np.stack([tracked[:, keep & (family == f)].mean(axis=1) for f in fams], axis=1)  # (E, F')
    mean = frac.mean(axis=1)
    borda = ((frac[:, None, :] > frac[None, :, :]).sum(axis=1) + 0.5 * ((frac[:, None, :] == frac[None, :, :]).sum(axis=1) - 1)).sum(axis=1)
    med = np.median(max_err[:, keep], axis=1)
    return int(np.lexsort((np.arange(len(mean)), med, -borda, -np.round(mean, 12)))[0])


def _family_removals(top: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """For one family's cells (tracked by the #1 and by a challenger): ``lead[r]``, the smallest lead of the
    #1 in tracked fraction after removing r cells (r = 0 … n − 1), and the order to remove them in. For a
    fixed r the best removals are the cells only the #1 tracks, then cells both or neither track, then
    cells only the challenger tracks: each step lowers the numerator of ``(t_top − t_other)/(n − r)`` the
    most it can."""
    d = top.astype(np.int64) - other.astype(np.int64)
    order = np.concatenate([np.flatnonzero(d == 1), np.flatnonzero(d == 0), np.flatnonzero(d == -1)])
    n = d.size
    num = d.sum() - np.concatenate([[0], np.cumsum(d[order])])[:n]
    return num / (n - np.arange(n)), order.tolist()


def cells_to_change_first(board: Board, max_cells: int | None = None) -> tuple:
    """(k, removed, challenger): the fewest cells whose removal leaves the #1 no longer ahead of another
    entry on the ranking statistic (the challenger's mean tracked fraction reaches the #1's, so the #1
    holds its place at most by a tie-break), their indices, and that entry's index; (None, [], None) when
    no removal of up to ``max_cells`` cells (default: all but one cell per family) does.

    Exact: for each challenger and each k, the smallest lead the #1 can keep with k removals comes from
    the best removals of r cells in each family (:func:`_family_removals`) combined over the families by
    a min-plus convolution; an exhaustive search agrees on small boards (tests/test_rankings_intervals.py)."""
    tracked, fam = board.tracked, board.family
    C = fam.size
    full = np.ones(C, bool)
    top = first_entry(tracked, board.max_err, fam, full)
    if len(board.entries) < 2:
        return None, [], None
    fams = np.unique(fam)
    F = fams.size
    limit = C - F if max_cells is None else max_cells
    best: tuple = (None, [], None)
    for e in range(len(board.entries)):
        if e == top:
            continue
        total = np.zeros(1)  # total[k]: smallest Σ_f lead_f with k removals so far
        choice: list[np.ndarray] = []
        orders = []
        for f in fams:
            idx = np.flatnonzero(fam == f)
            lead, order = _family_removals(tracked[top, idx], tracked[e, idx])
            orders.append(idx[order])
            cand = total[:, None] + lead[None, :]  # (k so far, r in this family)
            k = np.add.outer(np.arange(total.size), np.arange(lead.size))
            new = np.full(total.size + lead.size - 1, np.inf)
            arg = np.zeros(new.size, np.int64)
            for kk in range(new.size):
                m = k == kk
                j = np.argmin(np.where(m, cand, np.inf))
                new[kk], arg[kk] = np.where(m, cand, np.inf).flat[j], j % lead.size
            total = new
            choice.append(arg)
        for kk in range(0, min(limit, total.size - 1) + 1):
            if best[0] is not None and kk >= best[0]:
                break
            if total[kk] / F > 1e-12:
                continue
            removed, rest = [], kk  # walk the choices back from the last family
            for f in range(F - 1, -1, -1):
                r = int(choice[f][rest])
                removed += orders[f][:r].tolist()
                rest -= r
            best = (kk, sorted(removed), e)
            break
    return best


#: Columns of ``leaderboard/data/rankings.csv`` (:func:`tier_intervals`).
RANKING_COLUMNS = ["tier", "entry", "rank", "statistic", "ci_low", "ci_high", "rank_low", "rank_high", "tie_group",
                   "tied", "p_vs_next", "margin_over_iid", "margin_low", "margin_high", "behind_first_low",
                   "behind_first_high", "n_cells", "n_families"]


@dataclass(frozen=True)
class Robustness:
    """A tier's robustness: removing ``removed`` (cell labels, ``k`` of ``n_cells``) brings ``new_first`` level
    with ``first`` on the ranking statistic or ahead of it; ``k`` is None when no removal does (a single
    entry, or a #1 that holds)."""

    first: str
    k: int | None
    n_cells: int
    removed: tuple
    new_first: str | None


def tier_intervals(full: pd.DataFrame, tiers, n_boot: int = N_BOOT) -> tuple[pd.DataFrame, dict]:
    """(rankings, robustness) of the full-budget ``scores`` of every tier in ``tiers`` that has entries:
    one row per ranked entry (:data:`RANKING_COLUMNS`, in tier then rank order, floats rounded to
    :data:`DECIMALS`) and a :class:`Robustness` per tier. ``statistic`` is the mean tracked fraction,
    ``p_vs_next`` the Holm-adjusted p of the difference from the next entry (NaN on the last),
    ``tied`` whether the entry's tie group has another member."""
    rows, robust = [], {}
    for tier in tiers:
        s = full[full.access == tier]
        if s.empty:
            continue
        ranking, families, _ = rankings.tier_ranking(s)
        used, _ = rankings.ranked_scores(s)
        entries = list(ranking["predictor"])
        board = board_from_scores(used, entries)
        iv = intervals(board, "iid", n_boot=n_boot, seed=tier_seed(tier))
        sizes = np.bincount(iv.tie_group)
        r = lambda x: round(float(x), DECIMALS) + 0.0  # noqa: E731 - one rounding for every shown number (no −0.0)
        for i, e in enumerate(entries):
            rows.append(dict(tier=tier, entry=e, rank=i + 1, statistic=r(iv.statistic[i]), ci_low=r(iv.ci_low[i]),
                             ci_high=r(iv.ci_high[i]), rank_low=int(iv.rank_low[i]), rank_high=int(iv.rank_high[i]),
                             tie_group=int(iv.tie_group[i]), tied=bool(sizes[iv.tie_group[i]] > 1),
                             p_vs_next=r(iv.p_adjacent[i]) if i < len(entries) - 1 else float("nan"),
                             margin_over_iid=r(iv.margin[i]), margin_low=r(iv.margin_low[i]),
                             margin_high=r(iv.margin_high[i]), behind_first_low=r(iv.behind_low[i]),
                             behind_first_high=r(iv.behind_high[i]), n_cells=board.family.size,
                             n_families=len(families)))
        k, removed, challenger = cells_to_change_first(board)
        cells = sorted(set(zip(used["family"], used["cell_id"])))
        label = dict(zip(zip(used["family"], used["cell_id"]), used["label"]))
        new = entries[challenger] if challenger is not None else None
        robust[tier] = Robustness(entries[0], k, board.family.size,
                                  tuple(f"{cells[j][0]}/{label[cells[j]]}" for j in sorted(removed)), new)
    return pd.DataFrame(rows, columns=RANKING_COLUMNS), robust
