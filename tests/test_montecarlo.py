"""Monte Carlo ground truth against the exact solver (the ladder's second rung, small cells)."""
import numpy as np
import pytest

from snrbench.truth.exact import solve
from snrbench.truth.montecarlo import mc_q_curve
from snrbench.families import build_data, build_model, load_suite
from pathlib import Path

CELLS = {c.label: c for c in load_suite(Path(__file__).parent / "data" / "exact-rbm.toml")[1]}
T = np.array([1, 2, 4, 8, 16, 32, 64])


@pytest.mark.parametrize("label", ["n6m3-b1-bias-s0", "n6m3-b1-sym-s0"])
def test_mc_matches_exact_inside_ci(label):
    cell = CELLS[label]
    rbm, data = build_model(cell), build_data(cell)
    sol = solve(rbm, data)
    mc = mc_q_curve(rbm, data, T=T, n_replicates=2048, seed=3, n_boot=200)
    truth = sol.log10_q(T)
    inside = (mc.ci_low <= truth) & (truth <= mc.ci_high)
    assert inside.mean() >= 6 / 7, (truth, mc.ci_low, mc.ci_high)
    z = (mc.trace_cov - sol.trace_cov(T)) / mc.trace_cov_se
    assert np.all(np.abs(z) < 4), z
    assert np.median(np.abs(mc.trace_cov / sol.trace_cov(T) - 1)) < 0.05
    assert mc.sweeps == 2048 * 64


def test_mc_detects_a_wrong_model():
    """The CI must exclude the exact curve of a different β (the check can fail)."""
    cell = CELLS["n6m3-b1-bias-s0"]
    rbm, data = build_model(cell), build_data(cell)
    other = type(rbm)(rbm.W * 1.3, rbm.a, rbm.b, rbm.units)
    mc = mc_q_curve(rbm, data, T=T, n_replicates=2048, seed=3, n_boot=200)
    wrong = solve(other, data).log10_q(T)
    assert np.mean((mc.ci_low <= wrong) & (wrong <= mc.ci_high)) < 0.5


def test_diagnostics_pass_a_mixing_cell_and_flag_a_frozen_start():
    """Fast cell from exact starts: R̂ ≈ 1, doubling rule holds. Strongly coupled biased RBM from a
    uniform start without burn-in, chains stuck in their wells: flagged (stored flagged, not dropped)."""
    cell = CELLS["n6m3-b1-bias-s0"]
    rbm, data = build_model(cell), build_data(cell)
    grid = 2 ** np.arange(11)
    ok = mc_q_curve(rbm, data, T=grid, n_replicates=256, seed=1, n_boot=20)
    assert ok.rhat < 1.01 and ok.doubling_ok and not ok.flagged
    stuck = type(rbm)(rbm.W * 6.0, rbm.a, rbm.b, rbm.units)
    bad = mc_q_curve(stuck, data, T=grid, n_replicates=256, seed=1, n_boot=20, start="uniform")
    assert bad.flagged and not bad.doubling_ok  # frozen components: τ not measurable
