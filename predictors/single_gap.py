"""single-gap: one timescale, the sampler's slowest mode, applied to every gradient observable.

``Tr Cov(T) = V · v_T(λ_1)`` with ``τ = (1+λ_1)/(1−λ_1)``.
White-box: exact λ_1, V and ‖g‖² from ``problem.exact``. Black-box: λ_1 = the slowest significant
mode of the Galerkin estimate (``snrbench.galerkin``), V and ‖g‖² from the same run.
"""
from snrbench.galerkin import sample_galerkin
from snrbench.pilot import grad_norm2_estimate, log10_q_from_modes
from snrbench.predict import Prediction, Predictor


class SingleGapWhiteBox(Predictor):
    name = "single-gap"
    access = "white-box"

    def predict(self, problem):
        sol = problem.exact.solution
        gap = sol.spectral_gap
        curve = log10_q_from_modes(sol.grad_norm2, [sol.total_variance], [gap], sol.total_variance, problem.T)
        return Prediction(curve, tau=(2.0 - gap) / gap, grad_norm2=sol.grad_norm2)


class SingleGapBlackBox(Predictor):
    name = "single-gap"
    access = "sampler-only"

    def __init__(self, n_chains=128, n_sweeps=None, burn_in=None):  # default: the cell's budget
        self.kw = dict(n_chains=n_chains, n_sweeps=n_sweeps, burn_in=burn_in)

    def predict(self, problem):
        spec, _, chain_means = sample_galerkin(problem, symmetrize=False, **self.kw)
        g2 = grad_norm2_estimate(problem.data_mean, chain_means)
        sig = spec.significant
        gap = float(spec.gaps[sig].min()) if sig.any() else 1.0
        curve = log10_q_from_modes(g2, [spec.V], [gap], spec.V, problem.T)
        return Prediction(curve, tau=(2.0 - gap) / gap, grad_norm2=g2)
