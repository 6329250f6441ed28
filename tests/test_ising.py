"""Ising family: model validation, exact random-scan solver vs dense sweep kernel, sampler vs exact."""
import numpy as np
import pytest
import torch

from reference import assert_window_trace_cov, dense_ising_sweep
from snrbench.truth import exact
from snrbench.truth import exact_ising
from snrbench.core.ising import IsingModel, pair_observables
from snrbench.core.sampler import RandomScanGibbs
from snrbench.families import build_data, build_model, load_suite


def _sk(N, beta, seed, field=0.0):
    rng = np.random.default_rng(seed)
    G = np.triu(rng.standard_normal((N, N)), 1)
    return IsingModel(beta * (G + G.T) / np.sqrt(N), field * rng.standard_normal(N))


def _dense_trace_cov(model, T):
    X, p, K = dense_ising_sweep(model)
    ft = pair_observables(X) - p @ pair_observables(X)
    out = []
    for t in T:
        c = [p @ (ft * (np.linalg.matrix_power(K, lag) @ ft)).sum(axis=1) for lag in range(t)]
        out.append((c[0] * t + 2 * sum((t - lag) * c[lag] for lag in range(1, t))) / t**2)
    return np.array(out)


@pytest.mark.parametrize("field", [0.0, 0.4])
def test_exact_matches_dense_sweep_kernel(field):
    """Tr Cov(T) from the sector spectral solution = autocovariances of the dense P^N (T ≤ 16)."""
    model = _sk(6, 1.5, 3, field)
    sol = exact.solve(model)  # dispatches to exact_ising
    T = [1, 2, 4, 16]
    np.testing.assert_allclose(sol.trace_cov(T), _dense_trace_cov(model, T), rtol=1e-9)
    assert sol.method.startswith("float64-eigh")
    assert sol.eig_check < 1e-8
    _, _, K = dense_ising_sweep(model)
    lam = np.sort(np.linalg.eigvals(K).real)[::-1]
    assert abs((1 - lam[1]) / sol.spectral_gap - 1) < 1e-8  # the global sweep gap


def test_symmetric_model_puts_no_weight_on_odd_modes():
    sol = exact_ising.solve(_sk(6, 2.0, 1))
    assert set(sol.sectors) == {"even", "odd"}
    assert sol.weights[sol.sectors == "odd"].max() == 0.0
    assert sol.weights_m[sol.sectors == "even"].max() == 0.0
    assert sol.spectral_gap < sol.observable_gap()  # the slowest mode is odd (the global flip)


def test_sampler_matches_exact(rng):
    """Chains started from exact samples: Tr Cov at T ∈ {1, 4, 16} within 3 standard errors."""
    model = _sk(5, 1.5, 4, 0.3)
    sol = exact.solve(model)
    R = 20_000
    X, p = model.probabilities()
    v0 = X[rng.choice(len(X), R, p=p)]
    assert_window_trace_cov(RandomScanGibbs(model, R, dtype=torch.float64, seed=5, v0=v0).window_means([1, 4, 16]), sol)


def test_bad_models_are_refused():
    with pytest.raises(ValueError, match="symmetric"):
        IsingModel(np.triu(np.ones((3, 3)), 1))
    with pytest.raises(ValueError, match="non-finite"):
        IsingModel(np.full((3, 3), np.nan))
    with pytest.raises(TypeError, match="IsingModel"):
        RandomScanGibbs(object(), 4)


def test_suite_has_36_cells_and_a_teacher_of_each_kind():
    header, cells = load_suite("ising")
    assert len(cells) == 36 and header["family"] == "ising"
    assert {c.label.split("-")[0] for c in cells} == {"cw", "sk", "hop2"}
    cell = next(c for c in cells if c.label == "hop2-N8-b2-s0")
    model, data = build_model(cell), build_data(cell)
    assert isinstance(model, IsingModel) and model.spin_flip_symmetric
    assert data.shape == (500, 8) and set(np.unique(data)) == {-1.0, 1.0}
    sol = exact.solve(model, data)
    assert np.isfinite(sol.grad_norm2) and sol.grad_norm2 > 0
