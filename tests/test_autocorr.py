"""Integrated autocorrelation time against the AR(1) value and against emcee and ArviZ."""
import numpy as np
import pytest

from snrbench.core.autocorr import AutocorrError, autocorr_function, integrated_time

#: AR(1) with a = 0.9 has τ = (1+a)/(1−a) = 19 (emcee's reference case).
AR_A, AR_TAU = 0.9, 19.0
#: Sokal-window estimate from 32 chains × 20,000 steps: statistical error ≈ sqrt(2(2M+1)/N)·τ ≈ 1.5%.
STAT_RTOL = 0.06


def ar1(rng, chains, L, a=AR_A):
    x = np.empty((chains, L))
    x[:, 0] = rng.standard_normal(chains) / np.sqrt(1 - a * a)
    eps = rng.standard_normal((chains, L))
    for t in range(1, L):
        x[:, t] = a * x[:, t - 1] + eps[:, t]
    return x


def test_ar1_reference_value(rng):
    x = ar1(rng, 32, 20_000)
    assert integrated_time(x) == pytest.approx(AR_TAU, rel=STAT_RTOL)
    rho = autocorr_function(x)
    np.testing.assert_allclose(rho[:5], AR_A ** np.arange(5), atol=0.02)


def test_matches_emcee_on_the_same_input(rng):
    emcee = pytest.importorskip("emcee")
    x = ar1(rng, 16, 10_000)
    # emcee wants (steps, walkers, dims); same per-chain ACF averaging and Sokal window, c = 5
    ref = emcee.autocorr.integrated_time(x.T[:, :, None], c=5, tol=50)[0]
    assert integrated_time(x) == pytest.approx(ref, rel=1e-10)


def test_agrees_with_arviz_ess(rng):
    az = pytest.importorskip("arviz")
    x = ar1(rng, 8, 20_000)
    # ArviZ's bulk-free "mean" ESS uses Geyer's initial monotone sequence, not Sokal's window:
    # the two estimators agree only within their statistical error.
    ess = float(az.ess(x, method="mean"))
    assert x.size / ess == pytest.approx(integrated_time(x), rel=0.1)


def test_short_series_raises_with_partial_estimate(rng):
    x = ar1(rng, 1, 300)
    with pytest.raises(AutocorrError) as err:
        integrated_time(x)
    assert 5 < err.value.tau < 60
    assert integrated_time(x, quiet=True) == err.value.tau


@pytest.mark.parametrize("bad, message", [(np.ones(10), "constant"), (np.array([1.0, np.nan, 2.0]), "NaN"),
                                          (np.zeros((2, 2, 2)), "shape")])
def test_bad_series(bad, message):
    with pytest.raises(ValueError, match=message):
        integrated_time(bad)
