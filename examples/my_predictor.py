import numpy as np
from snrbench.autocorr import integrated_time
from snrbench.pilot import grad_norm2_estimate, log10_q_single_tau
from snrbench.predict import Prediction, Predictor


class TraceIat(Predictor):
    name, access = "trace-iat", "sampler-only"

    def __init__(self, n_chains=32, max_sweeps=2048):
        self.n_chains, self.max_sweeps = n_chains, max_sweeps

    def predict(self, problem):
        sweeps = min(problem.budget // self.n_chains, self.max_sweeps)  # fits every budget of the ladder
        s = problem.sampler(self.n_chains)            # runs in another process, counts sweeps x chains
        s.run(sweeps // 8)                            # burn-in from uniform random states
        f = s.record(sweeps - sweeps // 8)["observables"]  # f after each sweep: (sweeps, chains, observables)
        f = f.double().numpy().transpose(1, 0, 2)     # (chains, sweeps, observables)
        g2 = grad_norm2_estimate(problem.data_mean, f.mean(axis=1))  # ||g||^2, noise bias removed
        V = f.reshape(-1, f.shape[-1]).var(axis=0).sum()             # Tr Cov at T = 1
        try:
            tau = max(1.0, integrated_time(f.sum(axis=2), quiet=True))  # tau of the summed gradient
        except ValueError:                            # a chain that never moved: slower than the run
            tau = float(sweeps)
        return Prediction(log10_q_single_tau(g2, V, tau, problem.T), tau=tau, grad_norm2=g2)
