"""Ground truth of one cell that is a trained checkpoint: Monte Carlo ``Q(T)`` from equilibrium starts.

* ``m ≤ 20`` (the anchor): ``‖g‖²`` exact by enumerating the hidden side (:mod:`snrbench.truth.hidden_enum`);
  the R replicate chains start from exact samples of p(v) (h ~ p(h), then v | h), so no burn-in;
  ``V = Σ_a Var_p f_a`` is also estimated from R further, independent exact samples — at T = 1 the
  chains' ``Tr Ĉ(1)`` must agree with it whatever the dynamics.
* ``m > 20`` (and any cell whose spec names a ``tempering`` method): replica exchange gives the R
  starting states, in two independent groups of R/2 ladders begun at opposite ends: every rung at
  random training images, or at exact samples of the base-rate model. ``method = "trajectory"``:
  parallel trajectory tempering along the training run up to this checkpoint
  (:mod:`snrbench.truth.trajectory`; rungs placed once, shared by both groups). ``method =
  "temperature"``: parallel tempering over the base-rate ↔ model family (:mod:`snrbench.truth.tempering`,
  ladder adapted to equal swap acceptance). Kernels are checked against each rung's model. ``‖g‖²``
  is the Monte Carlo estimate (exact still for m ≤ 20). :func:`~snrbench.truth.mc_scale.compare_states` compares the two groups' cold states (do they
  still remember where they began?) and every chain's state halfway through the production rounds
  with its final one (paired: do they still drift?); a cell with any |z| > 3.3 is stored with
  ``equilibrated = False`` and scoring leaves it out. Passing is necessary, not sufficient: a slow
  mode that neither group has reached within the budget goes unseen.

Then :func:`snrbench.truth.mc_scale.scale_q_curve` runs plain blocked Gibbs (the training's sampler) on
the grid ``2^0 … t_max`` with bootstrap CIs and the R̂/doubling flags.
"""
from __future__ import annotations

import json
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import torch

from .. import store
from ..core.observables import mean_gradient_observables
from ..core.tempered import base_rate_bias
from ..truth import hidden_enum
from ..truth.mc_scale import compare_states, independent_total_variance, scale_q_curve
from ..truth.tempering import equilibrate
from ..truth.trajectory import base_rate_model, equilibrate_trajectory, ladder_at, place_rungs
from .base import Cell

__all__ = ["solve_checkpoint_cell", "PRECISION"]

PRECISION = ("Monte Carlo, float32 chains, R replicates from exact samples (m ≤ 20) or parallel-tempering starts "
             "(trajectory or temperature; the tempering table names which), Gram-matrix bootstrap (400 resamples); "
             "‖g‖² exact for m ≤ 20")


_PT_KEYS = ("start", "method", "rung", "beta", "position", "swap_acceptance", "swap_acceptance_q10", "round_trips",
            "rounds", "sweeps", "replica_tau")


def _tempering_rows(method: str, start: str, acceptance, round_trips: int, rounds: int, sweeps: int,
                    beta=None, position=None, replica_tau: float = float("nan"), acceptance_q10=None) -> dict[str, list]:
    """Rows of the ``tempering`` table for one group of ladders (one row per rung)."""
    K = len(acceptance) + 1
    nan = [float("nan")] * K
    rows = dict(start=[start] * K, method=[method] * K, rung=list(range(K)),
                beta=nan if beta is None else list(map(float, beta)),
                position=nan if position is None else list(map(float, position)),
                swap_acceptance=np.append(acceptance, np.nan).tolist(),
                swap_acceptance_q10=np.append(np.full(K - 1, np.nan) if acceptance_q10 is None else acceptance_q10,
                                              np.nan).tolist(), round_trips=[int(round_trips)] * K,
                rounds=[int(rounds)] * K, sweeps=[int(sweeps)] * K, replica_tau=[float(replica_tau)] * K)
    return {k: rows[k] for k in _PT_KEYS}


def _extend(cols: dict, rows: dict) -> None:
    for key, val in rows.items():
        cols.setdefault(key, []).extend(val)


def _temperature_starts(family, spec, p, rbm, a0, groups, seed, device, progress):
    """Each group's β = 1 states and midway states by temperature PT (:func:`~snrbench.truth.tempering.equilibrate`),
    with the tempering settings ``p``."""
    states, midway, cols = [], [], {}
    for i, (name, v_init) in enumerate(groups.items()):
        v, report = equilibrate(rbm, a0, len(v_init), n_rungs=p["rungs"], beta_min=p["beta_min"],
                                adapt_rounds=p["adapt_rounds"], rounds=p["rounds"],
                                sweeps_per_round=p["sweeps_per_round"], seed=seed + i, device=device,
                                progress=progress, v0=v_init)
        states.append(v.cpu().numpy().astype(np.float64))
        midway.append(None if report.midway_states is None else report.midway_states.cpu().numpy().astype(np.float64))
        _extend(cols, _tempering_rows("temperature", name, report.swap_acceptance, report.round_trips, report.rounds,
                                      report.sweeps, beta=report.betas, acceptance_q10=report.swap_acceptance_q10))
    return states, midway, cols


def _kept(keep: Path | None, name: str) -> dict | None:
    """The arrays kept as ``keep/name.npz``; None without a folder or a file, and, with a warning naming
    the file, when it cannot be read (truncated, corrupt, not an archive): that part is computed again."""
    path = None if keep is None else keep / f"{name}.npz"
    if path is None or not path.exists():
        return None
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:  # closed even when np.load fails
            return {k: z[k] for k in z.files}
    except Exception as exc:  # noqa: BLE001 - BadZipFile, EOFError, OSError, ValueError…: all mean "not usable"
        warnings.warn(f"{path}: kept progress unreadable ({type(exc).__name__}: {exc}); computing that part again",
                      stacklevel=2)
        return None


def _keep(keep: Path | None, name: str, arrays: dict) -> None:
    """Write ``arrays`` to ``keep/name.npz`` atomically (nothing without a folder)."""
    if keep is None:
        return
    keep.mkdir(parents=True, exist_ok=True)

    def write(tmp):
        with open(tmp, "wb") as fh:  # a file object: np.savez would add ".npz" to a temporary name
            np.savez(fh, **arrays)

    store.atomic_write(keep / f"{name}.npz", write)


def _trajectory_starts(family, spec, p, rbm, a0, groups, seed, device, progress, keep: Path | None = None):
    """Each group's top-rung states and midway states by PTT along the training run up to this
    checkpoint (:mod:`snrbench.truth.trajectory`); one rung placement, shared by both groups, whose
    chain-sweeps are split evenly between the groups' ``sweeps``. The group begun at base-rate samples
    (exact at rung 0) is carried up the ladder by an annealing pass of ``anneal_sweeps`` per rung; the
    group begun at training images starts every rung there: two starts from opposite ends.

    Production rounds ``N = max(rounds, ⌈c·K²⌉)`` for a ladder of K rungs (``c =
    rounds_per_rung_squared``): a replica crosses K rungs by a random walk in about ``K²/A`` rounds at
    acceptance A, so longer ladders get proportionally longer runs; burn-in ``N // 4`` rounds.

    ``keep``: a folder where the run keeps its progress (the placed ladder's positions, each finished
    group, the group in progress every 200 rounds), so that the same call goes on after a stop, bit
    for bit the run that was not stopped."""
    states, midway, cols = [], [], {}
    checkpoints = [family.build_model(dict(spec, **c)) for c in spec["trajectory"]] + [rbm]
    placed = _kept(keep, "placement")
    if placed is None:
        ptt, positions = place_rungs(checkpoints, a0, n_chains=256, target=p["target"],
                                     rounds=p["placement_rounds"], seed=seed, device=device, progress=progress)
        rungs, placement_sweeps = ptt.rungs, ptt.sweeps
        _keep(keep, "placement", dict(positions=positions, sweeps=np.array(placement_sweeps)))
    else:
        positions, placement_sweeps = placed["positions"], int(placed["sweeps"])
        rungs = ladder_at([base_rate_model(checkpoints[0], a0)] + checkpoints, positions)
    rounds = max(p["rounds"], int(np.ceil(p["rounds_per_rung_squared"] * len(rungs)**2)))
    for i, (name, v_init) in enumerate(groups.items()):
        got = _kept(keep, f"group{i}")
        if got is None:
            run = partial(equilibrate_trajectory, rungs, positions, len(v_init), burn_in_rounds=rounds // 4,
                          rounds=rounds, sweeps_per_round=p["sweeps_per_round"], seed=seed + i + 1, device=device,
                          progress=progress, v0=v_init,
                          anneal_sweeps=p["anneal_sweeps"] if name == "base-rate samples" else 0,
                          keep=None if keep is None else (lambda st, i=i: _keep(keep, f"group{i}.part", st)))
            part = _kept(keep, f"group{i}.part")
            try:
                v, report = run(resume=part)
            except ValueError as exc:  # kept by another run, or damaged: begin the group again
                if part is None:
                    raise
                warnings.warn(f"{keep / f'group{i}.part.npz'}: {exc}; running group {i} from its start", stacklevel=2)
                v, report = run(resume=None)
            got = dict(states=v.cpu().numpy().astype(np.float64), acceptance=report.swap_acceptance,
                       round_trips=np.array(report.round_trips), rounds=np.array(report.rounds),
                       sweeps=np.array(report.sweeps), replica_tau=np.array(report.replica_tau),
                       acceptance_q10=report.swap_acceptance_q10,
                       **({} if report.midway_states is None else
                          dict(midway=report.midway_states.cpu().numpy().astype(np.float64))))
            _keep(keep, f"group{i}", got)
        states.append(got["states"])
        midway.append(got.get("midway"))
        _extend(cols, _tempering_rows("trajectory", name, got["acceptance"], int(got["round_trips"]), int(got["rounds"]),
                                      int(got["sweeps"]) + placement_sweeps // 2, position=positions,
                                      replica_tau=float(got["replica_tau"]), acceptance_q10=got["acceptance_q10"]))
    return states, midway, cols


def solve_checkpoint_cell(family, cell: Cell, device: str | None = None, progress: bool = False,
                          rounds_factor: int = 1, keep: Path | None = None) -> dict[str, dict]:
    """Columns of the ``mnist_truth`` and ``tempering`` tables for one cell of ``family`` (a
    :class:`~snrbench.families.mnist.Checkpoints` family). ``rounds_factor``: production rounds (and
    their burn-in) ``rounds_factor`` times those of the spec's recipe, the spec itself unchanged (a
    longer run of the same cell, :mod:`snrbench.jobs.longer_tempering`; the tempering table's
    ``rounds`` and the truth's ``start`` record it). ``keep``: a folder where a trajectory-tempering
    run keeps its progress and from which the same call resumes (:func:`_trajectory_starts`)."""
    spec, spec_json = cell.spec, cell.spec_json
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    rbm, data = family.build_model(spec), family.build_data(spec)
    obs, R, T = spec["observables"], spec["n_replicates"], family.t_grid(spec)
    seed = int(cell.cell_id[:8], 16) % 2**31
    rng = np.random.default_rng(seed)
    base = dict(suite=spec["suite"], family=spec["family"], cell_id=cell.cell_id, label=cell.label)
    data_mean = mean_gradient_observables(rbm, data, obs)
    exact = rbm.n_hidden <= hidden_enum.MAX_HIDDEN
    v0 = hidden_enum.sample_visible(rbm, R, rng) if spec["tempering"] is None else None
    g2_exact = hidden_enum.grad_norm2(rbm, data, obs) if exact else None
    V, V_se = (independent_total_variance(rbm, hidden_enum.sample_visible(rbm, R, rng), obs) if exact
               else (float("nan"), float("nan")))
    if v0 is not None:
        pt_cols, start, z, equilibrated = {k: [] for k in _PT_KEYS}, "exact", [float("nan")] * 4, True
    else:
        a0 = base_rate_bias(data)
        groups = {"training images": data[rng.choice(len(data), R // 2)],
                  "base-rate samples": (rng.random((R - R // 2, rbm.n_visible)) < 1 / (1 + np.exp(-a0))) * 1.0}
        method, p = spec["tempering"]["method"], dict(spec["tempering"])
        p.update({k: p[k] * rounds_factor for k in ("rounds", "rounds_per_rung_squared") if k in p})
        if method == "trajectory":
            states, midway, pt_cols = _trajectory_starts(family, spec, p, rbm, a0, groups, seed, device, progress, keep)
        else:
            states, midway, pt_cols = _temperature_starts(family, spec, p, rbm, a0, groups, seed, device, progress)
        v0 = np.vstack(states)
        groups = compare_states(rbm, data_mean, *states, obs)
        drift = (compare_states(rbm, data_mean, np.vstack(midway), v0, obs, paired=True)
                 if all(x is not None for x in midway) else None)  # no drift check without production rounds
        start = f"{method} tempering" + (f", {rounds_factor}× rounds" if rounds_factor != 1 else "")
        z = [groups.z_variance, groups.z_gradient] + ([drift.z_variance, drift.z_gradient] if drift else [np.nan] * 2)
        equilibrated = groups.agree and drift is not None and drift.agree
    curve = scale_q_curve(rbm, data_mean, v0, T, obs, seed=seed,
                          grad_norm2_exact=g2_exact, device=device, progress=progress)
    meta = json.loads(family.checkpoint_path(spec).with_suffix(".json").read_text())  # build_model checked the hashes
    nT = len(T)
    cols = {k: [v] * nT for k, v in base.items()}
    cols.update(
        n_visible=[rbm.n_visible] * nT, n_hidden=[rbm.n_hidden] * nT, update=[spec["update"]] * nT,
        seed=[spec["seed"]] * nT, T=T.tolist(), log10_q=curve.log10_q.tolist(), ci_low=curve.ci_low.tolist(),
        ci_high=curve.ci_high.tolist(), trace_cov=curve.trace_cov.tolist(), trace_cov_se=curve.trace_cov_se.tolist(),
        grad_norm2=[curve.grad_norm2_used] * nT,
        grad_norm2_method=["monte carlo" if g2_exact is None else "exact (hidden-side enumeration)"] * nT,
        grad_norm2_mc=[curve.grad_norm2_mc] * nT, grad_norm2_mc_low=[curve.grad_norm2_low] * nT,
        grad_norm2_mc_high=[curve.grad_norm2_high] * nT, total_variance_indep=[V] * nT,
        total_variance_indep_se=[V_se] * nT, n_replicates=[R] * nT, start=[start] * nT, rhat=[curve.rhat] * nT,
        tau_L=[curve.tau_L] * nT, tau_2L=[curve.tau_2L] * nT, thin=[curve.thin] * nT,
        doubling_ok=[curve.doubling_ok] * nT, flagged=[curve.flagged] * nT, start_z_variance=[z[0]] * nT,
        start_z_gradient=[z[1]] * nT, drift_z_variance=[z[2]] * nT, drift_z_gradient=[z[3]] * nT,
        equilibrated=[equilibrated] * nT, certified=[start == "exact"] * nT,
        certification=["exact starts (m ≤ 20)" if start == "exact"
                       else "tempered starts not yet checked by population annealing (`snrbench certify`)"] * nT,
        train_chains=[spec["train_chains"]] * nT,
        train_k=[spec["train_k"]] * nT, log_likelihood=[meta["log_likelihood"]] * nT,
        model_sha256=[rbm.sha256] * nT, spec_json=[spec_json] * nT,
    )
    tempering = {k: [v] * len(pt_cols["rung"]) for k, v in base.items()}
    tempering.update(pt_cols)
    return {"mnist_truth": cols, "tempering": tempering}
