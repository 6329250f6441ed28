"""Population annealing along a trajectory against independent routes: log Z against enumeration of
the hidden side, the stations' law and Q(T) from annealing starts against the exact law and the
exact spectral Q(T) (on a planted model where Gibbs alone keeps the wrong mode weights), and the
health check that must refuse a run with too few particles or too coarse steps."""
import numpy as np
import pytest

from snrbench.core.model import RBM, all_states
from snrbench.core.observables import mean_gradient_observables
from snrbench.core.sampler import BlockGibbs
from snrbench.truth import exact, hidden_enum
from snrbench.truth.annealing import anneal_trajectory, combine, health, systematic_resample
from snrbench.truth.mc_scale import scale_q_curve
from snrbench.truth.trajectory import base_rate_model, interpolate
from test_tempering import P_PASS, overlap_chi2, planted, random_rbm

pytestmark = pytest.mark.usefixtures("one_thread")

#: log Z tolerance of a certified run against enumeration: the larger of 0.1 nats and 4 standard errors.
LOGZ_TOL_NATS = 0.1


def exact_p(rbm):
    lp = rbm.log_marginal_visible(all_states(rbm.n_visible, rbm.units))
    p = np.exp(lp - lp.max())
    return p / p.sum()


def grown(rbm, a0, steps):
    """A stand-in for a training run: the base-rate model grown linearly into ``rbm``."""
    return [interpolate(base_rate_model(rbm, a0), rbm, s) for s in steps]


def test_systematic_resampling_keeps_floor_or_ceil_copies(rng):
    w = rng.random(1000) ** 4
    w /= w.sum()
    counts = np.bincount(systematic_resample(w, rng), minlength=1000)
    assert counts.sum() == 1000
    assert np.all(counts >= np.floor(1000 * w)) and np.all(counts <= np.ceil(1000 * w))


def test_log_z_of_every_station_matches_enumeration():
    """A 16 × 6 RBM reached through 4 models of growing weights: the log Z of 4 independent runs,
    combined, lies within max(0.1 nats, 4 SE) of the enumerated log Z at every station, and each
    station passes its health check; a wrong base-rate log Z (the one source of the absolute level)
    would move every station by the same offset, which the 4-run spread (≈ 0.01 nats) would not hide."""
    rbm = random_rbm(16, 6, 1.2, seed=7)
    a0 = np.full(16, -0.4)
    models = grown(rbm, a0, (0.25, 0.5, 0.75, 1.0))
    runs = [anneal_trajectory(models, a0, 1000, seed=s) for s in range(4)]
    for k, model in enumerate(models):
        log_z, err = combine([r.stations[k].log_z for r in runs])
        assert abs(log_z - hidden_enum.log_partition(model)) < max(LOGZ_TOL_NATS, 4 * err), k
        assert all(health(r.stations[k])[0] for r in runs), k
    assert runs[0].sweeps > 0 and runs[0].n_particles == 1000


def test_stations_follow_the_exact_law_where_plain_annealing_does_not():
    """The planted model: Gibbs alone does not cross between its two modes (masses 0.82 / 0.18), and
    plain annealing from the base-rate model (no weights) locks the mode masses in early. The
    annealing stations match the exact overlap law at the last and a middle model; the unweighted
    walk through the same models is refused by the same chi-square test (the test can fail)."""
    rbm, s = planted()
    a0 = np.full(10, np.log(0.3 / 0.7))
    models = grown(rbm, a0, np.linspace(0.1, 1.0, 10))
    run = anneal_trajectory(models, a0, 4000, seed=2)
    for k in (9, 4):
        assert overlap_chi2(run.stations[k].states, exact_p(models[k]), s) > P_PASS, k
        assert health(run.stations[k])[0], k
    walker = BlockGibbs(base_rate_model(rbm, a0), 4000, seed=2, v0=(np.random.default_rng(0).random((4000, 10))
                                                                     < 0.3) * 1.0)
    for model in models:
        walker.set_model(model)
        walker.run(5)
    assert overlap_chi2(walker.v.numpy(), exact_p(models[-1]), s) < 1e-10


def test_q_curve_from_annealing_starts_matches_the_exact_solution(rng):
    """Q(T) of blocked Gibbs on the planted model, T = 1 … 256 (its slow mode dominates from T ≈ 8 on):
    from 1024 annealing starts the exact spectral log10 Q lies inside the 95% bootstrap CI at ≥ 8 of 9 T;
    from 1024 starts all in the heavier mode (what a chain that never crossed gives) it lies outside
    at most T."""
    rbm, s = planted()
    a0 = np.full(10, np.log(0.3 / 0.7))
    data = (rng.random((500, 10)) < 0.5) * 1.0
    T = 2 ** np.arange(9)
    truth = exact.q_curve(rbm, data, T)
    data_mean = mean_gradient_observables(rbm, data, "weights")
    g2 = float(exact.solve(rbm, data).grad_norm2)
    starts = anneal_trajectory(grown(rbm, a0, np.linspace(0.1, 1.0, 10)), a0, 1024, seed=5).stations[-1].states
    good = scale_q_curve(rbm, data_mean, starts, T, seed=1, grad_norm2_exact=g2)
    inside = (truth >= good.ci_low) & (truth <= good.ci_high)
    assert inside.sum() >= 8, (truth, good.ci_low, good.ci_high)
    stuck = np.repeat((s > 0).astype(float)[None], 1024, axis=0)
    bad = scale_q_curve(rbm, data_mean, stuck, T, seed=1, grad_norm2_exact=g2)
    assert ((truth >= bad.ci_low) & (truth <= bad.ci_high)).sum() <= 3


def test_health_refuses_too_few_particles_and_too_coarse_steps():
    """The same trajectory: a run of 16 particles keeps fewer effective families than the floor; a run
    that jumps from the base-rate model to the strongly coupled model in one step (a fixed schedule)
    has its ESS collapse below the floor. Both are "not certified", with the floor named; the adaptive
    run with 2000 particles is certified."""
    rbm = random_rbm(16, 6, 1.5, seed=3)
    a0 = np.full(16, -0.4)
    models = grown(rbm, a0, (0.5, 1.0))
    few = anneal_trajectory(models, a0, 16, seed=1).stations[-1]
    ok, why = health(few)
    assert not ok and "families" in why
    coarse = anneal_trajectory(models[1:], a0, 2000, seed=1, schedule=[1.0]).stations[-1]
    ok, why = health(coarse)
    assert not ok and "ESS" in why and coarse.min_ess < 0.1
    assert health(anneal_trajectory(models, a0, 2000, seed=1).stations[-1]) == (True, "")


def test_bad_input_is_refused():
    rbm = random_rbm(6, 2, 1.0)
    with pytest.raises(ValueError, match="a0 must be"):
        anneal_trajectory([rbm], np.zeros(5), 10)
    with pytest.raises(ValueError, match="same shape"):
        anneal_trajectory([rbm, random_rbm(6, 3, 1.0)], np.zeros(6), 10)
    with pytest.raises(ValueError, match="schedule"):
        anneal_trajectory([rbm, rbm], np.zeros(6), 10, schedule=[0.5, 1.0])
    with pytest.raises(ValueError, match="at least 2"):
        combine([1.0])
    assert isinstance(rbm, RBM)


def test_a_run_resumed_after_a_station_is_the_run_never_stopped(tmp_path):
    """Stopped after its 2nd of 4 stations (the snapshot kept by the job layer's ``.part.npz``) and
    resumed, a run gives the same log Z, families and states at every later station, bit for bit; a
    resume from a snapshot with another population is refused with its shapes."""
    from snrbench.jobs.annealing import _load_snapshot, _save_run

    rbm = random_rbm(16, 6, 1.2, seed=3)
    a0 = np.full(16, -0.4)
    models = grown(rbm, a0, (0.25, 0.5, 0.75, 1.0))
    part = tmp_path / "run.part.npz"

    def keep(snap):
        if len(snap.stations) == 2:
            _save_run(part, snap.stations, snap)

    whole = anneal_trajectory(models, a0, 300, seed=4, on_station=keep)
    snap = _load_snapshot(part, rbm.units)
    assert len(snap.stations) == 2
    resumed = anneal_trajectory(models, a0, 300, seed=4, resume=snap)
    assert resumed.sweeps == whole.sweeps
    for a, b in zip(whole.stations, resumed.stations):
        assert (a.log_z, a.families, a.eff_families, a.steps) == (b.log_z, b.families, b.eff_families, b.steps)
        assert np.array_equal(a.states, b.states)
    other = anneal_trajectory(models, a0, 300, seed=5, resume=snap)  # another seed: another continuation
    assert other.stations[-1].log_z != whole.stations[-1].log_z
    with pytest.raises(ValueError, match="snapshot after 1 … 4 stations of 200 particles"):
        anneal_trajectory(models, a0, 200, seed=4, resume=snap)
