"""Galerkin/VAMP spectrum: exact covariances reproduce the exact solver; sampled ones approach it."""
import numpy as np
import pytest
import torch

from snrbench import RBM
from snrbench.truth.exact import solve
from snrbench.predict.galerkin import basis_degree, galerkin_spectrum, product_basis
from snrbench.core.observables import gradient_observables
from snrbench.core.spectral import T_GRID

from reference import dense_v_chain


def _exact_moments(rbm, lags):
    """Population C0, C_ℓ, Cov(f, φ), V by dense enumeration of the v-chain (independent of the solver)."""
    V, pv, K = dense_v_chain(rbm)
    mh = torch.tensor(rbm.mean_from_field(rbm.hidden_field(V)))
    phi = product_basis(mh, rbm.n_hidden)[0].numpy()
    F = gradient_observables(rbm, V, "weights")
    pt, ft = phi - pv @ phi, F - pv @ F
    C0 = pt.T @ (pv[:, None] * pt)
    lagged, X = {}, pt.copy()
    for lag in range(1, max(lags) + 1):
        X = K @ X
        if lag in lags:
            Cl = pt.T @ (pv[:, None] * X)
            lagged[lag] = 0.5 * (Cl + Cl.T)
    return C0, lagged, ft.T @ (pv[:, None] * pt), float(pv @ (ft**2).sum(1))


@pytest.mark.parametrize("beta,biased", [(1.0, True), (1.5, False), (0.7, True)])
def test_exact_covariances_reproduce_exact_solver(beta, biased, rng):
    n, m = 6, 3
    W = beta / np.sqrt(n) * (np.outer(rng.choice([-1, 1], n), rng.choice([-1, 1], m)) + 0.3 * rng.standard_normal((n, m)))
    a, b = (0.3 * rng.standard_normal(n), 0.3 * rng.standard_normal(m)) if biased else (None, None)
    rbm = RBM(W, a, b, "spin")
    C0, lagged, cross, V = _exact_moments(rbm, [1, 2, 4, 8, 16, 32])
    spec = galerkin_spectrum(C0, lagged, cross, V)
    sol = solve(rbm)
    assert V == pytest.approx(sol.total_variance, rel=1e-12)
    # every mode of the solver that carries weight is found with its gap and weight
    live = sol.weights > 1e-10 * sol.total_variance
    for gap, S in zip(sol.gaps[live], sol.weights[live]):
        k = np.argmin(np.abs(np.log(spec.gaps / gap)))
        assert spec.gaps[k] == pytest.approx(gap, rel=1e-7)
        assert spec.weights[k] == pytest.approx(S, rel=1e-7)
    np.testing.assert_allclose(spec.trace_cov(T_GRID), sol.trace_cov(T_GRID), rtol=1e-8)


def test_exact_covariances_can_fail(rng):
    """A mis-specified lag (C_2 passed as C_1) must break the agreement."""
    W = 1.0 / np.sqrt(6) * rng.standard_normal((6, 3))
    rbm = RBM(W, 0.3 * rng.standard_normal(6), 0.3 * rng.standard_normal(3), "spin")
    C0, lagged, cross, V = _exact_moments(rbm, [1, 2])
    bad = galerkin_spectrum(C0, {1: lagged[2]}, cross, V)
    assert not np.allclose(bad.trace_cov(T_GRID), solve(rbm).trace_cov(T_GRID), rtol=1e-3)


def test_basis_degree_and_parity():
    assert basis_degree(6, 63) == 6 and basis_degree(6, 62) == 5 and basis_degree(20, 10) == 1
    mh = torch.tensor([[0.5, -0.2, 0.1]], dtype=torch.float64)
    F, deg = product_basis(mh, 3)
    assert F.shape == (1, 7) and sorted(deg.tolist()) == [1, 1, 1, 2, 2, 2, 3]
    assert F[0, deg == 3].item() == pytest.approx(0.5 * -0.2 * 0.1)
    F2, _ = product_basis(-mh, 3)
    np.testing.assert_allclose(F2.numpy(), F.numpy() * (-1.0) ** deg)
