"""Parallel trajectory tempering against exact enumeration: every rung samples its own model, the
swap rule's acceptance is the exact expectation, rung placement reaches its target, and a rung whose
sampler is not its model is refused."""
import numpy as np
import pytest
import torch

from snrbench.core.model import RBM, all_states
from snrbench.truth.tempering import StaleKernelError
from snrbench.truth.trajectory import (TrajectoryTempering, base_rate_model, equilibrate_trajectory, interpolate,
                                      pair_distance, place_rungs)
from test_tempering import P_PASS, overlap_chi2, planted, random_rbm

pytestmark = pytest.mark.usefixtures("one_thread")


def exact_p(rbm):
    lp = rbm.log_marginal_visible(all_states(rbm.n_visible, rbm.units))
    p = np.exp(lp - lp.max())
    return p / p.sum()


def trajectory(rbm, a0, steps=(0.25, 0.5, 0.75, 1.0)):
    """A stand-in for a training run: the base-rate model grown linearly into ``rbm``."""
    return [interpolate(base_rate_model(rbm, a0), rbm, s) for s in steps]


def test_every_rung_reaches_its_exact_marginal_where_gibbs_stays_in_one_mode():
    """All chains start in the heavier mode of the planted model (basin mass 0.82, which blocked
    Gibbs does not leave in hundreds of sweeps, see test_tempering). After 300 PTT rounds the top
    rung (the model) and a middle checkpoint match their exact overlap laws and the basin mass."""
    rbm, s = planted()
    a0 = np.full(10, np.log(0.3 / 0.7))
    models = [base_rate_model(rbm, a0)] + trajectory(rbm, a0, np.linspace(0.1, 1.0, 10))
    R = 2000
    v0 = np.repeat((s > 0).astype(float)[None], R, axis=0)
    ptt = TrajectoryTempering(models, R, seed=3, v0=v0)
    for _ in range(300):
        ptt.step()
    assert ptt.round_trips > 2 * R and np.isfinite(ptt.replica_tau())
    q_all = (2 * all_states(10, "binary") - 1) @ s
    for k in (len(models) - 1, 5):
        p, v = exact_p(models[k]), ptt.samplers[k].v.numpy()
        mass = p[q_all > 0].sum()
        assert abs(((2 * v - 1) @ s > 0).mean() - mass) < 4 * np.sqrt(mass * (1 - mass) / R), k
        assert overlap_chi2(v, p, s) > P_PASS, k
    assert torch.equal(ptt.states(), ptt.samplers[-1].v)


def test_two_rung_acceptance_equals_the_exact_expectation(rng):
    """Two unrelated RBMs, both rungs started from exact samples: the measured acceptance matches
    E[min(1, e^Δ)], Δ = F_0(x_0) − F_0(x_1) + F_1(x_1) − F_1(x_0), under p_0 × p_1 by enumeration
    of all 2^10 × 2^10 pairs within 4 binomial SE (the sign-flipped Δ is far off)."""
    A, B, R = random_rbm(10, 3, 1.0, seed=2), random_rbm(10, 3, 1.0, seed=5), 50_000
    V = all_states(10, "binary")
    FA, FB = -A.log_marginal_visible(V), -B.log_marginal_visible(V)
    # x at rung 0 (law p_A), y at rung 1 (law p_B): Δ = FA(x) − FA(y) + FB(y) − FB(x)
    D = (FA - FB)[:, None] - (FA - FB)[None, :]
    expected = exact_p(A) @ np.minimum(1.0, np.exp(D)) @ exact_p(B)
    flipped = exact_p(A) @ np.minimum(1.0, np.exp(-D)) @ exact_p(B)
    ptt = TrajectoryTempering([A, B], R, seed=4, v0=np.stack([A.sample_exact(R, rng), B.sample_exact(R, rng)]))
    ptt.step(0)
    se = np.sqrt(expected * (1 - expected) / R)
    assert abs(ptt.swap_acceptance[0] - expected) < 4 * se and abs(flipped - expected) > 20 * se
    np.testing.assert_allclose(ptt.free_energy(0, torch.tensor(V)).numpy(), FA, rtol=1e-6)
    f64 = TrajectoryTempering([A, B], 4, dtype=torch.float64)
    np.testing.assert_allclose(f64.free_energy(0, torch.tensor(V)).numpy(), FA, rtol=1e-12)


def test_float32_free_energy_stays_within_a_millinat_at_mnist_size(rng):
    """784 × 64 rung with MNIST-sized weights (|W| up to ~1): the float32 product keeps F within 1e-3
    nats of the float64 one (|F| in the hundreds)."""
    W, a = rng.normal(0, 0.3, (784, 64)), rng.normal(-2, 1, 784)
    rbm = RBM(W, a, rng.normal(0, 1, 64), "binary")
    v = torch.tensor((rng.random((256, 784)) < 0.2).astype(np.float64))
    f32 = TrajectoryTempering([rbm, rbm], 4).free_energy(0, v).numpy()
    f64 = TrajectoryTempering([rbm, rbm], 4, dtype=torch.float64).free_energy(0, v).numpy()
    assert np.abs(f64).min() > 50 and np.abs(f32 - f64).max() < 1e-3


def test_rung_placement_reaches_the_target_and_ends_at_the_checkpoint():
    """A trajectory with one large jump: re-spacing in thermodynamic length adds rungs until every
    pair accepts about 0.3; the positions increase and the top rung is the last checkpoint itself."""
    rbm, _ = planted(c=0.9)
    a0 = np.full(10, np.log(0.3 / 0.7))
    checkpoints = trajectory(rbm, a0, (0.05, 1.0))
    ptt, positions = place_rungs(checkpoints, a0, n_chains=512, target=0.3, rounds=20, seed=1)
    assert ptt.n_rungs > 3 and len(positions) == ptt.n_rungs and np.all(np.diff(positions) > 0)
    assert ptt.rungs[-1] is checkpoints[-1] and positions[-1] == 2.0 and positions[0] == 0.0
    ptt.reset_stats()
    for _ in range(40):
        ptt.step()
    assert np.nanmin(ptt.swap_acceptance) > 0.25, ptt.swap_acceptance


def test_pair_distance_inverts_the_gaussian_acceptance():
    """``A = erfc(σ/2√2)`` against a Monte Carlo of ``E[min(1, e^Δ)]`` for ``Δ ~ N(−σ²/2, σ²)``."""
    rng = np.random.default_rng(3)
    for sigma in (0.3, 1.0, 2.5):
        d = rng.normal(-sigma**2 / 2, sigma, 400_000)
        assert abs(pair_distance([np.minimum(1, np.exp(d)).mean()])[0] - sigma) < 0.02 * sigma


def test_a_rung_whose_sampler_is_not_its_model_is_refused():
    A, B = random_rbm(8, 3, 1.0, seed=2), random_rbm(8, 3, 1.0, seed=5)
    ptt = TrajectoryTempering([A, B], 16, seed=0)
    ptt.rungs[1] = A  # the swaps would use A's free energy while the kernel samples B
    with pytest.raises(StaleKernelError, match="trajectory rung 1"):
        ptt.states()


def test_bad_rungs_are_refused():
    A = random_rbm(8, 3, 1.0)
    with pytest.raises(ValueError, match="at least 2"):
        TrajectoryTempering([A], 4)
    with pytest.raises(ValueError, match="same shape"):
        TrajectoryTempering([A, random_rbm(8, 4, 1.0)], 4)
    with pytest.raises(ValueError, match="s must lie"):
        interpolate(A, A, 1.5)
    assert isinstance(base_rate_model(A, np.zeros(8)), RBM) and not base_rate_model(A, np.zeros(8)).W.any()


def test_equilibrate_trajectory_from_an_annealed_start_reaches_the_exact_law():
    """Rung 0 at exact base-rate samples, each higher rung begun from the rung below after 2 sweeps;
    after 40 burn-in and 100 production rounds the top rung's overlap law matches the exact one, and
    the report counts every chain-sweep, the annealing pass included."""
    rbm, s = planted()
    a0 = np.full(10, np.log(0.3 / 0.7))
    rungs = [base_rate_model(rbm, a0)] + trajectory(rbm, a0, np.linspace(0.1, 1.0, 10))
    R, rng = 2000, np.random.default_rng(5)
    v0 = (rng.random((R, 10)) < 0.3).astype(float)
    v, report = equilibrate_trajectory(rungs, np.arange(len(rungs)), R, burn_in_rounds=40, rounds=100, seed=2,
                                       v0=v0, anneal_sweeps=2)
    assert report.sweeps == len(rungs) * R * (2 + 140) and report.midway_states.shape == (R, 10)
    assert overlap_chi2(v.numpy(), exact_p(rbm), s) > P_PASS and report.round_trips > 0


def test_a_run_stopped_and_resumed_is_the_run_that_was_not_stopped():
    """A run stopped inside its production rounds (after the midway states were taken) and resumed
    from the state its ``keep`` was last given ends with the same states, midway states, acceptance,
    round trips, replica record and chain-sweeps, bit for bit, as the run that was not stopped; its
    128 chains sweep as two groups with their own generators and uniforms drawn ahead. A state of
    the wrong shape is refused by key."""
    rbm, _ = planted()
    a0 = np.full(10, np.log(0.3 / 0.7))
    rungs = [base_rate_model(rbm, a0)] + trajectory(rbm, a0, np.linspace(0.2, 1.0, 5))
    R, rng = 128, np.random.default_rng(7)
    v0 = (rng.random((R, 10)) < 0.3).astype(float)
    run = dict(burn_in_rounds=12, rounds=40, seed=3, v0=v0, anneal_sweeps=2, keep_every=8)
    kept = []
    v, report = equilibrate_trajectory(rungs, np.arange(len(rungs)), R, keep=kept.append, **run)
    assert [int(k["done"]) for k in kept] == [8, 16, 24, 32, 40, 48] and "midway" in kept[-1]

    class Stop(Exception):
        pass

    def stop_at(done):
        def keep(state):
            kept_again.append(state)
            if int(state["done"]) == done:
                raise Stop
        return keep

    kept_again = []
    with pytest.raises(Stop):
        equilibrate_trajectory(rungs, np.arange(len(rungs)), R, keep=stop_at(40), **run)
    assert all(a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a) for a, b in zip(kept, kept_again))
    v2, report2 = equilibrate_trajectory(rungs, np.arange(len(rungs)), R, resume=kept_again[-1], **run)
    assert torch.equal(v, v2) and torch.equal(report.midway_states, report2.midway_states)
    for field in ("swap_acceptance", "swap_acceptance_q10"):
        assert np.array_equal(getattr(report, field), getattr(report2, field), equal_nan=True)
    assert (report.round_trips, report.sweeps, report.replica_tau) == (report2.round_trips, report2.sweeps,
                                                                        report2.replica_tau)
    assert report.round_trips > 0
    bad = dict(kept[0], rung2_x=kept[0]["rung2_x"][:, :1])
    with pytest.raises(ValueError, match=r"key 'x' expected uint8 of shape \(128, 2\), got uint8 of shape \(128, 1\)"):
        equilibrate_trajectory(rungs, np.arange(len(rungs)), R, resume=bad, **run)
    bad = dict(kept[0], accepted_chain=kept[0]["accepted_chain"].astype(np.float32))
    with pytest.raises(ValueError, match=r"key 'accepted_chain' expected float64"):
        equilibrate_trajectory(rungs, np.arange(len(rungs)), R, resume=bad, **run)
    with pytest.raises(ValueError, match=r"the kept state is another run's .*\"burn_in_rounds\": 12"):
        equilibrate_trajectory(rungs, np.arange(len(rungs)), R, resume=kept[0], **dict(run, burn_in_rounds=30))
    with pytest.raises(ValueError, match=r"says 60 rounds were run, outside 1 … 51"):
        equilibrate_trajectory(rungs, np.arange(len(rungs)), R, resume=dict(kept[0], done=np.array(60)), **run)
