"""The rankings' intervals (snrbench.report.intervals) on synthetic boards whose answers are known.

Calibration (the issue's must-show numbers come from the slow versions, run once):
- two entries equal by construction are tied in ≥ 95% of repeats (2,000 of them: 200 measure a 95% rate
  only to ±1.5 points);
- an entry better by a known margin has a margin interval covering it in 92–98% of 400 seeded repeats.
The fast siblings run fewer repeats with bounds wide enough for their own sampling noise.
"""
from itertools import combinations

import numpy as np
import pytest
from scipy.stats import norm

from snrbench.report import intervals
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


def _mean_fraction(board: Board, keep: np.ndarray) -> np.ndarray:
    fams = np.unique(board.family)
    return np.mean([board.tracked[:, keep & (board.family == f)].mean(axis=1) for f in fams], axis=0)


def _exhaustive(board: Board, limit: int) -> int | None:
    """The smallest number of cells whose removal brings another entry level with the #1 on the mean
    tracked fraction, by trying every subset (up to ``limit`` cells, each family keeping one)."""
    C = board.family.size
    full = np.ones(C, bool)
    top = intervals.first_entry(board.tracked, board.max_err, board.family, full)
    for k in range(0, limit + 1):
        for drop in combinations(range(C), k):
            keep = full.copy()
            keep[list(drop)] = False
            if any(keep[board.family == f].sum() == 0 for f in np.unique(board.family)):
                continue
            m = _mean_fraction(board, keep)
            if np.any(np.delete(m, top) >= m[top] - 1e-12):
                return k
    return None


def test_robustness_equals_the_exhaustive_minimum():
    rng = np.random.default_rng(13)
    found = 0
    for _ in range(25):
        family = np.repeat(np.arange(2), 6)
        t = np.stack([rng.uniform(size=12) < p for p in (0.75, 0.55, 0.4)])
        board = Board(("x", "y", "z"), family, np.where(t, -np.inf, np.inf), np.where(t, np.inf, -np.inf),
                      rng.uniform(size=(3, 12)))
        k, removed, challenger = intervals.cells_to_change_first(board)
        best = _exhaustive(board, 4)
        if best is not None:
            found += 1
            assert k == best and len(removed) == k
            keep = np.ones(12, bool)
            keep[removed] = False
            m = _mean_fraction(board, keep)
            top = intervals.first_entry(board.tracked, board.max_err, family, np.ones(12, bool))
            assert m[challenger] >= m[top] - 1e-12
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
