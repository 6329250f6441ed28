"""The metered sampler's trusted side: it holds the cell's model, its seed, the budget and the count.

An entry never holds a :class:`Meter` in the tiers where that matters: the runner keeps it in a
separate sampler process (:mod:`._sampler_service`) and the entry reaches it only through requests
(:class:`MeteredSampler` over :class:`snrbench.predict._sampler_service.MeterClient`). In-process
use (tests, benchmarks, a user's own model) talks to a local :class:`Meter` through the same
requests, so both routes run the same code.

Requests: ``new(n_chains, seed, dtype, start)`` → a sampler id (``start``: one of :data:`STARTS`;
``"data"``, chains begun at rows of the cell's data drawn with the sampler's seed, only where the
runner gave the meter the data, i.e. for model and white-box entries); ``call(id, op, n, what)`` with ``op`` one
of ``run`` (advance ``n`` sweeps, charged ``n · n_chains`` chain-sweeps), ``state`` (the current
``what`` of the chains, charged ``n_chains`` like one recorded sweep) and ``record`` (advance ``n`` sweeps, returning ``what`` after each one,
stacked ``(n, n_chains, ·)``); ``stream(id, n_blocks, block, what)``: ``n_blocks`` records in a row.
``what`` ⊂ :data:`FIELDS`. Every argument is checked here: the
caller may be hostile.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..core.ising import IsingModel
from ..core.model import RBM
from ..core.observables import gradient_observables, mean_gradient_observables, observable_parity
from ..core.sampler import make_sampler

__all__ = ["BUDGET", "BUDGETS", "BudgetExceeded", "CellInfo", "Meter", "FIELDS", "STARTS", "MAX_OBSERVABLES", "MAX_CHAINS",
           "MAX_SAMPLERS", "MAX_RECORD_VALUES"]

#: The budget ladder: black-box entries (model and sampler-only tiers) run at every one of these
#: chain-sweep budgets per cell, 2^10 … 2^16 sweeps × 64 chains; scores are kept per budget.
BUDGETS = tuple(2**k * 64 for k in (10, 12, 14, 16))
#: Where a new sampler's chains begin: uniform random units, or rows of the cell's data (model and
#: white-box tiers: the data set is theirs to see; a sampler-only entry would learn it from the states).
STARTS = ("uniform", "data")
#: The full budget, the ladder's top (and the only one white-box entries run at): 2^16 × 64.
BUDGET = BUDGETS[-1]
#: Cells with more gradient observables than this (the mnist families: 784·m) show entries a seeded
#: uniform random subset of this many, each scaled by ``sqrt(n_obs / MAX_OBSERVABLES)``: every sum of
#: squares over observables (‖g‖², V, Tr Cov) is then an unbiased estimate of the full sum.
MAX_OBSERVABLES = 512
#: What a request may ask of the chains: the states ``v`` (n), the gradient observables (n_obs),
#: the basis features (RBM ``E[h|v]``, Ising the spins) and the magnetization ``mean_i v_i`` (1).
FIELDS = ("v", "observables", "basis_features", "magnetization")
#: Chains per cell over all its samplers, and samplers per cell (the sampler process's memory).
MAX_CHAINS = 2**16
MAX_SAMPLERS = 64
#: Values one ``record`` (or one block of a stream) may return (2^24: 64 MiB in float32, 128 MiB
#: in float64); a larger request is refused.
MAX_RECORD_VALUES = 2**24
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class BudgetExceeded(RuntimeError):
    """A sampler call would take the cell past its chain-sweep budget."""


@dataclass(frozen=True)
class CellInfo:
    """What every tier may know of a cell's model without its parameters.

    kind : ``"rbm"`` or ``"ising-model"``; n_visible, n_hidden (0 for Ising) : sizes; units :
    ``"binary"`` or ``"spin"``; spin_flip_symmetric : ``E(v, h) = E(−v, −h)`` exactly;
    n_observables : how many gradient observables entries see; observable_parity : ±1 per observable
    under ``v → −v``.
    """

    kind: str
    n_visible: int
    n_hidden: int
    units: str
    spin_flip_symmetric: bool
    n_observables: int
    observable_parity: tuple

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "CellInfo":
        return cls(**{k: (tuple(v) if k == "observable_parity" else v) for k, v in d.items()})


def _int(x, name: str, lo: int, hi: int) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or not lo <= int(x) <= hi:
        raise ValueError(f"{name} must be an int in [{lo}, {hi}], got {x!r}")
    return int(x)


class Meter:
    """The cell's samplers and their count of chain-sweeps (``used``) against ``budget``.

    ``seed`` is the cell's sampler seed (the default of every sampler it makes: common random
    numbers across entries); it is never handed to an entry.
    """

    def __init__(self, model: RBM | IsingModel, observables: str, seed: int, budget: int = BUDGET,
                 data_starts: np.ndarray | None = None):
        self.model, self.which, self.budget = model, observables, int(budget)
        self._data_starts = None if data_starts is None else np.asarray(data_starts, dtype=np.float64)
        self._seed = int(seed)
        self.used = 0
        self._samplers: dict[int, object] = {}
        self._subset = self._subset_spec()
        self._rows = None

    # -- observables ------------------------------------------------------------------------
    def _subset_spec(self):
        if not isinstance(self.model, RBM):
            return None
        n, m = self.model.W.shape
        n_obs = n * m + (n + m if self.which == "weights+biases" else 0)
        if n_obs <= MAX_OBSERVABLES:
            return None
        idx = np.sort(np.random.default_rng([self._seed, 512]).choice(n_obs, MAX_OBSERVABLES, replace=False))
        return idx, float(np.sqrt(n_obs / MAX_OBSERVABLES))

    @property
    def observable_subset(self) -> tuple[np.ndarray, float] | None:
        """``(index, scale)`` of the observables entries see, or None when they see all of them.

        Cells with more than :data:`MAX_OBSERVABLES` gradient observables: a uniform random subset
        without replacement (seeded by the cell), each scaled by ``sqrt(n_obs/MAX_OBSERVABLES)``.
        """
        return self._subset

    def _subset_of(self, v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """The subset's scaled observables from ``v`` and ``E[h|v]``: index a < n·m is
        ``v_i E[h_j|v]`` (a = i·m + j), then ``v_i``, then ``E[h_j|v]``."""
        if self._rows is None:  # columns of [v | 1] and [E h | 1] per subset entry, once
            idx, _ = self._subset
            n, m = self.model.W.shape
            i = np.where(idx < n * m, idx // m, np.where(idx < n * m + n, idx - n * m, n))
            j = np.where(idx < n * m, idx % m, np.where(idx < n * m + n, m, idx - n * m - n))
            self._rows = (torch.as_tensor(i), torch.as_tensor(j))
        i, j = self._rows
        X = torch.cat([v, torch.ones_like(v[:, :1])], dim=1)
        Y = torch.cat([h, torch.ones_like(h[:, :1])], dim=1)
        return X[:, i] * Y[:, j] * self._subset[1]

    def gradient_observables(self, v) -> np.ndarray:
        """``f(v)`` for rows of ``v`` (numpy), shape ``(len(v), n_obs)`` (the subset on large cells)."""
        v = np.asarray(v, dtype=np.float64)
        if self._subset is None:
            return gradient_observables(self.model, v, self.which)
        h = self.model.mean_from_field(self.model.hidden_field(v))
        return self._subset_of(torch.from_numpy(v), torch.from_numpy(h)).numpy()

    def data_mean(self, data) -> np.ndarray:
        """``mean_data f`` over the full data set (exact; the scaled subset on large cells)."""
        mean = mean_gradient_observables(self.model, np.asarray(data, dtype=np.float64), self.which)
        if self._subset is None:
            return mean
        idx, scale = self._subset
        return mean[idx] * scale

    def info(self) -> CellInfo:
        model = self.model
        parity = observable_parity(model, self.which)
        if self._subset is not None:
            parity = parity[self._subset[0]]
        return CellInfo(kind="ising-model" if isinstance(model, IsingModel) else "rbm", n_visible=model.n_visible,
                        n_hidden=0 if isinstance(model, IsingModel) else model.W.shape[1], units=model.units,
                        spin_flip_symmetric=bool(model.spin_flip_symmetric), n_observables=len(parity),
                        observable_parity=tuple(float(p) for p in parity))

    # -- requests ---------------------------------------------------------------------------
    def new(self, n_chains, seed=None, dtype="float32", start="uniform") -> tuple[int, int]:
        """A new sampler of ``n_chains`` chains begun at ``start`` (module docstring); returns ``(id, n_chains)``."""
        n_chains = _int(n_chains, "n_chains", 1, MAX_CHAINS)
        seed = self._seed if seed is None else _int(seed, "seed", 0, 2**63 - 1)
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
        if not isinstance(start, str) or start not in STARTS:
            raise ValueError(f"start must be one of {STARTS}, got {start!r}")
        if start == "data" and self._data_starts is None:
            raise ValueError("start='data' is for model and white-box entries (the data is theirs to see); "
                             "this cell's sampler has no data to begin chains at")
        if len(self._samplers) >= MAX_SAMPLERS:
            raise ValueError(f"at most {MAX_SAMPLERS} samplers per cell")
        if sum(g.n_chains for g in self._samplers.values()) + n_chains > MAX_CHAINS:
            raise ValueError(f"at most {MAX_CHAINS} chains per cell over all its samplers")
        v0 = None
        if start == "data":
            rows = self._data_starts
            v0 = rows[np.random.default_rng(seed).choice(len(rows), n_chains, replace=n_chains > len(rows))]
        sid = len(self._samplers)
        self._samplers[sid] = make_sampler(self.model, n_chains, dtype=_DTYPES[dtype], seed=seed, v0=v0)
        return sid, n_chains

    def _charge(self, n_sweeps: int, n_chains: int) -> None:
        cost = n_sweeps * n_chains
        if self.used + cost > self.budget:
            raise BudgetExceeded(f"{n_sweeps} sweeps × {n_chains} chains would use {self.used + cost:,} "
                                 f"chain-sweeps; the cell's budget is {self.budget:,}")
        self.used += cost

    def _fields(self, gibbs, what) -> dict[str, torch.Tensor]:
        out = {}
        for w in what:
            if w == "v":
                out[w] = gibbs.v.clone()
            elif w == "magnetization":
                out[w] = gibbs.v.to(torch.float64).mean(1)
            elif w == "basis_features":
                out[w] = gibbs.basis_features().clone()
            elif self._subset is None:
                out[w] = gibbs.observables(self.which)
            else:
                out[w] = self._subset_of(gibbs.v, gibbs.basis_features())
        return out

    def _width(self, w: str) -> int:
        """Values per chain of a field."""
        n = self.model.n_visible
        if w == "observables":
            return MAX_OBSERVABLES if self._subset is not None else len(observable_parity(self.model, self.which))
        return {"v": n, "magnetization": 1}.get(w, n if isinstance(self.model, IsingModel) else self.model.W.shape[1])

    def _checked(self, sid, what):
        if isinstance(sid, bool) or not isinstance(sid, int) or sid not in self._samplers:
            raise ValueError(f"no sampler with id {sid!r} in this cell")
        if not isinstance(what, (list, tuple)) or not all(isinstance(w, str) and w in FIELDS for w in what) \
                or len(set(what)) != len(what):
            raise ValueError(f"what must be distinct names from {FIELDS}, got {what!r}")
        return self._samplers[sid]

    def _record(self, gibbs, n: int, what) -> dict[str, np.ndarray]:
        out = {w: [] for w in what}
        for _ in range(n):
            gibbs.sweep()
            for k, t in self._fields(gibbs, what).items():
                out[k].append(t)
        return {k: (torch.stack(v) if v else torch.empty(0)).numpy() for k, v in out.items()}

    def _block_size(self, gibbs, n: int, what) -> None:
        values = n * gibbs.n_chains * sum(self._width(w) for w in what)
        if values > MAX_RECORD_VALUES:
            raise ValueError(f"record of {n} sweeps × {gibbs.n_chains} chains of {list(what)} is {values:,} values; "
                             f"at most {MAX_RECORD_VALUES:,} per block (record in smaller blocks)")

    def call(self, sid, op: str, n=0, what=()) -> dict[str, np.ndarray]:
        """Run one request on sampler ``sid`` (see the module doc); returns numpy arrays by field."""
        gibbs = self._checked(sid, what)
        if op == "state":  # a read costs as much as recording one sweep: no free look at E[h|v]
            self._charge(1, gibbs.n_chains)
            return {k: t.numpy() for k, t in self._fields(gibbs, what).items()}
        n = _int(n, "n_sweeps", 0, self.budget)
        if op == "run":
            self._charge(n, gibbs.n_chains)
            gibbs.run(n)
            return {}
        if op != "record":
            raise ValueError(f"unknown sampler request {op!r} (expected run, state or record)")
        self._block_size(gibbs, n, what)
        self._charge(n, gibbs.n_chains)
        return self._record(gibbs, n, what)

    def stream(self, sid, n_blocks, block, what=()):
        """``n_blocks`` records of ``block`` sweeps each, charged in full before the first one runs;
        a generator of the blocks (the sampler process computes the next block while the entry
        works on this one)."""
        gibbs = self._checked(sid, what)
        n_blocks = _int(n_blocks, "n_blocks", 1, self.budget)
        block = _int(block, "block", 1, self.budget)
        self._block_size(gibbs, block, what)
        if n_blocks * block > self.budget:
            raise BudgetExceeded(f"{n_blocks} blocks of {block} sweeps exceed the cell's budget of {self.budget:,}")
        self._charge(n_blocks * block, gibbs.n_chains)
        return (self._record(gibbs, block, what) for _ in range(n_blocks))
