"""multimode: observable-projected, several modes (DESIGN §5).

``Tr Cov(T) = Σ_{k kept} S_k v_T(λ_k) + (V − Σ_{k kept} S_k)/T``: the kept modes with their own
λ_k, everything else treated as fast (λ = 0). Modes are ranked by their largest share of the
variance over the T grid, ``max_T S_k v_T(λ_k) / Tr Cov(T)``, so a slow mode of small weight is not
dropped. ``n_modes=None`` keeps every mode.
White-box: modes, weights, V and ‖g‖² from ``problem.exact``. Black-box: the Galerkin estimate on
the products of E[h_j|v] (``snrbench.galerkin``), using the model's spin-flip symmetry when it has
one; ‖g‖² from the chain means.
"""
import numpy as np

from snrbench.galerkin import sample_galerkin
from snrbench.pilot import grad_norm2_estimate, log10_q_from_modes
from snrbench.predict import Prediction, Predictor
from snrbench.spectral import integrated_time, variance_factor


def keep_modes(weights, gaps, V, T, n_modes):
    """Indices of the ``n_modes`` modes with the largest ``max_T S_k v_T(λ_k) / Tr Cov(T)``."""
    if n_modes is None or n_modes >= len(weights):
        return np.arange(len(weights))
    contrib = weights[:, None] * variance_factor(gaps, T)
    total = contrib.sum(0) + max(V - weights.sum(), 0.0) / np.asarray(T, dtype=np.float64)
    share = (contrib / total).max(axis=1)
    return np.sort(np.argsort(-share, kind="stable")[:n_modes])


class MultimodeWhiteBox(Predictor):
    name = "multimode"
    access = "white-box"

    def __init__(self, n_modes=3):
        self.n_modes = n_modes

    def predict(self, problem):
        sol = problem.exact.solution
        k = keep_modes(sol.weights, sol.gaps, sol.total_variance, problem.T, self.n_modes)
        curve = log10_q_from_modes(sol.grad_norm2, sol.weights[k], sol.gaps[k], sol.total_variance, problem.T)
        tau = integrated_time(sol.weights[k], sol.gaps[k], sol.total_variance)
        return Prediction(curve, tau=tau, grad_norm2=sol.grad_norm2)


class MultimodeBlackBox(Predictor):
    name = "multimode"
    access = "sampler-only"

    def __init__(self, n_modes=None, n_chains=128, n_sweeps=None, burn_in=None, max_features=128):
        """``n_sweeps`` per chain (default: the cell's budget over ``n_chains``), ``burn_in`` of them
        discarded (default an eighth)."""
        self.n_modes = n_modes
        self.kw = dict(n_chains=n_chains, n_sweeps=n_sweeps, burn_in=burn_in, max_features=max_features)

    def predict(self, problem):
        spec, _, chain_means = sample_galerkin(problem, **self.kw)
        g2 = grad_norm2_estimate(problem.data_mean, chain_means)
        sig = np.flatnonzero(spec.significant)
        k = sig[keep_modes(spec.weights[sig], spec.gaps[sig], spec.V, problem.T, self.n_modes)]
        curve = log10_q_from_modes(g2, spec.weights[k], spec.gaps[k], spec.V, problem.T)
        return Prediction(curve, tau=integrated_time(spec.weights[k], spec.gaps[k], spec.V), grad_norm2=g2)
