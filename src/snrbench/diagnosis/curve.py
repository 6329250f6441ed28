"""The Q(T) curve of one user model at C = 1, by the cheapest route that is exact or checked.

* **exact** (the smaller side has at most 8 units and the larger at most 16: the solver sums over
  both sides): the spectral
  solution of the blocked-Gibbs chain (:func:`snrbench.truth.exact.solve`), ``Tr Cov(T) = Σ_k S_k
  v_T(λ_k) + residual/T``; the slow modes are the solver's own.
* **Monte Carlo** otherwise (or with ``exact=False``): R replicate chains of plain blocked Gibbs read
  at every T of the grid (:func:`snrbench.truth.mc_scale.scale_q_curve`, 95% bootstrap CI), started
  - from exact samples of p(v) when one side can be enumerated (≤ 20 units): no burn-in, and
    ``‖g‖²`` exact;
  - otherwise from temperature parallel tempering over the base-rate ↔ model family
    (:func:`snrbench.truth.tempering.equilibrate`) in two groups of R/2 begun at training images and
    at base-rate samples, checked by the four-z equilibration test (the groups agree; no drift from
    halfway to the end; |z| ≤ 3.3). ``‖g‖²`` is then Monte Carlo.
  The slow modes are fitted to ``Tr Ĉ(T)`` (:func:`fit_modes`).
* **an entry's forecast** on request (:func:`entry_curve`): a leaderboard entry run here at a budget.

``Q(T) = ‖g‖² / Tr Cov[ĝ(T, 1)]`` (dimensionless), ``ĝ`` the gradient of one chain's T-sweep window
mean of ``f_ij = v_i E[h_j|v]`` (and ``v``, ``E[h|v]`` with ``observables="weights+biases"``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.optimize import nnls

from ..core import spectral
from ..core.model import RBM, all_states
from ..core.observables import gradient_observables, mean_gradient_observables
from ..truth import exact, hidden_enum
from ..truth.mc_scale import Z_MAX, compare_states, scale_q_curve
from .starts import ENUM_MAX, STARTS, StartSet, enumerable

__all__ = ["Curve", "Mode", "Agreement", "q_curve_of", "curve_from_starts", "compare_curves", "entry_curve", "fit_modes",
           "grad_norm2_enumerated", "EXACT_MAX_UNITS",
           "exact_by_default"]

#: Largest smaller side (units) the default ``exact="auto"`` solves exactly (2^8 states: seconds).
EXACT_MAX_UNITS = 8
#: Largest larger side for ``exact="auto"``: the solver sums over both sides, ``2^(n+m)`` terms
#: (16 + 8 units: about 2^24, seconds); ``exact=True`` allows up to :data:`EXACT_MAX_LARGE_ON`.
EXACT_MAX_LARGE = 16
EXACT_MAX_LARGE_ON = 22


def exact_by_default(rbm: RBM) -> bool:
    """Whether ``exact="auto"`` takes the exact route: smaller side ≤ :data:`EXACT_MAX_UNITS` and
    larger ≤ :data:`EXACT_MAX_LARGE` (a 784 × 8 model has a small side but 2^792 terms: Monte Carlo)."""
    small, large = sorted((rbm.n_visible, rbm.n_hidden))
    return small <= EXACT_MAX_UNITS and large <= EXACT_MAX_LARGE
#: Modes carrying less than this share both of V (one sweep) and of ``Tr Cov(T_max)`` are not reported.
MODE_SHARE_MIN = 0.05


@dataclass(frozen=True)
class Mode:
    """A slow mode: integrated time ``tau = (1+λ)/(1−λ)`` (sweeps), ``weight = S/V`` (share of the
    one-sweep variance) and ``share`` of the longest window's ``Tr Cov(T_max) = Σ_k S_k v_{T_max}(λ_k) + …``
    (the part of the gradient noise at the grid's end that this mode carries)."""

    tau: float
    weight: float
    share: float


@dataclass(frozen=True)
class Curve:
    """``log10_q`` (C = 1) with 95% CI on ``T`` (sweeps); ``method``; ``grad_norm2`` and
    ``total_variance`` (units of f²); the slow modes; the equilibration verdict (``None`` when the
    starts were exact); ``chain_sweeps`` spent; ``notes`` (warnings) and ``details`` (how the starts
    were made), plain sentences."""

    T: np.ndarray
    log10_q: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    method: str
    grad_norm2: float
    total_variance: float
    modes: tuple[Mode, ...]
    equilibrated: bool | None
    z: dict = field(default_factory=dict)
    flagged: bool = False
    chain_sweeps: int = 0
    notes: tuple[str, ...] = ()
    details: tuple[str, ...] = ()


def grad_norm2_enumerated(rbm: RBM, data_mean: np.ndarray, observables: str) -> float:
    """``‖mean_data f − E_p f‖²`` with ``E_p f`` summed over the enumerated smaller side (≤ 20 units)."""
    if rbm.n_hidden <= ENUM_MAX:
        model_mean = hidden_enum.model_mean_observables(rbm, observables)
    else:
        V = all_states(rbm.n_visible, rbm.units)
        lp = rbm.log_marginal_visible(V)
        p = np.exp(lp - lp.max())
        model_mean = (p / p.sum()) @ gradient_observables(rbm, V, observables)
    g = np.asarray(data_mean, dtype=np.float64) - model_mean
    return float(g @ g)


def fit_modes(T, trace_cov, trace_cov_se=None, n_grid: int = 48) -> tuple[Mode, ...]:
    """Slow modes fitted to a measured ``Tr Ĉ(T)`` by non-negative least squares on a τ grid:
    ``Tr Ĉ(T) ≈ Σ_j c_j v_T(λ_j) + r/T`` with τ_j geometric from 1.5 to ``100·max(T)`` sweeps, each
    row weighted by ``1/se`` (relative errors when ``se`` is absent); neighbouring non-zero ``c_j``
    are merged into one mode (weight-averaged log τ). Modes with less than :data:`MODE_SHARE_MIN` both
    of ``V`` and of ``Tr Ĉ(T_max)`` are dropped. Resolution is that of the grid's T range: τ ≫ max(T) is seen only as "longer"."""
    T = np.asarray(T, dtype=np.int64)
    y = np.asarray(trace_cov, dtype=np.float64)
    se = y * 0.05 if trace_cov_se is None else np.maximum(np.asarray(trace_cov_se, dtype=np.float64), 1e-3 * y)
    taus = np.geomspace(1.5, 100.0 * T.max(), n_grid)
    basis = np.column_stack([spectral.variance_factor(spectral.tau_to_gap(taus), T).T, 1.0 / T])
    c, _ = nnls(basis / se[:, None], y / se)
    coef, resid = c[:-1], c[-1]
    V = coef.sum() + resid
    if V <= 0:
        return ()
    modes, j = [], 0
    while j < len(coef):
        if coef[j] <= 0:
            j += 1
            continue
        k = j
        while k + 1 < len(coef) and coef[k + 1] > 0:
            k += 1
        w = coef[j : k + 1]
        tau = float(np.exp(np.average(np.log(taus[j : k + 1]), weights=w)))
        modes.append((tau, float(w.sum())))
        j = k + 1
    at_end = [s * float(spectral.variance_factor(spectral.tau_to_gap(t), T[-1:])[0, 0]) for t, s in modes]
    total_end = sum(at_end) + resid / T[-1]
    out = [Mode(t, s / V, e / total_end) for (t, s), e in zip(modes, at_end)
           if max(e / total_end, s / V) >= MODE_SHARE_MIN]
    return tuple(sorted(out, key=lambda m: -m.tau))


def _exact_modes(sol, T, n_modes: int = 5) -> tuple[Mode, ...]:
    tau = (2.0 - sol.gaps) / sol.gaps
    at_end = sol.weights * spectral.variance_factor(sol.gaps, T[-1:])[:, 0]
    share = at_end / float(sol.trace_cov(T[-1:])[0])
    keep = np.argsort(-(share + sol.weights / sol.total_variance))[:n_modes]
    return tuple(sorted((Mode(float(tau[i]), float(sol.weights[i] / sol.total_variance), float(share[i]))
                         for i in keep if max(share[i], sol.weights[i] / sol.total_variance) >= MODE_SHARE_MIN),
                        key=lambda m: -m.tau))


def _exact_curve(rbm, data_mean, T, observables) -> Curve:
    sol = exact.solve(rbm, None, observables)
    g2 = grad_norm2_enumerated(rbm, data_mean, observables)
    with np.errstate(divide="ignore"):
        lq = np.log10(g2) - np.log10(sol.trace_cov(T))
    return Curve(T=T, log10_q=lq, ci_low=lq, ci_high=lq, method=f"exact (spectral solution, {sol.method})",
                 grad_norm2=g2, total_variance=sol.total_variance, modes=_exact_modes(sol, T), equilibrated=None)


def q_curve_of(rbm: RBM, data: np.ndarray, T, observables: str = "weights", exact_path: str | bool = "auto",
               n_replicates: int = 512, seed: int = 0, device: str = "cpu", progress: bool = False,
               tempering: dict | None = None, starts: str = "auto", stage=None) -> Curve:
    """Q(T) of ``rbm`` against ``data`` at C = 1 on ``T`` (see the module docstring).

    ``exact_path``: ``"auto"`` (exact when the smaller side ≤ :data:`EXACT_MAX_UNITS`), ``True``
    (exact up to 12 units, else an error), ``False`` (always Monte Carlo). ``tempering``: keyword
    arguments of the start generator (for ``"tempering"``, :func:`~snrbench.truth.tempering.equilibrate`:
    default 16 rungs from β = 0, 100 adaptation and 400 production rounds). ``starts``: ``"auto"``
    (exact samples when a side has ≤ 20 units, else temperature tempering) or a name in
    :data:`~.starts.STARTS`. ``stage``: called with a stage name before each long stage (progress)."""
    T = np.asarray(T, dtype=np.int64)
    data_mean = mean_gradient_observables(rbm, data, observables)
    if exact_path is True or (exact_path == "auto" and exact_by_default(rbm)):
        small, large = sorted((rbm.n_visible, rbm.n_hidden))
        if small > exact.MAX_SMALL_SIDE or large > EXACT_MAX_LARGE_ON:
            raise ValueError(f"the exact solver handles a smaller side of at most {exact.MAX_SMALL_SIDE} units and "
                             f"(it sums over both sides) a larger one of at most {EXACT_MAX_LARGE_ON}; this model is "
                             f"{rbm.n_visible} × {rbm.n_hidden}")
        return _exact_curve(rbm, data_mean, T, observables)
    if n_replicates < 16:
        raise ValueError(f"n_replicates must be at least 16, got {n_replicates}")
    name = ("exact" if enumerable(rbm) else "tempering") if starts == "auto" else starts
    if name not in STARTS:
        raise ValueError(f"starts must be 'auto' or one of {sorted(STARTS)}, got {starts!r}")
    if name == "exact" and not enumerable(rbm):
        raise ValueError(f"exact starts need a side of at most {ENUM_MAX} units; this model is "
                         f"{rbm.n_visible} × {rbm.n_hidden}")
    (stage or (lambda _: None))(f"starts: {name}")
    got = STARTS[name](rbm, data, n_replicates, seed, device, progress, tempering)
    (stage or (lambda _: None))("Monte Carlo sweeps")
    return curve_from_starts(rbm, data_mean, got, T, observables, seed=seed, device=device, progress=progress)


_START_WORDS = {"tempering": "temperature-tempering", "trajectory": "trajectory-tempering",
                "annealing": "population-annealing"}


def curve_from_starts(rbm: RBM, data_mean, got: StartSet, T, observables: str, seed: int = 0, device: str = "cpu",
                      progress: bool = False) -> Curve:
    """The Monte Carlo curve of chains begun at ``got`` (:mod:`.starts`), with its equilibration verdict:
    ``None`` for exact samples; else the four-z check (the groups agree; no drift from halfway to the
    end; |z| ≤ :data:`~snrbench.truth.mc_scale.Z_MAX`)."""
    notes, z, equilibrated, g2_exact = [], {}, None, None
    v0 = got.states
    if got.exact:
        g2_exact = grad_norm2_enumerated(rbm, data_mean, observables) if enumerable(rbm) else None
        method = "Monte Carlo from exact samples" + (" (‖g‖² exact)" if g2_exact is not None else "")
    else:
        groups = compare_states(rbm, data_mean, *got.groups, observables)
        drift = compare_states(rbm, data_mean, np.vstack(got.midway), v0, observables, paired=True)
        z = dict(start_z_variance=groups.z_variance, start_z_gradient=groups.z_gradient,
                 drift_z_variance=drift.z_variance, drift_z_gradient=drift.z_gradient)
        equilibrated = bool(groups.agree and drift.agree)
        method = f"Monte Carlo from {_START_WORDS.get(got.name, got.name)} starts"
        if not equilibrated:
            worst = max(z, key=lambda k: abs(z[k]))
            notes.append(f"NOT EQUILIBRATED: {worst} = {z[worst]:+.2f} (|z| > {Z_MAX}); the curve is from chains that "
                         "may not represent the model; raise the tempering rounds (--rounds) or rungs (--rungs)")
    T = np.asarray(T, dtype=np.int64)
    curve = scale_q_curve(rbm, data_mean, v0, T, observables, seed=seed, grad_norm2_exact=g2_exact, device=device,
                          progress=progress)
    if curve.flagged:
        mixing = (f"the chains do not mix within {int(T.max())} sweeps (split-R̂ {curve.rhat:.3f}, doubling rule "
                  f"{'passed' if curve.doubling_ok else 'failed'})")
        if equilibrated is False:
            notes.append(mixing)
        else:  # equilibrium starts: the slow mixing cannot bias the curve, it is part of what Q(T) measures
            notes.append(mixing + ": this does not bias Q(T), because the starts are " +
                         ("exact samples" if equilibrated is None else "equilibrated (the check above wins)") +
                         "; it means a slow mode longer than the grid, whose share of the noise Q(T) already counts")
    return Curve(T=T, log10_q=curve.log10_q, ci_low=curve.ci_low, ci_high=curve.ci_high, method=method,
                 grad_norm2=curve.grad_norm2_used, total_variance=float(curve.trace_cov[0]),
                 modes=fit_modes(T, curve.trace_cov, curve.trace_cov_se), equilibrated=equilibrated, z=z,
                 flagged=curve.flagged, chain_sweeps=int(got.chain_sweeps + len(v0) * T.max()), notes=tuple(notes),
                 details=got.details)


@dataclass(frozen=True)
class Agreement:
    """Two curves of one model from independent start generators compared (:func:`compare_curves`):
    ``z`` per T, ``(log10 Q_a − log10 Q_b)/√(σ_a² + σ_b²)`` with σ the 95% half-width / 1.96 (dex);
    ``max_abs_dex`` the largest ``|log10 Q_a − log10 Q_b|``; ``agree`` when every finite |z| ≤ Z_MAX,
    both curves have a signal at the same T and neither generator failed its own equilibration check
    (``checks_passed``)."""

    generators: tuple[str, str]
    z: np.ndarray
    max_abs_dex: float
    agree: bool
    checks_passed: bool = True
    states_z: tuple[float, float] | None = None

    def sentence(self) -> str:
        i = int(np.nanargmax(np.abs(self.z))) if np.any(np.isfinite(self.z)) else 0
        zmax = float(np.abs(self.z[i])) if np.isfinite(self.z[i]) else float("nan")
        s = (f"{self.generators[0]} and {self.generators[1]} starts "
             f"{'agree' if self.agree else 'DISAGREE'}: largest |Δ log10 Q| {self.max_abs_dex:.3f} dex, "
             f"largest |z| {zmax:.2f} (limit {Z_MAX})")
        if self.states_z is not None:
            s += f"; their start states z_variance {self.states_z[0]:+.2f}, z_gradient {self.states_z[1]:+.2f}"
        return s + ("" if self.checks_passed else "; and a generator failed its own equilibration check")


def compare_curves(a: Curve, b: Curve, names: tuple[str, str], states=None) -> Agreement:
    """Do two Monte Carlo curves of one model agree within their CIs (see :class:`Agreement`)?
    ``states``: the :func:`~snrbench.truth.mc_scale.compare_states` of the two generators' start sets
    (Welch z of ``V`` and of the gradient projection), which must agree as well: it is the sharper test
    where ‖g‖² is Monte Carlo and the curves' CIs are wide."""
    sa = (np.asarray(a.ci_high) - np.asarray(a.ci_low)) / (2 * 1.96)
    sb = (np.asarray(b.ci_high) - np.asarray(b.ci_low)) / (2 * 1.96)
    d = np.asarray(a.log10_q) - np.asarray(b.log10_q)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = d / np.sqrt(sa**2 + sb**2)
    same_signal = np.array_equal(np.isfinite(a.log10_q), np.isfinite(b.log10_q))
    fin = np.isfinite(z)
    checks = a.equilibrated is not False and b.equilibrated is not False
    sz = None if states is None else (float(states.z_variance), float(states.z_gradient))
    return Agreement(names, z, float(np.max(np.abs(d[fin]))) if fin.any() else float("nan"),
                     bool(same_signal and checks and np.all(np.abs(z[fin]) <= Z_MAX)
                          and (states is None or states.agree)), checks, sz)


def entry_curve(spec: str, rbm: RBM, data: np.ndarray, T, observables: str, budget: int, seed: int = 0) -> Curve:
    """Q(T) forecast by a leaderboard entry (a built-in name, or ``PATH.py``) run here on the user's
    model at ``budget`` chain-sweeps: the sampler-only tier where the entry has one, else the model
    tier. Cheaper than the Monte Carlo route and as good as the entry's record on the leaderboard;
    the curve has no CI."""
    from ..predict import Problem
    from ..predict.registry import builtin_entries, instantiate, resolve

    entries = resolve(spec) if spec.endswith(".py") else [e for e in builtin_entries() if e.name == spec]
    if not entries:
        known = ", ".join(sorted({e.name for e in builtin_entries()}))
        raise ValueError(f"no entry named {spec!r}; built-in entries: {known} (or give PATH.py)")
    usable = [e for e in entries if e.access in ("sampler-only", "model")]
    if not usable:
        raise ValueError(f"entry {spec!r} is white-box only: it needs the exact operator, which a user's model "
                         "has only when it is small (use --exact on instead)")
    e = min(usable, key=lambda x: x.access != "sampler-only")
    problem = Problem(rbm, data, T=np.asarray(T), observables=observables, access=e.access, family="user",
                      label="user model", seed=seed, budget=budget)
    pred = instantiate(e).predict(problem)
    lq = np.asarray(pred.log10_q, dtype=np.float64)
    g2 = float("nan") if pred.grad_norm2 is None else float(pred.grad_norm2)
    notes = [f"a forecast by the entry {e.name}, not a measurement: its accuracy is its record on the "
             "leaderboard; the plan uses it without a CI"]
    total = rbm.n_visible * rbm.n_hidden + (rbm.n_visible + rbm.n_hidden if observables == "weights+biases" else 0)
    if problem.info.n_observables < total:
        notes.append(f"observables subsampled: the entry saw {problem.info.n_observables} of the {total} gradient "
                     "observables (a uniform random subset, scaled so that sums over them stay unbiased)")
    return Curve(T=np.asarray(T), log10_q=lq, ci_low=lq, ci_high=lq,
                 method=f"entry {e.name} ({e.access}) at {budget:,} chain-sweeps", grad_norm2=g2,
                 total_variance=float("nan"), modes=(), equilibrated=None, chain_sweeps=int(problem.sweeps_used),
                 notes=tuple(notes))
