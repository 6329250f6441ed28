"""Summaries and figures of the checkpoint families' ground truth (pure functions of ``results/``).

Per checkpoint: Q(T) with its CI, ‖g‖², the T = 1 check against independent exact samples (m ≤ 20),
the diagnostics flags, the parallel-tempering ladder (m > 20) and ``Q_train = C·Q(k)`` along training
with the plateau onset (:mod:`snrbench.truth.onset`).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .. import store
from ..store.logaxes import log2_exact, log_ticks
from ..truth.onset import certified_prefix, log10_q_train, onset_index

__all__ = ["mnist_summary", "true_onsets", "plot_mnist"]


def _tables(root, family) -> tuple[pd.DataFrame, pd.DataFrame]:
    gt, pt = family.truth_paths()
    return store.read_table(Path(root), gt).to_pandas(), store.read_table(Path(root), pt).to_pandas()


def mnist_summary(root: Path | str, family) -> pd.DataFrame:
    """One row per checkpoint (ordered by m, update)."""
    df, pt = _tables(root, family)
    rows = []
    for cell_id, g in df.groupby("cell_id", sort=False):
        g = g.sort_values("T")
        r = g.iloc[0]
        ladder = pt[pt.cell_id == cell_id]
        acc = np.concatenate([g.sort_values("rung").swap_acceptance.to_numpy()[:-1]  # the last rung has no pair
                              for _, g in ladder.groupby("start")] or [np.empty(0)])
        i_k = np.searchsorted(g["T"].to_numpy(), r.train_k)
        rows.append(dict(
            label=r.label, m=int(r.n_hidden), update=int(r["update"]), log_likelihood=r.log_likelihood,
            grad_norm2=r.grad_norm2, g2_mc=r.grad_norm2_mc, g2_mc_low=r.grad_norm2_mc_low,
            g2_mc_high=r.grad_norm2_mc_high, tr_cov_T1=r.trace_cov, tr_cov_T1_se=r.trace_cov_se,
            V_indep=r.total_variance_indep, V_indep_se=r.total_variance_indep_se,
            log10_q_T1=r.log10_q, log10_q_Tmax=g.log10_q.iloc[-1],
            log10_q_train=log10_q_train(g["T"], g.log10_q, r.train_chains, r.train_k),
            log10_q_train_low=np.log10(r.train_chains) + g.ci_low.iloc[i_k],
            log10_q_train_high=np.log10(r.train_chains) + g.ci_high.iloc[i_k],
            rhat=r.rhat, doubling_ok=bool(r.doubling_ok), flagged=bool(r.flagged), start=r.start,
            start_z_variance=r.start_z_variance, start_z_gradient=r.start_z_gradient,
            drift_z_variance=r.drift_z_variance, drift_z_gradient=r.drift_z_gradient, equilibrated=bool(r.equilibrated),
            certified=bool(r.certified) if "certified" in r.index and pd.notna(r.certified) else True,
            pt_method=ladder.method.iloc[0] if len(ladder) else "", pt_rungs=ladder.rung.nunique(),
            pt_min_acceptance=float(acc.min()) if acc.size else np.nan,
            pt_round_trips=int(ladder.groupby("start").round_trips.first().sum()) if len(ladder) else 0,
            pt_replica_tau=float(ladder.replica_tau.max()) if len(ladder) else np.nan,
        ))
    return pd.DataFrame(rows).sort_values(["m", "update"], ignore_index=True)


def true_onsets(summary: pd.DataFrame) -> pd.DataFrame:
    """Plateau onset per hidden size from :func:`mnist_summary` (index −1 / update −1: none), searched
    over the leading equilibrated and certified checkpoints (:func:`~snrbench.truth.onset.certified_prefix`),
    as the scored onset table is (``results/onset.parquet``)."""
    rows = []
    for m, g in summary.groupby("m", sort=True):
        g = certified_prefix(g)
        i = onset_index(g.log10_q_train) if len(g) else -1  # nothing trusted: nothing to say
        rows.append(dict(m=int(m), n_checkpoints=len(g), onset_index=i,
                         onset_update=int(g["update"].iloc[i]) if i >= 0 else -1))
    return pd.DataFrame(rows)


def plot_mnist(root: Path | str, family, out: Path | str) -> Path:
    """Per hidden size: Q(T) with 95% CI per checkpoint (dashed: flagged by R̂/doubling; dotted: starts
    not equilibrated), ``Q_train`` along training
    with the onset and the log-likelihood beside it, and (m > 20) the swap acceptance per rung of every checkpoint's ladder.
    Q is drawn as its stored log10, T and the update as log2 by ``math.log2``, on linear axes labelled 10^k and 2^k
    (:mod:`snrbench.store.logaxes`: the same PNG bytes on every CPU)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df, pt = _tables(root, family)
    summary = mnist_summary(root, family)
    sizes = sorted(summary.m.unique())
    fig, axes = plt.subplots(len(sizes), 3, figsize=(16, 4.2 * len(sizes)), squeeze=False)
    for row, m in zip(axes, sizes):
        cells = summary[summary.m == m]
        colors = plt.cm.viridis(np.linspace(0, 0.95, len(cells)))
        for (_, c), col in zip(cells.iterrows(), colors):
            g = df[df.label == c.label].sort_values("T")
            ls, note = (":", " (not equilibrated)") if not c.equilibrated else ("--", " (flagged)") if c.flagged else ("-", "")
            row[0].plot(log2_exact(g["T"]), g.log10_q, color=col, ls=ls, marker=".", label=f"u={c['update']}{note}")
            row[0].fill_between(log2_exact(g["T"]), g.ci_low, g.ci_high, color=col, alpha=0.25)
        row[0].axhline(0.0, color="grey", lw=0.8)  # Q = 1
        log_ticks(row[0])
        row[0].set(xlabel="T (sweeps per gradient)", ylabel="Q(T), C = 1",
                   title=f"{family.name}, m = {m}: Q(T) per checkpoint (95% CI)")
        row[0].legend(fontsize=6, ncol=2)
        x = log2_exact(np.maximum(cells["update"], 1))
        q = cells.log10_q_train.to_numpy()  # the percentile CI may sit to one side of the point estimate
        row[1].errorbar(x, q, fmt="o-", yerr=[np.maximum(q - cells.log10_q_train_low.to_numpy(), 0),
                                              np.maximum(cells.log10_q_train_high.to_numpy() - q, 0)])
        trusted = certified_prefix(cells)
        i = onset_index(trusted.log10_q_train) if len(trusted) else -1
        if i >= 0:
            row[1].axvline(math.log2(max(trusted["update"].iloc[i], 1)), color="red", ls=":",
                           label=f"onset: update {trusted['update'].iloc[i]}")
        if len(trusted) < len(cells):
            row[1].axvspan(math.log2(max(cells["update"].iloc[len(trusted)], 1)), x.max(), color="grey", alpha=0.15,
                           label="not equilibrated from here: no onset search")
        row[1].axhline(0.0, color="grey", lw=0.8, label="Q_train = 1")
        C, k = int(df.train_chains.iloc[0]), int(df.train_k.iloc[0])
        log_ticks(row[1])
        row[1].set(xlabel="PCD update (0 plotted at 1)",
                   ylabel=f"Q_train = {C}·Q(T = {k})", title=f"m = {m}: the training's own gradient SNR")
        ll = row[1].twinx()  # does the training still learn after the onset?
        ll.plot(x, cells.log_likelihood, color="tab:green", marker="s", ms=3, lw=1, label="log-likelihood")
        ll.set_ylabel("log-likelihood (nats/image, exact or AIS)", color="tab:green")
        # one legend on the twin axes, which are drawn last: on the first axes the likelihood line crossed it
        handles = row[1].get_legend_handles_labels()[0] + ll.get_legend_handles_labels()[0]
        ll.legend(handles=handles, fontsize=7, loc="upper left", framealpha=0.9)
        ladders = pt[pt.cell_id.isin(df[df.n_hidden == m].cell_id)]
        if len(ladders):
            for (_, c), col in zip(cells.iterrows(), colors):
                for j, (name, lad) in enumerate(ladders[ladders.label == c.label].groupby("start", sort=True)):
                    lad = lad.sort_values("rung")
                    where = lad.position if lad.method.iloc[0] == "trajectory" else lad.rung
                    row[2].plot(where[:-1], lad.swap_acceptance[:-1], color=col, marker=".", ls="-:"[j % 2],
                                label=f"u={c['update']}" + ("" if c.equilibrated else " (not equilibrated)") if j == 0 else None)
            traj = (ladders.method == "trajectory").any()
            row[2].set(ylim=(0, 1), ylabel="swap acceptance",
                       xlabel=("lower rung's trajectory position\n(0: base rate, j + 1: checkpoint j)" if traj
                               else "rung pair (k, k+1), k = 0 at β = 1"),
                       title=f"m = {m}: {'trajectory' if traj else 'temperature'} tempering\n"
                             "solid: from base-rate samples; dotted: from images")
            row[2].legend(fontsize=6, ncol=2)
        else:
            row[2].axis("off")
            row[2].text(0.05, 0.5, f"m = {m} ≤ 20: chains start from exact samples\n(no tempering needed)",
                        transform=row[2].transAxes)
    fig.tight_layout()
    return store.save_figure(fig, out)
