"""Start generators: where the Monte Carlo chains of a diagnosis begin.

A start generator draws R states meant to follow the model's equilibrium law ``p(v)``; the
Monte Carlo curve (:func:`snrbench.truth.mc_scale.scale_q_curve`) is unbiased only from such
starts. Each generator is one function ``(rbm, data, R, seed, device, progress, settings) →``
:class:`StartSet` in :data:`STARTS`:

* ``"exact"``: exact samples of ``p(v)`` by enumerating the smaller side (≤ 20 units); nothing to check;
* ``"tempering"``: temperature parallel tempering over the base-rate ↔ model family
  (:func:`snrbench.truth.tempering.equilibrate`), two groups of R/2 begun at training images and at
  base-rate samples, with midway states for the drift check;
* ``"trajectory"``: parallel trajectory tempering (:mod:`snrbench.truth.trajectory`) along the
  path base-rate model → the earlier saved updates of a training archive → the model (the straight
  path base-rate → model when there are none), the same two groups.

A new generator (population annealing from the base-rate model, ``truth/annealing.py``, is the one
planned) plugs in as one more entry of :data:`STARTS` and is then usable by ``--speed certified``
and ``starts=``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.model import RBM
from ..core.tempered import base_rate_bias
from ..truth import hidden_enum

__all__ = ["StartSet", "STARTS", "ENUM_MAX", "enumerable", "generators_for"]

#: A side this small (units) is enumerated: exact samples and an exact ‖g‖².
ENUM_MAX = 20


@dataclass(frozen=True)
class StartSet:
    """The states a generator drew: ``groups`` (one ``(R_g, n)`` array per group; two for the
    tempering generators, whose four-z check compares them), ``midway`` (the same chains halfway
    through production, or None), ``chain_sweeps`` spent, ``exact`` (the states are exact samples)
    and ``details`` (plain sentences on how they were made)."""

    name: str
    groups: tuple[np.ndarray, ...]
    midway: tuple[np.ndarray, ...] | None
    chain_sweeps: int
    exact: bool
    details: tuple[str, ...] = ()

    @property
    def states(self) -> np.ndarray:
        return np.vstack(self.groups)


def enumerable(rbm: RBM) -> bool:
    return min(rbm.n_visible, rbm.n_hidden) <= ENUM_MAX


def _exact(rbm: RBM, data, R: int, seed: int, device, progress, settings) -> StartSet:
    rng = np.random.default_rng(seed)
    v = hidden_enum.sample_visible(rbm, R, rng) if rbm.n_hidden <= ENUM_MAX else rbm.sample_exact(R, rng)
    return StartSet("exact", (np.asarray(v, dtype=np.float64),), None, 0, True,
                    (f"exact samples of p(v) (the {min(rbm.n_visible, rbm.n_hidden)}-unit side enumerated)",))


def _two_groups(rbm: RBM, data, R: int, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The base-rate bias a₀ and the two groups' initial states: training images, base-rate samples."""
    a0 = base_rate_bias(data, rbm.units)
    images = data[rng.choice(len(data), R // 2)]
    images = (images > 0.5) * 1.0 if rbm.units == "binary" else np.sign(images)  # chains need configurations
    p0 = 1 / (1 + np.exp(-(a0 if rbm.units == "binary" else 2 * a0)))
    base = (rng.random((R - R // 2, rbm.n_visible)) < p0) * 1.0
    return a0, images, (2 * base - 1 if rbm.units == "spin" else base)


_GROUP_NAMES = ("training images", "base-rate samples")


def _groups(name: str, method: str, inits, run_one) -> StartSet:
    """Run ``run_one(i, v_init) → (states, report, n_rungs)`` on both groups and collect a StartSet."""
    groups, midway, sweeps, details = [], [], 0, []
    for i, v_init in enumerate(inits):
        v, rep, n_rungs = run_one(i, v_init)
        groups.append(v.cpu().numpy().astype(np.float64))
        midway.append(rep.midway_states.cpu().numpy().astype(np.float64))
        sweeps += int(rep.sweeps)
        details.append(f"{method}, group begun at {_GROUP_NAMES[i]}: {n_rungs} rungs, weakest swap acceptance "
                       f"{np.min(rep.swap_acceptance):.2f}, {rep.round_trips} round trips in {rep.rounds} rounds")
    return StartSet(name, tuple(groups), tuple(midway), sweeps, False, tuple(details))


def _tempering(rbm: RBM, data, R: int, seed: int, device, progress, settings) -> StartSet:
    from ..truth.tempering import equilibrate

    a0, *inits = _two_groups(rbm, data, R, np.random.default_rng(seed))
    pt = dict(n_rungs=16, beta_min=0.0, adapt_rounds=100, rounds=400) | (settings or {})

    def run_one(i, v_init):
        v, rep = equilibrate(rbm, a0, len(v_init), seed=seed + i, device=device, progress=progress, v0=v_init, **pt)
        return v, rep, len(rep.betas)

    return _groups("tempering", "temperature tempering", inits, run_one)


def _trajectory(rbm: RBM, data, R: int, seed: int, device, progress, settings) -> StartSet:
    from ..truth.trajectory import equilibrate_trajectory, place_rungs

    settings = dict(settings or {})
    earlier = list(settings.pop("earlier", ()))
    a0, *inits = _two_groups(rbm, data, R, np.random.default_rng(seed + 7))
    pt = dict(burn_in_rounds=100, rounds=400) | settings
    path = f"base-rate → {len(earlier)} earlier saved updates → the model" if earlier else "base-rate → the model"

    def run_one(i, v_init):
        ptt, positions = place_rungs(earlier + [rbm], a0, n_chains=min(len(v_init), 256), seed=seed + 11 + i,
                                     device=device)
        v, rep = equilibrate_trajectory(ptt.rungs, positions, len(v_init), seed=seed + 13 + i, device=device,
                                        progress=progress, v0=v_init, **pt)
        return v, rep, len(positions)

    return _groups("trajectory", f"trajectory tempering ({path})", inits, run_one)


#: name → generator; see the module docstring.
STARTS = {"exact": _exact, "tempering": _tempering, "trajectory": _trajectory}


def generators_for(rbm: RBM, certified: bool) -> tuple[str, ...]:
    """The start generators a diagnosis uses: one for ``standard`` (exact samples where a side is
    enumerable, else temperature tempering), two independent ones for ``certified`` (exact samples
    and temperature tempering where a side is enumerable; else temperature and trajectory tempering,
    or population annealing once it is registered as ``"annealing"``)."""
    first = "exact" if enumerable(rbm) else "tempering"
    if not certified:
        return (first,)
    if first == "exact":
        return ("exact", "tempering")
    return ("tempering", "annealing" if "annealing" in STARTS else "trajectory")
