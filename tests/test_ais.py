"""AIS of log Z against hidden-side enumeration (m ≤ 20) and brute force over the visible states."""
import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from snrbench.truth import hidden_enum
from snrbench.truth.ais import AISResult, _increment, ais_log_partition, default_schedule, log_likelihood
from snrbench.core.model import RBM, all_states
from snrbench.core.tempered import base_rate_bias

#: |log Ẑ − log Z| (nats) allowed for a converged run on the small models (beside the ±3 SE check).
AIS_TOL = 0.05


pytestmark = pytest.mark.usefixtures("one_thread")


def model_and_base(units, scale, n=40, m=10, seed=1):
    """An RBM with W ~ N(0, scale²), a = the base rate of random data, b ~ N(0, 0.3²); a0 = that base rate."""
    rng = np.random.default_rng(seed)
    data = (rng.random((500, n)) < rng.uniform(0.1, 0.9, n)).astype(float)
    if units == "spin":
        data = 2.0 * data - 1.0
    a0 = base_rate_bias(data, units)
    return RBM(scale * rng.standard_normal((n, m)), a0, 0.3 * rng.standard_normal(m), units), a0


def passes(res, exact):
    """The accuracy check: the exact log Z inside the ±3 SE interval and within AIS_TOL of log Ẑ."""
    return res.log_z_low <= exact <= res.log_z_high and abs(res.log_z - exact) < AIS_TOL


def test_default_schedule():
    """Salakhutdinov & Murray's steps: 1e-3 to 0.5, 1e-4 to 0.9, 1e-5 to 1; resampled keeps the ends."""
    betas = default_schedule()
    assert len(betas) == 14_501 and betas[0] == 0.0 and betas[-1] == 1.0
    steps = np.diff(betas)
    np.testing.assert_allclose(steps[[0, 499, 500, 4499, 4500, -1]], [1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-5], rtol=1e-9)
    short = default_schedule(30)
    assert len(short) == 30 and short[0] == 0.0 and short[-1] == 1.0 and np.all(np.diff(short) > 0)
    np.testing.assert_array_equal(default_schedule(2), [0.0, 1.0])


@pytest.mark.parametrize("units", ["binary", "spin"])
def test_increment_without_cancellation(units, rng):
    """The hidden part of a weight increment equals the difference of the log-partials (moderate
    fields), keeps its relative accuracy in float32 where that difference would cancel, and stays
    finite for huge fields."""
    rbm = RBM(np.zeros((1, 5)), None, None, units)
    x = 8.0 * rng.standard_normal((4, 5))
    for beta, dbeta in [(0.0, 1e-3), (0.37, 0.2), (0.9, 1e-5)]:
        want = rbm.log_partial((beta + dbeta) * x) - rbm.log_partial(beta * x)
        got = _increment(torch.tensor(x), beta, dbeta, units == "spin").numpy()
        np.testing.assert_allclose(got, want, rtol=1e-9)
        got32 = _increment(torch.tensor(x, dtype=torch.float32), beta, dbeta, units == "spin").numpy()
        np.testing.assert_allclose(got32, want, rtol=1e-5)
    # β = 0, Δβ = 1: L(x) − L(0) with L(±1e5) = 1e5 or 0 (binary), 1e5 (spins) to float64, L(0) = log 2
    limit = (2e5 if units == "spin" else 1e5) - 2.0 * np.log(2.0)
    huge = torch.tensor([[1e5, -1e5]], dtype=torch.float64)
    assert _increment(huge, 0.0, 1.0, units == "spin").item() == pytest.approx(limit, rel=1e-15)


@pytest.mark.parametrize("units", ["binary", "spin"])
def test_no_coupling_is_exact(units, rng):
    """W = 0 and a0 = a: log p̃_β(v) − log p̃_β'(v) does not depend on v, so every run has the same
    weight, the estimate is exact and ESS = R."""
    n, m = 30, 6
    rbm = RBM(np.zeros((n, m)), rng.standard_normal(n), rng.standard_normal(m), units)
    res = ais_log_partition(rbm, rbm.a, n_runs=64, betas=default_schedule(50))
    assert res.log_z == pytest.approx(hidden_enum.log_partition(rbm), rel=0, abs=1e-10)
    assert res.log_z_low == pytest.approx(res.log_z, abs=1e-12)
    assert res.log_z_high == pytest.approx(res.log_z, abs=1e-12)
    assert res.ess == pytest.approx(64, rel=1e-12)
    assert (res.n_runs, res.n_betas) == (64, 50)


@pytest.mark.parametrize("units, scale, dtype", [("binary", 1.0, torch.float64), ("binary", 1.0, torch.float32),
                                                 ("spin", 0.3, torch.float64)])
def test_matches_enumeration(units, scale, dtype):
    """A coupled model (n = 40, m = 10; 2000 βs, 256 runs) passes the check."""
    rbm, a0 = model_and_base(units, scale)
    exact = hidden_enum.log_partition(rbm)
    res = ais_log_partition(rbm, a0, n_runs=256, betas=default_schedule(2000), seed=0, dtype=dtype)
    assert passes(res, exact), (res, exact)
    assert res.ess > 100


def test_short_schedule_fails_the_check():
    """Teeth: the strongly coupled binary model above with 3 βs instead of 2000. The runs never reach
    the RBM's modes, so log Ẑ falls nats short (E log Ẑ ≤ log Z) and the check fails for every seed;
    the interval's lower end stays finite (clipped at a certain lower bound)."""
    rbm, a0 = model_and_base("binary", 1.0)
    exact = hidden_enum.log_partition(rbm)
    runs = [ais_log_partition(rbm, a0, n_runs=256, betas=default_schedule(3), seed=s) for s in range(5)]
    assert not any(passes(r, exact) for r in runs)
    assert np.mean([r.log_z for r in runs]) < exact - 2.0
    assert all(np.isfinite(r.log_z_low) and r.log_z_low <= r.log_z for r in runs)


def test_seeded_and_independent_of_global_rng():
    rbm, a0 = model_and_base("binary", 0.5, n=20, m=4)
    kw = dict(n_runs=16, betas=default_schedule(20))
    first = ais_log_partition(rbm, a0, seed=3, **kw)
    torch.manual_seed(123)
    assert ais_log_partition(rbm, a0, seed=3, **kw) == first
    assert ais_log_partition(rbm, a0, seed=4, **kw).log_z != first.log_z


@pytest.mark.parametrize("units", ["binary", "spin"])
def test_log_likelihood(units, rng):
    """Against log p(v) = log p̃(v) − logsumexp over all 2^n visible states (n = 8), with the exact
    and with the AIS log Z."""
    rbm = RBM(0.8 * rng.standard_normal((8, 3)), 0.5 * rng.standard_normal(8), 0.5 * rng.standard_normal(3), units)
    V = all_states(8, units)
    lq = rbm.log_marginal_visible(V)
    data = V[rng.integers(0, len(V), 50)]
    want = float(rbm.log_marginal_visible(data).mean() - logsumexp(lq))
    assert log_likelihood(rbm, data, logsumexp(lq)) == pytest.approx(want, rel=0, abs=1e-12)
    res = ais_log_partition(rbm, np.zeros(8), n_runs=256, betas=default_schedule(300))
    assert log_likelihood(rbm, data, res.log_z) == pytest.approx(want, rel=0, abs=AIS_TOL)


def test_bad_inputs():
    rbm, a0 = model_and_base("binary", 0.5, n=10, m=3)
    cases = [
        (dict(a0=a0[:-1]), "a0 must be"),
        (dict(a0=np.full(10, np.nan)), "a0 must be"),
        (dict(n_runs=1), "n_runs"),
        (dict(n_runs=2.5), "n_runs"),
        (dict(betas=[0.1, 0.5, 1.0]), "from exactly 0"),
        (dict(betas=[0.0, 0.5, 0.9]), "to exactly 1"),
        (dict(betas=[0.0, 0.6, 0.5, 1.0]), "increase strictly"),
        (dict(betas=[0.0, 0.5, 0.5, 1.0]), "increase strictly"),
        (dict(betas=[[0.0, 1.0]]), "1-D"),
        (dict(dtype=torch.float16), "dtype"),
    ]
    for kw, msg in cases:
        with pytest.raises(ValueError, match=msg):
            ais_log_partition(rbm, **{"a0": a0, **kw})
    with pytest.raises(TypeError, match="snrbench.RBM"):
        ais_log_partition(rbm.W, a0)
    with pytest.raises(ValueError, match="n_betas"):
        default_schedule(1)
    with pytest.raises(ValueError, match="shape"):
        log_likelihood(rbm, np.zeros((4, 9)), 0.0)
    with pytest.raises(ValueError, match="only"):
        log_likelihood(rbm, np.full((4, 10), 0.5), 0.0)
    with pytest.raises(ValueError, match="finite"):
        log_likelihood(rbm, np.zeros((4, 10)), np.nan)
    assert isinstance(ais_log_partition(rbm, a0, n_runs=2, betas=[0.0, 1.0]), AISResult)
