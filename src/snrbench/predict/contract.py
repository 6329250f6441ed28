"""The predictor contract: :class:`Problem` in, :class:`Prediction` out.

A predictor is a small class::

    class MyEntry(snrbench.predict.Predictor):
        name = "my-entry"          # unique per access tier
        access = "black-box"       # or "white-box"
        def __init__(self, n_chains=64): ...   # hyper-parameters, all with defaults
        def predict(self, problem) -> Prediction: ...

``problem`` holds the cell's model, data, T grid and observables, a **metered sampler** and, for
white-box entries on exact families only, ``problem.exact``. It never holds a path to stored results.

Budget (black-box and white-box alike): ``BUDGET = 2^16 sweeps × 64 chains = 4,194,304``
chain-sweeps per cell, spent in any layout (e.g. 128 chains × 2^15 sweeps). A sampler call that
would exceed it raises :class:`BudgetExceeded` before running.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..core.ising import IsingModel
from ..core.model import RBM
from ..core.observables import gradient_observables, mean_gradient_observables
from ..core.sampler import make_sampler
from ..core.spectral import T_GRID

__all__ = ["ACCESS_TIERS", "BUDGET", "BudgetExceeded", "AccessError", "Prediction", "Predictor", "Problem",
           "MeteredSampler", "ExactOperator", "check_prediction", "MAX_OBSERVABLES"]

ACCESS_TIERS = ("white-box", "black-box")
#: Cells with more gradient observables than this (the mnist families: 784·m) show entries a seeded
#: uniform random subset of this many, each scaled by ``sqrt(n_obs / MAX_OBSERVABLES)``: every sum of
#: squares over observables (‖g‖², V, Tr Cov) is then an unbiased estimate of the full sum.
MAX_OBSERVABLES = 512
#: Chain-sweeps allowed per cell: 2^16 sweeps × 64 chains.
BUDGET = 2**16 * 64


class BudgetExceeded(RuntimeError):
    """A sampler call would take the cell past its chain-sweep budget."""


class AccessError(PermissionError):
    """A black-box entry asked for something only white-box entries get."""


@dataclass(frozen=True)
class Prediction:
    """A predictor's answer for one cell (immutable).

    log10_q : predicted ``log10 Q(T, C=1)`` on ``problem.T`` (one value per T, dimensionless).
    tau : optional integrated autocorrelation time the entry used (sweeps).
    grad_norm2 : optional estimate of ``‖g‖²`` (units of f²); black-box entries are scored on it.
    """

    log10_q: np.ndarray
    tau: float | None = None
    grad_norm2: float | None = None

    def __post_init__(self):
        arr = np.array(self.log10_q, dtype=np.float64, copy=True)
        arr.setflags(write=False)
        object.__setattr__(self, "log10_q", arr)


class Predictor:
    """Base class of leaderboard entries (subclassing is optional; the attributes are the contract)."""

    name: str = ""
    access: str = "black-box"

    def predict(self, problem: "Problem") -> Prediction:  # pragma: no cover - interface
        raise NotImplementedError


def check_prediction(pred, n_T: int) -> str | None:
    """The first problem with a predictor's return value, as a message (None when valid)."""
    if not isinstance(pred, Prediction):
        return f"predict() returned {type(pred).__name__}, not snrbench.predict.Prediction"
    q = pred.log10_q
    if q.ndim != 1 or q.size != n_T:
        return f"log10_q has shape {q.shape}; expected ({n_T},), one value per T on the grid"
    if np.isnan(q).any():
        return f"log10_q contains NaN at T index {np.flatnonzero(np.isnan(q)).tolist()}"
    if np.isinf(q).any():
        i = np.flatnonzero(np.isinf(q))
        kind = "−inf (Q = 0)" if np.all(q[i] < 0) else "inf"
        return f"log10_q is {kind} at T index {i.tolist()}; Q must be finite and positive"
    for what in ("tau", "grad_norm2"):
        x = getattr(pred, what)
        if x is not None and (not np.isfinite(x) or x <= 0):
            return f"{what} = {x!r}: must be finite and positive (or None)"
    return None


class MeteredSampler:
    """The family's sampler (:mod:`snrbench.core.sampler`) whose sweeps are charged to the cell's budget.

    ``v`` (the chains' recorded states, torch tensor ``(n_chains, n)``), :meth:`run`,
    :meth:`sweep`, :meth:`observables` (the cell's gradient observables of the current states) and
    :meth:`basis_features` behave as in :class:`~snrbench.core.sampler.BlockGibbs`; each sweep costs
    ``n_chains`` chain-sweeps. Chains start from uniform random units.
    """

    def __init__(self, problem: "Problem", n_chains: int, seed: int, dtype):
        self._problem = problem
        self._gibbs = make_sampler(problem.model, n_chains, dtype=dtype, seed=seed)
        self.n_chains = self._gibbs.n_chains

    def _charge(self, n_sweeps: int) -> None:
        cost = int(n_sweeps) * self.n_chains
        p = self._problem
        if p._used + cost > p.budget:
            raise BudgetExceeded(f"{n_sweeps} sweeps × {self.n_chains} chains would use {p._used + cost:,} "
                                 f"chain-sweeps; the cell's budget is {p.budget:,}")
        p._used += cost

    @property
    def v(self) -> torch.Tensor:
        return self._gibbs.v

    def sweep(self) -> None:
        self._charge(1)
        self._gibbs.sweep()

    def run(self, n_sweeps: int) -> None:
        self._charge(n_sweeps)
        self._gibbs.run(n_sweeps)

    def observables(self) -> torch.Tensor:
        """The cell's gradient observables f of the current states, ``(n_chains, n_obs)`` (on large
        cells the scaled random subset of :data:`MAX_OBSERVABLES`, see :class:`Problem`)."""
        p = self._problem
        if p.observable_subset is None:
            return self._gibbs.observables(p.observables)
        return p._subset(self._gibbs.v, self._gibbs.basis_features())

    def basis_features(self) -> torch.Tensor:
        """RBM: ``E[h|v]``; Ising: the spins (``(n_chains, k)``)."""
        return self._gibbs.basis_features()


class ExactOperator:
    """White-box view of an exact cell: the spectral solution of its blocked-Gibbs operator.

    ``solution`` is :class:`snrbench.truth.exact.ExactSolution` (gaps ``1 − λ_k``, mode weights ``S_k`` of
    the gradient observables and of the magnetization, ``V``, ``‖g‖²``), computed on first use.
    """

    def __init__(self, model: RBM, data: np.ndarray, observables: str):
        self._args = (model, data, observables)
        self._solution = None

    @property
    def solution(self):
        if self._solution is None:
            from ..truth.exact import solve

            self._solution = solve(*self._args)
        return self._solution


@dataclass
class Problem:
    """What an entry sees of one cell.

    model : RBM or IsingModel; data : (N, n) array (read-only); T : the grid (sweeps); observables :
    which gradient observables (``"weights"``, ``"weights+biases"``, Ising ``"pairs"``); access : the entry's tier;
    family, label : the cell's family and human-readable name; seed : a per-cell seed for samplers.
    """

    model: RBM | IsingModel
    data: np.ndarray
    T: np.ndarray = field(default_factory=lambda: T_GRID.copy())
    observables: str = "weights"
    access: str = "black-box"
    family: str = ""
    label: str = ""
    seed: int = 0
    exact_available: bool = False
    budget: int = BUDGET
    _used: int = field(default=0, repr=False)
    _exact: ExactOperator | None = field(default=None, repr=False)
    _subset_spec: tuple | bool | None = field(default=None, repr=False)
    _subset_rows: tuple | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.access not in ACCESS_TIERS:
            raise ValueError(f"access must be one of {ACCESS_TIERS}, got {self.access!r}")
        self.data = np.array(self.data, dtype=np.float64)
        self.data.setflags(write=False)
        self.T = np.array(self.T, dtype=np.int64)
        self.T.setflags(write=False)

    @property
    def sweeps_used(self) -> int:
        """Chain-sweeps charged so far in this cell."""
        return self._used

    @property
    def observable_subset(self) -> tuple[np.ndarray, float] | None:
        """``(index, scale)`` of the observables entries see, or None when they see all of them.

        Cells with more than :data:`MAX_OBSERVABLES` gradient observables: a uniform random subset
        without replacement (seeded by the cell), each scaled by ``sqrt(n_obs/MAX_OBSERVABLES)``.
        """
        if self._subset_spec is None and isinstance(self.model, RBM):
            n, m = self.model.W.shape
            n_obs = n * m + (n + m if self.observables == "weights+biases" else 0)
            if n_obs > MAX_OBSERVABLES:
                idx = np.sort(np.random.default_rng([self.seed, 512]).choice(n_obs, MAX_OBSERVABLES, replace=False))
                self._subset_spec = (idx, float(np.sqrt(n_obs / MAX_OBSERVABLES)))
            else:
                self._subset_spec = False
        return self._subset_spec or None

    def _subset(self, v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """The subset's scaled observables from ``v`` and ``E[h|v]`` (torch, ``(rows, MAX_OBSERVABLES)``):
        index a < n·m is ``v_i E[h_j|v]`` (a = i·m + j), then ``v_i``, then ``E[h_j|v]``."""
        if self._subset_rows is None:  # columns of [v | 1] and [E h | 1] per subset entry, once
            idx, _ = self.observable_subset
            n, m = self.model.W.shape
            i = np.where(idx < n * m, idx // m, np.where(idx < n * m + n, idx - n * m, n))
            j = np.where(idx < n * m, idx % m, np.where(idx < n * m + n, m, idx - n * m - n))
            self._subset_rows = (torch.as_tensor(i), torch.as_tensor(j))
        i, j = self._subset_rows
        X = torch.cat([v, torch.ones_like(v[:, :1])], dim=1)  # [v | 1]
        Y = torch.cat([h, torch.ones_like(h[:, :1])], dim=1)  # [E h | 1]
        return X[:, i] * Y[:, j] * self.observable_subset[1]

    def gradient_observables(self, v) -> np.ndarray:
        """``f(v)`` for rows of ``v`` (numpy), shape ``(len(v), n_obs)`` (the subset on large cells)."""
        v = np.asarray(v, dtype=np.float64)
        if self.observable_subset is None:
            return gradient_observables(self.model, v, self.observables)
        h = self.model.mean_from_field(self.model.hidden_field(v))
        return self._subset(torch.from_numpy(v), torch.from_numpy(h)).numpy()

    @property
    def data_mean(self) -> np.ndarray:
        """``mean_data f`` over the cell's full data set (exact; the scaled subset on large cells)."""
        mean = mean_gradient_observables(self.model, self.data, self.observables)
        if self.observable_subset is None:
            return mean
        idx, scale = self.observable_subset
        return mean[idx] * scale

    def sampler(self, n_chains: int = 64, seed: int | None = None, dtype=torch.float32) -> MeteredSampler:
        """A metered sampler (blocked Gibbs; Ising: random-scan Gibbs) of ``n_chains`` chains (default seed: the cell's)."""
        return MeteredSampler(self, n_chains, self.seed if seed is None else int(seed), dtype)

    @property
    def exact(self) -> ExactOperator:
        """The exact operator (white-box entries on exact families only)."""
        if self.access != "white-box":
            raise AccessError("problem.exact is for white-box entries only; black-box entries use problem.sampler()")
        if not self.exact_available:
            raise AccessError(f"family {self.family!r} has no exact operator")
        if self._exact is None:
            self._exact = ExactOperator(self.model, self.data, self.observables)
        return self._exact
