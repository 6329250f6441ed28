"""Parallel trajectory tempering (PTT): replica exchange between models along a training run.

Béreux, Decelle, Furtlehner, Rosset & Seoane, ICLR 2025 (arXiv:2405.15376). Where temperature
tempering flattens one model, PTT lets the chains of a late checkpoint borrow the mixing of earlier,
smoother models of the same run: the rungs ``θ_0, θ_1, …, θ_{K−1}`` are RBMs along the trajectory
(rung 0 the base-rate model, whose blocked-Gibbs sweep is an exact independent sample; the top rung
the checkpoint itself), ``R`` independent ladders, one :class:`~snrbench.core.sampler.BlockGibbs`
of R chains per rung.

**Round.** Every rung runs ``n_sweeps`` sweeps; then the even pairs (0,1), (2,3), … on even rounds and
the odd pairs on odd rounds exchange the visible states of chain c with probability ``min(1, e^Δ)``::

    Δ = [F_k(x_k) − F_k(x_{k+1})] + [F_{k+1}(x_{k+1}) − F_{k+1}(x_k)]

with ``F_k(v) = −log p̃_k(v) = −a_kᵀv − Σ_j log Σ_{h_j} e^{h_j (W_kᵀv + b_k)_j}`` the free energy of rung k
(nats, float64). Each exchange keeps ``Π_k p_k`` invariant, so every rung samples its own model.

**Rungs** (:func:`place_rungs`): models on the piecewise-linear path through the checkpoints,
``θ(s) = (1 − s) θ_i + s θ_{i+1}``, spaced equally in the thermodynamic length that the measured swap
acceptance gives (:func:`pair_distance`), so neighbours accept about the target. Intermediate rungs
are no checkpoint: only the top rung must be.

**Diagnostics**: per-pair acceptance, round trips (a replica that has been at rung 0 reaches the top
rung and comes back), and the integrated autocorrelation time of each ladder's replica index at
the top rung (in rounds: how long the top rung's state takes to be replaced by one from below).

**Stale kernels**: :meth:`TrajectoryTempering.check_kernels` compares each rung's sampler with the
rung's model (the one its swaps use) and raises :class:`~snrbench.truth.tempering.StaleKernelError`;
it runs at construction, after every change of the rungs, every ``check_every`` rounds and in
:meth:`~TrajectoryTempering.states`.
"""
from __future__ import annotations

import json

from dataclasses import dataclass

import numpy as np
import torch

from ..core.autocorr import integrated_time
from ..core.model import RBM
from ..core.sampler import BlockGibbs
from .tempering import KERNEL_RTOL, StaleKernelError, chain_quantile

__all__ = ["TrajectoryTempering", "PTTReport", "interpolate", "place_rungs", "ladder_at", "pair_distance", "equilibrate_trajectory", "base_rate_model"]


def base_rate_model(rbm: RBM, a0) -> RBM:
    """The rung-0 model of a trajectory: independent visible units with bias ``a0``, free hidden units."""
    n, m = rbm.W.shape
    return RBM(np.zeros((n, m)), np.asarray(a0, dtype=np.float64), np.zeros(m), rbm.units)


def interpolate(lo: RBM, hi: RBM, s: float) -> RBM:
    """``θ(s) = (1 − s) θ_lo + s θ_hi`` for W, a and b (``s`` in [0, 1]; s = 1 gives ``hi`` itself)."""
    if not 0.0 <= s <= 1.0:
        raise ValueError(f"interpolate: s must lie in [0, 1], got {s}")
    if s == 1.0:
        return hi
    if s == 0.0:
        return lo
    return RBM((1 - s) * lo.W + s * hi.W, (1 - s) * lo.a + s * hi.a, (1 - s) * lo.b + s * hi.b, hi.units)


@dataclass(frozen=True, eq=False)
class PTTReport:
    """Diagnostics of :func:`equilibrate_trajectory`: each rung's ``positions`` on the trajectory;
    ``swap_acceptance`` per pair, ``round_trips`` and ``replica_tau`` (integrated autocorrelation time
    of the top rung's replica index, rounds) over the ``rounds`` production rounds (after
    ``burn_in_rounds``); ``sweeps``: chain-sweeps over all rungs and all phases, the annealing pass
    included (the shared placement not); ``midway_states``: the top rung's states after ``rounds // 2`` production rounds
    (None when ``rounds < 2``); ``swap_acceptance_q10``, per pair the 10% quantile over ladders of each
    ladder's acceptance."""

    positions: np.ndarray
    swap_acceptance: np.ndarray
    round_trips: int
    rounds: int
    burn_in_rounds: int
    replica_tau: float
    sweeps: int
    midway_states: torch.Tensor | None
    swap_acceptance_q10: np.ndarray | None = None


class TrajectoryTempering:
    """PTT of ``n_chains`` ladders over the rung models ``rungs`` (see the module docstring).

    ``rungs``: RBMs of one shape and units, rung 0 first; ``seed``: numpy ``SeedSequence`` root (one
    child per rung sampler, one for the swap decisions); ``v0``: initial states ``(R, n)`` for every
    rung or ``(K, R, n)``, default uniform.
    """

    def __init__(self, rungs: list[RBM], n_chains: int, device="cpu", dtype=torch.float32, seed: int = 0,
                 v0=None, check_every: int = 50):
        if len(rungs) < 2 or not all(isinstance(r, RBM) for r in rungs):
            raise ValueError("TrajectoryTempering needs a list of at least 2 snrbench.RBM rungs")
        shape, units = rungs[0].W.shape, rungs[0].units
        if any(r.W.shape != shape or r.units != units for r in rungs):
            raise ValueError("every rung must have the same shape and units")
        if dtype not in KERNEL_RTOL:
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.n_chains, self.device, self.dtype, self.check_every = int(n_chains), torch.device(device), dtype, int(check_every)
        self._root = np.random.SeedSequence(int(seed))
        self._gen = torch.Generator(device=self.device).manual_seed(int(self._root.spawn(1)[0].generate_state(1)[0]))
        self.rungs: list[RBM] = []
        self.samplers: list[BlockGibbs] = []
        self._cache: dict = {}
        K = len(rungs)
        if v0 is not None and np.ndim(v0) == 2:
            v0 = [v0] * K
        for k, rbm in enumerate(rungs):
            self._append(rbm, None if v0 is None else v0[k], len(self.rungs))
        self.rounds, self.sweeps = 0, 0
        self._replica = torch.arange(K, device=self.device)[:, None].repeat(1, self.n_chains)
        self.reset_stats()
        self.check_kernels()

    @property
    def n_rungs(self) -> int:
        return len(self.rungs)

    def _append(self, rbm: RBM, v0, at: int) -> None:
        seed = int(self._root.spawn(1)[0].generate_state(1)[0])
        self.rungs.insert(at, rbm)
        self.samplers.insert(at, BlockGibbs(rbm, self.n_chains, self.device, self.dtype, seed, v0))

    def insert(self, at: int, rbm: RBM) -> None:
        """Insert rung ``rbm`` at index ``at`` (1 ≤ at < K), its chains starting from the states of
        rung ``at − 1``; statistics are reset (replica ids renumbered by rung)."""
        if not 1 <= at < self.n_rungs:
            raise ValueError(f"insert: at must lie in [1, {self.n_rungs - 1}], got {at}")
        self._append(rbm, self.samplers[at - 1].v, at)
        self._replica = torch.arange(self.n_rungs, device=self.device)[:, None].repeat(1, self.n_chains)
        self.reset_stats()
        self.check_kernels()

    def check_kernels(self) -> None:
        """Raise StaleKernelError if a rung's sampler does not sample the rung's model."""
        for k, (sampler, rbm) in enumerate(zip(self.samplers, self.rungs)):
            tol = KERNEL_RTOL[self.dtype] * max(1.0, float(np.abs(rbm.W).max()), float(np.abs(rbm.a).max()),
                                                float(np.abs(rbm.b).max()))
            gap = sampler.kernel_mismatch(rbm)
            if not gap <= tol:
                raise StaleKernelError(f"trajectory rung {k}: its sampler's weights differ from the rung's model by "
                                       f"{gap:.3g} > tol {tol:.3g} — a kernel built from stale weights")

    def _params(self, rbm: RBM) -> tuple:
        """``(W, a, b)`` of ``rbm`` on the device: W in the samplers' dtype, a and b in float64 (cached
        per model object)."""
        hit = self._cache.get(id(rbm))
        if hit is None or hit[0] is not rbm:
            f64 = dict(device=self.device, dtype=torch.float64)
            hit = self._cache[id(rbm)] = (rbm, torch.tensor(np.asarray(rbm.W), device=self.device, dtype=self.dtype),
                                          *(torch.tensor(np.asarray(x), **f64) for x in (rbm.a, rbm.b)))
        return hit[1:]

    def free_energy(self, k: int, v) -> torch.Tensor:
        """``F_k(v) = −log p̃_k(v)`` (nats, float64) of a batch of visible rows under rung k.

        The product ``vᵀW`` is taken in the samplers' dtype, the precision the chains themselves move
        in (float32: ≲ 1e-6 relative per hidden unit, checked in the tests to stay within 1e-3 nats of
        float64 on MNIST-sized rungs); the field, the ``log Σ_h`` terms and the sums are float64.
        """
        W, a, b = self._params(self.rungs[k])
        v = torch.as_tensor(v).to(device=self.device)
        x = (v.to(self.dtype) @ W).double() + b
        part = torch.logaddexp(x, -x) if self.rungs[k].units == "spin" else torch.nn.functional.softplus(x)
        return -(v.double() @ a) - part.sum(1)

    def reset_stats(self) -> None:
        """Zero the swap counts, the round trips and the replica-index record."""
        K, R = self.n_rungs, self.n_chains
        self._accepted = np.zeros(K - 1)
        self._attempted = np.zeros(K - 1, dtype=np.int64)
        self._accepted_chain = torch.zeros(K - 1, R, device=self.device, dtype=torch.float64)
        self._trips = 0
        self._label = torch.zeros(R, K, device=self.device, dtype=torch.int8)
        self._top: list[np.ndarray] = []
        self._mark_ends()

    def _mark_ends(self) -> None:
        cols = torch.arange(self.n_chains, device=self.device)
        cold, hot = self._replica[0], self._replica[-1]
        self._trips += int((self._label[cols, cold] == -1).sum())
        self._label[cols, cold] = 1
        lab = self._label[cols, hot]
        self._label[cols, hot] = torch.where(lab == 1, -lab, lab)
        self._top.append(self._replica[-1].cpu().numpy().copy())

    @property
    def swap_acceptance(self) -> np.ndarray:
        """Acceptance of each adjacent pair since the last reset, ``(K − 1,)`` (nan: no attempt)."""
        att = self._attempted
        return np.where(att > 0, self._accepted / np.maximum(att, 1), np.nan)

    @property
    def swap_acceptance_q10(self) -> np.ndarray:
        """10% quantile over ladders of each ladder's acceptance per pair (:func:`~snrbench.truth.tempering.chain_quantile`)."""
        return chain_quantile(self._accepted_chain.cpu().numpy(), self._attempted)

    @property
    def round_trips(self) -> int:
        return self._trips

    def replica_tau(self) -> float:
        """Integrated autocorrelation time (rounds) of the replica id at the top rung, over ladders."""
        x = np.array(self._top, dtype=np.float64).T  # (R, rounds + 1)
        if x.shape[1] < 4 or not np.any(x.std(axis=1) > 0):
            return float("inf")
        x = x[x.std(axis=1) > 0]
        return float(integrated_time(x, quiet=True))

    def step(self, n_sweeps: int = 1) -> None:
        """One round: ``n_sweeps`` sweeps on every rung, then one swap round."""
        if self.rounds % self.check_every == 0:
            self.check_kernels()
        for s in self.samplers:
            s.run(int(n_sweeps))
        self.sweeps += int(n_sweeps) * self.n_rungs * self.n_chains
        rep = self._replica
        for k in range(self.rounds % 2, self.n_rungs - 1, 2):
            lo, hi = self.samplers[k], self.samplers[k + 1]
            both = torch.cat([lo.v, hi.v])
            f_lo, f_hi = self.free_energy(k, both).view(2, -1), self.free_energy(k + 1, both).view(2, -1)
            delta = f_lo[0] - f_lo[1] + f_hi[1] - f_hi[0]
            u = torch.rand(self.n_chains, generator=self._gen, device=self.device, dtype=torch.float64)
            acc = torch.log(u) < delta
            self._accepted[k] += float(acc.sum())
            self._attempted[k] += self.n_chains
            self._accepted_chain[k] += acc
            lo.exchange(hi, acc)
            rep[k], rep[k + 1] = torch.where(acc, rep[k + 1], rep[k]), torch.where(acc, rep[k], rep[k + 1])
        self._mark_ends()
        self.rounds += 1

    def state_dict(self) -> dict[str, np.ndarray]:
        """The ladders' whole state between rounds as numpy copies (every rung's sampler, the swap
        generator, the replica ids, the counts and the replica record): with :meth:`load_state_dict`
        on a ladder built from the same rungs, chain count, device, dtype and seed, the run goes on
        bit for bit."""
        out = dict(rounds=np.array(self.rounds), sweeps=np.array(self.sweeps), gen=self._gen.get_state().numpy().copy(),
                   replica=self._replica.cpu().numpy().copy(), accepted=self._accepted.copy(),
                   attempted=self._attempted.copy(), accepted_chain=self._accepted_chain.cpu().numpy().copy(),
                   trips=np.array(self._trips), label=self._label.cpu().numpy().copy(), top=np.stack(self._top))
        for k, sampler in enumerate(self.samplers):
            out.update({f"rung{k}_{key}": x for key, x in sampler.state_dict().items()})
        return out

    def load_state_dict(self, state: dict) -> None:
        """Take back what :meth:`state_dict` gave (ValueError naming the key on a missing key, or one of
        another shape or dtype; the replica record may have any length)."""
        for k, want in self.state_dict().items():
            got = state.get(k)
            if k.startswith("rung"):
                continue  # each rung's sampler checks its own
            if got is None or (k != "top" and np.shape(got) != want.shape) or np.asarray(got).dtype != want.dtype:
                raise ValueError(f"trajectory tempering state: key {k!r} expected {want.dtype} of shape "
                                 f"{want.shape if k != 'top' else ('rounds',) + want.shape[1:]}, got "
                                 f"{'nothing' if got is None else f'{np.asarray(got).dtype} of shape {np.shape(got)}'}")
        for k, sampler in enumerate(self.samplers):
            sampler.load_state_dict({key.split("_", 1)[1]: x for key, x in state.items() if key.startswith(f"rung{k}_")})
        dev = dict(device=self.device)
        self.rounds, self.sweeps, self._trips = int(state["rounds"]), int(state["sweeps"]), int(state["trips"])
        self._gen.set_state(torch.as_tensor(np.asarray(state["gen"], dtype=np.uint8)))
        self._replica = torch.as_tensor(np.asarray(state["replica"]), **dev).clone()
        self._accepted, self._attempted = np.array(state["accepted"], dtype=np.float64), np.array(state["attempted"], dtype=np.int64)
        self._accepted_chain = torch.as_tensor(np.asarray(state["accepted_chain"]), **dev, dtype=torch.float64).clone()
        self._label = torch.as_tensor(np.asarray(state["label"]), **dev, dtype=torch.int8).clone()
        self._top = [row.copy() for row in np.asarray(state["top"])]

    def states(self, k: int = -1) -> torch.Tensor:
        """Rung k's visible states ``(R, n)`` (default: the top rung), after the kernel check."""
        self.check_kernels()
        return self.samplers[k].v


def _model_at(models: list[RBM], p: float) -> RBM:
    """The trajectory's model at position ``p``: segment ``i = ⌊p⌋``, ``θ(p) = interpolate(θ_i, θ_{i+1}, p − i)``."""
    i = min(int(np.floor(p)), len(models) - 2)
    return interpolate(models[i], models[i + 1], min(1.0, max(0.0, p - i)))


def ladder_at(models: list[RBM], positions) -> list[RBM]:
    """The rung models at ``positions`` on the trajectory ``models`` (base-rate model first): the ends
    are the first and last models themselves, the rest :func:`_model_at`, so a ladder that
    :func:`place_rungs` returned is rebuilt from its positions alone."""
    return [models[0]] + [_model_at(models, float(q)) for q in np.asarray(positions)[1:-1]] + [models[-1]]


def pair_distance(acceptance) -> np.ndarray:
    """Distance ``σ`` of neighbouring rungs from their swap acceptance, ``A = erfc(σ / 2√2)``.

    For a Gaussian ``Δ`` of mean ``−σ²/2`` and variance ``σ²`` (neighbours close on the trajectory)
    ``E[min(1, e^Δ)] = erfc(σ / 2√2)``, and ``σ`` (the thermodynamic length) adds along the trajectory,
    so rungs equally spaced in cumulative ``σ`` accept equally.
    """
    from scipy.special import erfcinv

    a = np.clip(np.nan_to_num(np.asarray(acceptance, dtype=np.float64), nan=1e-4), 1e-4, 1 - 1e-9)
    return 2.0 * np.sqrt(2.0) * erfcinv(a)


def place_rungs(checkpoints: list[RBM], a0, n_chains: int = 256, target: float = 0.3, rounds: int = 40,
                passes: int = 4, max_rungs: int = 128, seed: int = 0, device="cpu", dtype=torch.float32,
                progress: bool = False):
    """A PTT ladder from the base-rate model through ``checkpoints`` (in training order) to the last one.

    Positions ``p ∈ [0, J]`` on the trajectory (the base-rate model at 0, checkpoint j at j + 1,
    :func:`interpolate` between). Starts from every checkpoint as a rung; each pass runs ``rounds``
    rounds, turns the pairs' acceptance into distances (:func:`pair_distance`), and re-spaces the
    ladder to ``K = ⌈L / σ*⌉ + 1`` rungs (``L`` the summed distance, ``σ*`` the target's) equally spaced
    in cumulative distance, piecewise linear between the measured rungs; every new rung starts from the
    states of the old rung nearest to it. Stops when every pair accepts at least ``target − 0.05``, or
    after ``passes`` passes. The top rung is always the last checkpoint itself. Returns
    ``(ptt, positions)``: the sampler, its chains run in, its statistics those of the last pass.
    """
    from tqdm.auto import tqdm

    if not 0.0 < target < 1.0:
        raise ValueError(f"place_rungs: target must lie in (0, 1), got {target}")
    models = [base_rate_model(checkpoints[0], a0)] + list(checkpoints)
    positions = np.arange(len(models), dtype=np.float64)
    ptt = TrajectoryTempering(models, n_chains, device, dtype, seed)
    sigma_target = float(pair_distance([target])[0])
    for p in tqdm(range(int(passes)), desc="placing PTT rungs", disable=not progress, unit="pass"):
        ptt.reset_stats()
        for _ in range(int(rounds)):
            ptt.step()
        acc = ptt.swap_acceptance
        if np.nanmin(acc) >= target - 0.05 or p == int(passes) - 1:
            break
        length = np.concatenate([[0.0], np.cumsum(pair_distance(acc))])
        K = int(min(max_rungs, max(2, np.ceil(length[-1] / sigma_target) + 1)))
        new = np.interp(np.linspace(0.0, length[-1], K), length, positions)
        new[0], new[-1] = 0.0, positions[-1]
        rungs = ladder_at(models, new)
        nearest = np.abs(positions[None, :] - new[:, None]).argmin(1)
        v0 = torch.stack([ptt.samplers[int(j)].v for j in nearest]).cpu().numpy()
        ptt = TrajectoryTempering(rungs, n_chains, device, dtype, seed + p + 1, v0=v0)
        positions = new
    return ptt, positions


def equilibrate_trajectory(rungs: list[RBM], positions, n_chains: int, burn_in_rounds: int = 100, rounds: int = 400,
                           sweeps_per_round: int = 1, seed: int = 0, device="cpu", dtype=torch.float32,
                           progress: bool = False, v0=None, anneal_sweeps: int = 0, resume: dict | None = None,
                           keep=None, keep_every: int = 200) -> tuple[torch.Tensor, PTTReport]:
    """Equilibrate ``n_chains`` chains of ``rungs[-1]`` by PTT over the ladder ``rungs`` (from
    :func:`place_rungs`); returns ``(states, report)``.

    Every rung starts at ``v0`` (``(R, n)``, default uniform) or, with ``anneal_sweeps > 0``, rung 0
    at ``v0`` and each rung k > 0 at the states of rung k − 1 after ``anneal_sweeps`` sweeps of rung
    k − 1 (an annealing pass up the trajectory); then ``burn_in_rounds`` rounds, statistics reset,
    and ``rounds`` production rounds of ``sweeps_per_round`` sweeps each. ``states``: the top rung's
    visible states ``(R, n)`` (kernels checked).

    Resumable inside the run: ``keep(state)`` is called after every ``keep_every``-th round with the
    ladders' :meth:`TrajectoryTempering.state_dict` plus ``done`` (rounds run, burn-in included),
    ``settings`` (this call's arguments as JSON) and, once taken, ``midway``; the same call with
    ``resume=state`` goes on from there, bit for bit the run that was not stopped. A state whose
    settings are not this call's, or whose arrays do not fit, is refused (ValueError naming why).
    """
    from tqdm.auto import tqdm

    if int(rounds) < 0 or int(burn_in_rounds) < 0 or int(anneal_sweeps) < 0:
        raise ValueError(f"need rounds, burn_in_rounds, anneal_sweeps ≥ 0, got {rounds}, {burn_in_rounds}, "
                         f"{anneal_sweeps}")
    if int(anneal_sweeps) > 0 and resume is None:
        v0, start = [], v0
        for k, rbm in enumerate(rungs):
            v0.append(start)
            walker = BlockGibbs(rbm, n_chains, device, dtype, int(seed) * 7919 + k, start)
            walker.run(int(anneal_sweeps))
            start = walker.v.cpu().numpy()
    ptt = TrajectoryTempering(list(rungs), n_chains, device, dtype, seed, v0=None if resume is not None else v0)
    burn, total, done, midway = int(burn_in_rounds), int(burn_in_rounds) + int(rounds), 0, None
    settings = json.dumps(dict(rungs=len(rungs), positions=[float(q) for q in np.asarray(positions)], chains=int(n_chains),
                               burn_in_rounds=burn, rounds=int(rounds), sweeps_per_round=int(sweeps_per_round),
                               seed=int(seed), anneal_sweeps=int(anneal_sweeps), dtype=str(dtype),
                               device=torch.device(device).type), sort_keys=True)
    if resume is not None:
        kept = str(np.asarray(resume.get("settings", "")))
        if kept != settings:
            raise ValueError(f"resume: the kept state is another run's (kept {kept or 'no settings'}; this run "
                             f"{settings})")
        ptt.load_state_dict(resume)
        done = int(resume["done"])
        if not 0 < done < total:
            raise ValueError(f"resume: the kept state says {done} rounds were run, outside 1 … {total - 1}")
        midway = torch.as_tensor(np.asarray(resume["midway"]), device=ptt.device) if "midway" in resume else None
    with tqdm(total=total, initial=done, disable=not progress, desc="trajectory tempering") as bar:
        for i in range(done, total):
            if i == burn:
                ptt.reset_stats()
            if i - burn == int(rounds) // 2 and int(rounds) >= 2:
                midway = ptt.states().clone()
            ptt.step(sweeps_per_round)
            bar.update()
            if keep is not None and (i + 1) % int(keep_every) == 0 and i + 1 < total:
                keep(dict(ptt.state_dict(), done=np.array(i + 1), settings=np.array(settings),
                          **({} if midway is None else dict(midway=midway.cpu().numpy()))))
    if int(rounds) == 0:
        ptt.reset_stats()  # the statistics are those of the production rounds: none
    report = PTTReport(np.asarray(positions, dtype=np.float64), ptt.swap_acceptance, ptt.round_trips, int(rounds),
                       int(burn_in_rounds), ptt.replica_tau(),
                       ptt.sweeps + int(anneal_sweeps) * len(rungs) * int(n_chains), midway, ptt.swap_acceptance_q10)
    return ptt.states(), report
