"""The ``goodhart`` family (``tasks/goodhart.toml``): small RBMs trained against a trainability forecast.

Each student (spin units, ``n`` visible, ``m`` hidden, ``W ~ N(0, init_std²)``, ``a = b = 0`` at the
start) is trained on ``n_samples`` exact samples of a planted teacher
(``W = (β/√n)(Σ_{μ≤M} ξ^μ η^μᵀ + noise·G)``, ``a = b = 0``, seed ``seed + teacher_seed_offset``) by
full-batch Adam on

    J(θ) = ℓ(θ) + λ · R(θ)

where ``ℓ`` is the exact mean log-likelihood (nats per sample) and ``R`` the rewarded quantity, a
differentiable forecast of ``log10 Q(T_reward)`` (dex) from :data:`snrbench.truth.forecasts.FORECASTS`
(``single-gap``, ``magnetization``, ``multimode`` or ``true``). The dose λ (nats per dex) runs over a
ladder; cells with λ = 0 (``rewarded = "none"``) are the ordinary likelihood fit, one per seed. Each
cell's spec carries its ``dose`` and ``rewarded`` quantity. The truth is exact
(:class:`~._exact.ExactFamily`): it asks whether a forecast still tracks Q on models optimised
against it.

The trained parameters are stored beside the suite, ``tasks/<params>/<label>.npz`` (W, a, b and the
training recipe as JSON), and each cell's spec carries the file's SHA-256, as the MNIST checkpoints
do: building a model is then a read, not a training run, in every process that needs it (truth,
predictions, scoring). ``python -m snrbench.families.goodhart`` trains the missing ones (resumable:
one file per cell, written atomically; progress and remaining time on stderr).
"""
from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from ..core.model import RBM
from ..truth import differentiable, forecasts
from ._exact import N_SAMPLES, OBSERVABLES, SCALE, SEED_OFFSET, SEEDS, SHAPES, SPIN_UNITS, ExactFamily
from .base import Key, TaskSpecError, load_suite, tasks_dir

__all__ = ["Goodhart", "FAMILIES", "train", "train_missing", "REWARDED"]

#: The rewardable quantities (differentiable forecasts of log10 Q; "true" is Q itself).
REWARDED = tuple(forecasts.FORECASTS)
#: Spec keys that make up the training recipe (what the stored file was trained from).
RECIPE_KEYS = ("n_visible", "n_hidden", "units", "beta", "teacher_patterns", "teacher_noise", "seed", "teacher_seed",
               "n_data", "observables", "dose", "rewarded", "reward_T", "steps", "lr", "init_std")


def _power_of_two(t: int) -> str | None:
    return None if t >= 1 and t & (t - 1) == 0 else "must be a power of two (a point of the T grid)"


def _recipe(spec: dict) -> dict:
    return {k: spec[k] for k in RECIPE_KEYS}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Goodhart(ExactFamily):
    name = "goodhart"
    #: Opt-in (``snrbench run --family goodhart``): its cells are trained models that ship with the
    #: suite, and its predictions and scores are made on request rather than by every default run.
    default = False
    #: A track of its own: its models were optimised against some entries' forecasts, so its cells are
    #: scored and shown in their own section (:mod:`snrbench.report.goodhart`), not pooled in the rankings.
    ranked = False
    #: Fresh draws would need new training runs; the Monte Carlo ladder check adds nothing here (the
    #: solver is the one checked on exact-rbm and planted).
    fresh_draws = False
    ladder = False
    keys = dict(
        grid=dict(shapes=SHAPES, doses=Key(list, item=Key(float, lo=0, lo_open=True)),
                  rewarded=Key(list, item=Key(str, choices=REWARDED)), seeds=SEEDS),
        model=dict(units=SPIN_UNITS, recipe=Key(str, choices=("goodhart",)), params=Key(str)),
        teacher=dict(beta=Key(float, lo=0), patterns=Key(int, lo=1), noise=SCALE),
        training=dict(steps=Key(int, lo=1), lr=Key(float, lo=0, lo_open=True), init_std=SCALE,
                      reward_T=Key(int, lo=1, rule=_power_of_two)),
        data=dict(n_samples=N_SAMPLES, teacher_seed_offset=SEED_OFFSET),
        estimator=dict(observables=OBSERVABLES),
    )

    def params_path(self, spec: dict) -> Path:
        return tasks_dir() / spec["params"] / f"{self.label(spec)}.npz"

    def recipes(self, doc: dict) -> list[dict]:
        """The cell specs of a checked suite document without the parameter hashes: per shape and
        seed, one λ = 0 cell (``rewarded = "none"``) and one cell per (rewarded quantity, dose)."""
        common, grid, model, data = self.common(doc, "")
        t, tr = doc["teacher"], doc["training"]
        arms = [("none", 0.0)] + [(r, float(d)) for r in grid["rewarded"] for d in grid["doses"]]
        return [dict(common, n_visible=n, n_hidden=m, beta=float(t["beta"]), teacher_patterns=t["patterns"],
                     teacher_noise=float(t["noise"]), symmetric=False, seed=seed,
                     teacher_seed=seed + data["teacher_seed_offset"], rewarded=r, dose=d, reward_T=tr["reward_T"],
                     steps=tr["steps"], lr=float(tr["lr"]), init_std=float(tr["init_std"]), params=model["params"])
                for (n, m), seed, (r, d) in itertools.product(grid["shapes"], grid["seeds"], arms)]

    def expand(self, doc: dict, where: str) -> list[dict]:
        specs = []
        for spec in self.recipes(doc):
            path = self.params_path(spec)
            try:
                with np.load(path) as z:
                    stored = json.loads(str(z["recipe"]))
            except (OSError, KeyError, ValueError) as exc:
                raise TaskSpecError(f"{where}: cell {self.label(spec)}: no trained parameters at {path} ({exc}); "
                                    "train them with `python -m snrbench.families.goodhart`") from None
            if stored != _recipe(spec):
                raise TaskSpecError(f"{where}: {path} was trained from another recipe than cell {self.label(spec)}; "
                                    "retrain with `python -m snrbench.families.goodhart --force`")
            specs.append(dict(spec, params_sha256=_sha256(path)))
        return specs

    def label(self, s: dict) -> str:
        return f"n{s['n_visible']}m{s['n_hidden']}-{s['rewarded']}-d{s['dose']:g}-s{s['seed']}"

    def figure_kind(self, label: str) -> str:
        return label.split("-", 1)[1].rsplit("-", 1)[0]

    def recipe(self, spec: dict, seed: int, teacher: bool = False):
        """The planted teacher drawn from ``seed`` (students are read from their files)."""
        if not teacher:
            raise ValueError("goodhart students are trained, not drawn: use build_model")
        n, m, M = spec["n_visible"], spec["n_hidden"], spec["teacher_patterns"]
        rng = np.random.default_rng(seed)
        xi = 2.0 * rng.integers(0, 2, (M, n)) - 1.0
        eta = 2.0 * rng.integers(0, 2, (M, m)) - 1.0
        W = (spec["beta"] / np.sqrt(n)) * (xi.T @ eta + spec["teacher_noise"] * rng.standard_normal((n, m)))
        return RBM(W, None, None, spec["units"]), rng

    def build_model(self, spec: dict) -> RBM:
        """The trained student a cell names, after checking its file against the spec's hash."""
        path = self.params_path(spec)
        if _sha256(path) != spec["params_sha256"]:
            raise TaskSpecError(f"{path}: hash differs from cell {self.label(spec)}'s (retrained or replaced)")
        with np.load(path) as z:
            return RBM(z["W"], z["a"], z["b"], spec["units"])


def train(spec: dict, data: np.ndarray):
    """Train one student: full-batch Adam (``lr``, ``steps``) on ``ℓ + λ·R`` from ``W ~ N(0, init_std²)``
    drawn from ``seed``, ``a = b = 0``. Returns ``(W, a, b)`` as float64 arrays."""
    import torch

    torch.set_num_threads(1)  # one thread: the same bits on every run of the recipe
    n, m = spec["n_visible"], spec["n_hidden"]
    rng = np.random.default_rng(spec["seed"])
    W = torch.tensor(spec["init_std"] * rng.standard_normal((n, m)), requires_grad=True)
    a = torch.zeros(n, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(m, dtype=torch.float64, requires_grad=True)
    reward = forecasts.FORECASTS.get(spec["rewarded"])
    opt = torch.optim.Adam([W, a, b], lr=spec["lr"])
    for _ in range(spec["steps"]):
        opt.zero_grad()
        J = differentiable.log_likelihood(W, a, b, data, spec["units"])
        if spec["dose"] > 0:
            J = J + spec["dose"] * reward(W, a, b, data, [spec["reward_T"]], spec["units"], spec["observables"])[0]
        (-J).backward()
        opt.step()
    return tuple(x.detach().numpy().copy() for x in (W, a, b))


def train_missing(force: bool = False, out=sys.stderr) -> list[Path]:
    """Train every cell of ``tasks/goodhart.toml`` whose parameter file is missing (all with ``force``);
    each file is written atomically, so an interrupted run resumes at the next cell."""
    import tomllib

    family = FAMILIES[0]
    doc = tomllib.loads(family.suite_path().read_text())
    family.check_spec(doc, str(family.suite_path()))
    todo = [s for s in family.recipes(doc) if force or not family.params_path(s).is_file()]
    written, t0 = [], time.monotonic()
    for i, spec in enumerate(todo):
        path = family.params_path(spec)
        path.parent.mkdir(parents=True, exist_ok=True)
        W, a, b = train(spec, family.build_data(spec))
        buf = io.BytesIO()
        np.savez(buf, W=W, a=a, b=b, recipe=np.array(json.dumps(_recipe(spec), sort_keys=True)))
        tmp = path.with_suffix(".npz.tmp")
        tmp.write_bytes(buf.getvalue())
        os.replace(tmp, path)
        written.append(path)
        done = time.monotonic() - t0
        print(f"goodhart training: cell {i + 1}/{len(todo)} {family.label(spec)} done; "
              f"about {done / (i + 1) * (len(todo) - i - 1):.0f} s left", file=out, flush=True)
    return written


FAMILIES = [Goodhart()]

if __name__ == "__main__":
    train_missing(force="--force" in sys.argv[1:])
    print(f"{len(load_suite('goodhart')[1])} goodhart cells ready", file=sys.stderr)
