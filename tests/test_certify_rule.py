"""The agreement rule of certification (DESIGN §2.4) against simulated pairs of curves whose truth is
known: two unbiased Monte Carlo curves over a T grid of 11 points pass at every point, simultaneously,
in at least 95% of pairs (the pointwise 95% rule does not: the reason for the Bonferroni widening),
and a curve shifted by 4 standard errors is refused."""
import numpy as np
import pandas as pd

from snrbench.jobs.start_check import _agree

K, PAIRS = 11, 4000


def _curves(rng, shift=0.0, rho=0.5):
    """``PAIRS`` pairs of curves with 95% CIs of half-width 1.96 σ (σ = 1 per point); the noise of a
    curve is correlated across T (a common part of weight ``rho``), as for curves from one set of chains."""
    def one(mean):
        noise = np.sqrt(rho) * rng.standard_normal((PAIRS, 1)) + np.sqrt(1 - rho) * rng.standard_normal((PAIRS, K))
        return mean + noise

    frame = lambda x: pd.DataFrame(dict(log10_q=x.ravel(), ci_low=x.ravel() - 1.96, ci_high=x.ravel() + 1.96))  # noqa: E731
    return frame(one(0.0)), frame(one(shift))  # PAIRS × K rows each, pair by pair


def _share_passing(ref, got, n_tests):
    """The share of pairs that agree at all K points (``_agree`` is elementwise, so one call does all)."""
    return float(_agree(ref, got, n_tests=n_tests).reshape(PAIRS, K).all(axis=1).mean())


def test_two_unbiased_curves_pass_at_every_T_in_95_percent_of_pairs(rng):
    ref, got = _curves(rng)
    assert _share_passing(ref, got, K) >= 0.95
    assert _share_passing(ref, got, 1) < 0.90  # pointwise: the rule that failed 4 of 24 unbiased m = 16 cells


def test_a_curve_shifted_by_four_standard_errors_is_refused(rng):
    ref, got = _curves(rng, shift=4 * np.sqrt(2))  # 4 σ of the difference, at every T
    assert _share_passing(ref, got, K) < 0.2


def test_the_strongest_generation_is_chosen_by_health_never_by_its_curve():
    """Per cell: a healthy generation before an unhealthy one with more families, then the most
    effective families; the Q(T) of the rows plays no part."""
    import pandas as pd

    from snrbench.jobs.annealing import strongest

    gens = [("a", 16384, 10, False, 40.0, 0.0), ("a", 4096, 40, True, 130.0, 9.0), ("a", 4096, 160, True, 120.0, 0.0),
            ("b", 4096, 10, True, 300.0, 0.0), ("b", 16384, 10, True, 900.0, 5.0)]
    ann = pd.DataFrame([dict(cell_id=c, n_particles=p, sweeps_per_step=s, healthy=h, eff_families=f, sweeps=p * s,
                             T=t, log10_q=q + t) for c, p, s, h, f, q in gens for t in (1, 2)])
    best = strongest(ann).groupby("cell_id")[["n_particles", "sweeps_per_step"]].first()
    assert best.to_dict("index") == {"a": dict(n_particles=4096, sweeps_per_step=40),
                                     "b": dict(n_particles=16384, sweeps_per_step=10)}
    assert len(strongest(ann)) == 4 and strongest(ann.iloc[:0]).empty
