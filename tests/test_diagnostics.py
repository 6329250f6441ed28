"""Split-R̂ against ArviZ, and the doubling rule on equilibrated vs drifting series."""
import arviz as az
import numpy as np
import pytest

from snrbench.core.diagnostics import doubling_rule, split_rhat, top_components


def _ar1(rng, chains, L, phi, start=0.0):
    x = np.empty((chains, L))
    x[:, 0] = start + rng.standard_normal(chains) / np.sqrt(1 - phi**2)
    for t in range(1, L):
        x[:, t] = phi * x[:, t - 1] + rng.standard_normal(chains)
    return x


def test_split_rhat_matches_arviz(rng):
    x = _ar1(rng, 4, 1000, 0.9)
    assert split_rhat(x) == pytest.approx(float(az.rhat(x, method="split")), rel=1e-10)
    shifted = x + np.arange(4)[:, None] * 3.0  # chains that disagree
    assert split_rhat(shifted) == pytest.approx(float(az.rhat(shifted, method="split")), rel=1e-10)
    long = _ar1(rng, 8, 20000, 0.9)  # τ = 19: 8 × 20000 steps is plenty
    assert split_rhat(long) < 1.01 < split_rhat(shifted)


def test_doubling_rule_accepts_equilibrium_and_flags_drift(rng):
    good = doubling_rule(_ar1(rng, 8, 8000, 0.8))  # τ = 9
    assert good.ok and good.tau_L == pytest.approx(9.0, rel=0.2)
    walk = np.cumsum(rng.standard_normal((8, 8000)), axis=1)  # no equilibrium: τ grows with L
    bad = doubling_rule(walk)
    assert not bad.ok and bad.tau_2L > 1.3 * bad.tau_L


def test_top_components_picks_the_varying_direction(rng):
    F = rng.standard_normal((3, 500, 4)) * np.array([0.1, 5.0, 0.1, 0.1])
    p = top_components(F, k=1)
    assert p.shape == (1, 3, 500)
    assert np.corrcoef(p[0].ravel(), F[..., 1].ravel())[0, 1] ** 2 > 0.99
