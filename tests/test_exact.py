"""The exact solver against independent routes (DESIGN §2 reference checks)."""
import numpy as np
import pytest
import torch

from reference import assert_window_trace_cov, dense_reference, mp_reference
from snrbench.truth import exact
from snrbench.core.model import RBM
from snrbench.core.sampler import BlockGibbs
from snrbench.core.spectral import T_GRID
from snrbench.families import build_data, build_model, load_suite

#: Named tolerances.
DENSE_RTOL = 1e-10  # float64 dense enumeration vs solver (issue: spectrum and τ to 1e-10)
HIGHPREC_RTOL = 1e-8  # 100-digit mpmath vs solver for gaps below 1e-20
#: Mode weights are limited by float64's absolute resolution of E[f|h] (~1e-16): where the weight's
#: amplitude ⟨E[f̃|h], ψ_k⟩ is only ~3e-8 (biased, β = 6 below) that leaves ~1e-8 relative in S_k.
WEAK_WEIGHT_RTOL = 1e-6


def mattis(n, m, beta, seed, symmetric=True, units="spin", disorder=0.3, bias=0.3):
    rng = np.random.default_rng(seed)
    xi, eta = rng.choice([-1.0, 1.0], n), rng.choice([-1.0, 1.0], m)
    W = beta / np.sqrt(n) * (np.outer(xi, eta) + disorder * rng.standard_normal((n, m)))
    a = b = None
    if not symmetric:
        a, b = bias * rng.standard_normal(n), bias * rng.standard_normal(m)
    return RBM(W, a, b, units)


@pytest.mark.parametrize("units", ["spin", "binary"])
def test_zero_coupling_gives_iid_sweeps(units, rng):
    """W = 0: one sweep is an exact sample, so Q(T) = ‖g‖²·T/V exactly and λ_k = 0."""
    rbm = RBM(np.zeros((5, 3)), rng.normal(size=5), rng.normal(size=3), units)
    data = rbm.sample_exact(50, rng) if units == "spin" else (rng.random((50, 5)) < 0.3).astype(float)
    sol = exact.solve(rbm, data)
    expected = np.log10(sol.grad_norm2 * T_GRID / sol.total_variance)
    np.testing.assert_allclose(sol.log10_q(), expected, rtol=0, atol=1e-12)
    assert sol.weights.sum() == 0.0  # all weight at λ = 0
    assert sol.tau_grad == pytest.approx(1.0, abs=1e-14)
    assert exact.spectral_gap(rbm) == pytest.approx(1.0, abs=1e-12)


DENSE_CASES = {
    "spin-symmetric": dict(n=6, m=3, beta=1.5, seed=1),
    "spin-biased": dict(n=7, m=4, beta=1.0, seed=2, symmetric=False),
    "binary": dict(n=6, m=5, beta=2.0, seed=3, symmetric=False, units="binary"),
    "visible-smaller": dict(n=4, m=7, beta=1.2, seed=4, symmetric=False),
    "visible-smaller-symmetric": dict(n=5, m=8, beta=1.0, seed=5),
}


@pytest.mark.parametrize("observables", ["weights", "weights+biases"])
@pytest.mark.parametrize("case", sorted(DENSE_CASES))
def test_matches_dense_enumeration(case, observables):
    kw = dict(DENSE_CASES[case])
    n, m, beta, seed = kw.pop("n"), kw.pop("m"), kw.pop("beta"), kw.pop("seed")
    rbm = mattis(n, m, beta, seed, **kw)
    ref = dense_reference(rbm, observables)
    sol = exact.solve(rbm, observables=observables)
    # spectrum: the non-zero eigenvalues of the dense v-kernel are the solver's λ_k
    lam_ref = ref["lam"][1:]
    lam_ref = lam_ref[lam_ref > 1e-6]
    lam = np.sort(1.0 - sol.gaps)[::-1]
    lam = lam[lam > 1e-6]
    assert len(lam) == len(lam_ref)
    # relative 1e-10 where the float64 dense reference resolves it (λ ≥ 1e-4), 1e-14 absolute below
    big = lam_ref >= 1e-4
    np.testing.assert_allclose(lam[big], lam_ref[big], rtol=DENSE_RTOL)
    np.testing.assert_allclose(lam, lam_ref, rtol=0, atol=1e-14)
    assert sol.total_variance == pytest.approx(ref["V"], rel=DENSE_RTOL)
    assert sol.tau_grad == pytest.approx(ref["tau_grad"], rel=DENSE_RTOL)
    assert sol.tau_m == pytest.approx(ref["tau_m"], rel=DENSE_RTOL)
    T = [1, 2, 3, 5, 8, 16, 64]
    np.testing.assert_allclose(sol.trace_cov(T), ref["trace_cov"](T), rtol=DENSE_RTOL)


def test_dense_reference_can_fail():
    """The comparison has teeth: a slightly different model is far outside the tolerance."""
    a, b = mattis(6, 3, 1.5, 1), mattis(6, 3, 1.5 * (1 + 1e-6), 1)
    assert abs(exact.solve(a).tau_m / dense_reference(b)["tau_m"] - 1) > 100 * DENSE_RTOL


def test_brute_force_monte_carlo(rng):
    """The torch sampler's chains started in equilibrium: Tr Cov at T ∈ {1, 4, 16} within 3 SE."""
    rbm = mattis(4, 3, 1.0, 0, symmetric=False, disorder=1.0)
    sol = exact.solve(rbm)
    assert sol.tau_grad > 3  # correlated enough that T matters
    R = 40_000
    sampler = BlockGibbs(rbm, R, dtype=torch.float64, seed=11, v0=rbm.sample_exact(R, rng))
    assert_window_trace_cov(sampler.window_means([1, 4, 16]), sol)  # resolves a 10% error


def test_strong_coupling_gap_against_100_digits():
    """Spin-flip symmetric, gap < 1e-20: gap, τ_grad, τ_m to 1e-8 against 100-digit mpmath."""
    rbm = mattis(8, 4, 7.0, 0, disorder=0.2)
    sol = exact.solve(rbm)
    ref = mp_reference(rbm, dps=100)
    assert sol.spectral_gap < 1e-20
    gap_ref = float(ref["gaps"][0])
    assert sol.spectral_gap == pytest.approx(gap_ref, rel=HIGHPREC_RTOL)
    # the whole spectrum, each gap to relative accuracy
    np.testing.assert_allclose(np.sort(sol.gaps)[:8], np.array(sorted(float(g) for g in ref["gaps"]))[:8],
                               rtol=HIGHPREC_RTOL)
    assert sol.tau_m == pytest.approx(float(ref["tau_m"]), rel=HIGHPREC_RTOL)
    assert sol.tau_grad == pytest.approx(float(ref["tau_grad"]), rel=HIGHPREC_RTOL)
    # the slowest mode is odd: the even gradient observables do not see it
    assert sol.sectors[np.argmin(sol.gaps)] == "odd"
    assert sol.tau_gap / sol.tau_grad > 1e18


def test_strong_coupling_biased_against_100_digits():
    rbm = mattis(8, 4, 6.0, 1, symmetric=False, disorder=0.2, bias=0.1)
    sol = exact.solve(rbm)
    ref = mp_reference(rbm, dps=100)
    assert sol.spectral_gap < 1e-20
    assert sol.spectral_gap == pytest.approx(float(ref["gaps"][0]), rel=HIGHPREC_RTOL)
    assert sol.tau_grad == pytest.approx(float(ref["tau_grad"]), rel=WEAK_WEIGHT_RTOL)
    assert sol.tau_m == pytest.approx(float(ref["tau_m"]), rel=HIGHPREC_RTOL)


def test_symmetric_suite_cell_sectors():
    """A β = 3 symmetric suite cell: gap far below float64 resolution, zero weight on odd modes."""
    _, cells = load_suite("exact-rbm")
    cell = next(c for c in cells if c.spec["n_hidden"] == 6 and c.spec["beta"] == 3.0 and c.spec["symmetric"])
    sol = exact.solve(build_model(cell), build_data(cell))
    odd = sol.sectors == "odd"
    assert sol.spectral_gap < 1e-16
    assert np.all(sol.weights[odd] == 0.0)
    assert np.all(sol.weights_m[~odd] == 0.0)
    assert sol.observable_gap() > 1e10 * sol.spectral_gap
    assert np.isfinite(sol.log10_q()).all()


def test_public_functions_agree():
    _, cells = load_suite("exact-rbm")
    cell = cells[5]
    rbm, data = build_model(cell), build_data(cell)
    sol = exact.solve(rbm, data)
    np.testing.assert_array_equal(exact.q_curve(rbm, data), sol.log10_q())
    assert exact.spectral_gap(rbm) == sol.spectral_gap
    assert exact.observable_gap(rbm, data) == sol.observable_gap()
    assert exact.q_curve(rbm, data).shape == (17,)


def test_q1_is_static_snr():
    """Q(1) = ‖g‖²/V whatever the dynamics (DESIGN §5 fact 1)."""
    _, cells = load_suite("exact-rbm")
    for cell in cells[::7]:
        sol = exact.solve(build_model(cell), build_data(cell))
        assert sol.log10_q([1])[0] == pytest.approx(np.log10(sol.grad_norm2 / sol.total_variance), abs=1e-12)


def test_bad_data_is_refused():
    rbm = mattis(5, 3, 1.0, 0)
    with pytest.raises(ValueError, match="shape"):
        exact.solve(rbm, np.ones((4, 6)))
    with pytest.raises(ValueError, match="only"):
        exact.solve(rbm, np.zeros((4, 5)))
    with pytest.raises(ValueError, match="needs data"):
        exact.solve(rbm).log10_q()


def test_biased_suite_cell_against_100_digits():
    """A strongly coupled biased suite cell (n=10, m=4, β=3): gap, τ_grad, τ_m to 1e-8 at 100 digits."""
    _, cells = load_suite("exact-rbm")
    cell = next(c for c in cells if c.label == "n10m4-b3-bias-s0")
    rbm = build_model(cell)
    sol = exact.solve(rbm, build_data(cell))
    ref = mp_reference(rbm, dps=100)
    assert sol.spectral_gap < 1e-10
    assert sol.spectral_gap == pytest.approx(float(ref["gaps"][0]), rel=HIGHPREC_RTOL)
    assert sol.tau_grad == pytest.approx(float(ref["tau_grad"]), rel=HIGHPREC_RTOL)
    assert sol.tau_m == pytest.approx(float(ref["tau_m"]), rel=HIGHPREC_RTOL)
