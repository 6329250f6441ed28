"""magnetization: the integrated autocorrelation time of m(v) = mean_i v_i from a pilot run,
applied to every gradient observable: ``Tr Cov(T) = V̂ v_T(λ)``, ``λ = (τ_m − 1)/(τ_m + 1)``.

τ_m by Sokal's window (c = 5) on the per-chain ACF averaged over chains (``snrbench.autocorr``).
"""
from snrbench.autocorr import integrated_time
from snrbench.pilot import grad_norm2_estimate, log10_q_single_tau, pilot_run
from snrbench.predict import Prediction, Predictor


class MagnetizationBlackBox(Predictor):
    name = "magnetization"
    access = "sampler-only"

    def __init__(self, n_chains=64, burn_in_fraction=0.2):  # spends the cell's budget; m streams
        self.kw = dict(n_chains=n_chains, burn_in_fraction=burn_in_fraction)

    def predict(self, problem):
        run = pilot_run(problem, **self.kw)
        g2 = grad_norm2_estimate(problem.data_mean, run.chain_means)
        try:
            tau = max(1.0, integrated_time(run.m.T, quiet=True))
        except ValueError:  # a chain with constant m: no measurable decay within the pilot
            tau = float(run.layout.n_sweeps)
        return Prediction(log10_q_single_tau(g2, run.variance, tau, problem.T), tau=tau, grad_norm2=g2)
