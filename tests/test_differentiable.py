"""The differentiable exact Q and forecasts (truth.differentiable, truth.forecasts) against independent routes.

Values: the float64/Arb spectral solver (truth.exact) and the white-box entries' formulas on its
solution. Gradients: central finite differences of the same float64 functions along random
directions (named tolerance FD_RTOL), on random cells and on models whose chain has exactly
degenerate eigenvalue pairs. The gradient path is checked to call no eigensolver.
"""
import numpy as np
import pytest
import torch

from snrbench.core.model import RBM
from snrbench.core.spectral import T_GRID
from snrbench.pilot import log10_q_from_modes, log10_q_single_tau
from snrbench.truth import differentiable as dq
from snrbench.truth import exact
from snrbench.truth import forecasts as fc

#: Agreement of values with the exact solver (dex); measured ~1e-13.
VALUE_ATOL = 1e-10
#: Central differences (step FD_STEP) against autograd, relative, per direction.
FD_RTOL = 1e-6
FD_STEP = 1e-5


def _random_cell(rng, units="spin", n=None, m=None):
    n = n or int(rng.integers(3, 8))
    m = m or int(rng.integers(2, 6))
    scale = rng.uniform(0.3, 1.2)
    W = rng.normal(0, scale, (n, m))
    biased = rng.random() < 0.6
    a = rng.normal(0, 0.4, n) if biased else np.zeros(n)
    b = rng.normal(0, 0.4, m) if biased else np.zeros(m)
    data = RBM(rng.normal(0, scale, (n, m)), units=units).sample_exact(100, rng)
    return W, a, b, data


def _fd_check(f, W, a, b, data, units, rng, directions=2, kink=False):
    """Relative error of autograd against central differences of ``c · f(θ + h d)`` along random d.

    ``kink``: the function is the largest of exactly degenerate eigenvalues, whose one-sided slopes
    differ; the central difference is then ``mean slope + O(h)`` and is Richardson-extrapolated,
    ``2 D(h/2) − D(h)``, to remove the O(h) term."""
    T = T_GRID
    c = rng.normal(size=len(T))
    theta = [torch.tensor(x, requires_grad=True) for x in (W, a, b)]
    (torch.tensor(c) @ f(*theta, data, T, units)).backward()
    worst = 0.0
    for _ in range(directions):
        d = [rng.normal(size=np.shape(x)) for x in (W, a, b)]
        ad = sum(float((t.grad * torch.tensor(di)).sum()) for t, di in zip(theta, d))

        def at(h):
            with torch.no_grad():
                return float(torch.tensor(c) @ f(*[torch.tensor(x + h * di) for x, di in zip((W, a, b), d)],
                                                 data, T, units))

        def D(h):
            return (at(h) - at(-h)) / (2 * h)

        fd = 2 * D(FD_STEP / 2) - D(FD_STEP) if kink else D(FD_STEP)
        worst = max(worst, abs(fd - ad) / abs(fd))
    return worst


def test_log10_q_matches_exact_solver():
    rng = np.random.default_rng(11)
    cases = [("spin", "weights", 6, 4), ("spin", "weights+biases", 4, 6), ("binary", "weights", 7, 3),
             ("binary", "weights+biases", 3, 5), ("spin", "weights", 8, 5)]
    for units, obs, n, m in cases:
        W, a, b, data = _random_cell(rng, units, n, m)
        sol = exact.solve(RBM(W, a, b, units), data, obs)
        got = dq.log10_q(W, a, b, data, T_GRID, units, obs).numpy()
        assert np.abs(got - sol.log10_q(T_GRID)).max() < VALUE_ATOL, (units, obs, n, m)
        ch = dq.chain(W, a, b, units, obs)
        assert float(dq.integrated_time(ch)) == pytest.approx(sol.tau_grad, rel=1e-10)
        assert float(dq.integrated_time(ch, magnetization=True)) == pytest.approx(sol.tau_m, rel=1e-10)
        assert float(dq.spectral_gap(ch)) == pytest.approx(sol.spectral_gap, rel=1e-9)


def test_arbitrary_T_and_variance_factor():
    """T off the powers of two (binary decomposition of the window) and the scalar v_T."""
    from snrbench.core.spectral import variance_factor

    rng = np.random.default_rng(5)
    W, a, b, data = _random_cell(rng, "spin", 5, 4)
    T = np.array([1, 3, 7, 100, 1000, 12345])
    ref = exact.solve(RBM(W, a, b), data).log10_q(T)
    assert np.abs(dq.log10_q(W, a, b, data, T).numpy() - ref).max() < VALUE_ATOL
    for gap in (1e-9, 3e-3, 0.5, 1.0):
        got = dq.variance_factor(torch.tensor(gap, dtype=torch.float64), T).numpy()
        np.testing.assert_allclose(got, variance_factor([gap], T)[0], rtol=1e-12)


def test_forecasts_match_entry_formulas():
    """Each forecast against the entry's numpy formula on the exact solution."""
    rng = np.random.default_rng(7)
    for units in ("spin", "binary"):
        W, a, b, data = _random_cell(rng, units, 6, 4)
        sol = exact.solve(RBM(W, a, b, units), data)
        refs = {
            "single-gap": log10_q_from_modes(sol.grad_norm2, [sol.total_variance], [sol.spectral_gap],
                                             sol.total_variance, T_GRID),
            "magnetization": log10_q_single_tau(sol.grad_norm2, sol.total_variance, sol.tau_m, T_GRID),
            "multimode": log10_q_single_tau(sol.grad_norm2, sol.total_variance, sol.tau_grad, T_GRID),
            "true": sol.log10_q(T_GRID),
        }
        for name, f in fc.FORECASTS.items():
            got = f(W, a, b, data, T_GRID, units).numpy()
            assert np.abs(got - refs[name]).max() < 1e-8, (units, name)


def test_log_likelihood_by_enumeration():
    rng = np.random.default_rng(2)
    for n, m in ((5, 3), (3, 5)):
        W, a, b, data = _random_cell(rng, "spin", n, m)
        rbm = RBM(W, a, b)
        V = np.array([[1.0 if (s >> i) & 1 else -1.0 for i in range(n)] for s in range(2**n)])
        lp = rbm.log_marginal_visible(V)
        logz = np.log(np.exp(lp - lp.max()).sum()) + lp.max()
        ref = (rbm.log_marginal_visible(data) - logz).mean()
        assert float(dq.log_likelihood(W, a, b, data)) == pytest.approx(ref, rel=1e-12)


def test_fd_random_cells():
    """20 random cells (spin and binary, either side smaller, with and without biases)."""
    rng = np.random.default_rng(2026)
    errs = []
    for i in range(20):
        units = "spin" if i % 3 else "binary"
        W, a, b, data = _random_cell(rng, units)
        errs.append(_fd_check(dq.log10_q, W, a, b, data, units, rng))
    assert max(errs) <= FD_RTOL, errs


def _blocks(rng, pattern: bool, biased: bool):
    """Two identical, uncoupled copies of one small RBM: the chain is K₁ ⊗ K₁, so every mode λ of K₁
    gives the exactly degenerate pair λ·1, 1·λ. ``pattern``: each copy is one planted pattern ξηᵀ
    (two identical planted patterns); else random couplings (hidden units identical in pairs)."""
    if pattern:
        xi, eta = 2.0 * rng.integers(0, 2, 4) - 1, 2.0 * rng.integers(0, 2, 2) - 1
        w0 = 1.3 * np.outer(xi, eta) / 2.0
    else:
        w0 = rng.normal(0, 0.7, (4, 2))
    W = np.zeros((8, 4))
    W[:4, :2] = W[4:, 2:] = w0
    a0, b0 = (rng.normal(0, 0.3, 4), rng.normal(0, 0.3, 2)) if biased else (np.zeros(4), np.zeros(2))
    return W, np.concatenate([a0, a0]), np.concatenate([b0, b0])


@pytest.mark.parametrize("pattern,biased", [(True, False), (False, False), (False, True)])
def test_fd_degenerate_spectra(pattern, biased):
    rng = np.random.default_rng(40 + 2 * pattern + biased)
    W, a, b = _blocks(rng, pattern, biased)
    # the spectrum really is degenerate at the slowest mode (eigvalsh here only checks the premise)
    lam = np.sort(np.linalg.eigvalsh(dq.chain(W, a, b).M.numpy()))[::-1]
    assert lam[0] > 0.3 and lam[0] - lam[1] < 1e-12
    data = RBM(W + rng.normal(0, 0.3, W.shape)).sample_exact(200, rng)
    for name, f in fc.FORECASTS.items():
        theta = [torch.tensor(x, requires_grad=True) for x in (W, a, b)]
        f(*theta, data, T_GRID, "spin").sum().backward()
        assert all(torch.isfinite(t.grad).all() for t in theta), name
        assert _fd_check(f, W, a, b, data, "spin", rng, kink=name == "single-gap") <= FD_RTOL, name


def test_fd_forecasts_random_cells():
    rng = np.random.default_rng(99)
    for i in range(3):
        W, a, b, data = _random_cell(rng, "spin" if i else "binary")
        for name in ("single-gap", "magnetization", "multimode"):
            assert _fd_check(fc.FORECASTS[name], W, a, b, data, "spin" if i else "binary", rng) <= FD_RTOL, name


def test_gradient_path_calls_no_eigensolver(monkeypatch):
    """No eig/eigh/eigvals/eigvalsh (torch or numpy) is called, and no eig kernel runs in autograd."""
    def refuse(*args, **kwargs):
        raise AssertionError("an eigensolver was called on the gradient path")

    for mod, names in ((torch.linalg, ("eig", "eigh", "eigvals", "eigvalsh")),
                       (np.linalg, ("eig", "eigh", "eigvals", "eigvalsh"))):
        for name in names:
            monkeypatch.setattr(mod, name, refuse)
    rng = np.random.default_rng(3)
    W, a, b = _blocks(rng, True, False)
    data = RBM(W).sample_exact(50, rng)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for f in fc.FORECASTS.values():
            theta = [torch.tensor(x, requires_grad=True) for x in (W, a, b)]
            f(*theta, data, T_GRID, "spin").sum().backward()
    ops = {e.key for e in prof.key_averages()}
    assert any("solve" in op for op in ops)  # the profiler does see the linear algebra
    assert not [op for op in ops if "eig" in op.lower() or "svd" in op.lower()]
