"""Parallel tempering against exact enumeration, its swap rule, adaptation, round trips and the stale-kernel guard."""
import numpy as np
import pytest
import torch
from scipy import stats

from snrbench.core.model import RBM, all_states
from snrbench.core.sampler import BlockGibbs
from snrbench.core.tempered import log_unnormalised_visible, tempered
from snrbench.truth.tempering import ParallelTempering, StaleKernelError, chain_quantile, equilibrate, round_trip_bound

#: Smallest chi-square p-value accepted for a correct sampler (fixed seeds: the tests are deterministic).
P_PASS = 1e-3
#: Largest chi-square p-value a wrong sampler may reach.
P_FAIL = 1e-10


pytestmark = pytest.mark.usefixtures("one_thread")


def exact_p(rbm, beta, a0):
    """p_β(v) over :func:`all_states` of the visible layer, by enumeration."""
    lp = log_unnormalised_visible(rbm, beta, a0, all_states(rbm.n_visible, rbm.units))
    p = np.exp(lp - lp.max())
    return p / p.sum()


def random_rbm(n, m, scale, seed=2, units="binary"):
    rng = np.random.default_rng(seed)
    return RBM(scale * rng.standard_normal((n, m)), 0.5 * rng.standard_normal(n), 0.5 * rng.standard_normal(m), units)


def planted(c=0.6, field=0.08):
    """Binary image of a spin RBM ``J = c·s tᵀ`` (n = 10, m = 3) with a field ``field·s``: two modes, v = [s > 0]
    (mass 0.82) and its complement (0.18), which blocked Gibbs does not cross in hundreds of sweeps."""
    s = np.where(np.arange(10) % 3 == 0, -1.0, 1.0)
    J = c * np.outer(s, [1.0, 1.0, -1.0])
    # σ = 2v − 1, τ = 2h − 1: σᵀJτ + fieldᵀσ = 4vᵀJh − 2vᵀJ1 − 2·1ᵀJh + 2 fieldᵀv + const
    return RBM(4 * J, -2 * J.sum(1) + 2 * field * s, -2 * J.sum(0), "binary"), s


def overlap_chi2(v, p, s):
    """Chi-square p-value of the overlap ``q = (2v − 1)·s`` of the rows ``v`` against the exact law ``p``
    (bins expected below 5 counts pooled)."""
    q_all = (2 * all_states(len(s), "binary") - 1) @ s
    q = (2 * np.asarray(v) - 1) @ s
    values = np.unique(q_all)
    expected = np.array([p[q_all == x].sum() for x in values]) * len(q)
    observed = np.array([(q == x).sum() for x in values], dtype=float)
    small = expected < 5
    if small.any():
        expected = np.append(expected[~small], expected[small].sum())
        observed = np.append(observed[~small], observed[small].sum())
    return stats.chisquare(observed, expected).pvalue


# --- 1. correctness against exact enumeration ---------------------------------------------------------
def test_cold_and_intermediate_rungs_reach_the_exact_marginals_where_gibbs_stays_in_one_mode():
    """All chains start in the heavier mode (v = [s > 0], basin mass 0.82). After 300 rounds PT's β = 1 rung
    and its β = 2/3 rung match the exact overlap law (chi-square) and the basin mass (4 SE); plain blocked
    Gibbs from the same start for the same sweeps keeps essentially every chain in the starting basin."""
    rbm, s = planted()
    a0 = np.full(10, np.log(0.3 / 0.7))
    R, rounds = 2000, 300
    v0 = np.repeat((s > 0).astype(float)[None], R, axis=0)
    pt = ParallelTempering(rbm, a0, np.linspace(1.0, 0.0, 10), R, seed=3, v0=v0)
    for _ in range(rounds):
        pt.step()
    assert pt.round_trips > 5 * R  # the ladders mix: several trips each
    p = exact_p(rbm, 1.0, a0)
    q_all = (2 * all_states(10, "binary") - 1) @ s
    mass, cold = p[q_all > 0].sum(), pt.cold_states().numpy()
    assert abs(((2 * cold - 1) @ s > 0).mean() - mass) < 4 * np.sqrt(mass * (1 - mass) / R)
    assert overlap_chi2(cold, p, s) > P_PASS
    k = 3
    assert overlap_chi2(pt.samplers[k].v.numpy(), exact_p(rbm, pt.betas[k], a0), s) > P_PASS

    gibbs = BlockGibbs(rbm, R, seed=3, v0=v0)
    gibbs.run(rounds)
    assert ((2 * gibbs.v.numpy() - 1) @ s > 0).mean() > 0.99
    assert overlap_chi2(gibbs.v.numpy(), p, s) < P_FAIL


# --- 2. the swap rule ---------------------------------------------------------------------------------
@pytest.mark.parametrize("units", ["binary", "spin"])
def test_log_unnormalised_matches_the_numpy_tempered_marginal(units, rng):
    rbm = random_rbm(12, 5, 1.5, units=units)
    a0 = rng.standard_normal(12)
    pt = ParallelTempering(rbm, a0, [1.0, 0.4, 0.0], 4, dtype=torch.float64)
    v = all_states(12, units)[rng.choice(2**12, 300)]
    for beta in (1.0, 0.4, 0.13, 0.0):
        ref = log_unnormalised_visible(rbm, beta, a0, v)
        np.testing.assert_allclose(pt.log_unnormalised(torch.tensor(v), beta).numpy(), ref, rtol=1e-13, atol=1e-12)


def test_two_rung_acceptance_equals_the_exact_expectation(rng):
    """Both rungs start from exact samples of their marginals (so every attempt is stationary and independent
    across the R ladders): the measured acceptance matches ``E[min(1, e^Δ)]`` under ``p_1 × p_{0.5}`` by
    enumeration of all 2^10 × 2^10 pairs within 4 binomial SE (0.36; the sign-flipped Δ would give 0.91)."""
    rbm, a0, betas, R = random_rbm(10, 3, 1.0), np.full(10, -0.5), np.array([1.0, 0.5]), 50_000
    V = all_states(10, "binary")
    D = log_unnormalised_visible(rbm, 1.0, a0, V) - log_unnormalised_visible(rbm, 0.5, a0, V)
    # Δ for x at rung 0 and y at rung 1 is D(y) − D(x)
    expected = exact_p(rbm, 1.0, a0) @ np.minimum(1.0, np.exp(D[None, :] - D[:, None])) @ exact_p(rbm, 0.5, a0)
    v0 = np.stack([tempered(rbm, b, a0).sample_exact(R, rng) for b in betas])
    pt = ParallelTempering(rbm, a0, betas, R, seed=4, v0=v0)
    pt.step()
    assert abs(pt.swap_acceptance[0] - expected) < 4 * np.sqrt(expected * (1 - expected) / R)


def test_nearly_equal_betas_accept_every_swap_and_odd_rounds_swap_the_odd_pairs():
    pt = ParallelTempering(random_rbm(10, 3, 1.0), np.zeros(10), 1.0 - 1e-10 * np.arange(4), 200, seed=1)
    pt.step()
    np.testing.assert_array_equal(np.isnan(pt.swap_acceptance), [False, True, False])
    pt.step()
    np.testing.assert_array_equal(pt.swap_acceptance, 1.0)
    np.testing.assert_array_equal(pt.replicas[:, 0], [1, 3, 0, 2])  # 0↔1, 2↔3, then 1↔2: replica 0 at rung 2


# --- 3. adaptation ----------------------------------------------------------------------------------
def test_adaptation_equalises_acceptance_and_rebuilds_the_kernels():
    """A geometric ladder (K = 7, β 1 → 0.05) on a coupled n = 64, m = 16 RBM: acceptance 0.14 … 0.94 (ratio 6.7).
    After 100 adaptation rounds the ratio is below 1.3, the betas decrease with both ends kept, and every
    interior rung's kernel follows its new β (and no longer its old one)."""
    rbm = random_rbm(64, 16, 0.4, seed=5)
    first = np.geomspace(1.0, 0.05, 7)
    pt = ParallelTempering(rbm, np.full(64, -1.0), first, 256, seed=1)

    def measured(rounds=100):
        pt.reset_stats()
        for _ in range(rounds):
            pt.step()
        return pt.swap_acceptance

    before = measured()
    history = pt.adapt(100, window=10)
    after = measured()
    assert before.max() / before.min() > 3.0 and after.max() / after.min() < 1.3
    assert history.betas.shape == (11, 7) and history.acceptance.shape == (10, 6)
    np.testing.assert_array_equal(history.betas[0], first)
    np.testing.assert_array_equal(history.betas[-1], pt.betas)
    assert pt.betas[0] == 1.0 and pt.betas[-1] == first[-1] and np.all(np.diff(pt.betas) < 0)
    pt.check_kernels()
    for k in range(1, 6):
        assert pt.samplers[k].kernel_mismatch(tempered(rbm, pt.betas[k], pt.a0)) == 0.0
        assert pt.samplers[k].kernel_mismatch(tempered(rbm, first[k], pt.a0)) > pt.kernel_tol


# --- 4. the stale-kernel guard ------------------------------------------------------------------------
@pytest.fixture
def old_and_new():
    """A model and its perturbation ``W + δ`` (δ ~ 0.01): "initial" and "trained" weights."""
    old = random_rbm(20, 6, 0.5, seed=8)
    delta = 0.01 * np.random.default_rng(9).standard_normal(old.W.shape)
    return old, RBM(old.W + delta, old.a, old.b, old.units), np.full(20, -1.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_kernel_follows_the_weights_it_was_built_from(old_and_new, dtype):
    old, new, a0 = old_and_new
    pt = ParallelTempering(new, a0, [1.0, 0.7, 0.4, 0.2], 8, dtype=dtype)
    for k, beta in enumerate(pt.betas):
        assert pt.samplers[k].kernel_mismatch(tempered(new, beta, a0)) <= pt.kernel_tol / 100
        assert pt.samplers[k].kernel_mismatch(tempered(old, beta, a0)) > pt.kernel_tol


@pytest.mark.parametrize("stale", ["old weights", "wrong beta"])
def test_a_stale_rung_is_refused_loudly(old_and_new, stale):
    """One rung's sampler swapped for a kernel of the initial weights or of a β 0.01 off: check_kernels,
    step (within check_every rounds, here after 7 clean ones) and cold_states raise, naming rung 2 and its β."""
    old, new, a0 = old_and_new
    pt = ParallelTempering(new, a0, [1.0, 0.7, 0.4, 0.2], 8, check_every=5)
    for _ in range(7):
        pt.step()
    model = tempered(old, 0.4, a0) if stale == "old weights" else tempered(new, 0.41, a0)
    pt.samplers[2] = BlockGibbs(model, 8, v0=pt.samplers[2].v)
    match = r"rung 2 \(beta = 0\.4\)"
    with pytest.raises(StaleKernelError, match=match):
        pt.check_kernels()
    with pytest.raises(StaleKernelError, match=match):
        for _ in range(pt.check_every):
            pt.step()
    with pytest.raises(StaleKernelError, match=match):
        pt.cold_states()


# --- 5. round trips -----------------------------------------------------------------------------------
def zigzag_trips(K, n_rounds):
    """Round trips of one ladder when every swap is accepted: replica k follows ``rung(p_k + t)`` on the cycle
    p = 0 … 2K−1 (rung p for p < K, 2K−1−p above; even k start going up at p = k, odd k going down)."""
    rung = lambda p: p % (2 * K) if p % (2 * K) < K else 2 * K - 1 - p % (2 * K)
    trips = 0
    for k in range(K):
        p0, label = (k if k % 2 == 0 else 2 * K - 1 - k), 0
        for t in range(n_rounds + 1):
            r = rung(p0 + t)
            if r == 0:
                trips, label = trips + (label == -1), 1
            elif r == K - 1 and label == 1:
                label = -1
    return trips


@pytest.mark.parametrize("K", [2, 4, 5])
def test_round_trips_with_every_swap_accepted(K):
    """Nearly equal betas: every swap accepted, each replica's path is a known zigzag; the count matches it
    (K = 2, 10 rounds: 4 trips per ladder, by hand), and reset_stats drops the trips under way."""
    R, n_rounds = 3, 41
    pt = ParallelTempering(random_rbm(10, 3, 0.3), np.zeros(10), 1.0 - 1e-10 * np.arange(K), R, seed=2)
    for _ in range(n_rounds):
        pt.step()
    np.testing.assert_array_equal(pt.swap_acceptance, 1.0)
    assert pt.round_trips == R * zigzag_trips(K, n_rounds)
    assert zigzag_trips(2, 10) == 4 and zigzag_trips(K, n_rounds) >= 2 * K
    pt.reset_stats()
    assert pt.round_trips == 0 and np.all(np.isnan(pt.swap_acceptance))
    # the replica at rung 0 at the reset arrived in the last (even) round: it stays one round, goes up and is
    # back after 2K rounds (one trip); the next one to reach rung 0 is not back yet
    for _ in range(2 * K - 1):
        pt.step()
    assert pt.round_trips == 0
    pt.step()
    assert pt.round_trips == R


def test_round_trip_bound_is_reached_with_every_swap_accepted_and_not_exceeded_otherwise():
    """Λ = 0 (every swap accepted): the bound chains·rounds/2 is what the known zigzag makes, up to the
    trips under way at the end; a ladder that rejects a quarter or more of its swaps stays below its own bound
    (Syed et al. 2022: the non-reversible rate 1/(2 + 2Λ) is an upper limit), and the bound refuses
    acceptances outside [0, 1]."""
    K, R, n_rounds = 4, 3, 400
    pt = ParallelTempering(random_rbm(10, 3, 0.3), np.zeros(10), 1.0 - 1e-10 * np.arange(K), R, seed=2)
    for _ in range(n_rounds):
        pt.step()
    lam, bound = round_trip_bound(pt.swap_acceptance, R, n_rounds)
    assert lam == 0.0 and bound == R * n_rounds / 2
    assert bound - R * K <= pt.round_trips <= bound
    pt = ParallelTempering(random_rbm(10, 3, 2.0), np.full(10, -0.3), np.linspace(1.0, 0.0, 6), 400, seed=3)
    for _ in range(400):
        pt.step()
    lam, bound = round_trip_bound(pt.swap_acceptance, 400, 400)
    assert 0.25 < np.max(1 - pt.swap_acceptance) and 0 < pt.round_trips <= 1.05 * bound, (pt.round_trips, bound)
    with pytest.raises(ValueError, match="acceptance"):
        round_trip_bound([0.5, 1.2], 4, 10)


def test_acceptance_quantile_over_ladders_shows_ladders_that_never_swap():
    """10 ladders, 20 attempts each at one pair: 7 accept every time, 3 never. The mean (0.7) hides the
    three; the 10% quantile over ladders is 0. A run with every swap accepted has quantile 1 per pair."""
    counts = np.array([[20.0] * 7 + [0.0] * 3])
    assert counts.sum() / 200 == 0.7 and chain_quantile(counts, [200])[0] == 0.0
    assert np.isnan(chain_quantile(np.zeros((1, 4)), [0])[0])
    pt = ParallelTempering(random_rbm(10, 3, 0.3), np.zeros(10), 1.0 - 1e-10 * np.arange(3), 8, seed=2)
    for _ in range(6):
        pt.step()
    np.testing.assert_array_equal(pt.swap_acceptance_q10, 1.0)


# --- 6. determinism, inputs, equilibrate --------------------------------------------------------------
def test_same_seed_same_states_and_equilibrate_report():
    rbm, a0 = random_rbm(16, 4, 1.0), np.full(16, -0.5)
    runs = [equilibrate(rbm, a0, 300, n_rungs=5, beta_min=0.2, adapt_rounds=20, rounds=30, sweeps_per_round=2, seed=s)
            for s in (7, 7, 8)]
    (v1, r1), (v2, r2), (v3, _) = runs
    assert torch.equal(v1, v2) and not torch.equal(v1, v3) and v1.shape == (300, 16)
    np.testing.assert_array_equal(r1.betas, r2.betas)
    assert r1.round_trips == r2.round_trips and r1.rounds == 30 and r1.adapt_rounds == 20
    assert r1.sweeps == (20 + 30) * 2 * 5 * 300
    assert r1.betas[0] == 1.0 and r1.betas[-1] == 0.2 and np.all(np.diff(r1.betas) < 0)
    assert r1.swap_acceptance.shape == (4,) and np.all((r1.swap_acceptance > 0) & (r1.swap_acceptance <= 1))
    # the midway snapshot: the cold rung after 15 of the 30 production rounds (a separate tensor)
    assert r1.midway_states.shape == v1.shape and not torch.equal(r1.midway_states, v1)
    assert torch.equal(r1.midway_states, r2.midway_states)
    assert equilibrate(rbm, a0, 10, n_rungs=3, beta_min=0.2, adapt_rounds=0, rounds=1)[1].midway_states is None


def test_equilibrate_down_to_the_base_rate_model_reaches_the_exact_law():
    """beta_min = 0: a linear initial ladder ending at the base-rate model (kept at 0 by the adaptation);
    from every chain in the heavier mode the cold rung reaches the exact two-mode law."""
    rbm, s = planted()
    a0 = np.full(10, np.log(0.3 / 0.7))
    v0 = np.repeat((s > 0).astype(float)[None], 2000, axis=0)
    v, report = equilibrate(rbm, a0, 2000, n_rungs=8, beta_min=0.0, adapt_rounds=40, rounds=200, seed=4, v0=v0)
    assert report.betas[0] == 1.0 and report.betas[-1] == 0.0 and np.all(np.diff(report.betas) < 0)
    assert report.round_trips > 2000
    assert overlap_chi2(v.numpy(), exact_p(rbm, 1.0, a0), s) > P_PASS


@pytest.mark.parametrize("betas, message", [
    ([1.0], "K ≥ 2"),
    ([0.9, 0.5], "betas\\[0\\] == 1"),
    ([1.0, -0.1], "betas\\[-1\\] ≥ 0"),
    ([1.0, 0.5, 0.5], "strictly decreasing"),
    ([1.0, 0.2, 0.5], "strictly decreasing"),
    ([[1.0, 0.5]], "1-D"),
])
def test_bad_ladders_are_refused(betas, message):
    with pytest.raises(ValueError, match=message):
        ParallelTempering(random_rbm(6, 2, 1.0), np.zeros(6), betas, 4)


def test_bad_arguments_are_refused():
    rbm, a0 = random_rbm(6, 2, 1.0), np.zeros(6)
    with pytest.raises(ValueError, match="a0"):
        ParallelTempering(rbm, np.zeros(5), [1.0, 0.5], 4)
    with pytest.raises(ValueError, match="v0"):
        ParallelTempering(rbm, a0, [1.0, 0.5], 4, v0=np.zeros((3, 4, 6)))
    with pytest.raises(ValueError, match="n_chains"):
        ParallelTempering(rbm, a0, [1.0, 0.5], 0)
    with pytest.raises(ValueError, match="dtype"):
        ParallelTempering(rbm, a0, [1.0, 0.5], 4, dtype=torch.float16)
    pt = ParallelTempering(rbm, a0, [1.0, 0.5], 4)
    with pytest.raises(ValueError, match="window"):
        pt.adapt(10, window=3)
    with pytest.raises(ValueError, match="n_sweeps"):
        pt.step(-1)
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match="beta_min"):
            equilibrate(rbm, a0, 4, beta_min=bad)
    with pytest.raises(TypeError, match="RBM"):
        ParallelTempering(rbm.W, a0, [1.0, 0.5], 4)
