"""iid (floor baseline): no autocorrelation at all, ``Q(T) = T · ‖ĝ‖² / V̂``, as if every sweep were an
independent sample of the stationary law.

Sampler-only: ‖ĝ‖² (noise bias removed) and ``V̂ = Σ_a Var f_a`` (f²) from a short pilot run of 64 chains,
64 sweeps of burn-in and 64 recorded (8,192 chain-sweeps, an eighth of the smallest budget of the ladder,
the same at every budget; ‖ĝ‖² and V̂ floored at 1e-300 f²). White-box: the exact ‖g‖² and V of ``problem.exact``. Exact at T = 1 for any
chain; every entry that models mixing should beat it.
"""
from snrbench.pilot import grad_norm2_estimate, log10_q_single_tau, pilot_run
from snrbench.predict import Prediction, Predictor

_TINY = 1e-300  # floor on ‖ĝ‖² and V̂ (f²), so that a pilot that saw no variance still gives a finite curve


class IidWhiteBox(Predictor):
    name = "iid"
    access = "white-box"

    def predict(self, problem):
        sol = problem.exact.solution
        curve = log10_q_single_tau(sol.grad_norm2, sol.total_variance, 1.0, problem.T)
        return Prediction(curve, tau=1.0, grad_norm2=sol.grad_norm2)


class IidBlackBox(Predictor):
    name = "iid"
    access = "sampler-only"

    def __init__(self, n_chains=64, burn_in=64, n_sweeps=64):
        self.kw = dict(n_chains=n_chains, burn_in=burn_in, n_sweeps=n_sweeps)

    def predict(self, problem):
        run = pilot_run(problem, **self.kw)
        g2 = max(grad_norm2_estimate(problem.data_mean, run.chain_means), _TINY)
        V = max(run.variance, _TINY)  # every chain frozen in one state during the pilot: Q is huge, not inf
        return Prediction(log10_q_single_tau(g2, V, 1.0, problem.T), tau=1.0, grad_norm2=g2)


class IidModel(IidBlackBox):
    """The same pilot in the model tier (MNIST families), so that tier has its floor too."""
    access = "model"
