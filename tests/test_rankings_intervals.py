"""The rankings' intervals (snrbench.report.intervals) on synthetic boards whose answers are known.

Calibration (the issue's must-show numbers come from the slow versions, run once):
- two entries equal by construction are tied in ≥ 95% of repeats (2,000 of them: 200 measure a 95% rate
  only to ±1.5 points);
- an entry better by a known margin has a margin interval covering it in 92–98% of 400 seeded repeats.
The fast siblings run fewer repeats with bounds wide enough for their own sampling noise.
"""
import math
from fractions import Fraction
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from snrbench.report import intervals, rankings
from snrbench.report.intervals import Board
from snrbench.report.scoring import TRACK_TOL, track_z_interval

SIZES = (48, 60, 36, 24, 24)  # cells per family, as in the sampler-only tier
RATE = (0.6, 0.5, 0.7, 0.4, 0.5)  # tracked probability of the weaker entry per family


def _board(tracked: np.ndarray, family: np.ndarray, names=("a", "b")) -> Board:
    """A board of exact cells (no truth draws change anything) from a (E × C) tracked matrix."""
    t = np.asarray(tracked, bool)
    return Board(tuple(names), np.asarray(family), np.where(t, -np.inf, np.inf), np.where(t, np.inf, -np.inf),
                 np.zeros(t.shape))


def synthetic(rng, margin: float) -> Board:
    """Two entries on 192 cells in 5 families; cell difficulty d ~ U(0, 1) is shared (so the entries are
    correlated, as real entries are), entry k tracks a cell when d + 0.3·u_k < rate_f + 0.15 (+ margin for
    the first): the expected mean tracked fraction of "a" exceeds that of "b" by exactly ``margin`` while
    every threshold stays inside (0.3, 1)."""
    family = np.concatenate([np.full(n, f) for f, n in enumerate(SIZES)])
    thr = np.asarray(RATE)[family] + 0.15
    d = rng.uniform(size=family.size)
    a = d + 0.3 * rng.uniform(size=family.size) < thr + margin
    b = d + 0.3 * rng.uniform(size=family.size) < thr
    return _board(np.stack([a, b]), family)


def calibration_flags(n_repeats: int, margin: float, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per repeat (boolean arrays of length ``n_repeats``, in repeat order): are a and b tied, and does a's
    margin interval over b cover ``margin``. Repeat r draws its board from one generator seeded ``seed``
    (boards in sequence) and its bootstrap with seed r."""
    rng = np.random.default_rng(seed)
    tied, covered = np.zeros(n_repeats, bool), np.zeros(n_repeats, bool)
    for r in range(n_repeats):
        iv = intervals.intervals(synthetic(rng, margin), reference="b", n_boot=n_boot, seed=r)
        tied[r] = iv.tie_group[0] == iv.tie_group[1]
        covered[r] = iv.margin_low[0] <= margin <= iv.margin_high[0]
    return tied, covered


def calibration(n_repeats: int, margin: float, n_boot: int, seed: int) -> tuple[float, float]:
    """(share of repeats where a and b are tied, share where a's margin interval over b covers ``margin``)."""
    tied, covered = calibration_flags(n_repeats, margin, n_boot, seed)
    return float(tied.mean()), float(covered.mean())


def test_equal_entries_are_tied_fast():
    tied, _ = calibration(40, 0.0, 400, seed=11)
    assert tied >= 0.85  # 40 repeats: a 5% test gives ≥ 0.85 with probability > 0.99


def test_margin_interval_covers_the_margin_fast():
    _, covered = calibration(60, 0.12, 400, seed=12)
    assert 0.82 <= covered <= 1.0  # 60 repeats of a 95% interval


@pytest.mark.slow
def test_equal_entries_are_tied_in_95_percent_of_2000_repeats():
    """Two entries equal by construction are tied in ≥ 95% of repeats, measured to ±0.45 points (2,000
    repeats of 1,000 replicates: 0.9575 on 2026-12-07). The tie test is exact (sign flips), so the rate is
    ≥ 95% in expectation; the issue's 200 repeats measure it only to ±1.5 points, and seed 1 with 2,000
    replicates gave 189 of 200 (0.945) — one short — which is why this test uses 2,000 repeats."""
    tied, _ = calibration(2000, 0.0, 1000, seed=101)
    print(f"equal by construction: tied in {tied:.4f} of 2000 repeats")
    assert tied >= 0.95


@pytest.mark.slow
def test_margin_interval_covers_in_92_to_98_percent_of_400_repeats():
    _, covered = calibration(400, 0.12, 2000, seed=2)
    print(f"margin 0.12: covered in {covered:.3f} of 400 repeats")
    assert 0.92 <= covered <= 0.98


def test_synthetic_margin_is_the_expected_difference():
    """The construction's margin, checked by brute force: the mean over many boards of a − b."""
    rng = np.random.default_rng(3)
    diffs = []
    for _ in range(300):
        b = synthetic(rng, 0.12)
        w = 1.0 / (np.bincount(b.family)[b.family] * len(SIZES))
        diffs.append((b.tracked[0] * 1.0 - b.tracked[1]) @ w)
    assert np.mean(diffs) == pytest.approx(0.12, abs=4 * np.std(diffs) / np.sqrt(len(diffs)))


def test_replicate_variance_is_the_unbiased_variance_of_the_fraction():
    """One family, one entry: the replicates' variance of the tracked fraction is s²/n (s² with ddof 1)."""
    rng = np.random.default_rng(4)
    t = rng.uniform(size=30) < 0.4
    rep = intervals.replicates(_board(t[None], np.zeros(30, int), ("a",)), n_boot=20000, seed=5)[:, 0]
    assert rep.mean() == pytest.approx(t.mean(), abs=0.003)
    assert rep.var() == pytest.approx(t.var(ddof=1) / 30, rel=0.05)


def test_truth_draws_count_a_borderline_cell_with_its_probability():
    """One Monte Carlo family of 10 cells: entry a tracks cell c while the truth's draw z ≤ c/4 (Φ(c/4)),
    entry b every cell. The replicates' mean is the mean of those probabilities (scipy.stats.norm)."""
    c = np.arange(10)
    zl = np.stack([np.full(10, -np.inf), np.full(10, -np.inf)])
    zh = np.stack([c / 4, np.full(10, np.inf)])
    board = Board(("a", "b"), np.zeros(10, int), zl, zh, np.zeros((2, 10)))
    rep = intervals.replicates(board, n_boot=20000, seed=6)
    assert rep[:, 0].mean() == pytest.approx(norm.cdf(c / 4).mean(), abs=0.005)
    assert rep[:, 1] == pytest.approx(np.ones(len(rep)))
    fixed = intervals.replicates(board, n_boot=2000, seed=6, truth_draws=False)
    assert fixed[:, 0].mean() == pytest.approx(1.0)  # at z = 0 every cell is tracked (0 ≤ c/4)


def test_paired_replicates_share_cells_and_truth():
    """Two identical entries get identical replicates (same cells, same truth draws), so they tie exactly."""
    rng = np.random.default_rng(7)
    zl = rng.normal(size=(1, 40)).repeat(2, axis=0)
    board = Board(("a", "b"), np.repeat(np.arange(4), 10), zl, zl + 1.0, np.zeros((2, 40)))
    rep = intervals.replicates(board, n_boot=500, seed=8)
    assert np.array_equal(rep[:, 0], rep[:, 1])
    iv = intervals.intervals(board, reference="b", n_boot=500, seed=8)
    assert iv.tie_group.tolist() == [1, 1] and iv.margin_low[0] == iv.margin_high[0] == 0.0
    assert iv.rank_low.tolist() == iv.rank_high.tolist() == [1, 2]  # equal statistics keep the ranking's order


def test_rank_intervals_and_groups_of_well_separated_entries():
    """Entries tracking 90%, 50% and 10% of 60 cells: each its own group, rank intervals [k, k]."""
    rng = np.random.default_rng(9)
    family = np.repeat(np.arange(3), 20)
    t = np.stack([rng.uniform(size=60) < p for p in (0.9, 0.5, 0.1)])
    iv = intervals.intervals(_board(t, family, ("x", "y", "z")), reference="z", n_boot=2000, seed=10)
    assert iv.tie_group.tolist() == [1, 2, 3]
    assert iv.rank_low.tolist() == iv.rank_high.tolist() == [1, 2, 3]
    assert iv.margin[2] == 0.0 and np.all(iv.margin_low[:2] > 0)
    assert np.all(iv.ci_low <= iv.statistic) and np.all(iv.statistic <= iv.ci_high)


def test_holm_matches_hand_computation():
    # sorted 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → running max 0.03, 0.06, 0.06
    assert intervals.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert intervals.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # step-down: never below an earlier one


def _mean_fraction(board: Board, keep: np.ndarray) -> list[Fraction]:
    """Exact mean tracked fraction of each entry over the kept cells (families with no kept cell left out)."""
    fams = [f for f in np.unique(board.family) if keep[board.family == f].any()]
    return [sum(Fraction(int(board.tracked[e, keep & (board.family == f)].sum()), int((keep & (board.family == f)).sum()))
                for f in fams) / len(fams) for e in range(len(board.entries))]


def _ordered(board: Board) -> Board:
    """The board with its entries in ranking order (as :func:`intervals.tier_intervals` builds it), by the
    rule written out here: exact mean tracked fraction, Borda points, median max err, index."""
    keep = np.ones(board.family.size, bool)
    m = _mean_fraction(board, keep)
    frac = np.stack([board.tracked[:, board.family == f].sum(axis=1) for f in np.unique(board.family)], axis=1)
    borda = [sum((frac[:, f] < frac[e, f]).sum() + 0.5 * ((frac[:, f] == frac[e, f]).sum() - 1) for f in range(frac.shape[1]))
             for e in range(len(m))]
    o = sorted(range(len(m)), key=lambda e: (-m[e], -borda[e], np.median(board.max_err[e]), e))
    return Board(tuple(board.entries[i] for i in o), board.family, board.z_low[o], board.z_high[o], board.max_err[o])


def _exhaustive(board: Board, limit: int) -> int | None:
    """The smallest number of cells whose removal brings another entry level with the #1 on the mean
    tracked fraction, exactly, by trying every subset of up to ``limit`` cells (whole families included,
    at least one cell kept); ``board`` in ranking order."""
    C = board.family.size
    for k in range(0, min(limit, C - 1) + 1):
        for drop in combinations(range(C), k):
            keep = np.ones(C, bool)
            keep[list(drop)] = False
            m = _mean_fraction(board, keep)
            if any(x >= m[0] for x in m[1:]):
                return k
    return None


def test_robustness_equals_the_exhaustive_minimum():
    rng = np.random.default_rng(13)
    found = 0
    for _ in range(25):
        family = np.repeat(np.arange(2), 6)
        t = np.stack([rng.uniform(size=12) < p for p in (0.75, 0.55, 0.4)])
        board = _ordered(Board(("x", "y", "z"), family, np.where(t, -np.inf, np.inf), np.where(t, np.inf, -np.inf),
                               rng.uniform(size=(3, 12))))
        k, removed, challenger = intervals.cells_to_change_first(board)
        best = _exhaustive(board, 4)
        if best is not None:
            found += 1
            assert k == best and len(removed) == k
            keep = np.ones(12, bool)
            keep[removed] = False
            m = _mean_fraction(board, keep)
            assert m[challenger] >= m[0]
        else:
            assert k is None or k > 4
    assert found >= 10  # the boards do exercise the search


@pytest.mark.parametrize("seed", range(5))
def test_track_z_interval_matches_the_curve_moved_by_z(seed):
    """The stored interval against a direct check of max_T |pred − (truth + z·s)| ≤ log10 2 on a grid of z."""
    rng = np.random.default_rng(seed)
    q = rng.normal(0, 1, 11)
    up, down = rng.uniform(0.0, 0.3, 11), rng.uniform(0.0, 0.3, 11)
    up[rng.integers(11)] = 0.0  # a point of the curve without spread on one side
    pred = q + rng.normal(0, 0.25, 11)
    lo, hi = track_z_interval(pred, q, q - 1.96 * down, q + 1.96 * up)
    for z in np.linspace(-6, 6, 2401):
        s = np.where(z >= 0, up, down)
        direct = np.max(np.abs(pred - q - z * s)) <= TRACK_TOL + 1e-12
        if abs(z - lo) > 1e-9 and abs(z - hi) > 1e-9:
            assert direct == (lo <= z <= hi), (z, lo, hi)


def test_track_z_interval_without_ci_is_everything_or_nothing():
    q = np.linspace(-1, 1, 5)
    assert track_z_interval(q + 0.2, q) == (-np.inf, np.inf)
    for shift in (0.4, -0.4):
        lo, hi = track_z_interval(q + shift, q, np.full(5, np.nan), np.full(5, np.nan))
        assert not any(lo <= z <= hi for z in np.linspace(-1e6, 1e6, 101))


def _tier_scores(tracked: dict, families=("f1", "f2", "f3"), n=10) -> pd.DataFrame:
    """Full-budget scores of exact cells: ``tracked[entry]`` is the number of tracked cells per family (of n)."""
    rows = []
    for p, counts in tracked.items():
        for f, k in zip(families, counts):
            for j in range(n):
                t = j < k
                rows.append(dict(access="sampler-only", predictor=p, family=f, cell_id=f"{f}{j:02d}", label=f"{f}-{j}",
                                 tracked=t, track_z_low=-np.inf if t else np.inf, track_z_high=np.inf,
                                 max_err=0.1 if t else 1.0, sweeps=65536, seconds=1.0, cpu_seconds=1.0))
    return pd.DataFrame(rows)


def test_ranking_and_robustness_start_from_the_same_first_when_means_are_equal_rationals():
    """Issue #11: a = (1, 2, 3)/10 and b = (3, 2, 1)/10 have equal means as rationals (0.2000000000000001 and
    0.2 as float sums), so Borda points decide: b (4.5) before a (3.5). The ranking used to sort on the
    float and put a first while the robustness count started from b (it reported a "level with" itself)."""
    s = _tier_scores({"a": (1, 2, 3), "b": (3, 2, 1), "c": (2, 0, 0)})
    ranking, _, _ = rankings.tier_ranking(s)
    assert list(ranking.predictor) == ["b", "a", "c"]
    assert ranking.mean_fraction.iloc[0] == ranking.mean_fraction.iloc[1] == 0.2
    table, robust = intervals.tier_intervals(s, ["sampler-only"], n_boot=200)
    assert list(table.entry) == ["b", "a", "c"]
    r = robust["sampler-only"]
    assert (r.first, r.k, r.new_first) == ("b", 0, "a")
    board = intervals.board_from_scores(rankings.ranked_scores(s)[0], ["a", "b", "c"])  # not in ranking order
    with pytest.raises(ValueError, match="ranking order"):
        intervals.cells_to_change_first(board)


def _ulp_board():
    """Two entries tracking 17 of 40 cells each (2 families of 20): in many replicates their statistics are
    equal as rationals, and a float sum of the weights would tell them apart by rounding."""
    rng = np.random.default_rng(1)
    family = np.repeat(np.arange(2), 20)
    tr = np.zeros((2, 40), bool)
    tr[0, rng.choice(40, 17, replace=False)] = True
    tr[1, rng.choice(40, 17, replace=False)] = True
    return _board(tr, family), tr, family


def test_replicate_ties_are_exact_rational_ties():
    """Issue #13: in every replicate two entries tie exactly when their statistics are equal as rationals
    (recomputed with Fractions from the same multinomial draws); the einsum of float weights split 65 of
    439 such replicates by summation-order rounding, so ranks depended on the CPU's kernels."""
    board, tr, family = _ulp_board()
    rep = intervals.replicates(board, 4000, seed=5, truth_draws=False)
    rng = np.random.default_rng(5)
    members = [np.flatnonzero(family == f) for f in range(2)]
    exact = np.zeros((4000, 2), object)
    for start in range(0, 4000, 500):
        counts = np.zeros((500, 40), np.int64)
        for idx in members:
            counts[:, idx] = rng.multinomial(idx.size - 1, np.full(idx.size, 1.0 / idx.size), size=500)
        for b in range(500):
            exact[start + b] = [sum(Fraction(int(counts[b, idx][tr[e, idx]].sum()), 19) for idx in members) / 2
                                for e in range(2)]
    tie = exact[:, 0] == exact[:, 1]
    assert tie.sum() > 300  # the board does exercise the ties
    assert np.sum((rep[:, 0] == rep[:, 1]) != tie) == 0  # the float einsum split 65 of 439
    assert rep[:, 0].tolist() == [float(x) for x in exact[:, 0]]  # one correctly rounded division of the exact value
    iv = intervals.intervals(board, reference="b", n_boot=4000, seed=5, truth_draws=False)
    scores, den = intervals.replicate_scores(board, 4000, seed=5, truth_draws=False)
    assert den == 19 * 2 and scores.dtype == np.int64
    assert np.quantile(scores[:, 0] - scores[:, 1], 0.025) / den == iv.margin_low[0]


def _borderline_pair(rng, n_cells: int) -> Board:
    """Two entries exchangeable cell by cell given the truth: on each cell one of them (a fair coin) tracks
    only while the truth's draw is within ±0.5 of the stored truth, the other never."""
    near = np.stack([np.full(n_cells, -0.5), np.full(n_cells, 0.5)])
    never = np.stack([np.full(n_cells, np.inf), np.full(n_cells, np.inf)])
    first = rng.uniform(size=n_cells) < 0.5
    zl = np.where(first, [near[0], never[0]], [never[0], near[0]])
    zh = np.where(first, [near[1], never[1]], [never[1], near[1]])
    return Board(("a", "b"), np.zeros(n_cells, np.int64), zl, zh, np.zeros((2, n_cells)))


def test_sign_flip_with_truth_draws_compares_like_with_like():
    """Issue #12: a tracks 4 borderline cells only while |z| < 0.3, b never; 36 cells both track. The
    observed difference used to be taken at the stored truth (all 4 cells) and compared with a null that
    redrew z (the 4 cells rarely all differ): p = 0.00025 though the entries are equal in 53% of truth
    draws. With the statistic built from the same truth draws, p is that of 4 one-sided cells, 1/8."""
    C = 40
    zl, zh = np.full((2, C), -np.inf), np.full((2, C), np.inf)
    zl[0, :4], zh[0, :4] = -0.3, 0.3
    zl[1, :4], zh[1, :4] = np.inf, np.inf
    board = Board(("a", "b"), np.zeros(C, np.int64), zl, zh, np.zeros((2, C)))
    p = intervals.sign_flip_p(board, np.ones(C, np.int64), 4000, seed=1, truth_draws=True)[0]
    assert 0.10 <= p <= 0.15
    assert intervals.intervals(board, "b", n_boot=4000, seed=1).tie_group.tolist() == [1, 1]


def test_sign_flip_with_truth_draws_holds_its_level():
    """Entries exchangeable given the truth (:func:`_borderline_pair`, 20 cells each): the tie test rejects
    in at most about 5% of 300 boards (the old construction rejected in most of them)."""
    rng = np.random.default_rng(21)
    p = np.array([intervals.sign_flip_p(_borderline_pair(rng, 20), np.ones(20, np.int64), 400, seed=r)[0]
                  for r in range(300)])
    assert np.mean(p <= 0.05) <= 0.085  # 300 repeats of a 5% test: sd 1.3 points


def test_exact_boards_give_the_same_p_with_or_without_the_stored_truth_redrawn():
    """On exact cells redrawing the truth changes nothing: the sign-flip p-values equal those of the plain
    sign-flip test on the stored results drawn from the same sign stream (as before issue #12's fix)."""
    rng = np.random.default_rng(22)
    board = synthetic(rng, 0.05)
    size = np.bincount(board.family)
    w = (math.lcm(*size.tolist()) // size)[board.family]
    rs = np.random.default_rng(np.random.default_rng(3).integers(2**63))
    signs = np.concatenate([(rs.choice(np.array([-1.0, 1.0]), size=(500, 1, 192))[:, 0], rs.standard_normal((500, 1, 192)))[0]
                            for _ in range(2)])
    d = (board.tracked[0] * 1 - board.tracked[1] * 1) * w
    expect = (1 + np.sum(np.abs(signs.astype(np.int64) @ d) >= abs(d.sum()))) / 1001
    assert intervals.sign_flip_p(board, w, 1000, seed=3)[0] == expect


def test_duplicate_score_rows_are_refused():
    """Issue #16: a second row for the same (predictor, family, cell_id) used to overwrite the first."""
    s = _tier_scores({"a": (1, 2, 3), "b": (3, 2, 1)})
    dup = pd.concat([s, s.iloc[[4]].assign(tracked=False, track_z_low=np.inf)], ignore_index=True)
    with pytest.raises(ValueError, match=r"duplicate.*'a'.*'f1'.*'f104'"):
        intervals.board_from_scores(dup, ["b", "a"])


def test_robustness_counts_removing_a_whole_family():
    """Issue #14: the #1 leads only through a family of 2 cells (it tracks both, the challenger neither);
    removing that family (2 cells) brings the challenger level. Keeping a cell in every family, as the count
    used to, needs 9 removals."""
    family = np.concatenate([np.zeros(2, np.int64), np.ones(10, np.int64)])
    top = np.r_[True, True, np.ones(5, bool), np.zeros(5, bool)]
    other = np.r_[False, False, np.ones(5, bool), True, np.zeros(4, bool)]
    t = np.stack([top, other])
    board = _board(t, family, ("x", "y"))
    k, removed, challenger = intervals.cells_to_change_first(board)
    assert (k, removed, challenger) == (2, [0, 1], 1)
    assert _exhaustive(board, 3) == 2


def test_robustness_equals_the_exhaustive_minimum_with_small_families():
    """Boards with families of 1–3 cells, where emptying a family is often the cheapest removal."""
    rng = np.random.default_rng(23)
    found = 0
    for _ in range(40):
        family = np.repeat(np.arange(3), rng.integers(1, 4, size=3))
        C = family.size
        t = np.stack([rng.uniform(size=C) < p for p in (0.8, 0.5, 0.4)])
        board = _ordered(_board(t, family, ("x", "y", "z")))
        k, removed, challenger = intervals.cells_to_change_first(board)
        assert k == _exhaustive(board, C - 1)
        if k:
            found += 1
            keep = np.ones(C, bool)
            keep[removed] = False
            m = _mean_fraction(board, keep)
            assert len(removed) == k and m[challenger] >= m[0]
    assert found >= 10


def test_page_wording_of_intervals_and_p():
    """The rankings' text says the intervals are uncorrected and descriptive and that "tied" comes from the
    adjacent-pair test; rankings.csv writes a p below 0.001 as "< 0.001" (it wrote "0.000", while the
    sign-flip p is at least 1/(1 + B))."""
    from snrbench.report import leaderboard

    how = leaderboard._HOW_TO_READ
    assert "uncorrected" in how and "descriptive" in how and "“Tied” comes from that adjacent-pair test alone" in how
    assert [leaderboard._p_text(p) for p in (0.0, 0.0004, 0.001, 0.051, float("nan"))] == [
        "< 0.001", "< 0.001", "0.001", "0.051", ""]
