"""pilot-q (baseline): measure Tr Cov[ĝ(T)] directly at small T from a pilot run, extrapolate.

For ``T ≤ T_pilot`` each chain's recorded series is cut into non-overlapping windows of T sweeps;
``Tr Cov(T) = Σ_a Var(window means of f_a)`` over all windows of all chains. Beyond ``T_pilot`` one
exponential is fitted through the last point, ``Tr Cov(T_p) = V̂ v_{T_p}(λ)``, and continued:
``Tr Cov(T) = Tr Cov(T_p) v_T(λ) / v_{T_p}(λ)``.
"""
import numpy as np
from scipy.optimize import brentq

from snrbench.pilot import grad_norm2_estimate, pilot_run
from snrbench.predict import Prediction, Predictor
from snrbench.spectral import variance_factor


class PilotQ(Predictor):
    name = "pilot-q"
    access = "sampler-only"

    def __init__(self, n_chains=64, burn_in_fraction=0.2, t_pilot=2**6):  # spends the cell's budget
        self.kw = dict(n_chains=n_chains, burn_in_fraction=burn_in_fraction)
        self.t_pilot = t_pilot

    def predict(self, problem):
        T = np.asarray(problem.T)
        run = pilot_run(problem, windows=T[T <= self.t_pilot], **self.kw)
        g2 = grad_norm2_estimate(problem.data_mean, run.chain_means)
        measured = run.window_trace_cov
        tp = max(measured)
        V = measured[1] if 1 in measured else run.variance
        ratio = min(max(measured[tp] / V, 1.0 / tp * (1 + 1e-9)), 1.0 - 1e-12)  # in (1/T_p, 1)
        lg = brentq(lambda x: variance_factor([10.0**x], [tp])[0, 0] - ratio, -300.0, 0.0, xtol=1e-10)
        gap = 10.0**lg
        vt = variance_factor([gap], T)[0]
        vtp = variance_factor([gap], [tp])[0, 0]
        tc = np.array([measured.get(int(t), measured[tp] * v / vtp) for t, v in zip(T, vt)])
        return Prediction(np.log10(g2) - np.log10(tc), tau=(2.0 - gap) / gap, grad_norm2=g2)
