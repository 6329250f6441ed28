"""Operational Q (burn-in from a start distribution, bias included) against explicit propagation."""
import numpy as np
import pytest

from reference import brute_window_error, dense_ising_sweep, dense_v_chain
from snrbench.truth import exact
from snrbench.truth import exact_ising
from snrbench.core.ising import IsingModel, pair_observables
from snrbench.core.observables import gradient_observables
from snrbench.truth.operational import window_error
from test_exact import mattis

T = np.array([1, 2, 4, 8])


def _ising(N, beta, seed):
    rng = np.random.default_rng(seed)
    G = np.triu(rng.standard_normal((N, N)), 1)
    return IsingModel(beta * (G + G.T) / np.sqrt(N))


def _starts(n_states, rng):
    data = np.zeros(n_states)
    data[rng.choice(n_states, 7)] += 1.0
    return {"uniform": np.full(n_states, 1.0 / n_states), "data": data / data.sum()}


@pytest.mark.parametrize("symmetric", [True, False])
def test_rbm_matches_explicit_propagation(symmetric, rng):
    rbm = mattis(5, 3, 1.5, 2, symmetric=symmetric)
    V, pv, K = dense_v_chain(rbm)
    f = gradient_observables(rbm, V)
    ft = f - pv @ f
    modes = exact.chain_modes(rbm)
    for name, start in _starts(len(V), rng).items():
        for B in (0, 3):
            mse, bias2 = window_error(modes, start, T, B)
            want = [brute_window_error(K, ft, start, int(t), B) for t in T]
            np.testing.assert_allclose(mse, want, rtol=1e-9, err_msg=f"{name}, B={B}")
            assert np.all(bias2 <= mse * (1 + 1e-12))


def test_ising_matches_explicit_propagation(rng):
    model = _ising(5, 1.2, 0)
    X, p, K = dense_ising_sweep(model)
    f = pair_observables(X)
    ft = f - p @ f
    modes = exact_ising.chain_modes(model)
    for name, start in _starts(len(X), rng).items():
        for B in (0, 2):
            mse, _ = window_error(modes, start, T, B)
            want = [brute_window_error(K, ft, start, int(t), B) for t in T]
            np.testing.assert_allclose(mse, want, rtol=1e-9, err_msg=f"{name}, B={B}")


def test_long_burn_in_is_the_stationary_estimator(rng):
    """B → ∞: no bias left and E‖ĝ − g‖² = the stationary Tr Cov(T) of the spectral solution."""
    rbm = mattis(6, 3, 2.0, 1, symmetric=False)
    sol = exact.solve(rbm)
    grid = 2 ** np.arange(13)
    B = int(60 / sol.spectral_gap)
    mse, bias2 = window_error(exact.chain_modes(rbm), np.full(2**6, 1 / 2**6), grid, B)
    np.testing.assert_allclose(mse, sol.trace_cov(grid), rtol=1e-9)
    assert bias2.max() < 1e-20 * mse.max()
    mse0, bias0 = window_error(exact.chain_modes(rbm), np.eye(2**6)[0], grid, 0)
    assert bias0[-1] > 0.01 * mse0[-1]  # from one corner without burn-in the bias is visible (teeth)


def test_bad_inputs_are_named():
    modes = exact.chain_modes(mattis(4, 2, 1.0, 0))
    with pytest.raises(ValueError, match="probability vector"):
        window_error(modes, np.ones(16), T, 0)
    with pytest.raises(ValueError, match="powers of 2"):
        window_error(modes, np.full(16, 1 / 16), [3], 0)
