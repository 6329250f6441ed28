"""Plateau onset along training (mnist families): when does the training's own gradient drown?

The training estimates each gradient from ``C`` persistent chains read every ``k`` sweeps, so its
squared SNR at a checkpoint is ``Q_train = C · Q(T = k)`` (``Q(T, C) = C·Q(T, 1)``, DESIGN §1; T = k
interpolated linearly in log T when it is off the grid). Along the checkpoints of one hidden size
(ordered by update):

**onset** = the first checkpoint with ``Q_train < 1`` *after* a checkpoint with ``Q_train ≥ 1``.

At initialisation ``W ~ N(0, 0.01²)`` makes ``‖g‖²`` tiny (the data–model correlations it measures
are ∝ W), so ``Q_train < 1`` there while learning still proceeds; the plateau is the later fall back
below 1 once the signal has been seen. A size whose ``Q_train`` never falls back has no onset
(``-1`` in the tables); one that never reaches 1 has its onset at the first checkpoint. The error
of a forecast is ``|index_pred − index_true|`` in checkpoints, where "no onset" counts as the index
one past the last checkpoint.

Only a trusted truth says when the onset is: the search runs over the *leading* checkpoints whose
ground truth is stored ``equilibrated`` and ``certified`` (:func:`trusted`, :func:`certified_prefix`), up to
the first that is not, and
"none" then means none among those (``n_checkpoints`` says how many).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["log10_q_train", "onset_index", "onset_table", "certified_prefix", "trusted", "ONSET_REL"]

ONSET_REL = "onset.parquet"


def log10_q_train(T, log10_q, chains: int, k: int) -> float:
    """``log10(C · Q(T = k))`` from a curve on the grid ``T`` (linear in log T between grid points)."""
    T = np.asarray(T, dtype=np.float64)
    return float(np.log10(chains) + np.interp(np.log(k), np.log(T), np.asarray(log10_q, dtype=np.float64)))


def onset_index(log10_q_train_along) -> int:
    """Index of the onset checkpoint (module docstring); ``-1`` when there is none."""
    q = np.asarray(log10_q_train_along, dtype=np.float64)
    seen = np.flatnonzero(q >= 0.0)
    if seen.size == 0:
        return 0
    later = np.flatnonzero(q[seen[0]:] < 0.0)
    return int(seen[0] + later[0]) if later.size else -1


def trusted(truth: pd.DataFrame) -> np.ndarray:
    """Per row: is the stored truth trusted, ``equilibrated`` and ``certified`` (DESIGN §2.4)? A column
    that is absent, or a missing value (a family without it), counts as True."""
    keep = np.ones(len(truth), bool)
    for col in ("equilibrated", "certified"):
        if col in truth:
            keep &= truth[col].astype("boolean").fillna(True).to_numpy(bool)
    return keep


def certified_prefix(checkpoints: pd.DataFrame) -> pd.DataFrame:
    """The checkpoints of one hidden size ordered by update, cut before the first whose ground truth is
    not :func:`trusted` (all of them when every one is)."""
    g = checkpoints.sort_values("update")
    bad = np.flatnonzero(~trusted(g))
    return g.iloc[: bad[0]] if bad.size else g


def _error(i_pred: int, i_true: int, n: int) -> int:
    as_index = lambda i: n if i < 0 else i  # noqa: E731 — "no onset" sits one past the last checkpoint
    return abs(as_index(i_pred) - as_index(i_true))


def onset_table(truth: pd.DataFrame, pred: pd.DataFrame) -> pd.DataFrame:
    """One row per (family, n_hidden, predictor, access) of the mnist families in ``truth``.

    ``truth``: ground-truth rows (family, cell_id, n_hidden, update, T, log10_q, train_chains, train_k and,
    optionally, equilibrated and certified: the search stops at the first checkpoint not :func:`trusted`);
    ``pred``: prediction rows (predictor, access, family, cell_id, T, log10_q). Entries that miss a
    checkpoint of a hidden size are left out for that size.
    """
    agg = dict(n_hidden=("n_hidden", "first"), update=("update", "first"), chains=("train_chains", "first"),
               k=("train_k", "first"))
    for col in ("equilibrated", "certified"):
        if col in truth:
            agg[col] = (col, "first")
    cells = truth.groupby(["family", "cell_id"], sort=False).agg(**agg).reset_index()
    curves = {key: g.sort_values("T") for key, g in truth.groupby(["family", "cell_id"], sort=False)}
    cells["q_true"] = [log10_q_train(curves[(f, c)]["T"], curves[(f, c)]["log10_q"], ch, k)
                       for f, c, ch, k in zip(cells.family, cells.cell_id, cells.chains, cells.k)]
    rows = []
    pred_curves = {key: g.sort_values("T") for key, g in pred.groupby(["predictor", "access", "family", "cell_id"])}
    entries = sorted({key[:2] for key in pred_curves})
    for (family, m), g in cells.groupby(["family", "n_hidden"], sort=True):
        g = certified_prefix(g)
        if g.empty:
            continue
        updates = g["update"].to_numpy()
        i_true = onset_index(g["q_true"])
        for name, access in entries:
            got = [pred_curves.get((name, access, family, c)) for c in g["cell_id"]]
            if any(x is None for x in got):
                continue
            q_pred = [log10_q_train(p["T"], p["log10_q"], ch, k) for p, ch, k in zip(got, g["chains"], g["k"])]
            i_pred = onset_index(q_pred)
            rows.append(dict(family=family, n_hidden=int(m), predictor=name, access=access,
                             n_checkpoints=len(g), onset_index_true=i_true,
                             onset_update_true=int(updates[i_true]) if i_true >= 0 else -1,
                             onset_index_pred=i_pred, onset_update_pred=int(updates[i_pred]) if i_pred >= 0 else -1,
                             onset_error=_error(i_pred, i_true, len(g))))
    cols = ["family", "n_hidden", "predictor", "access", "n_checkpoints", "onset_index_true", "onset_update_true",
            "onset_index_pred", "onset_update_pred", "onset_error"]
    return pd.DataFrame(rows, columns=cols)
