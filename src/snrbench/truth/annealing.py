"""Population annealing (PA) along a training trajectory: log Z, equilibrium states and a health check.

Sequential Monte Carlo with resampling (Hukushima & Iba 2003; Machta, PRE 2010; Wang, Machta &
Katzgraber, PRE 2015), run along the path of :mod:`snrbench.truth.trajectory` instead of a
temperature: position ``p ∈ [0, J]``, ``p = 0`` the base-rate model (``W = 0``, ``a = a₀``, ``b = 0``:
its blocked-Gibbs sweep is an exact sample and ``log Z₀`` is exact), ``p = j + 1`` the j-th model
of ``models``, ``θ(p) = (1 − s)θ_i + sθ_{i+1}`` between (``s = p − i``). The method is independent of
replica exchange: no swap, no ladder, no two-group check.

**Step** ``p → p'``. Each of the ``P`` particles (visible states ``v``, normalised weights ``w``) is
reweighted by ``u(v) = exp(F_p(v) − F_{p'}(v))``, ``F_p(v) = −log p̃_p(v)`` the free energy (nats,
float64; the product ``vᵀW`` in the chains' dtype); ``log Ẑ`` gains ``log Σ_i w_i u_i`` (a
log-sum-exp); when ``ESS/P = 1/(P Σ w²)`` falls below ``resample_below`` the population is resampled
systematically (ancestor indices kept), and every particle then takes ``sweeps_per_step``
blocked-Gibbs sweeps of ``θ(p')``, which leave ``p_{p'}`` invariant. ``E[Ẑ] = Z``; ``E[log Ẑ] ≤ log Z``.

**Steps placed where the law moves.** ``p'`` is the largest position in the current segment whose
conditional ESS ``(Σ w u)² / Σ w u²`` (Zhou, Johansen & Aston 2016; in ``(0, 1]``) is at least
``cess_target`` (bisection; the fields are linear in ``s`` inside a segment, so each trial costs
``O(P·m)``), so steps are dense exactly where the incremental weights spread. A fixed ``schedule``
(positions) can be given instead — that is how a too-coarse run is built in the tests.

**Stations.** At every integer position (each model of ``models``) the population takes
``station_sweeps`` sweeps of that model, and the run records a :class:`Station`: ``log Ẑ``, the
ESS/P there, the smallest ESS/P any step reached (before its resampling) since the last station,
and an equally weighted copy of the population (a systematic resample that the run does not keep,
so stations add no resampling to the run): its states, its number of surviving families (distinct
initial ancestors) and their effective number ``1/Σ_f (n_f/P)²`` (n_f the family sizes; Wang,
Machta & Katzgraber's ``P/ρ_t``).

**Health** (:func:`health`): a station is *certified* when its effective families reach
``families_floor`` and the smallest step ESS/P since the previous station reaches ``ess_floor``. Too few
particles fail the first (the genealogy collapses onto a handful of ancestors), too coarse steps the
second (one particle carries the weight). Several independent runs give ``log Z``'s error
(:func:`combine`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..core.model import RBM
from ..core.sampler import BlockGibbs
from ..core.tempered import log_partition_base
from .trajectory import base_rate_model, interpolate

__all__ = ["Station", "Snapshot", "AnnealingRun", "anneal_trajectory", "systematic_resample", "health", "combine",
           "FAMILIES_FLOOR", "ESS_FLOOR"]

#: Default floor on the effective number of families ``1/Σ (n_f/P)²`` for a certified station.
FAMILIES_FLOOR = 100.0
#: Default floor on the smallest step ESS/P (before resampling) for a certified station.
ESS_FLOOR = 0.1


@dataclass(frozen=True, eq=False)
class Station:
    """The population at one model of the trajectory (module docstring). ``log_z`` in nats; ``ess``
    and ``min_ess`` as fractions of P; ``families`` distinct ancestors; ``eff_families`` =
    ``1/Σ (n_f/P)²``; ``steps`` annealing steps from the previous station; ``sweeps`` chain-sweeps
    from the start of the run; ``states`` ``(P, n)`` float64, equally weighted."""

    position: int
    log_z: float
    ess: float
    min_ess: float
    families: int
    eff_families: float
    steps: int
    sweeps: int
    states: np.ndarray


@dataclass(frozen=True, eq=False)
class Snapshot:
    """Everything a run needs to go on after its last station: the stations so far, the population
    ``v`` ``(P, n)`` float64 with its log-weights ``logw`` and initial ancestors, ``log Ẑ`` (nats)
    and the chain-sweeps spent. Passed to ``on_station`` and taken back by ``resume``."""

    stations: list[Station]
    v: np.ndarray
    logw: np.ndarray
    ancestors: np.ndarray
    log_z: float
    sweeps: int


@dataclass(frozen=True, eq=False)
class AnnealingRun:
    """One population-annealing run: a :class:`Station` per model, the chain-sweeps spent, P."""

    stations: list[Station]
    sweeps: int
    n_particles: int


def systematic_resample(w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices ``(P,)`` of systematic resampling of the normalised weights ``w``: one uniform ``u``,
    particle i is copied once for every point ``(k + u)/P`` in its slice of the cumulative weights.
    Each index is kept ``⌊P w_i⌋`` or ``⌈P w_i⌉`` times (unbiased, the least resampling noise)."""
    P = len(w)
    c = np.cumsum(w)
    c[-1] = 1.0
    return np.searchsorted(c, (np.arange(P) + rng.random()) / P, side="right").clip(0, P - 1)


def _ess(logw: np.ndarray) -> float:
    """``ESS/P = (Σ e^{lw})² / (P Σ e^{2lw})`` of log-weights, in float64 (log-sum-exp)."""
    r = np.exp(logw - logw.max())
    return float(r.sum() ** 2 / (r @ r) / len(r))


def _families(ancestors: np.ndarray) -> tuple[int, float]:
    counts = np.bincount(ancestors)
    frac = counts[counts > 0] / len(ancestors)
    return int((counts > 0).sum()), float(1.0 / (frac @ frac))


class _Segment:
    """``−F(v; s)`` for ``θ(s) = (1 − s)θ_lo + sθ_hi`` at many ``s`` from one pair of products:
    the hidden field is ``(1 − s)(vW_lo + b_lo) + s(vW_hi + b_hi)`` and the linear term likewise."""

    def __init__(self, lo: RBM, hi: RBM, v: torch.Tensor, dtype):
        f64 = dict(device=v.device, dtype=torch.float64)
        W = torch.tensor(np.hstack([lo.W, hi.W]), device=v.device, dtype=dtype)
        x = (v.to(dtype) @ W).double() + torch.tensor(np.concatenate([lo.b, hi.b]), **f64)
        m = lo.W.shape[1]
        self.x_lo, self.x_hi = x[:, :m], x[:, m:]
        vd = v.double()
        self.l_lo, self.l_hi = vd @ torch.tensor(lo.a, **f64), vd @ torch.tensor(hi.a, **f64)
        self.spin = lo.units == "spin"

    def log_p(self, s: float) -> np.ndarray:
        """``log p̃_s(v)`` (nats, float64) of every particle."""
        x = (1.0 - s) * self.x_lo + s * self.x_hi
        part = torch.logaddexp(x, -x) if self.spin else torch.nn.functional.softplus(x)
        return ((1.0 - s) * self.l_lo + s * self.l_hi + part.sum(1)).cpu().numpy()


def _next_s(seg: _Segment, s: float, logw: np.ndarray, cess_target: float, min_ds: float) -> tuple[float, np.ndarray]:
    """Largest ``s' ∈ (s, 1]`` with conditional ESS ≥ ``cess_target`` (bisection, at least ``min_ds``
    forward), and the log incremental weights ``log u`` there."""
    w = np.exp(logw - logw.max())
    w /= w.sum()
    base = seg.log_p(s)

    def cess(t):
        lu = seg.log_p(t) - base
        r = np.exp(lu - lu.max())
        return float((w @ r) ** 2 / (w @ (r * r))), lu

    c, lu = cess(1.0)
    if c >= cess_target:
        return 1.0, lu
    lo, hi = s, 1.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if cess(mid)[0] >= cess_target:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-3 * (hi - s):
            break
    t = min(1.0, max(lo, s + min_ds))
    return t, cess(t)[1]


def anneal_trajectory(models: list[RBM], a0, n_particles: int, cess_target: float = 0.9,
                      resample_below: float = 0.5, sweeps_per_step: int = 1, station_sweeps: int = 4,
                      schedule=None, max_steps: int = 100_000, seed: int = 0, device="cpu", dtype=torch.float32,
                      progress: bool = False, on_station=None, resume: Snapshot | None = None) -> AnnealingRun:
    """Population annealing of ``n_particles`` from exact samples of the base-rate model with visible
    bias ``a0`` through ``models`` (RBMs of one shape and units, in training order); see the module
    docstring. ``schedule``: positions in ``(0, J]`` to step through instead of adaptive steps (each
    integer position must be present). ``seed`` seeds the samplers and the resampling, one stream per
    segment between stations. ``on_station(snapshot)`` is called after every station with a
    :class:`Snapshot`; ``resume`` (such a snapshot, same arguments otherwise) goes on after its last
    station and gives the same run, bit for bit, as one never stopped. Returns an
    :class:`AnnealingRun` with one :class:`Station` per model."""
    from tqdm.auto import tqdm

    if not models or not all(isinstance(r, RBM) for r in models):
        raise ValueError("anneal_trajectory needs a non-empty list of snrbench.RBM models")
    shape, units = models[0].W.shape, models[0].units
    if any(r.W.shape != shape or r.units != units for r in models):
        raise ValueError("every model of the trajectory must have the same shape and units")
    a0 = np.asarray(a0, dtype=np.float64)
    if a0.shape != (shape[0],) or not np.all(np.isfinite(a0)):
        raise ValueError(f"a0 must be a finite array of shape ({shape[0]},), got shape {a0.shape}")
    P, J = int(n_particles), len(models)
    if P < 2 or not 0 < cess_target < 1 or not 0 <= resample_below <= 1:
        raise ValueError(f"need n_particles ≥ 2, 0 < cess_target < 1, 0 ≤ resample_below ≤ 1; got {P}, "
                         f"{cess_target}, {resample_below}")
    if schedule is not None:
        schedule = np.asarray(schedule, dtype=np.float64)
        if (schedule.ndim != 1 or not np.all(np.diff(schedule) > 0) or schedule[0] <= 0 or schedule[-1] != J
                or not set(range(1, J + 1)) <= set(schedule.tolist())):
            raise ValueError(f"schedule must increase strictly in (0, {J}] and hold every integer 1 … {J}")
    path = [base_rate_model(models[0], a0)] + list(models)
    seeds = np.random.SeedSequence(int(seed)).spawn(J + 1)  # [0]: the start; [i + 1]: segment i
    if resume is None:
        rng = np.random.default_rng(seeds[0])
        v0 = (rng.random((P, shape[0])) < 1.0 / (1.0 + np.exp(-(2 if units == "spin" else 1) * a0))) * 1.0
        v = 2.0 * v0 - 1.0 if units == "spin" else v0
        logw, ancestors = np.zeros(P), np.arange(P)
        log_z, sweeps, stations = log_partition_base(a0, shape[1], units), 0, []
    else:
        stations = list(resume.stations)
        if not 0 < len(stations) <= J or resume.v.shape != (P, shape[0]) or resume.logw.shape != (P,):
            raise ValueError(f"resume: a snapshot after 1 … {J} stations of {P} particles of {shape[0]} units, "
                             f"got {len(stations)} stations and states of shape {resume.v.shape}")
        v, logw, ancestors = resume.v, resume.logw.copy(), resume.ancestors.copy()
        log_z, sweeps = resume.log_z, resume.sweeps
    bar = tqdm(total=J, initial=len(stations), desc="population annealing", unit="model", disable=not progress)
    for i in range(len(stations), J):
        # every segment draws from its own stream, so a run resumed at a station is the same run
        rng = np.random.default_rng(seeds[i + 1])
        gibbs = BlockGibbs(path[i], P, device, dtype, int(seeds[i + 1].generate_state(1)[0]), v)
        lo, hi = path[i], path[i + 1]
        s, steps, min_ess = 0.0, 0, 1.0
        while s < 1.0:
            seg = _Segment(lo, hi, gibbs.v, dtype)
            if schedule is None:
                t, lu = _next_s(seg, s, logw, cess_target, min_ds=1.0 / max_steps)
            else:
                t = float(schedule[np.searchsorted(schedule, i + s, side="right")] - i)
                lu = seg.log_p(t) - seg.log_p(s)
            w = np.exp(logw - logw.max())
            w /= w.sum()
            top = lu.max()
            log_z += top + np.log(w @ np.exp(lu - top))
            logw = logw + lu
            s, steps = t, steps + 1
            ess = _ess(logw)
            min_ess = min(min_ess, ess)
            if ess < resample_below:
                w = np.exp(logw - logw.max())
                idx = systematic_resample(w / w.sum(), rng)
                gibbs.set_state(gibbs.v[torch.as_tensor(idx, device=gibbs.v.device)])
                ancestors, logw = ancestors[idx], np.zeros(P)
            gibbs.set_model(interpolate(lo, hi, s))
            n = station_sweeps if s == 1.0 else sweeps_per_step
            gibbs.run(n)
            sweeps += n * P
        # the station's equal-weight population: a systematic resample that the run itself does not keep
        w = np.exp(logw - logw.max())
        idx = systematic_resample(w / w.sum(), rng)
        fam, eff = _families(ancestors[idx])
        v = gibbs.v.cpu().numpy().astype(np.float64)
        stations.append(Station(i + 1, float(log_z), ess, min_ess, fam, eff, steps, sweeps, v[idx]))
        if on_station is not None:
            on_station(Snapshot(list(stations), v, logw.copy(), ancestors.copy(), float(log_z), sweeps))
        bar.update()
    bar.close()
    return AnnealingRun(stations, sweeps, P)


def health(station: Station, families_floor: float = FAMILIES_FLOOR, ess_floor: float = ESS_FLOOR) -> tuple[bool, str]:
    """``(certified, reason)`` of one station: effective families ≥ ``families_floor`` and the smallest
    step ESS/P since the previous station ≥ ``ess_floor`` (module docstring); ``reason`` names each
    floor missed with the measured value ("" when certified)."""
    why = []
    if not station.eff_families >= families_floor:
        why.append(f"effective families {station.eff_families:.1f} < {families_floor:g}")
    if not station.min_ess >= ess_floor:
        why.append(f"step ESS/P {station.min_ess:.3g} < {ess_floor:g}")
    return not why, "; ".join(why)


def combine(log_zs) -> tuple[float, float]:
    """``(log Z, error)`` in nats from independent runs' ``log Ẑ_r``: ``log mean_r Ẑ_r`` (a log-sum-exp;
    the estimate of the pooled population) and the standard error ``sd_r(log Ẑ_r)/√r``."""
    x = np.asarray(log_zs, dtype=np.float64)
    if x.ndim != 1 or x.size < 2:
        raise ValueError(f"combine needs the log Z of at least 2 independent runs, got {x.size}")
    top = x.max()
    return float(top + np.log(np.mean(np.exp(x - top)))), float(x.std(ddof=1) / np.sqrt(x.size))
