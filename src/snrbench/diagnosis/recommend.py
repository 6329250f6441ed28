"""From a Q(T) curve to a sampling plan: the cheapest (chains C, sweeps per gradient k) with
``Q_train = C · Q(k) ≥ q``.

``Q(T, C) = C · Q(T, 1)``: C independent persistent chains, each read as a k-sweep window mean, divide
the noise variance by C. For each k on the grid the fewest chains are ``C(k) = ⌈q / Q(k)⌉``, with
Q taken at the lower end of its 95% interval (a Monte Carlo curve's optimism must not buy too few
chains); the cost of one gradient is ``C·k`` chain-sweeps and ``k · s(C)`` seconds, ``s(C)`` the
measured time of one blocked-Gibbs sweep of C chains on this machine (:func:`sweep_seconds`). The
chains are assumed to be in equilibrium already (persistent chains; no burn-in is counted).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from ..core.model import RBM
from ..core.sampler import BlockGibbs

__all__ = ["Plan", "plans", "cheapest", "sweep_seconds", "MAX_CHAINS"]

#: Largest number of chains a plan may use (2^20).
MAX_CHAINS = 2**20
_MAX_TIMED = 2**12  # larger batches are not timed (time, memory); a sweep's cost is linear in C beyond this


@dataclass(frozen=True)
class Plan:
    """One (chains, sweeps) plan: ``chains`` C, ``sweeps`` k per gradient, ``chain_sweeps = C·k``,
    ``seconds`` per gradient on this machine (NaN when not timed), and ``log10_q_train = log10 C·Q(k)``
    at the lower CI of Q."""

    chains: int
    sweeps: int
    chain_sweeps: int
    seconds: float
    log10_q_train: float


def plans(T, log10_q_low, target: float = 1.0, max_chains: int = MAX_CHAINS, seconds=None) -> list[Plan]:
    """Every plan on the grid ``T`` that reaches ``target`` with at most ``max_chains`` chains.
    ``seconds``: a function ``C ↦`` seconds per sweep (None: not timed)."""
    if not target > 0:
        raise ValueError(f"target Q_train must be positive, got {target}")
    out = []
    for k, lq in zip(np.asarray(T, dtype=np.int64), np.asarray(log10_q_low, dtype=np.float64)):
        if not np.isfinite(lq):
            continue
        C = max(1, int(np.ceil(target / 10.0**lq * (1 - 1e-12))))
        if C > max_chains:
            continue
        s = float("nan") if seconds is None else float(k * seconds(C))
        out.append(Plan(C, int(k), int(C * k), s, float(np.log10(C) + lq)))
    return out


def cheapest(options: list[Plan], by: str = "chain_sweeps") -> Plan | None:
    """The plan with the least ``chain_sweeps`` (or ``seconds``); ties go to fewer chains."""
    if not options:
        return None
    return min(options, key=lambda p: (getattr(p, by), p.chains))


def sweep_seconds(rbm: RBM, chains, device: str = "cpu", repeats: int = 5, min_sweeps: int = 3):
    """Measured seconds per blocked-Gibbs sweep for each number of chains in ``chains`` (powers of 2
    up to 2^12 are timed, others interpolated in log–log, larger ones extrapolated linearly); returns a function ``C ↦ seconds``. Each size is the
    median over ``repeats`` runs of ``min_sweeps`` sweeps after one warm-up sweep."""
    wanted = sorted({int(c) for c in chains})
    if not wanted:
        return lambda C: float("nan")
    sizes = sorted({min(2 ** int(np.ceil(np.log2(max(c, 1)))), _MAX_TIMED) for c in wanted} | {1})
    measured = []
    for C in sizes:
        gibbs = BlockGibbs(rbm, C, device=device, seed=0)
        gibbs.sweep()
        runs = []
        for _ in range(repeats):
            if gibbs.device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(min_sweeps):
                gibbs.sweep()
            if gibbs.device.type == "cuda":
                torch.cuda.synchronize()
            runs.append((time.perf_counter() - t0) / min_sweeps)
        measured.append(float(np.median(runs)))
    lc, ls = np.log(sizes), np.log(measured)

    def seconds(C) -> float:
        if C > sizes[-1]:  # beyond the largest timed size: linear in C
            return measured[-1] * C / sizes[-1]
        return float(np.exp(np.interp(np.log(max(C, 1)), lc, ls)))

    return seconds
