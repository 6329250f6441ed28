"""Summaries and figures of stored ground truth (pure functions of ``results/``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import store
from .groundtruth import ground_truth_paths
from .spectral import t_star

__all__ = ["cell_summary", "plot_q_curves", "save_figure"]


def cell_summary(root: Path | str, family: str) -> pd.DataFrame:
    """One row per cell: Q at the grid ends, T*(1), the τ's and their ratios, the gaps."""
    df = store.read_table(Path(root), ground_truth_paths(family)[0]).to_pandas()
    rows = []
    for cell_id, g in df.groupby("cell_id", sort=False):
        g = g.sort_values("T")
        r = g.iloc[0]
        rows.append(dict(
            label=r.label, cell_id=cell_id, log10_q_T1=r.log10_q, log10_q_Tmax=g.log10_q.iloc[-1],
            t_star_1=t_star(g.log10_q.to_numpy(), g["T"].to_numpy()), tau_grad=r.tau_grad, tau_m=r.tau_m,
            tau_gap=r.tau_gap, gap_over_grad=r.tau_gap / r.tau_grad, m_over_grad=r.tau_m / r.tau_grad,
            spectral_gap=r.spectral_gap, observable_gap=r.observable_gap, method=r.gap_method,
        ))
    return pd.DataFrame(rows)


def plot_q_curves(root: Path | str, family: str, out: Path | str, seed: int = 0) -> Path:
    """Q(T) for the cells of one seed: one panel per shape, colour = β, line style = the cell kind
    (sym/bias for exact-rbm, M1…M4/ferro for planted, cw/sk/hop2 for ising)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = store.read_table(Path(root), ground_truth_paths(family)[0]).to_pandas()
    df = df[df.seed == seed]
    shapes = sorted({(int(a), int(b)) for a, b in zip(df.n_visible, df.n_hidden)})
    fig, axes = plt.subplots(1, len(shapes), figsize=(5.2 * len(shapes), 4.2), sharey=True, squeeze=False)
    betas = sorted(df.beta.unique())
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(betas)))
    rank = {"sym": "0", "bias": "1", "ferro": "~"}  # solid = symmetric (exact-rbm); control last
    at = 0 if family == "ising" else 2  # where the kind sits in the label
    df = df.assign(kind=df.label.str.split("-").str[at])
    kinds = sorted(set(df.kind), key=lambda k: rank.get(k, k))
    styles = dict(zip(kinds, ["-", "--", ":", "-.", (0, (1, 1)), (0, (5, 1))] * 4))
    for ax, (n, m) in zip(axes[0], shapes):
        for beta, col in zip(betas, colors):
            for kind in kinds:
                g = df[(df.n_visible == n) & (df.n_hidden == m) & (df.beta == beta)
                       & (df.kind == kind)]
                if len(g):
                    g = g.sort_values("T")
                    ax.plot(g["T"], 10 ** g.log10_q, linestyle=styles[kind], color=col, marker=".",
                            label=f"β={beta:g} {kind}")
        ax.axhline(1.0, color="grey", lw=0.8)
        shape = f"N={n}" if family == "ising" else f"n={n}, m={m}"
        ax.set(xscale="log", yscale="log", xlabel="T (sweeps per gradient)", title=f"{family}: {shape}, seed {seed}")
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel("Q(T) = ‖g‖² / Tr Cov ĝ(T)   (C = 1)")
    axes[0][-1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return save_figure(fig, out, dpi=110)


def save_figure(fig, out: Path | str, dpi: int = 100) -> Path:
    """Write a pyplot figure to ``out`` through a temporary file and a rename (no timestamps); close it."""
    import matplotlib.pyplot as plt

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=dpi, metadata={"Software": None})
    plt.close(fig)
    tmp.replace(out)
    return out
