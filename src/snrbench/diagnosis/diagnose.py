"""``diagnose(model, data)``: will this model's sampled gradient survive, and what does a step cost?

For each model (one, or every saved update of a training archive) the answer holds
* ``Q(T)`` at C = 1 on ``T = 2^0 … t_max`` sweeps (:mod:`.curve`: exact, or Monte Carlo with a CI
  and the equilibration verdict);
* ``T*(1)``, the sweeps one chain needs for ``Q ≥ 1`` (:func:`snrbench.core.spectral.t_star`);
* the cheapest ``(C, k)`` with ``C·Q(k) ≥ target`` in chain-sweeps and in seconds here (:mod:`.recommend`);
* the slow modes (τ, weight) that carry the variance, and warnings;
* with the training's own (chains, k): ``Q_train = C·Q(k)``; along an archive, the forecast plateau
  onset (the first update with ``Q_train < 1`` after one ≥ 1; none when ``Q_train`` never reached 1);
* the one-sentence :mod:`.verdict` that opens the report.

Three speeds (``speed=``): ``"quick"``, a leaderboard entry's forecast at a small budget
(:data:`QUICK_ENTRY` at :data:`QUICK_BUDGET` chain-sweeps), labelled as a forecast; ``"standard"``,
Monte Carlo from one equilibrium start generator (:mod:`.starts`); ``"certified"``, two independent
start generators whose curves must agree (:func:`.curve.compare_curves`). Before the long stages a
timing probe (:mod:`.estimate`) gives the total; over ``max_minutes`` the run is refused up front
(:class:`OverBudget`, naming the cheaper speed), and a run that still overruns stops between stages
and returns what it has (``stopped``).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ..core import spectral
from ..truth.onset import log10_q_train
from ..core.observables import mean_gradient_observables
from ..truth.mc_scale import compare_states
from .curve import (Agreement, Curve, compare_curves, curve_from_starts, entry_curve, exact_by_default,
                    q_curve_of)
from .estimate import fmt_seconds, probe, stages
from .inputs import InputError, NamedModel, read_data, read_models
from .recommend import MAX_CHAINS, Plan, cheapest, plans, sweep_seconds
from .starts import STARTS, generators_for
from .verdict import onset_status, verdict

__all__ = ["diagnose", "Diagnosis", "ModelDiagnosis", "OverBudget", "SPEEDS", "QUICK_ENTRY", "QUICK_BUDGET"]

#: The speeds of :func:`diagnose`, cheapest first.
SPEEDS = ("quick", "standard", "certified")
#: The entry behind ``speed="quick"``: on the mnist families at 2^16 chain-sweeps it tracks 65% of the
#: cells within a factor 2 at every T (median max error 0.117 dex; at 2^18, 77% and 0.069 dex, but a
#: 784 × 500 model then took 76 CPU seconds; leaderboard/data/scores.csv).
QUICK_ENTRY = "multimode"
#: Chain-sweeps the quick forecast may spend (2^16 = 64 chains × 1,024 sweeps, the ladder's lowest rung).
QUICK_BUDGET = 2**16
#: Tempering rounds of the standard speed (certified: the suite's 100 + 400). The four-z check guards
#: it: too few rounds show as a failed check. On the shipped 784 × 64 example 150 rounds gave only
#: 18 and 16 round trips over the 256 ladders of each group (400 gave 614 and 565; a 784 × 500 model:
#: 0 and 2), yet the check passed (|z| ≤ 2.3) and the curve is within 0.03 dex of the certified one
#: at every T: the states move without whole round trips.
STANDARD_TEMPERING = dict(adapt_rounds=50, rounds=150)


class OverBudget(RuntimeError):
    """The estimated time of a diagnosis exceeds ``max_minutes``; the message gives the estimate and
    the cheaper speed."""

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
    agreement: Agreement | None = None
    second: Curve | None = None


@dataclass(frozen=True)
class Diagnosis:
    """What :func:`diagnose` returns: the ``verdict`` sentence, one :class:`ModelDiagnosis` per model
    finished (``n_models`` were asked for; ``stopped`` says why the rest were not), the settings, the
    ``estimate`` made before the run (``[stage, seconds]``), and for a training archive the forecast
    plateau: ``onset_status`` (``"onset"``, ``"no onset"``, ``"never reached 1"``) and ``onset_update``."""

    verdict: str
    speed: str
    models: tuple[ModelDiagnosis, ...]
    n_models: int
    target: float
    observables: str
    train_chains: int | None
    train_k: int | None
    onset_status: str | None
    onset_update: int | None
    device: str
    seconds: float
    stopped: str | None = None
    estimate: tuple = ()
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


def _warnings(nm: NamedModel, curve: Curve, observables: str, best: Plan | None, target: float, max_chains: int,
              trusted: bool = True) -> list[str]:
    out = list(curve.notes)
    rbm = nm.rbm
    if rbm.spin_flip_symmetric:
        out.append("spin-flip symmetric (spins, a = b = 0): p(v) = p(−v); the weights' observables are even and do "
                   "not see the slow flip mode" + (", but the biases' are odd and do" if observables != "weights" else ""))
    if not math.isfinite(curve.grad_norm2) or curve.grad_norm2 <= 0:
        out.append("‖g‖² is not positive: the model already matches the data's correlations within the noise")
    if best is None and trusted:  # an untrusted curve gets no plan by rule, not for want of one
        out.append(f"no (C, k) on the grid reaches Q_train ≥ {target:g} with at most {max_chains:,} chains")
    if curve.modes and curve.modes[0].tau > 4 * float(np.max(curve.T)):
        out.append(f"the slowest fitted mode (τ ≈ {curve.modes[0].tau:.3g} sweeps) is longer than the grid "
                   f"(T ≤ {int(np.max(curve.T))}); its τ is only a lower bound")
    return out


def _announce(progress: bool):
    import sys

    return (lambda msg: print(msg, file=sys.stderr, flush=True)) if progress else (lambda msg: None)


def _plan_of(nm: NamedModel, curve: Curve, T, target, max_chains, timing, device, train_chains, train_k):
    signal = (curve.grad_norm2 > 0 if math.isfinite(curve.grad_norm2)  # an entry may not report ‖g‖²
              else bool(np.all(np.isfinite(curve.log10_q))))
    trusted = curve.equilibrated is not False
    opts = plans(T, curve.ci_low, target, max_chains) if signal and trusted else []  # no signal or no trust: no plan
    timer = sweep_seconds(nm.rbm, [p.chains for p in opts], device=device) if timing and opts else None
    if timer is not None:
        opts = plans(T, curve.ci_low, target, max_chains, seconds=timer)
    lq_train = None
    if train_chains and train_k:  # no measured signal (‖g‖² ≤ 0): Q_train = 0, below any target
        lq_train = log10_q_train(T, curve.log10_q, train_chains, train_k) if signal else -math.inf
    return opts, cheapest(opts), (cheapest(opts, "seconds") if timer is not None else None), lq_train


def diagnose(model, data, *, speed: str = "standard", units: str | None = None, updates=None,
             observables: str = "weights", t_max: int = 1024, target: float = 1.0, max_chains: int = MAX_CHAINS,
             exact: str | bool = "auto", n_replicates: int = 512, tempering: dict | None = None,
             train_chains: int | None = None, train_k: int | None = None, seed: int = 0, device: str = "cpu",
             timing: bool = True, progress: bool = False, starts: str = "auto", entry: str | None = None,
             budget: int | None = None, max_minutes: float | None = None, threads: int | None = 1) -> Diagnosis:
    """Diagnose ``model`` against its training ``data`` (paths or objects; :mod:`.inputs`).

    ``speed``: ``"quick"``, ``"standard"`` or ``"certified"`` (module docstring); ``t_max``: largest
    window (sweeps; a power of 2); ``target``: the Q_train to reach; ``exact``: ``"auto"``, ``True``
    or ``False`` (:func:`~.curve.q_curve_of`); ``n_replicates``: Monte Carlo chains; ``tempering``:
    ``n_rungs``/``rounds``/``adapt_rounds`` of the tempering starts (standard speed default
    :data:`STANDARD_TEMPERING`, certified 100 + 400); ``train_chains``/``train_k``: the training's (C, k),
    read from an rbms archive's hyperparameters when not given; ``timing``: measure seconds per sweep
    on ``device``; ``starts``: the standard speed's start generator (``"auto"`` or a name in
    :data:`~.starts.STARTS`); ``entry``/``budget``: the quick speed's leaderboard entry (built-in name
    or ``PATH.py``) and chain-sweeps (defaults :data:`QUICK_ENTRY`, :data:`QUICK_BUDGET`; an entry
    given with another speed makes it quick); ``max_minutes``: refuse up front when the estimate is
    longer, and stop between stages when the run overruns (None: no limit); ``progress``: stage lines
    and progress bars on stderr; ``threads``: torch's intra-op threads while it runs (default 1: on a
    shared 2-core machine two threads made a tempering round of a 784 × 64 model 13× slower; None
    leaves torch's setting)."""
    import torch

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        return _diagnose(model, data, speed, units, updates, observables, t_max, target, max_chains, exact,
                         n_replicates, tempering, train_chains, train_k, seed, device, timing, progress, starts,
                         entry, budget, max_minutes)
    finally:
        torch.set_num_threads(before)


def _diagnose(model, data, speed, units, updates, observables, t_max, target, max_chains, exact, n_replicates,
              tempering, train_chains, train_k, seed, device, timing, progress, starts, entry, budget,
              max_minutes) -> Diagnosis:
    t0 = time.perf_counter()
    say = _announce(progress)
    if entry is not None:
        speed = "quick"
    if speed not in SPEEDS:
        raise InputError(f"speed must be one of {SPEEDS}, got {speed!r}")
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
    if speed == "quick":
        entry, budget = entry or QUICK_ENTRY, budget or QUICK_BUDGET
    rbm0 = models[0].rbm
    exact_route = speed != "quick" and (exact is True or (exact == "auto" and exact_by_default(rbm0)))
    gens = () if speed == "quick" or exact_route else (
        generators_for(rbm0, speed == "certified") if starts == "auto" or speed == "certified" else (starts,))
    if any(g not in STARTS for g in gens):
        raise InputError(f"starts must be 'auto' or one of {sorted(STARTS)}, got {starts!r}")
    pt = (STANDARD_TEMPERING if speed == "standard" else {}) | dict(tempering or {})
    pt_rounds = pt.get("adapt_rounds", 100) + pt.get("rounds", 400)

    plan, est = [], ()
    if not exact_route:
        say(f"timing probe on {rbm0.n_visible} × {rbm0.n_hidden} ({n_replicates} chains) …")
        pr = probe(rbm0, x, chains=n_replicates, rungs=pt.get("n_rungs", 16), device=device,
                   tempering=any(g != "exact" for g in gens), monte_carlo=bool(gens))
        per_model = stages(pr, gens, t_max, pt_rounds, timing, budget if speed == "quick" else None)
        plan = [(f"{nm.label}: {name}", sec) for nm in models for name, sec in per_model]
        total = sum(sec for _, sec in plan)
        quick = sum(sec for _, sec in stages(pr, (), t_max, pt_rounds, timing, QUICK_BUDGET)) * len(models)
        std = STANDARD_TEMPERING | dict(tempering or {})
        standard = sum(sec for _, sec in stages(pr, generators_for(rbm0, False), t_max,
                                                std["adapt_rounds"] + std["rounds"], timing)) * len(models)
        cheaper = ("" if speed == "quick" else
                   f"; the cheaper option: --speed quick (a forecast) ≈ {fmt_seconds(quick)}"
                   + (f", --speed standard ≈ {fmt_seconds(standard)}" if speed == "certified" else ""))
        msg = (f"estimated time at --speed {speed}: {fmt_seconds(total)} for {len(models)} model"
               f"{'s' if len(models) != 1 else ''} in {len(plan)} stages (from a {pr.seconds:.1f}-s timing probe on "
               f"this machine){cheaper}")
        est = tuple((name, float(sec)) for name, sec in plan)
        if max_minutes is not None and total > 60 * max_minutes:
            raise OverBudget(f"{msg}. That is over --max-minutes {max_minutes:g}: refused before starting. Run the "
                             "cheaper option, or raise --max-minutes (or pick fewer updates with --update).")
        say(msg)
    deadline = None if max_minutes is None else t0 + 60 * max_minutes
    stage_no, n_stages = [0], max(len(plan), 1)
    est_of = dict(plan)

    def stage(label: str, name: str) -> None:
        """Announce a stage; stop (raise _Stop) when it would end past the deadline."""
        sec = est_of.get(f"{label}: {name}", 0.0)
        if deadline is not None and time.perf_counter() + sec > deadline:
            raise _Stop(f"the next stage, {name} of {label}, would end past the limit")
        stage_no[0] += 1
        say(f"stage {stage_no[0]} of {n_stages}: {label}: {name}" + (f" (about {fmt_seconds(sec)})" if sec else ""))

    path = models  # trajectory tempering runs along every saved update before the one diagnosed
    if "trajectory" in gens and updates is not None and isinstance(model, (str, Path)):
        path = read_models(model, units=units)
    out, stopped = [], None
    for nm in models:
        s0 = time.perf_counter()
        agreement, second = None, None
        try:
            if speed == "quick":
                stage(nm.label, "forecast by the entry")
                curve = entry_curve(entry, nm.rbm, x, T, observables, budget, seed)
            elif exact_route:
                curve = q_curve_of(nm.rbm, x, T, observables, exact_path=exact, seed=seed)
            else:
                data_mean = mean_gradient_observables(nm.rbm, x, observables)
                curves, sets = [], []
                for g in gens:
                    settings = pt if g == "tempering" else (
                        {"rounds": pt["rounds"]} if "rounds" in pt and g == "trajectory" else {})
                    if g == "trajectory":
                        settings = settings | {"earlier": [m.rbm for m in path if m.update is not None
                                                           and nm.update is not None and m.update < nm.update]}
                    stage(nm.label, f"starts: {g}")
                    got = STARTS[g](nm.rbm, x, n_replicates, seed, device, progress, settings)
                    sets.append(got.states)
                    stage(nm.label, f"Monte Carlo sweeps ({g} starts)")
                    curves.append(curve_from_starts(nm.rbm, data_mean, got, T, observables, seed=seed, device=device,
                                                    progress=progress))
                curve = curves[0]
                if len(curves) == 2:
                    both = compare_states(nm.rbm, data_mean, *sets, observables)
                    agreement, second = compare_curves(curves[0], curves[1], tuple(gens), both), curves[1]
            if timing:
                stage(nm.label, "timing sweeps for the plans")
        except _Stop as why:
            stopped = str(why)
            break
        if agreement is not None and not agreement.agree:
            curve = replace(curve, equilibrated=curve.equilibrated, notes=curve.notes + (agreement.sentence(),))
        opts, best, fastest, lq_train = _plan_of(nm, curve, T, target, max_chains,
                                                  timing and (agreement is None or agreement.agree), device,
                                                  train_chains, train_k)
        if agreement is not None and not agreement.agree:
            opts, best, fastest = [], None, None
        out.append(ModelDiagnosis(
            label=nm.label, update=nm.update, n_visible=nm.rbm.n_visible, n_hidden=nm.rbm.n_hidden,
            units=nm.rbm.units, model_sha256=nm.rbm.sha256, curve=curve,
            t_star_1=spectral.t_star(curve.log10_q, T, 1.0), plans=tuple(opts), best=best, fastest=fastest,
            log10_q_train=lq_train, warnings=tuple(_warnings(nm, curve, observables, best, target, max_chains,
                                                             curve.equilibrated is not False and
                                                             (agreement is None or agreement.agree))),
            seconds=time.perf_counter() - s0, agreement=agreement, second=second))
    status, onset = None, None
    if len(out) > 1 and all(d.log10_q_train is not None for d in out) and all(d.update is not None for d in out):
        status, i = onset_status([d.log10_q_train for d in out])
        onset = None if i is None else out[i].update
    settings = dict(speed=speed, t_max=t_max, max_chains=max_chains, exact=exact, starts=starts, generators=list(gens),
                    entry=entry, budget=budget, n_replicates=n_replicates, seed=seed, tempering=tempering or {},
                    max_minutes=max_minutes)
    diag = Diagnosis(verdict="", speed=speed, models=tuple(out), n_models=len(models), target=float(target),
                     observables=observables, train_chains=train_chains, train_k=train_k, onset_status=status,
                     onset_update=onset, device=device, seconds=time.perf_counter() - t0, stopped=stopped,
                     estimate=est, settings=settings)
    return replace(diag, verdict=verdict(diag))


class _Stop(Exception):
    """Raised between stages when the next one would end past ``max_minutes``."""


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
