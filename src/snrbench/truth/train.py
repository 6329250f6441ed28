"""Training RBMs on binarized MNIST with persistent contrastive divergence (PCD-k), checkpointed.

Model: binary units, ``n = 784`` visible, ``m`` hidden. Start (the usual practice, Hinton 2010):
``W ~ N(0, 0.01²)`` (seeded), visible bias ``a = logit(pixel mean)`` (clipped to [1e-3, 1 − 1e-3]),
``b = 0``. Update ``u`` (plain SGD, learning rate ``lr``)::

    W += lr (⟨v E[h|v]ᵀ⟩_batch − ⟨v E[h|v]ᵀ⟩_chains),  a += lr (⟨v⟩_batch − ⟨v⟩_chains),
    b += lr (⟨E[h|v]⟩_batch − ⟨E[h|v]⟩_chains)

With ``lr_decay = τ > 0`` the rate of update ``u`` is ``lr / (1 + (u − 1)/τ)`` (the 1/t schedule of
Robbins–Monro). ``batch`` data rows drawn without replacement per epoch (seeded permutation); ``chains`` persistent
chains (started at random data rows) advanced ``k`` blocked-Gibbs sweeps per update by the
sampler core, whose kernel is re-pointed at the updated parameters before every update and
checked against them at every checkpoint (:meth:`~snrbench.core.sampler.BlockGibbs.kernel_mismatch`).

Checkpoints at the update counts ``0`` and ``2^j`` (``first ≤ 2^j ≤ updates``) are written to
``<out>/m<m>-u<update>.npz`` (float32 W, a, b) beside ``.json`` metadata: data source and hash, seed,
hyper-parameters, the file's own hash, and the log-likelihood per image (nats): exact by
enumerating the hidden side for ``m ≤ 20`` (:mod:`snrbench.truth.hidden_enum`), by AIS otherwise.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from .. import store
from ..core.model import RBM
from ..core.sampler import BlockGibbs
from ..core.tempered import base_rate_bias

__all__ = ["TrainConfig", "checkpoint_updates", "train_pcd", "resume_pcd", "log_likelihood", "load_checkpoint", "checkpoint_name", "CheckpointError"]


class CheckpointError(FileNotFoundError):
    """A checkpoint or its metadata is missing, malformed or does not match its recorded hash."""


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one PCD-k run (stored in every checkpoint's metadata)."""

    n_hidden: int
    updates: int = 2**14
    lr: float = 0.05
    lr_decay: int = 0  # τ of the 1/t schedule lr_u = lr / (1 + u/τ) (Robbins–Monro); 0: constant lr
    batch: int = 100
    chains: int = 100
    k: int = 8
    seed: int = 0
    init_std: float = 0.01
    first_checkpoint: int = 16
    ais_runs: int = 256  # log-likelihood of m > 20 checkpoints: AIS runs and βs (snrbench.truth.ais)
    ais_betas: int = 14_501


def checkpoint_updates(cfg: TrainConfig) -> list[int]:
    """0 and the powers of two from ``first_checkpoint`` to ``updates``."""
    j = int(np.ceil(np.log2(max(1, cfg.first_checkpoint))))
    return [0] + [2**i for i in range(j, int(np.log2(cfg.updates)) + 1)]


def checkpoint_name(n_hidden: int, update: int) -> str:
    return f"m{n_hidden:03d}-u{update:05d}"


def _rbm(W: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> RBM:
    return RBM(W.double().numpy(), a.double().numpy(), b.double().numpy(), "binary")


def log_likelihood(rbm: RBM, data: np.ndarray, cfg: TrainConfig) -> dict:
    """Mean log p(v) over the data (nats per image) and how it was obtained."""
    from . import hidden_enum

    if rbm.n_hidden <= hidden_enum.MAX_HIDDEN:
        log_z = hidden_enum.log_partition(rbm)
        method, extra = "exact (hidden-side enumeration)", {}
    else:
        from .ais import ais_log_partition, default_schedule

        res = ais_log_partition(rbm, base_rate_bias(data), n_runs=cfg.ais_runs, betas=default_schedule(cfg.ais_betas),
                                seed=cfg.seed, dtype=torch.float32)
        log_z = res.log_z
        method = f"AIS ({res.n_runs} runs, {res.n_betas} betas, base-rate start, float32 chains)"
        extra = dict(log_z_low=res.log_z_low, log_z_high=res.log_z_high, ais_ess=res.ess)
    ll = float(rbm.log_marginal_visible(data).mean() - log_z)
    return dict(log_likelihood=ll, log_z=float(log_z), log_likelihood_method=method, **extra)


def _save(out: Path, cfg: TrainConfig, update: int, W, a, b, data: np.ndarray, meta: dict, seconds: float) -> Path:
    name = checkpoint_name(cfg.n_hidden, update)
    path = out / f"{name}.npz"
    arrays = dict(W=W.numpy().astype(np.float32), a=a.numpy().astype(np.float32), b=b.numpy().astype(np.float32))

    def write(tmp):
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    store.atomic_write(path, write)
    rbm = RBM(arrays["W"].astype(np.float64), arrays["a"].astype(np.float64), arrays["b"].astype(np.float64), "binary")
    info = dict(meta, name=name, update=update, hyper_parameters=asdict(cfg), units="binary",
                npz_sha256=hashlib.sha256(path.read_bytes()).hexdigest(), model_sha256=rbm.sha256,
                train_seconds=round(seconds, 2), **log_likelihood(rbm, data, cfg))
    store.atomic_write(out / f"{name}.json", lambda tmp: Path(tmp).write_text(json.dumps(info, indent=1, sort_keys=True)))
    return path


def train_pcd(data: np.ndarray, cfg: TrainConfig, out: str | Path, meta: dict | None = None, progress: bool = True,
              device: str = "cpu") -> list[Path]:
    """Train one RBM by PCD-k on ``data`` (binary rows); write its checkpoints under ``out``."""
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2 or not np.isin(data, (0.0, 1.0)).all():
        raise ValueError("train_pcd: data must be a 2-D array of 0/1 rows")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(cfg.seed)
    n, m = data.shape[1], cfg.n_hidden
    W = torch.tensor(rng.normal(0.0, cfg.init_std, (n, m)), dtype=torch.float32)
    a = torch.tensor(base_rate_bias(data), dtype=torch.float32)
    b = torch.zeros(m, dtype=torch.float32)
    X = torch.tensor(data, dtype=torch.float32)
    v0 = data[rng.choice(len(data), cfg.chains, replace=False)]
    gibbs = BlockGibbs(_rbm(W, a, b), cfg.chains, device=device, seed=cfg.seed, v0=v0)
    meta = dict(meta or {}, data_rows=len(data))
    saves, paths, t0 = set(checkpoint_updates(cfg)), [], time.perf_counter()
    paths.append(_save(out, cfg, 0, W, a, b, data, meta, 0.0))

    def save(u, rbm):
        if u in saves:
            mismatch = gibbs.kernel_mismatch(rbm)
            if mismatch > 0:
                raise RuntimeError(f"train_pcd: the chains' kernel differs from the model by {mismatch:g} at update {u}")
            paths.append(_save(out, cfg, u, W, a, b, data, meta, time.perf_counter() - t0))

    _pcd_updates(W, a, b, X, gibbs, rng, cfg, 1, cfg.updates, progress, save)
    return paths


def _pcd_updates(W, a, b, X, gibbs: BlockGibbs, rng, cfg: TrainConfig, first: int, last: int, progress: bool,
                 after=None) -> None:
    """PCD updates ``first … last`` in place on the float32 tensors ``W, a, b`` (module docstring):
    batches of ``X`` in a permutation drawn from ``rng`` per epoch, ``cfg.k`` sweeps of ``gibbs`` per
    update, the rate of update ``u``; ``after(u, rbm)`` once the kernel follows update ``u``."""
    from tqdm.auto import tqdm

    order, pos = rng.permutation(len(X)), 0
    for u in tqdm(range(first, last + 1), desc=f"PCD-{cfg.k} m={cfg.n_hidden}", disable=not progress, unit="update"):
        if pos + cfg.batch > len(X):
            order, pos = rng.permutation(len(X)), 0
        vb = X[order[pos:pos + cfg.batch]]
        pos += cfg.batch
        hb = torch.sigmoid(vb @ W + b)
        gibbs.run(cfg.k)
        vc = gibbs.v
        hc = torch.sigmoid(vc @ W + b)
        lr = cfg.lr / (1.0 + (u - 1) / cfg.lr_decay) if cfg.lr_decay else cfg.lr
        W += lr * (vb.T @ hb / len(vb) - vc.T @ hc / len(vc))
        a += lr * (vb.mean(0) - vc.mean(0))
        b += lr * (hb.mean(0) - hc.mean(0))
        rbm = _rbm(W, a, b)
        gibbs.set_model(rbm)
        if after is not None:
            after(u, rbm)


def resume_pcd(rbm: RBM, data: np.ndarray, cfg: TrainConfig, start: int, updates: int, chains: int, seed: int,
               device: str = "cpu") -> RBM:
    """``rbm`` (the checkpoint of update ``start``) trained on by ``updates`` more PCD updates of the
    recipe ``cfg`` (the same k, batch and rate schedule, going on from update ``start + 1``) with
    ``chains`` persistent chains, begun at random data rows as at the start of training (a checkpoint
    keeps no chains); seeded by ``seed``. The intervention that asks whether more chains restore
    progress (:mod:`snrbench.truth.intervention`)."""
    data = np.asarray(data, dtype=np.float64)
    rng = np.random.default_rng(seed)
    W, a, b = (torch.tensor(np.asarray(x), dtype=torch.float32) for x in (rbm.W, rbm.a, rbm.b))
    v0 = data[rng.choice(len(data), int(chains), replace=False)]
    gibbs = BlockGibbs(_rbm(W, a, b), int(chains), device=device, seed=seed, v0=v0)
    _pcd_updates(W, a, b, torch.tensor(data, dtype=torch.float32), gibbs, rng, cfg, start + 1, start + updates, False)
    return _rbm(W, a, b)


def load_checkpoint(path: str | Path) -> tuple[RBM, dict]:
    """``(rbm, metadata)`` of ``<name>.npz`` and ``<name>.json``; the npz hash must match the metadata."""
    path = Path(path).with_suffix(".npz")
    meta_path = path.with_suffix(".json")
    for p in (path, meta_path):
        if not p.is_file():
            raise CheckpointError(f"missing checkpoint file {p}")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{meta_path}: not valid JSON ({exc})") from None
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != meta.get("npz_sha256"):
        raise CheckpointError(f"{path}: content hash {digest[:12]}… does not match its metadata "
                              f"({str(meta.get('npz_sha256'))[:12]}…); the file was changed or damaged")
    with np.load(path) as z:
        try:
            rbm = RBM(z["W"].astype(np.float64), z["a"].astype(np.float64), z["b"].astype(np.float64), "binary")
        except KeyError as exc:
            raise CheckpointError(f"{path}: missing array {exc}") from None
    return rbm, meta
