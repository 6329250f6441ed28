"""iat-per-observable (baseline): each gradient observable with its own integrated time from a
pilot run, ``Tr Cov(T) = Σ_a Var(f_a) v_T(λ_a)``, ``λ_a = (τ_a − 1)/(τ_a + 1)`` (Sokal, c = 5)."""
import numpy as np

from snrbench.autocorr import integrated_time
from snrbench.pilot import grad_norm2_estimate, log10_q_from_modes, pilot_run
from snrbench.predict import Prediction, Predictor
from snrbench.spectral import tau_to_gap


class IatPerObservable(Predictor):
    name = "iat-per-observable"
    access = "sampler-only"

    def __init__(self, n_chains=64, burn_in_fraction=0.2, max_values=2**27):
        """Spends the cell's budget, or less where the kept series of f would pass ``max_values``
        numbers (2^27: 1 GiB of float64; 4,096 recorded sweeps of 64 chains on the mnist cells)."""
        self.kw = dict(n_chains=n_chains, burn_in_fraction=burn_in_fraction, max_values=max_values,
                       keep_series=True)

    def predict(self, problem):
        run = pilot_run(problem, **self.kw)
        g2 = grad_norm2_estimate(problem.data_mean, run.chain_means)
        f = run.f.reshape(-1, run.f.shape[-1])
        var = f.var(axis=0)
        taus = np.ones(var.size)
        for a in np.flatnonzero(var > 1e-12 * var.max()):
            try:
                taus[a] = max(1.0, integrated_time(run.f[:, :, a].T, quiet=True))
            except ValueError:  # constant within some chain
                taus[a] = float(run.layout.n_sweeps)
        curve = log10_q_from_modes(g2, var, tau_to_gap(taus), float(var.sum()), problem.T)
        tau = float(var @ taus / var.sum())
        return Prediction(curve, tau=tau, grad_norm2=g2)
