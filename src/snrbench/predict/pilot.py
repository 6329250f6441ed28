"""Building blocks for sampler-based entries (every tier): pilot runs and curve assembly.

Every function here uses only what :class:`snrbench.predict.Problem` gives a sampler-only entry.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ..core.spectral import tau_to_gap, trace_cov

__all__ = ["Layout", "budget_layout", "PilotRun", "pilot_run", "grad_norm2_estimate", "log10_q_from_modes", "log10_q_single_tau"]


@dataclass(frozen=True)
class Layout:
    """How a run spends its chain-sweeps: ``n_chains`` chains, ``burn_in`` sweeps discarded, then
    ``n_sweeps`` recorded; it costs ``n_chains · (burn_in + n_sweeps)`` chain-sweeps."""

    n_chains: int
    burn_in: int
    n_sweeps: int

    @property
    def chain_sweeps(self) -> int:
        return self.n_chains * (self.burn_in + self.n_sweeps)


def budget_layout(budget: int, n_chains: int = 64, burn_in_fraction: float = 0.2, multiple: int = 1,
                  max_sweeps: int | None = None) -> Layout:
    """Spend ``budget`` chain-sweeps as ``n_chains`` chains of ``S = budget // n_chains`` sweeps each
    (at most ``max_sweeps``): ``burn_in = ⌊fraction · S⌋``, the rest recorded, rounded down to a
    multiple of ``multiple`` sweeps. ValueError when fewer than ``2 · multiple`` sweeps would be
    recorded (the budget is too small for this layout)."""
    S = int(budget) // int(n_chains)
    if max_sweeps is not None:
        S = min(S, int(max_sweeps))
    burn_in = int(burn_in_fraction * S)
    record = ((S - burn_in) // multiple) * multiple
    if record < 2 * multiple:
        raise ValueError(f"a budget of {budget:,} chain-sweeps gives {n_chains} chains only {S} sweeps each; "
                         f"the layout needs at least {2 * multiple} recorded sweeps")
    return Layout(int(n_chains), burn_in, record)


class _Moments:
    """Running count, mean and sum of squared deviations per column, merged block by block
    (Chan, Golub & LeVeque): the pooled variance without keeping the rows."""

    def __init__(self):
        self.n, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, x: np.ndarray) -> None:
        nb = x.shape[0]
        mb = x.mean(axis=0)
        m2b = ((x - mb) ** 2).sum(axis=0)
        n = self.n + nb
        delta = mb - self.mean
        self.mean = self.mean + delta * (nb / n)
        self.m2 = self.m2 + m2b + delta**2 * (self.n * nb / n)
        self.n = n

    def trace(self) -> float:
        """``Σ_a Var x_a`` (population variance, ddof 0)."""
        return float(np.sum(self.m2) / self.n)


@dataclass(frozen=True)
class PilotRun:
    """What a pilot run measured after burn-in (float64 numpy).

    chain_means : ``(C, n_obs)`` per-chain means of the gradient observables f; variance :
    ``V̂ = Σ_a Var f_a`` over all recorded states (units of f²); m : ``(L, C)`` magnetization
    ``mean_i v_i`` after each sweep; f : ``(L, C, n_obs)`` the recorded f (None unless kept);
    window_trace_cov : ``{t: Σ_a Var(mean of f_a over a window of t sweeps)}`` over every
    non-overlapping window of every chain, for the requested window lengths t.
    """

    chain_means: np.ndarray
    variance: float
    m: np.ndarray
    f: np.ndarray | None = None
    window_trace_cov: dict = field(default_factory=dict)
    layout: Layout | None = None


def pilot_run(problem, n_chains: int = 64, n_sweeps: int | None = None, burn_in: int | None = None,
              keep_series: bool = False, windows=(), burn_in_fraction: float = 0.2,
              max_values: int | None = None) -> PilotRun:
    """Run ``n_chains`` metered chains ``burn_in + n_sweeps`` sweeps and summarise the recorded part.

    Without ``n_sweeps`` the run spends the cell's budget (``problem.budget``, :func:`budget_layout`
    with ``burn_in_fraction``); with ``keep_series`` it stops where the kept f would exceed
    ``max_values`` values. The series is read in blocks of about 2^22 values per sampler request and
    reduced as it streams: chain means, the pooled variance, the magnetization and the variances of
    window means (``windows``: lengths t in sweeps; the recorded length is a multiple of the largest).
    """
    windows = sorted({int(t) for t in windows})
    multiple = windows[-1] if windows else 1
    n_obs = problem.info.n_observables
    if n_sweeps is None:
        cap = None if not (keep_series and max_values) else int(max_values) // (n_chains * n_obs)
        if cap is not None:  # the recorded part is at most cap: S·(1 − fraction) ≤ cap
            cap = int(cap / (1.0 - burn_in_fraction))
        layout = budget_layout(problem.budget, n_chains, burn_in_fraction, multiple, cap)
    else:
        layout = Layout(int(n_chains), int(burn_in if burn_in is not None else n_sweeps // 4), int(n_sweeps))
    L = (layout.n_sweeps // multiple) * multiple
    if L < multiple or L < 1:
        raise ValueError(f"pilot_run: {layout.n_sweeps} recorded sweeps; windows of {multiple} need at least {multiple}")
    s = problem.sampler(layout.n_chains)
    if layout.burn_in:
        s.run(layout.burn_in)
    block = max(1, min(L, (1 << 22) // (layout.n_chains * (n_obs + 1))))
    block = max(multiple, (block // multiple) * multiple)
    n_full, rest = divmod(L, block)
    chain_sum = np.zeros((layout.n_chains, n_obs))
    pooled, win = _Moments(), {t: _Moments() for t in windows}
    F, M = [], []

    def blocks():
        if n_full:
            yield from s.record_blocks(n_full, block, ("observables", "magnetization"))
        if rest:
            yield s.record(rest, ("observables", "magnetization"))

    for rec in blocks():
        f = rec["observables"].numpy().astype(np.float64)  # (b, C, n_obs)
        b = f.shape[0]
        chain_sum += f.sum(axis=0)
        pooled.add(f.reshape(-1, n_obs))
        for t, mom in win.items():
            mom.add(f.reshape(b // t, t, layout.n_chains, n_obs).mean(axis=1).reshape(-1, n_obs))
        M.append(rec["magnetization"].numpy())
        if keep_series:
            F.append(f)
    return PilotRun(chain_means=chain_sum / L, variance=pooled.trace(), m=np.concatenate(M),
                    f=np.concatenate(F) if keep_series else None,
                    window_trace_cov={t: mom.trace() for t, mom in win.items()},
                    layout=Layout(layout.n_chains, layout.burn_in, L))


def grad_norm2_estimate(data_mean, chain_means) -> float:
    """``‖ĝ‖² − Σ_a Var_c(f̄_a^c)/C``: the sampled ``‖g‖²`` with its noise bias removed (units of f²).

    ``ĝ = mean_data f − f̄`` has ``E‖ĝ‖² = ‖g‖² + Tr Cov f̄``; the between-chain variance of the
    C chain means estimates ``C · Tr Cov f̄`` without assuming a mixing time. Clipped below at 1%
    of the raw value (a gradient buried in the noise is reported as small, not negative).
    """
    cm = np.asarray(chain_means, dtype=np.float64)
    g = np.asarray(data_mean, dtype=np.float64) - cm.mean(axis=0)
    raw = float(g @ g)
    bias = float(cm.var(axis=0, ddof=1).sum() / len(cm)) if len(cm) > 1 else 0.0
    return max(raw - bias, 0.01 * raw)


def log10_q_from_modes(grad_norm2: float, weights, gaps, V: float, T) -> np.ndarray:
    """``log10 ‖g‖² − log10[Σ_k S_k v_T(λ_k) + (V − Σ S_k)/T]``."""
    weights = np.asarray(weights, dtype=np.float64)
    return np.log10(grad_norm2) - np.log10(trace_cov(weights, gaps, max(V - weights.sum(), 0.0), T))


def log10_q_single_tau(grad_norm2: float, V: float, tau: float, T) -> np.ndarray:
    """One exponential with integrated time τ for the whole variance: ``λ = (τ−1)/(τ+1)``.

    ``Tr Cov(T) = V v_T(λ)``, which equals V at T = 1 (DESIGN §5: not ``V τ/T``).
    """
    if tau <= 1.0 + 1e-12:
        return np.log10(grad_norm2) - np.log10(V / np.asarray(T, dtype=np.float64))
    return log10_q_from_modes(grad_norm2, [V], tau_to_gap([tau]), V, T)
