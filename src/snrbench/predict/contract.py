"""The predictor contract: :class:`Problem` in, :class:`Prediction` out.

A predictor is a small class::

    class MyEntry(snrbench.predict.Predictor):
        name = "my-entry"          # unique across tiers
        access = "sampler-only"    # or "model" (mnist families) or "white-box" (exact families)
        def __init__(self, n_chains=64): ...   # hyper-parameters, all with defaults
        def predict(self, problem) -> Prediction: ...

Every tier gets the T grid, the observables' name, :attr:`Problem.info` (sizes, units, symmetry),
``problem.data_mean`` and a **metered sampler** (``problem.sampler()``). The tiers differ in what
else the entry's process holds:

- **sampler-only**: nothing else. The sampler runs in another process; the entry gets the states,
  observables and basis features it asks for, never the weights, the data, the seeds or the cell's name;
- **model**: also ``problem.model`` and ``problem.data`` (mnist families only: on an exact family
  the parameters give the answer by enumeration);
- **white-box**: also ``problem.exact``, the exact operator (exact families only).

Budget: ``problem.budget`` chain-sweeps per cell, spent in any layout (e.g. 128 chains × 2^15
sweeps at the full ``BUDGET = 2^16 × 64 = 4,194,304``). Black-box entries run once at every budget
of the ladder :data:`BUDGETS` (2^10, 2^12, 2^14, 2^16 × 64) and should spend each sensibly: a
layout that only fits the full budget fails the lower rungs. A sampler call that would exceed the
budget raises :class:`BudgetExceeded` before running. The count is kept by the sampler process,
not the entry.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..core.ising import IsingModel
from ..core.model import RBM
from ..core.spectral import T_GRID
from .meter import BUDGET, BUDGETS, MAX_OBSERVABLES, BudgetExceeded, CellInfo, Meter

__all__ = ["ACCESS_TIERS", "BUDGET", "BUDGETS", "BudgetExceeded", "AccessError", "Prediction", "Predictor", "Problem",
           "MeteredSampler", "ExactOperator", "check_prediction", "MAX_OBSERVABLES", "CellInfo"]

ACCESS_TIERS = ("white-box", "model", "sampler-only")


class AccessError(PermissionError):
    """An entry asked for something its tier does not get."""


@dataclass(frozen=True)
class Prediction:
    """A predictor's answer for one cell (immutable).

    log10_q : predicted ``log10 Q(T, C=1)`` on ``problem.T`` (one value per T, dimensionless).
    tau : optional integrated autocorrelation time the entry used (sweeps).
    grad_norm2 : optional estimate of ``‖g‖²`` (units of f²); sampler-only and model entries are scored on it.
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
    access: str = "sampler-only"

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
    """Chains of the cell's sampler (:mod:`snrbench.core.sampler`: blocked Gibbs; Ising: random-scan
    Gibbs) whose sweeps are charged to the cell's budget by the meter that runs them.

    Each sweep costs ``n_chains`` chain-sweeps. Chains start from uniform random units, or (model and
    white-box entries, ``start="data"``) at rows of the cell's data drawn with the sampler's seed. Every
    method is one request to the meter (in the sampler process for the sampler-only and model
    tiers), so :meth:`record` of a block of sweeps is much cheaper than one :meth:`sweep` at a time.
    """

    def __init__(self, meter, n_chains: int, seed, dtype, start: str = "uniform"):
        dtype = {torch.float32: "float32", torch.float64: "float64"}.get(dtype, dtype)
        self._meter = meter
        self._id, self.n_chains = meter.new(n_chains, seed, dtype, start)

    def _state(self, what: str) -> torch.Tensor:
        return torch.from_numpy(self._meter.call(self._id, "state", 0, (what,))[what])

    @property
    def v(self) -> torch.Tensor:
        """The chains' current states, ``(n_chains, n)`` (a copy)."""
        return self._state("v")

    def sweep(self) -> None:
        self.run(1)

    def run(self, n_sweeps: int) -> None:
        self._meter.call(self._id, "run", int(n_sweeps))

    def record(self, n_sweeps: int, what=("observables",)) -> dict[str, torch.Tensor]:
        """Advance ``n_sweeps`` sweeps and return ``what`` after each one, ``{name: (n_sweeps,
        n_chains, ·)}``; names from ``"v"``, ``"observables"``, ``"basis_features"``,
        ``"magnetization"`` (``mean_i v_i``, float64, ``(n_sweeps, n_chains)``)."""
        out = self._meter.call(self._id, "record", int(n_sweeps), tuple(what))
        return {k: torch.from_numpy(v) for k, v in out.items()}

    def record_blocks(self, n_blocks: int, block: int, what=("observables",)):
        """``n_blocks`` consecutive :meth:`record` s of ``block`` sweeps, as an iterator of their
        dicts, charged in full up front. The same states as the :meth:`record` calls, faster: the
        sampler process computes the next block while the entry works on this one."""
        for out in self._meter.stream(self._id, int(n_blocks), int(block), tuple(what)):
            yield {k: torch.from_numpy(v) for k, v in out.items()}

    def observables(self) -> torch.Tensor:
        """The cell's gradient observables f of the current states, ``(n_chains, n_obs)`` (on large
        cells the scaled random subset of :data:`MAX_OBSERVABLES`, see :class:`~.meter.Meter`)."""
        return self._state("observables")

    def basis_features(self) -> torch.Tensor:
        """RBM: ``E[h|v]``; Ising: the spins (``(n_chains, k)``)."""
        return self._state("basis_features")


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


class Problem:
    """What an entry sees of one cell (see the module doc for what each tier gets).

    T : the grid (sweeps, read-only); observables : which gradient observables (``"weights"``,
    ``"weights+biases"``, Ising ``"pairs"``); access : the entry's tier; family : the cell's family;
    info : :class:`CellInfo`; data_mean : ``mean_data f`` (read-only; the scaled subset on large
    cells); budget : chain-sweeps allowed. ``Problem(model, data, ...)`` builds the meter in this
    process (tests, benchmarks, a user's own model); :meth:`served` is the worker's problem, whose
    meter is a client of the sampler process.
    """

    def __init__(self, model: RBM | IsingModel, data, T=None, observables: str = "weights",
                 access: str = "sampler-only", family: str = "", label: str = "", seed: int = 0,
                 exact_available: bool = False, budget: int = BUDGET):
        meter = Meter(model, observables, seed, budget, data_starts=None if access == "sampler-only" else data)
        self._setup(meter, meter.info(), meter.data_mean(data), T, observables, access, family, label, budget,
                    model, data, exact_available)
        self._local = meter

    @classmethod
    def served(cls, meter, info: CellInfo, data_mean, T, observables: str, access: str, family: str,
               budget: int, label: str = "", model=None, data=None, exact_available: bool = False) -> "Problem":
        self = cls.__new__(cls)
        self._setup(meter, info, data_mean, T, observables, access, family, label, budget, model, data,
                    exact_available)
        self._local = None
        return self

    def _setup(self, meter, info, data_mean, T, observables, access, family, label, budget, model, data,
               exact_available):
        if access not in ACCESS_TIERS:
            raise ValueError(f"access must be one of {ACCESS_TIERS}, got {access!r}")
        self._meter, self.info, self.observables, self.access = meter, info, observables, access
        self.family, self.label, self.budget = family, label, int(budget)
        self.T = np.array(T_GRID if T is None else T, dtype=np.int64)
        self.data_mean = np.array(data_mean, dtype=np.float64)
        for arr in (self.T, self.data_mean):
            arr.setflags(write=False)
        self._model = model if access != "sampler-only" else None
        self._data = None
        if data is not None and access != "sampler-only":
            self._data = np.array(data, dtype=np.float64)
            self._data.setflags(write=False)
        self.exact_available = bool(exact_available)
        self._exact = None

    @property
    def sweeps_used(self) -> int:
        """Chain-sweeps charged so far in this cell (as the meter counts them)."""
        return self._meter.used

    def _tier(self, what: str, tiers: tuple) -> None:
        if self.access not in tiers:
            raise AccessError(f"problem.{what} is for {' and '.join(tiers)} entries only; "
                              f"{self.access} entries use problem.sampler()")

    @property
    def model(self) -> RBM | IsingModel:
        """The model's parameters (model and white-box tiers)."""
        self._tier("model", ("model", "white-box"))
        return self._model

    @property
    def data(self) -> np.ndarray:
        """The cell's data set, ``(N, n)`` read-only (model and white-box tiers)."""
        self._tier("data", ("model", "white-box"))
        return self._data

    def _local_meter(self, what: str) -> Meter:
        if self._local is None:
            raise AccessError(f"problem.{what} is kept by the sampler process; use problem.sampler()")
        return self._local

    @property
    def observable_subset(self):
        """``(index, scale)`` of the observables shown on large cells, or None (in-process problems only)."""
        return self._local_meter("observable_subset").observable_subset

    def gradient_observables(self, v) -> np.ndarray:
        """``f(v)`` for rows of ``v`` (numpy), shape ``(len(v), n_obs)`` (in-process problems only)."""
        return self._local_meter("gradient_observables").gradient_observables(v)

    def sampler(self, n_chains: int = 64, seed: int | None = None, dtype=torch.float32,
                start: str = "uniform") -> MeteredSampler:
        """A metered sampler of ``n_chains`` chains (default seed: the cell's, which the entry never sees),
        begun at uniform random units or, ``start="data"`` (model and white-box tiers), at rows of the data."""
        if start == "data":
            self._tier('sampler(start="data")', ("model", "white-box"))
        return MeteredSampler(self._meter, n_chains, None if seed is None else int(seed), dtype, start)

    @property
    def exact(self) -> "ExactOperator":
        """The exact operator (white-box entries on exact families only)."""
        self._tier("exact", ("white-box",))
        if not self.exact_available:
            raise AccessError(f"family {self.family!r} has no exact operator")
        if self._exact is None:
            self._exact = ExactOperator(self._model, self._data, self.observables)
        return self._exact
