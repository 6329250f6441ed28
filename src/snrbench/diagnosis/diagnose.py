"""``diagnose(model, data)``: will this model's sampled gradient survive, and what does a step cost?

For each model (one, or every saved update of a training archive) the answer holds
* ``Q(T)`` at C = 1 on ``T = 2^0 … t_max`` sweeps (:mod:`.curve`: exact, or Monte Carlo with a CI
  and the equilibration verdict);
* ``T*(1)``, the sweeps one chain needs for ``Q ≥ 1`` (:func:`snrbench.core.spectral.t_star`);
* the cheapest ``(C, k)`` with ``C·Q(k) ≥ target`` in chain-sweeps and in seconds here (:mod:`.recommend`);
* the slow modes (τ, weight) that carry the variance, and warnings;
* with the training's own (chains, k): ``Q_train = C·Q(k)``; along an archive, the forecast plateau
  onset (:func:`snrbench.truth.onset.onset_index`: the first update with ``Q_train < 1`` after one ≥ 1).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..core import spectral
from ..truth.onset import log10_q_train, onset_index
from .curve import Curve, entry_curve, q_curve_of
from .inputs import InputError, NamedModel, read_data, read_models
from .recommend import MAX_CHAINS, Plan, cheapest, plans, sweep_seconds

__all__ = ["diagnose", "Diagnosis", "ModelDiagnosis"]

_OBSERVABLES = ("weights", "weights+biases")


@dataclass(frozen=True)
class ModelDiagnosis:
    """The diagnosis of one model (see the module docstring); ``plans`` lists every grid k that reaches
    the target within the chain cap, ``best`` and ``fastest`` the cheapest in chain-sweeps and in seconds."""

    label: str
    update: int | None
    n_visible: int
    n_hidden: int
    units: str
    model_sha256: str
    curve: Curve
    t_star_1: float
    plans: tuple[Plan, ...]
    best: Plan | None
    fastest: Plan | None
    log10_q_train: float | None
    warnings: tuple[str, ...]
    seconds: float


@dataclass(frozen=True)
class Diagnosis:
    """What :func:`diagnose` returns: one :class:`ModelDiagnosis` per model, the settings, and for a
    training archive the forecast plateau onset (``onset_update``; None: no onset among the updates)."""

    models: tuple[ModelDiagnosis, ...]
    target: float
    observables: str
    train_chains: int | None
    train_k: int | None
    onset_update: int | None
    device: str
    seconds: float
    settings: dict = field(default_factory=dict)

    def to_frame(self):
        """One row per (model, T): ``label``, ``update``, ``T`` (sweeps), ``log10_q`` with ``ci_low``/``ci_high``
        (C = 1), ``method``; units and descriptions in ``DataFrame.attrs``."""
        import pandas as pd

        rows = []
        for d in self.models:
            for t, q, lo, hi in zip(d.curve.T, d.curve.log10_q, d.curve.ci_low, d.curve.ci_high):
                rows.append(dict(label=d.label, update=d.update, T=int(t), log10_q=float(q), ci_low=float(lo),
                                 ci_high=float(hi), method=d.curve.method))
        df = pd.DataFrame(rows)
        df.attrs["units"] = {"T": "sweeps", "log10_q": "dex (Q dimensionless)", "ci_low": "dex", "ci_high": "dex"}
        df.attrs["description"] = {"log10_q": "log10 Q(T, C = 1) = log10 ‖g‖²/Tr Cov[ĝ(T, 1)]",
                                   "ci_low": "95% interval, lower end", "ci_high": "95% interval, upper end"}
        return df

    def to_dict(self) -> dict:
        """Plain JSON-able dict of everything (curves included, NaN/∞ as null)."""
        return _jsonable(asdict(self))

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def _warnings(nm: NamedModel, curve: Curve, observables: str, best: Plan | None, target: float, max_chains: int) -> list[str]:
    out = list(curve.notes)
    rbm = nm.rbm
    if rbm.spin_flip_symmetric:
        out.append("spin-flip symmetric (spins, a = b = 0): p(v) = p(−v); the weights' observables are even and do "
                   "not see the slow flip mode" + (", but the biases' are odd and do" if observables != "weights" else ""))
    if not math.isfinite(curve.grad_norm2) or curve.grad_norm2 <= 0:
        out.append("‖g‖² is not positive: the model already matches the data's correlations within the noise")
    if best is None:
        out.append(f"no (C, k) on the grid reaches Q_train ≥ {target:g} with at most {max_chains:,} chains")
    if curve.modes and curve.modes[0].tau > 4 * float(np.max(curve.T)):
        out.append(f"the slowest fitted mode (τ ≈ {curve.modes[0].tau:.3g} sweeps) is longer than the grid "
                   f"(T ≤ {int(np.max(curve.T))}); its τ is only a lower bound")
    return out


def diagnose(model, data, *, units: str | None = None, updates=None, observables: str = "weights",
             t_max: int = 1024, target: float = 1.0, max_chains: int = MAX_CHAINS, exact: str | bool = "auto",
             n_replicates: int = 512, tempering: dict | None = None, train_chains: int | None = None,
             train_k: int | None = None, seed: int = 0, device: str = "cpu", timing: bool = True,
             progress: bool = False, starts: str = "auto", entry: str | None = None,
             budget: int | None = None) -> Diagnosis:
    """Diagnose ``model`` against its training ``data`` (paths or objects; :mod:`.inputs`).

    ``t_max``: largest window (sweeps; a power of 2); ``target``: the Q_train to reach; ``exact``:
    ``"auto"``, ``True`` or ``False`` (:func:`~.curve.q_curve_of`); ``n_replicates``: Monte Carlo
    chains; ``train_chains``/``train_k``: the training's (C, k), read from an rbms archive's
    hyperparameters when not given; ``timing``: measure seconds per sweep on ``device``; ``starts``:
    the Monte Carlo chains' starts (``"auto"``, ``"exact"``, ``"tempering"``); ``entry``: a
    leaderboard entry (built-in name or ``PATH.py``) whose forecast at ``budget`` chain-sweeps
    (default the ladder's full rung) replaces the measured curve: cheaper, and as trustworthy as the
    entry's record on the leaderboard."""
    t0 = time.perf_counter()
    if observables not in _OBSERVABLES:
        raise InputError(f"observables must be one of {_OBSERVABLES}, got {observables!r}")
    if not (isinstance(t_max, int) and t_max >= 1 and t_max & (t_max - 1) == 0):
        raise InputError(f"t_max must be a power of 2 (sweeps), got {t_max!r}")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise InputError("device 'cuda' asked for, but torch sees no CUDA device")
    models = read_models(model, units=units, updates=updates)
    if (train_chains is None or train_k is None) and isinstance(model, (str, Path)):
        c, k = _archive_training(Path(model))
        train_chains, train_k = train_chains or c, train_k or k
    T = 2 ** np.arange(int(math.log2(t_max)) + 1, dtype=np.int64)
    shapes = {(m.rbm.n_visible, m.rbm.units) for m in models}
    n_visible, u = models[0].rbm.n_visible, models[0].rbm.units
    if len(shapes) > 1:
        raise InputError(f"{model}: the saved models differ in visible size or units: {sorted(shapes)}")
    x = read_data(data, n_visible, u)
    out = []
    for nm in models:
        s0 = time.perf_counter()
        if entry is not None:
            from ..predict import BUDGET

            curve = entry_curve(entry, nm.rbm, x, T, observables, budget or BUDGET, seed)
        else:
            curve = q_curve_of(nm.rbm, x, T, observables, exact_path=exact, n_replicates=n_replicates, seed=seed,
                               device=device, progress=progress, tempering=tempering, starts=starts)
        signal = (curve.grad_norm2 > 0 if math.isfinite(curve.grad_norm2)  # an entry may not report ‖g‖²
                  else bool(np.all(np.isfinite(curve.log10_q))))
        opts = plans(T, curve.ci_low, target, max_chains) if signal else []  # no measured signal: no plan
        timer = sweep_seconds(nm.rbm, [p.chains for p in opts], device=device) if timing and opts else None
        if timer is not None:
            opts = plans(T, curve.ci_low, target, max_chains, seconds=timer)
        best = cheapest(opts)
        fastest = cheapest(opts, "seconds") if timer is not None else None
        lq_train = None
        if train_chains and train_k:  # no measured signal (‖g‖² ≤ 0): Q_train = 0, below any target
            lq_train = log10_q_train(T, curve.log10_q, train_chains, train_k) if signal else -math.inf
        out.append(ModelDiagnosis(
            label=nm.label, update=nm.update, n_visible=nm.rbm.n_visible, n_hidden=nm.rbm.n_hidden,
            units=nm.rbm.units, model_sha256=nm.rbm.sha256, curve=curve,
            t_star_1=spectral.t_star(curve.log10_q, T, 1.0), plans=tuple(opts), best=best, fastest=fastest,
            log10_q_train=lq_train, warnings=tuple(_warnings(nm, curve, observables, best, target, max_chains)),
            seconds=time.perf_counter() - s0))
    onset = None
    if len(out) > 1 and all(d.log10_q_train is not None for d in out) and all(d.update is not None for d in out):
        i = onset_index([d.log10_q_train for d in out])
        onset = None if i < 0 else out[i].update
    settings = dict(t_max=t_max, max_chains=max_chains, exact=exact, starts=starts, entry=entry, budget=budget, n_replicates=n_replicates, seed=seed,
                    tempering=tempering or {})
    return Diagnosis(models=tuple(out), target=float(target), observables=observables, train_chains=train_chains,
                     train_k=train_k, onset_update=onset, device=device, seconds=time.perf_counter() - t0,
                     settings=settings)


def _archive_training(path: Path) -> tuple[int | None, int | None]:
    """``(num_chains, gibbs_steps)`` from an rbms archive's ``hyperparameters`` group, if any."""
    if path.suffix.lower() not in (".h5", ".hdf5", ".hdf"):
        return None, None
    import h5py

    with h5py.File(path, "r") as fh:
        hp = fh.get("hyperparameters")
        if hp is None:
            return None, None
        get = lambda k: int(hp[k][()]) if k in hp else None  # noqa: E731
        return get("num_chains"), get("gibbs_steps")
