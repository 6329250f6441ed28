"""Parallel tempering (replica exchange) over the tempered family, with a stale-kernel guard.

``R`` independent ladders of ``K`` rungs ``1 = β_0 > β_1 > … > β_{K−1} ≥ 0``; rung k samples
``p_k = tempered(rbm, β_k, a₀)`` (:mod:`snrbench.core.tempered`) with one :class:`~snrbench.core.sampler.BlockGibbs`
of R chains, and chain c of every rung belongs to ladder c.

**Round.** Every rung runs ``n_sweeps`` blocked-Gibbs sweeps; then, for the even pairs (0,1), (2,3), …
on even rounds and the odd pairs (1,2), (3,4), … on odd rounds, the visible states of chain c at
rungs k and k+1 are exchanged with probability ``min(1, e^Δ)``::

    Δ = log p̃_k(x_{k+1}) + log p̃_{k+1}(x_k) − log p̃_k(x_k) − log p̃_{k+1}(x_{k+1})

(``log p̃_k`` the unnormalised visible marginal of rung k, evaluated in float64). Each exchange is a
Metropolis step that keeps ``Π_k p_k`` invariant, so rung 0 samples the RBM itself.

**Round trip.** The states carry an identity (a replica) through the exchanges. A replica completes a
round trip when, having been at the coldest rung 0, it reaches the hottest rung K−1 and then returns
to rung 0; its next trip starts there. :attr:`ParallelTempering.round_trips` sums over replicas and
ladders the trips that started after the last :meth:`~ParallelTempering.reset_stats`.

**Adaptation** (equal acceptance on every pair, as in Vousden, Farr & Mandel 2016, MNRAS 455, 1919,
but on the β-gaps so that β_{K−1} = 0 is allowed). After each window of rounds, with ``A_k`` the
acceptance of pair (k, k+1) in the window and ``λ_k = −log A_k`` (A clipped to [1e-3, 0.999]), the gaps
``g_k = β_k − β_{k+1}`` become::

    log g_k ← log g_k + γ (mean_j log λ_j − log λ_k)      (step clipped to ±1)

then are rescaled to ``Σ_k g_k = β_0 − β_{K−1}`` (both ends fixed). When ``λ_k ∝ g_k^p`` (p = 1 for small
gaps, where ``1 − A ∝ g``; p = 2 in the Gaussian tail) the spread of ``log λ`` shrinks by the factor
``|1 − γp|`` per window, so the default γ = 0.7 converges for every p ≤ 2; the fixed point has equal A.

**Stale kernels** (DESIGN §3, trap 2). The energies in Δ come from :attr:`ParallelTempering.rbm`, the
moves from the rung samplers. :meth:`~ParallelTempering.check_kernels` compares every sampler's product
weights with ``tempered(rbm, β_k, a₀)`` and raises :class:`StaleKernelError`; it runs at construction,
after every change of the betas, at least every ``check_every`` rounds, and in
:meth:`~ParallelTempering.cold_states`, so no state leaves unchecked.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..core.model import RBM
from ..core.sampler import BlockGibbs
from ..core.tempered import tempered

__all__ = ["round_trip_bound", "chain_quantile", "StaleKernelError", "ParallelTempering", "Adaptation", "PTReport", "equilibrate", "KERNEL_RTOL"]

#: Kernel-check tolerance relative to ``max(1, max|W|, max|a|, max|b|, max|a₀|)``, per sampler dtype.
KERNEL_RTOL = {torch.float32: 1e-5, torch.float64: 1e-12}
#: Acceptance clipped to this range before ``λ = −log A`` in the adaptation rule.
_ACCEPT_CLIP = (1e-3, 0.999)
#: Largest change of a log β-gap in one adaptation update.
_MAX_LOG_STEP = 1.0


class StaleKernelError(RuntimeError):
    """A rung's sampler does not sample the tempered model it stands for (stale weights or a wrong β)."""


@dataclass(frozen=True, eq=False)
class Adaptation:
    """``betas``: ``(n_windows + 1, K)``, the ladder before and after each update; ``acceptance``:
    ``(n_windows, K − 1)``, the per-pair swap acceptance measured in each window."""

    betas: np.ndarray
    acceptance: np.ndarray


@dataclass(frozen=True, eq=False)
class PTReport:
    """Diagnostics of :func:`equilibrate`: final ``betas``, ``swap_acceptance`` per pair and
    ``round_trips`` over the ``rounds`` production rounds (after ``adapt_rounds`` of adaptation),
    ``sweeps``, the chain-sweeps spent over all rungs and both phases, and ``midway_states``, the β = 1
    rung's states after ``rounds // 2`` production rounds (the same chains as the final states, for a
    drift check; kernels checked; None when ``rounds < 2``); ``swap_acceptance_q10``, per pair the 10%
    quantile over ladders of each ladder's acceptance."""

    betas: np.ndarray
    swap_acceptance: np.ndarray
    round_trips: int
    rounds: int
    adapt_rounds: int
    sweeps: int
    midway_states: torch.Tensor | None
    swap_acceptance_q10: np.ndarray | None = None


def round_trip_bound(acceptance, chains: int, rounds: int) -> tuple[float, float]:
    """``(Λ, bound)``: the communication barrier ``Λ = Σ_pairs (1 − A_k)`` of a ladder's pair acceptances
    ``A_k`` and the most round trips that ``chains`` ladders can make in ``rounds`` rounds of
    non-reversible (deterministic even/odd) swaps, ``chains · rounds / (2 + 2Λ)`` (Syed,
    Bouchard-Côté, Deligiannidis & Doucet, JRSS-B 2022, the round-trip rate ``1/(2 + 2Λ)`` per ladder
    and round, over all its replicas). A measured count far below it means the ladder's replicas do not
    travel as its acceptances promise (chains stuck while others swap, or too few rounds)."""
    a = np.asarray(acceptance, dtype=np.float64)
    if a.ndim != 1 or a.size < 1 or not np.all((a >= 0) & (a <= 1)):
        raise ValueError(f"round_trip_bound: acceptance must be a 1-D array of values in [0, 1], got {a}")
    lam = float(np.sum(1.0 - a))
    return lam, float(int(chains) * int(rounds) / (2.0 + 2.0 * lam))


def chain_quantile(accepted_per_chain, attempted, q: float = 0.1) -> np.ndarray:
    """Per pair, the ``q``-quantile over ladders of each ladder's own swap acceptance: ``(K − 1,)``
    (NaN: no attempt). ``accepted_per_chain`` ``(K − 1, R)`` counts, ``attempted`` ``(K − 1,)`` attempts
    of the whole group (each ladder attempts ``attempted / R``). The mean hides ladders that never
    swap; a low quantile far below the mean shows them."""
    acc = np.asarray(accepted_per_chain, dtype=np.float64)
    per = np.asarray(attempted, dtype=np.float64) / acc.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(per > 0, np.quantile(acc, q, axis=1) / np.maximum(per, 1e-300), np.nan)


def _check_betas(betas) -> np.ndarray:
    b = np.array(betas, dtype=np.float64)
    if b.ndim != 1 or b.size < 2:
        raise ValueError(f"betas: need a 1-D ladder of K ≥ 2 rungs, got shape {b.shape}")
    if b[0] != 1.0 or not b[-1] >= 0.0:
        raise ValueError(f"betas: need betas[0] == 1 and betas[-1] ≥ 0, got {b[0]} and {b[-1]}")
    if not np.all(np.diff(b) < 0):
        raise ValueError(f"betas must be strictly decreasing, got {b}")
    b.setflags(write=False)
    return b


def _equalised(betas: np.ndarray, acceptance: np.ndarray, gain: float) -> np.ndarray:
    """One adaptation update of the interior betas (module docstring), ends kept exactly."""
    log_lam = np.log(-np.log(np.clip(acceptance, *_ACCEPT_CLIP)))
    step = np.clip(gain * (log_lam.mean() - log_lam), -_MAX_LOG_STEP, _MAX_LOG_STEP)
    gaps = -np.diff(betas) * np.exp(step)
    gaps *= (betas[0] - betas[-1]) / gaps.sum()
    new = np.concatenate([[betas[0]], betas[0] - np.cumsum(gaps)])
    new[-1] = betas[-1]
    return new


class ParallelTempering:
    """Parallel tempering of ``n_chains`` independent ladders of an RBM (see the module docstring).

    Parameters: ``rbm``; ``a0``, the base-model visible bias (:func:`~snrbench.core.tempered.base_rate_bias`);
    ``betas``, strictly decreasing from 1 to ≥ 0, K ≥ 2; ``n_chains`` = R; ``device``, ``dtype`` of the
    samplers; ``seed`` (numpy ``SeedSequence``: one child per rung sampler, one for the swap decisions);
    ``v0``, initial visible states, ``(R, n)`` for every rung or ``(K, R, n)`` per rung (default uniform);
    ``check_every``, the most rounds :meth:`step` goes between kernel checks.
    """

    def __init__(self, rbm: RBM, a0, betas, n_chains: int, device="cpu", dtype=torch.float32, seed: int = 0,
                 v0=None, check_every: int = 50):
        if not isinstance(rbm, RBM):
            raise TypeError(f"ParallelTempering needs an snrbench.RBM, got {type(rbm).__name__}")
        a0 = np.array(a0, dtype=np.float64)
        if a0.shape != (rbm.n_visible,) or not np.all(np.isfinite(a0)):
            raise ValueError(f"a0 must be a finite vector of shape {(rbm.n_visible,)}, got shape {a0.shape}")
        if dtype not in KERNEL_RTOL:
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        if int(n_chains) < 1 or int(check_every) < 1:
            raise ValueError(f"n_chains and check_every must be ≥ 1, got {n_chains} and {check_every}")
        a0.setflags(write=False)
        self._rbm, self.a0, self._betas = rbm, a0, _check_betas(betas)
        K, R = self.n_rungs, int(n_chains)
        self.n_chains, self.device, self.dtype, self.check_every = R, torch.device(device), dtype, int(check_every)
        if v0 is not None:
            shape = tuple(np.shape(v0))
            if len(shape) == 2:
                v0 = [v0] * K
            elif len(shape) != 3 or shape[0] != K:
                raise ValueError(f"v0 must have shape (n_chains, n) or (K, n_chains, n), got {shape}")
        children = np.random.SeedSequence(int(seed)).spawn(K + 1)
        self._seeds = children[:K]  # each rung spawns a fresh seed whenever its sampler is (re)built
        self._gen = torch.Generator(device=self.device).manual_seed(int(children[K].generate_state(1)[0]))
        self.samplers = [self._sampler(k, None if v0 is None else v0[k]) for k in range(K)]
        f64 = dict(device=self.device, dtype=torch.float64)
        # [W | a₀ | a] and [b | 0 | 0]: one product gives the hidden field and both linear terms
        self._Wx = torch.tensor(np.column_stack([rbm.W, a0, rbm.a]), **f64)
        self._bx = torch.tensor(np.concatenate([rbm.b, [0.0, 0.0]]), **f64)
        self._zero = torch.zeros((), **f64)
        self.kernel_tol = KERNEL_RTOL[dtype] * max(1.0, *(float(np.abs(x).max()) for x in (rbm.W, rbm.a, rbm.b, a0)))
        self.rounds = 0
        self.sweeps = 0  # chain-sweeps over all rungs
        self.adaptation: Adaptation | None = None
        self._cols = torch.arange(R, device=self.device)
        self._replica = torch.arange(K, device=self.device)[:, None].repeat(1, R)  # replica id at (rung, ladder)
        self.reset_stats()
        self.check_kernels()

    # --- read-only views ------------------------------------------------------------------------
    @property
    def rbm(self) -> RBM:
        """The model sampled at β = 1 (fixed: the energies are built from it once)."""
        return self._rbm

    @property
    def betas(self) -> np.ndarray:
        """The current ladder (a read-only array)."""
        return self._betas

    @property
    def n_rungs(self) -> int:
        return len(self._betas)

    @property
    def replicas(self) -> np.ndarray:
        """Replica id at each (rung, ladder), ``(K, R)``; ids are the rungs the replicas started at."""
        return self._replica.cpu().numpy()

    @property
    def swap_acceptance(self) -> np.ndarray:
        """Acceptance rate of each adjacent pair since the last :meth:`reset_stats`, ``(K − 1,)`` (nan: no attempt)."""
        att = self._attempted
        return np.where(att > 0, self._accepted.cpu().numpy() / np.maximum(att, 1), np.nan)

    @property
    def swap_acceptance_q10(self) -> np.ndarray:
        """10% quantile over ladders of each ladder's acceptance per pair (:func:`chain_quantile`), ``(K − 1,)``."""
        return chain_quantile(self._accepted_chain.cpu().numpy(), self._attempted)

    @property
    def round_trips(self) -> int:
        """Round trips completed since the last :meth:`reset_stats`, over all replicas and ladders."""
        return int(self._trips)

    # --- building and checking the kernels ------------------------------------------------------
    def _sampler(self, k: int, v0) -> BlockGibbs:
        seed = int(self._seeds[k].spawn(1)[0].generate_state(1)[0])
        return BlockGibbs(tempered(self._rbm, self._betas[k], self.a0), self.n_chains, self.device, self.dtype,
                          seed, v0)

    def check_kernels(self, tol: float | None = None) -> None:
        """Raise :class:`StaleKernelError` if a rung's sampler does not sample ``tempered(rbm, β_k, a0)``.

        The mismatch is :meth:`BlockGibbs.kernel_mismatch` (largest |Δ| of the product weights); ``tol``
        defaults to :attr:`kernel_tol` (``KERNEL_RTOL[dtype]`` times the model's largest parameter, ≥ 1).
        """
        tol = self.kernel_tol if tol is None else float(tol)
        for k, (sampler, beta) in enumerate(zip(self.samplers, self._betas)):
            gap = sampler.kernel_mismatch(tempered(self._rbm, beta, self.a0))
            if not gap <= tol:
                raise StaleKernelError(f"rung {k} (beta = {beta:.6g}): its sampler's weights differ from "
                                       f"tempered(rbm, beta, a0) by {gap:.3g} > tol {tol:.3g} — a kernel built from "
                                       "stale weights or at a wrong beta")

    def _set_betas(self, betas) -> None:
        """Change the ladder; rebuild the rungs whose β changed (keeping their states), then check."""
        new = _check_betas(betas)
        changed = np.flatnonzero(new != self._betas)
        self._betas = new
        for k in changed:
            self.samplers[k] = self._sampler(k, self.samplers[k].v)
        self.check_kernels()

    # --- energies ---------------------------------------------------------------------------------
    def _stats(self, v: torch.Tensor) -> torch.Tensor:
        """``[vW + b | v·a₀ | v·a]`` in float64, ``(R, m + 2)``: all that ``log p̃_β(v)`` needs, for any β."""
        return torch.addmm(self._bx, v.to(device=self.device, dtype=torch.float64), self._Wx)

    def _log_p(self, stats: torch.Tensor, beta: float) -> torch.Tensor:
        field, lin0, lin = stats[:, :-2], stats[:, -2], stats[:, -1]
        x = beta * field
        part = torch.logaddexp(x, -x if self._rbm.units == "spin" else self._zero)  # Σ_{h_j} e^{h_j x}
        return (1.0 - beta) * lin0 + beta * lin + part.sum(1)

    def log_unnormalised(self, v, beta: float) -> torch.Tensor:
        """``log p̃_β(v)`` (nats, float64) of a batch of visible rows; equals
        :func:`~snrbench.core.tempered.log_unnormalised_visible`, computed in torch on the device."""
        return self._log_p(self._stats(torch.as_tensor(v)), float(beta))

    # --- rounds -----------------------------------------------------------------------------------
    def reset_stats(self) -> None:
        """Zero the swap counts and the round trips (trips under way are dropped, not counted later)."""
        K, R = self.n_rungs, self.n_chains
        self._accepted = torch.zeros(K - 1, device=self.device, dtype=torch.float64)
        self._attempted = np.zeros(K - 1, dtype=np.int64)
        self._accepted_chain = torch.zeros(K - 1, R, device=self.device, dtype=torch.float64)
        self._trips = torch.zeros((), device=self.device, dtype=torch.int64)
        # per (ladder, replica): 0 = not yet at rung 0, +1 = left rung 0, −1 = then reached rung K−1
        self._label = torch.zeros(R, K, device=self.device, dtype=torch.int8)
        self._mark_ends()

    def _mark_ends(self) -> None:
        cold, hot = self._replica[0], self._replica[-1]
        self._trips += (self._label[self._cols, cold] == -1).sum()
        self._label[self._cols, cold] = 1
        lab = self._label[self._cols, hot]
        self._label[self._cols, hot] = torch.where(lab == 1, -lab, lab)

    def step(self, n_sweeps: int = 1) -> None:
        """One round: ``n_sweeps`` sweeps on every rung, then one swap round (even pairs on even rounds, odd
        pairs on odd ones). Checks the kernels first on every ``check_every``-th round (rounds 0, check_every, …)."""
        n_sweeps = int(n_sweeps)
        if n_sweeps < 0:
            raise ValueError(f"n_sweeps must be ≥ 0, got {n_sweeps}")
        if self.rounds % self.check_every == 0:
            self.check_kernels()
        for sampler in self.samplers:
            sampler.run(n_sweeps)
        self.sweeps += n_sweeps * self.n_rungs * self.n_chains
        self._swap_round(self.rounds % 2)
        self.rounds += 1

    def _swap_round(self, first: int) -> None:
        R, rep = self.n_chains, self._replica
        for k in range(first, self.n_rungs - 1, 2):
            lo, hi = self.samplers[k], self.samplers[k + 1]
            x_lo, x_hi = lo.v, hi.v
            s_lo, s_hi = self._stats(x_lo), self._stats(x_hi)
            b_lo, b_hi = self._betas[k], self._betas[k + 1]
            delta = (self._log_p(s_hi, b_lo) + self._log_p(s_lo, b_hi)
                     - self._log_p(s_lo, b_lo) - self._log_p(s_hi, b_hi))
            u = torch.rand(R, generator=self._gen, device=self.device, dtype=torch.float64)
            acc = torch.log(u) < delta
            self._accepted[k] += acc.sum()
            self._attempted[k] += R
            self._accepted_chain[k] += acc
            lo.exchange(hi, acc)
            rep[k], rep[k + 1] = torch.where(acc, rep[k + 1], rep[k]), torch.where(acc, rep[k], rep[k + 1])
        self._mark_ends()

    def cold_states(self) -> torch.Tensor:
        """The β = 1 rung's visible states, ``(R, n)``, after :meth:`check_kernels`."""
        self.check_kernels()
        return self.samplers[0].v

    def adapt(self, n_rounds: int, n_sweeps: int = 1, window: int = 10, gain: float = 0.7,
              callback=None) -> Adaptation:
        """Run ``n_rounds`` rounds, updating the interior betas after each complete ``window`` of rounds
        towards equal swap acceptance (module docstring); leftover rounds run at the final ladder.

        After each update the changed rungs are rebuilt from ``tempered(rbm, β_k, a0)`` with their
        states kept, and :meth:`check_kernels` runs. ``callback()`` is called after every round.
        Returns (and keeps as :attr:`adaptation`) the ladder and acceptance history.
        """
        if int(window) < 2 or int(window) % 2:
            raise ValueError(f"window must be an even number ≥ 2 (both pair parities), got {window}")
        if int(n_rounds) < 0 or not gain > 0:
            raise ValueError(f"need n_rounds ≥ 0 and gain > 0, got {n_rounds} and {gain}")
        betas, acceptance = [self.betas], []
        for r in range(int(n_rounds)):
            if r % window == 0:
                accepted, attempted = self._accepted.clone(), self._attempted.copy()
            self.step(n_sweeps)
            if callback is not None:
                callback()
            if (r + 1) % window == 0:
                acceptance.append((self._accepted - accepted).cpu().numpy() / (self._attempted - attempted))
                self._set_betas(_equalised(self._betas, acceptance[-1], gain))
                betas.append(self.betas)
        self.adaptation = Adaptation(np.array(betas), np.array(acceptance).reshape(-1, self.n_rungs - 1))
        return self.adaptation


def equilibrate(rbm: RBM, a0, n_chains: int, n_rungs: int = 16, beta_min: float = 0.1, adapt_rounds: int = 200,
                rounds: int = 500, sweeps_per_round: int = 1, seed: int = 0, device="cpu", dtype=torch.float32,
                progress: bool = False, adapt_window: int = 10, v0=None) -> tuple[torch.Tensor, PTReport]:
    """Equilibrate ``n_chains`` chains of ``rbm`` by parallel tempering; returns ``(states, report)``.

    Initial ladder geometric, ``β_k = beta_min^{k/(K−1)}``, or linear ``β_k = 1 − k/(K−1)`` when
    ``beta_min = 0`` (the hottest rung is then the base-rate model itself, whose blocked-Gibbs sweep
    draws an exact independent sample: a perfect reservoir); ``adapt_rounds`` rounds of
    :meth:`ParallelTempering.adapt`, statistics reset, then ``rounds`` production rounds of
    ``sweeps_per_round`` sweeps each. ``states``: the β = 1 rung's visible states ``(n_chains, n)``
    (kernels checked); the report's acceptance and round trips cover the production rounds only.
    ``v0``: initial states as in :class:`ParallelTempering` (default uniform).
    """
    if not 0.0 <= beta_min < 1.0:
        raise ValueError(f"beta_min must lie in [0, 1), got {beta_min}")
    if int(n_rungs) < 2 or int(rounds) < 0:
        raise ValueError(f"need n_rungs ≥ 2 and rounds ≥ 0, got {n_rungs} and {rounds}")
    from tqdm.auto import tqdm

    k = np.arange(n_rungs) / (n_rungs - 1)
    betas = beta_min ** k if beta_min > 0 else 1.0 - k
    pt = ParallelTempering(rbm, a0, betas, n_chains, device, dtype, seed, v0=v0)
    with tqdm(total=int(adapt_rounds) + int(rounds), disable=not progress, desc="parallel tempering") as bar:
        pt.adapt(adapt_rounds, sweeps_per_round, window=adapt_window, callback=bar.update)
        pt.reset_stats()
        for r in range(int(rounds)):
            if r == int(rounds) // 2:
                midway = pt.cold_states()
            pt.step(sweeps_per_round)
            bar.update()
    if int(rounds) < 2:
        midway = None  # no production to look halfway into
    report = PTReport(pt.betas, pt.swap_acceptance, pt.round_trips, int(rounds), int(adapt_rounds), pt.sweeps, midway,
                      pt.swap_acceptance_q10)
    return pt.cold_states(), report
