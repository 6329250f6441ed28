"""How sure a tier's ranking is: a paired, stratified bootstrap of the ranking statistic (pure functions
of the stored scores).

The statistic of an entry is its **mean tracked fraction** ``s = (1/F) Σ_f (1/n_f) Σ_{c∈f} tracked_c``
(dimensionless, in [0, 1]; :mod:`.rankings`), computed exactly: as an integer over a common denominator
(:func:`.rankings.exact_scores`; in a replicate, :func:`replicate_scores`), so that statistics, ranks,
ties and differences are decided on integers — the same on every CPU, whatever the summation order — and
divided once, for display and quantiles only. One bootstrap replicate of a tier:

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
difference from a paired sign-flip test whose statistic and null are built from the same truth draws
(:func:`sign_flip_p`) is
Holm-corrected over the tier's adjacent pairs; a pair whose corrected p exceeds 0.05 (the difference is
not established: its corrected interval contains 0) shares a tie group. The **robustness** of a tier is the smallest number of cells whose removal lets
another entry reach the #1's statistic, removals that empty whole families included
(:func:`cells_to_change_first`).

``scipy.stats.bootstrap`` does not stratify by family nor redraw the truth, so the resampling is written
out here (vectorised: multinomial counts per family, one integer matrix product per replicate block).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import rankings

__all__ = ["SEED", "N_BOOT", "ALPHA", "Board", "Intervals", "board_from_scores", "replicates", "intervals",
           "holm", "cells_to_change_first", "first_entry", "tier_seed", "tier_intervals", "DECIMALS", "sign_flip_p",
           "RANKING_COLUMNS", "Robustness", "ranking_order", "replicate_scores"]

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
    seen = set()
    for r in scores[["predictor", "family", "cell_id", "track_z_low", "track_z_high", "max_err"]].itertuples(index=False):
        key = (r.predictor, r.family, r.cell_id)
        if key in seen:  # a second row would silently replace the first one's scores
            raise ValueError(f"duplicate score row for predictor {r.predictor!r}, family {r.family!r}, cell {r.cell_id!r}")
        seen.add(key)
        i, j = row[r.predictor], col[(r.family, r.cell_id)]
        zl[i, j], zh[i, j], me[i, j] = r.track_z_low, r.track_z_high, r.max_err
    if np.isnan(zl).any():
        raise ValueError("every entry of a ranking must be scored on the same cells")
    return Board(tuple(entries), family, zl, zh, me)


def tier_seed(tier: str) -> np.random.SeedSequence:
    """The seed of ``tier``'s replicates: :data:`SEED` and the tier's name (the same on every machine)."""
    return np.random.SeedSequence([SEED, int.from_bytes(hashlib.sha256(tier.encode()).digest()[:8], "little")])


def _dtype(bound: int):
    """int64 when every integer of the computation stays below 2^53 in absolute value (so that its float64
    conversion, and the one division for display, are exact and correctly rounded); else Python ints."""
    return np.int64 if bound < 2**53 else object


def _divide(a, denominator: int) -> np.ndarray:
    """The floats of the integers ``a`` over ``denominator``: one correctly rounded division each (for display
    and quantiles only; every comparison is made on the integers)."""
    a = np.asarray(a)
    if a.dtype == object:
        return np.vectorize(lambda x: x / denominator, otypes=[np.float64])(a) if a.size else a.astype(np.float64)
    return a / np.float64(denominator)


def _point_weights(family: np.ndarray) -> tuple[np.ndarray, int]:
    """(integer weight of each cell, denominator) of the statistic: cell c of family f weighs ``L/m_f``
    (``m_f`` the family's cells, ``L`` their lcm) over ``L · F`` (:func:`.rankings.exact_scores`)."""
    sizes = np.bincount(family)
    lcm = math.lcm(*(int(m) for m in sizes))
    unit = [lcm // int(m) for m in sizes]
    dtype = _dtype(lcm * sizes.size)
    return np.array([unit[f] for f in family.tolist()], dtype=dtype), lcm * sizes.size


def replicate_scores(board: Board, n_boot: int = N_BOOT, seed=SEED, truth_draws: bool = True) -> tuple[np.ndarray, int]:
    """(scores, denominator): the (n_boot × E) bootstrap replicates of every entry's mean tracked fraction
    (module doc), paired, as exact integers over one common denominator (the replicate of entry e is
    ``scores[b, e] / denominator``). Family f contributes ``n_f = max(m_f − 1, 1)`` draws, each weighing
    ``L'/n_f`` with ``L'`` the lcm of the ``n_f``, and ``denominator = L' · F``: the hits are 0/1 and the
    resample counts integers, so two entries equal as rationals in a replicate get equal scores, on every
    CPU and whatever the summation order (ranks and ties are decided on these integers).

    ``truth_draws=False`` keeps every cell's truth at its stored value (z = 0)."""
    rng = np.random.default_rng(seed)
    fam = board.family
    F = int(fam.max()) + 1
    members = [np.flatnonzero(fam == f) for f in range(F)]
    draws = [max(idx.size - 1, 1) for idx in members]  # n_f − 1 draws within the family (n_f = 1: one)
    lcm = math.lcm(*draws)
    dtype = _dtype(lcm * F)  # a replicate's score is at most Σ_f n_f · L'/n_f = L' · F
    unit = [lcm // m for m in draws]
    C = fam.size
    out = np.empty((n_boot, len(board.entries)), dtype=dtype)
    for start in range(0, n_boot, _BLOCK):
        b = min(_BLOCK, n_boot - start)
        w = np.zeros((b, C), dtype=dtype)
        for idx, m, u in zip(members, draws, unit):  # the same random stream as ever: counts, then z
            w[:, idx] = rng.multinomial(m, np.full(idx.size, 1.0 / idx.size), size=b).astype(dtype) * u
        if truth_draws:
            z = rng.standard_normal((b, 1, C))
            hit = (board.z_low[None] <= z) & (z <= board.z_high[None])  # (b, E, C)
        else:
            hit = np.broadcast_to(board.tracked[None], (b,) + board.tracked.shape)
        if dtype is object:
            out[start:start + b] = (hit.astype(object) * w[:, None, :]).sum(axis=2)
        else:  # integer products and sums: exact, no BLAS, no float rounding
            out[start:start + b] = np.einsum("bec,bc->be", hit.astype(np.int64), w)
    return out, lcm * F


def replicates(board: Board, n_boot: int = N_BOOT, seed=SEED, truth_draws: bool = True) -> np.ndarray:
    """(n_boot × E) bootstrap replicates of every entry's mean tracked fraction (module doc), paired: the
    exact :func:`replicate_scores` divided by their denominator (floats, for display and quantiles).

    ``truth_draws=False`` keeps every cell's truth at its stored value (z = 0)."""
    scores, denominator = replicate_scores(board, n_boot, seed, truth_draws)
    return _divide(scores, denominator)


def sign_flip_p(board: Board, weight: np.ndarray | None = None, n_boot: int = N_BOOT, seed=SEED,
                truth_draws: bool = True) -> np.ndarray:
    """p-values of "no difference" for each pair of entries adjacent in ``board`` (E − 1 values): a paired
    sign-flip (randomisation) test on the cells, with the truth's uncertainty inside the test statistic.

    ``weight``: the cells' integer weights in the statistic (default: the statistic's own, ``L/m_f``; only
    their ratios matter). Draw ``n_boot`` truths ``z_b`` (one standard normal per cell, as in
    :func:`replicates`) and sign vectors ``s_b``, the two from one stream apart from the replicates'. For a
    pair (k, k + 1), ``D_c(z) = tracked_k(z) − tracked_{k+1}(z)`` on cell c and ``D̂_c = Σ_b D_c(z_b)``
    (n_boot times the difference of the two entries' probabilities of tracking c over the truth's
    uncertainty; with ``truth_draws=False`` or on exact cells, a multiple of the difference at the stored
    truth). The statistic is ``T = |Σ_c w_c D̂_c|``, the null draws ``T_b = |Σ_c s_bc w_c D̂_c|``, and
    ``p = (1 + #{T_b ≥ T}) / (1 + n_boot)``, all in integers (ties exact on every CPU).

    Why it is valid: the null is that the two entries are exchangeable cell by cell given the truth —
    swapping their results on any set of cells (what each tracks at every z) leaves the distribution of the
    results unchanged. The z_b are drawn independently of the results, so given them that swap maps
    ``D̂ → s ⊙ D̂`` and ``D̂`` has the distribution of ``s ⊙ D̂`` for every fixed sign vector s; then
    ``T, T_1, …, T_B`` are exchangeable and p is an exact Monte Carlo randomisation p-value
    (P(p ≤ α) ≤ α). The observed statistic and its null are built from the *same* truth draws: comparing a
    difference taken at the stored truth (z = 0) with a null that redraws z, as an earlier version did,
    made a difference that exists only near z = 0 look significant (4 borderline cells: p = 0.00025, where
    the entries are equal in half the truth draws). A per-replicate comparison (``|Σ s_b w D(z_b)|`` against
    ``|Σ w D(z_b)|``) averages valid p-values over z, which is valid only up to a factor of 2 in general.
    On exact cells ``D̂`` is n_boot times the stored difference, so the test is the plain sign-flip test
    on the stored results (the same p as without truth draws). The percentile interval of the bootstrap,
    read as a test, separates exchangeable entries too often (6.4% at the 5% level on 2,000 synthetic
    boards, because its spread shrinks as the difference grows)."""
    rng = np.random.default_rng(np.random.default_rng(seed).integers(2**63))  # a stream apart from the replicates'
    E, C = board.z_low.shape
    if weight is None:
        weight, _ = _point_weights(board.family)
    weight = np.asarray(weight)
    if weight.dtype != object and not np.issubdtype(weight.dtype, np.integer):
        raise ValueError("sign_flip_p takes integer cell weights (their ratios are the statistic's)")
    signs = np.empty((n_boot, C), np.int8)
    diff = np.zeros((E - 1, C), np.int64)  # D̂
    for start in range(0, n_boot, _BLOCK):
        b = min(_BLOCK, n_boot - start)
        signs[start:start + b] = rng.choice(np.array([-1.0, 1.0]), size=(b, 1, C))[:, 0]
        if truth_draws:
            z = rng.standard_normal((b, 1, C))
            hit = ((board.z_low[None] <= z) & (z <= board.z_high[None])).astype(np.int64)
            diff += (hit[:, :-1] - hit[:, 1:]).sum(axis=0)
    if not truth_draws:
        diff = board.tracked[:-1].astype(np.int64) - board.tracked[1:]
    bound = int(np.abs(diff).max(initial=0)) * sum(int(x) for x in weight.tolist())
    dtype = _dtype(bound)
    wd = diff.astype(dtype) * weight.astype(dtype)[None, :]  # (E − 1, C): w_c D̂_c
    observed = np.abs(wd.sum(axis=1))
    exceed = np.zeros(E - 1, np.int64)
    for start in range(0, n_boot, _BLOCK):
        null = np.abs(signs[start:start + _BLOCK].astype(dtype) @ wd.T)  # (b, E − 1), integers
        exceed += (null >= observed[None, :]).sum(axis=0)
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
    ``board.entries`` must be in ranking order (adjacent pairs are compared). Statistics, ranks and
    differences are computed on exact integers (:func:`replicate_scores`) and divided for display only."""
    weight, den = _point_weights(board.family)
    score = board.tracked.astype(weight.dtype) @ weight  # exact: Σ_c (L/m_f) tracked_c
    point = _divide(score, den)
    rep_score, rep_den = replicate_scores(board, n_boot, seed, truth_draws)
    rep = _divide(rep_score, rep_den)
    q = [alpha / 2, 1 - alpha / 2]
    lo, hi = np.quantile(rep, q, axis=0)
    ahead = np.tril(np.ones((len(point), len(point)), bool), -1)  # ahead[e, e']: e' is ranked above e
    above, level = rep_score[:, None, :] > rep_score[:, :, None], rep_score[:, None, :] == rep_score[:, :, None]
    ranks = 1 + (above | (level & ahead)).sum(axis=2)  # on the integers: equal rationals tie exactly
    rank_low = np.quantile(ranks, alpha / 2, axis=0, method="lower").astype(np.int64)
    rank_high = np.quantile(ranks, 1 - alpha / 2, axis=0, method="higher").astype(np.int64)
    p = sign_flip_p(board, weight, n_boot, seed, truth_draws)
    p_adj = holm(p) if p.size else p
    group = np.concatenate([[1], 1 + np.cumsum(p_adj <= alpha)]).astype(np.int64)
    E = len(board.entries)
    margin, m_lo, m_hi = (np.full(E, np.nan) for _ in range(3))
    if reference in board.entries:
        k = board.entries.index(reference)
        margin = _divide(score - score[k], den)
        m_lo, m_hi = np.quantile(_divide(rep_score - rep_score[:, [k]], rep_den), q, axis=0)
    b_lo, b_hi = np.quantile(_divide(rep_score - rep_score[:, [0]], rep_den), q, axis=0)
    return Intervals(point, lo, hi, rank_low, rank_high, group, margin, m_lo, m_hi, p_adj, b_lo, b_hi)


def ranking_order(tracked: np.ndarray, max_err: np.ndarray, family: np.ndarray, keep: np.ndarray) -> list[int]:
    """The entries' indices in ranking order over the kept cells, by the rule of :mod:`.rankings` with its
    exact key (:func:`.rankings.exact_scores`): mean tracked fraction over the families with a kept cell,
    then Borda points, then median max err; the first index breaks a full tie (``board.entries`` are in
    name order within a tie when they come from :func:`.rankings.tier_ranking`)."""
    fams = [f for f in np.unique(family) if keep[family == f].any()]
    counts = np.stack([tracked[:, keep & (family == f)].sum(axis=1) for f in fams], axis=1)  # (E, F')
    score, _ = rankings.exact_scores(counts, [int((keep & (family == f)).sum()) for f in fams])
    # Borda on the counts: within a family every entry has the same cells, so counts order the fractions
    borda = ((counts[:, None, :] > counts[None, :, :]).sum(axis=1)
             + 0.5 * ((counts[:, None, :] == counts[None, :, :]).sum(axis=1) - 1)).sum(axis=1)
    med = pd.DataFrame(max_err[:, keep].T).median().to_numpy()  # as pandas does in the ranking (NaN skipped)
    return sorted(range(len(score)), key=lambda e: (-score[e], -borda[e], bool(np.isnan(med[e])),
                                                    0.0 if np.isnan(med[e]) else med[e], e))


def first_entry(tracked: np.ndarray, max_err: np.ndarray, family: np.ndarray, keep: np.ndarray) -> int:
    """Index of the #1 entry over the kept cells (:func:`ranking_order`)."""
    return ranking_order(tracked, max_err, family, keep)[0]


def _family_removals(top: np.ndarray, other: np.ndarray, unit: int) -> tuple[list[int], list[int]]:
    """For one family's cells (tracked by the #1 and by a challenger): ``lead[r]``, the smallest lead of the
    #1 in tracked fraction after removing r cells (r = 0 … n), as exact integers in units of ``1/unit``
    (``unit`` a multiple of every 1 … n), and the order to remove them in. For a fixed r < n the best
    removals are the cells only the #1 tracks, then cells both or neither track, then cells only the
    challenger tracks: each step lowers the numerator of ``(t_top − t_other)/(n − r)`` the most it can.
    r = n removes the whole family, which then weighs nothing (lead 0: the statistic averages over the
    families left, and whether the challenger reaches the #1 does not depend on their number)."""
    d = top.astype(np.int64) - other.astype(np.int64)
    order = np.concatenate([np.flatnonzero(d == 1), np.flatnonzero(d == 0), np.flatnonzero(d == -1)])
    n = d.size
    num = int(d.sum()) - np.concatenate([[0], np.cumsum(d[order])])[:n]
    return [int(x) * (unit // (n - r)) for r, x in enumerate(num.tolist())] + [0], order.tolist()


def cells_to_change_first(board: Board, max_cells: int | None = None) -> tuple:
    """(k, removed, challenger): the fewest cells whose removal leaves the #1 no longer ahead of another
    entry on the ranking statistic (the challenger's mean tracked fraction reaches the #1's, so the #1
    holds its place at most by a tie-break), their indices, and that entry's index; (None, [], None) when
    no removal of up to ``max_cells`` cells (default: all but one cell) does. Removals may empty whole
    families: the statistic is then the mean over the families left. ``board.entries`` must be in ranking
    order: the #1 this starts from is checked to be ``board.entries[0]``.

    Exact: for each challenger and each k, the smallest lead the #1 can keep with k removals comes from
    the best removals of r cells in each family (:func:`_family_removals`, r up to the whole family)
    combined over the families by a min-plus convolution, on integers (leads over a common denominator);
    an exhaustive search agrees on small boards (tests/test_rankings_intervals.py)."""
    tracked, fam = board.tracked, board.family
    C = fam.size
    full = np.ones(C, bool)
    top = first_entry(tracked, board.max_err, fam, full)
    if top != 0:
        raise ValueError(f"the #1 by the ranking rule is {board.entries[top]!r}, not the board's first entry "
                         f"{board.entries[0]!r}: board.entries must be in ranking order")
    if len(board.entries) < 2:
        return None, [], None
    fams = np.unique(fam)
    unit = math.lcm(*range(1, int(np.bincount(fam).max()) + 1))
    limit = C - 1 if max_cells is None else max_cells
    best: tuple = (None, [], None)
    for e in range(len(board.entries)):
        if e == top:
            continue
        total = [0]  # total[k]: smallest Σ_f lead_f with k removals so far (integers, units of 1/unit)
        choice: list[list[int]] = []
        orders = []
        for f in fams:
            idx = np.flatnonzero(fam == f)
            lead, order = _family_removals(tracked[top, idx], tracked[e, idx], unit)
            orders.append(idx[order])
            new: list = [None] * (len(total) + len(lead) - 1)
            arg = [0] * len(new)
            for i, t in enumerate(total):
                for r, v in enumerate(lead):
                    v += t
                    if new[i + r] is None or v < new[i + r]:
                        new[i + r], arg[i + r] = v, r
            total = new
            choice.append(arg)
        for kk in range(0, min(limit, len(total) - 1) + 1):
            if best[0] is not None and kk >= best[0]:
                break
            if total[kk] > 0:  # the #1 still leads (exactly)
                continue
            removed, rest = [], kk  # walk the choices back from the last family
            for f in range(len(fams) - 1, -1, -1):
                r = choice[f][rest]
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
