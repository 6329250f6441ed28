"""v_T, τ and T* against high-precision and analytic routes."""
import mpmath as mp
import numpy as np
import pytest

from snrbench.core import spectral


def vT_mp(gap, T, dps=700):
    """Closed form at 700 digits: ``[(1+λ)/(1−λ) − 2λ(1−λ^T)/(T(1−λ)²)]/T`` (cancellation harmless)."""
    with mp.workdps(dps):
        g = mp.mpf(gap)
        lam = 1 - g
        if g == 1:
            return mp.mpf(1) / T
        return ((1 + lam) / g - 2 * lam * (1 - lam**T) / (T * g**2)) / T


@pytest.mark.parametrize("gap", [1.0, 0.9, 0.5, 1e-3, 1e-8, 1e-16, 1e-30, 1e-300])
def test_variance_factor_matches_100_digit_closed_form(gap):
    T = [1, 2, 3, 17, 1024, 65536]
    got = spectral.variance_factor([gap], T)[0]
    ref = np.array([float(vT_mp(gap, t)) for t in T])
    np.testing.assert_allclose(got, ref, rtol=1e-11)


def test_variance_factor_limits():
    v = spectral.variance_factor([1e-30, 1.0], spectral.T_GRID)
    np.testing.assert_allclose(v[0], 1.0, rtol=1e-12)  # frozen mode: the window mean is one sample
    np.testing.assert_allclose(v[1], 1.0 / spectral.T_GRID, rtol=1e-15)  # iid
    with pytest.raises(ValueError, match="gaps"):
        spectral.variance_factor([0.0], [1])
    with pytest.raises(ValueError, match="positive integers"):
        spectral.variance_factor([0.5], [0])


def test_integrated_time_of_ar1():
    """A single mode with λ = 0.9 has τ = 1.9/0.1 = 19 (emcee's AR(1) reference value)."""
    assert spectral.integrated_time([1.0], [0.1], 1.0) == pytest.approx(19.0, rel=1e-14)
    # and the T-window variance approaches τ·V/T
    v = spectral.trace_cov([1.0], [0.1], 0.0, [65536])[0]
    assert v * 65536 == pytest.approx(19.0, rel=1e-3)
    assert spectral.tau_to_gap(19.0) == pytest.approx(0.1)


def test_t_star():
    T = spectral.T_GRID
    lq = np.log10(T / 10.0)  # Q = T/10 crosses 1 at T = 10
    assert spectral.t_star(lq, T) == pytest.approx(10.0, rel=1e-12)
    assert spectral.t_star(lq + 5, T) == 1.0
    assert spectral.t_star(lq - 10, T) == float("inf")
