"""A :class:`~.diagnose.Diagnosis` as a person reads it: Markdown or HTML text beside a Q(T) figure."""
from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np

from .diagnose import Diagnosis, ModelDiagnosis

__all__ = ["to_markdown", "write_report", "plot"]


def _num(x, fmt: str = ".3g") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—" if x is None or math.isnan(x) else "∞"
    return format(x, fmt)


def _plan(p) -> str:
    if p is None:
        return "none within the chain cap"
    s = f"C = {p.chains:,} chains × k = {p.sweeps:,} sweeps = {p.chain_sweeps:,} chain-sweeps per gradient"
    return s + (f", {_num(p.seconds)} s here" if math.isfinite(p.seconds) else "")


def _model_section(d: ModelDiagnosis, diag: Diagnosis) -> list[str]:
    c = d.curve
    out = [f"## {d.label} ({d.n_visible} × {d.n_hidden}, {d.units} units)", "",
           f"- Q(T) by: {c.method}; ‖g‖² = {_num(c.grad_norm2)}, Tr Cov(1) = {_num(c.total_variance)} (f²)",
           f"- T*(1), sweeps one chain needs for Q ≥ 1: **{_num(d.t_star_1)}**"]
    if c.equilibrated is not None:
        zs = ", ".join(f"{k} {v:+.2f}" for k, v in c.z.items())
        out.append(f"- equilibration check: **{'passed' if c.equilibrated else 'FAILED'}** ({zs})")
    out += [f"- {line}" for line in c.details]
    out += [f"- cheapest plan for Q_train ≥ {diag.target:g}: **{_plan(d.best)}**",
            f"- fastest here: {_plan(d.fastest)}" if d.fastest is not None else "- fastest here: not timed"]
    if d.log10_q_train is not None:
        out.append(f"- the training's own (C = {diag.train_chains}, k = {diag.train_k}): "
                   f"Q_train = {10 ** d.log10_q_train:.3g}" + (" (no measured signal)" if d.log10_q_train == -math.inf else ""))
    if c.modes:
        out.append("- slow modes: " + "; ".join(f"τ = {_num(m.tau)} sweeps (S/V = {m.weight:.2f}, "
                                                 f"{m.share:.0%} of Tr Cov(T_max))" for m in c.modes))
    out += [f"- warning: {w}" for w in d.warnings]
    out += ["", "| T | log10 Q | 95% CI | C needed | chain-sweeps |", "|---:|---:|:---|---:|---:|"]
    by_k = {p.sweeps: p for p in d.plans}
    for t, q, lo, hi in zip(c.T, c.log10_q, c.ci_low, c.ci_high):
        p = by_k.get(int(t))
        out.append(f"| {int(t)} | {_num(float(q), '.2f')} | [{_num(float(lo), '.2f')}, {_num(float(hi), '.2f')}] | "
                   f"{'—' if p is None else f'{p.chains:,}'} | {'—' if p is None else f'{p.chain_sweeps:,}'} |")
    return out + [""]


def to_markdown(diag: Diagnosis, figure: str | None = None) -> str:
    """The report as Markdown (``figure``: a relative path to embed)."""
    out = ["# snrbench diagnosis", "",
           f"Observables: {diag.observables}; target Q_train ≥ {diag.target:g}; device {diag.device}; "
           f"{diag.seconds:.1f} s wall.", ""]
    if figure:
        out += [f"![Q(T)]({figure})", ""]
    if len(diag.models) > 1 and diag.train_chains:
        onset = "none among the saved updates" if diag.onset_update is None else f"update {diag.onset_update}"
        out += [f"Forecast plateau onset (first Q_train < 1 after ≥ 1, C = {diag.train_chains}, k = {diag.train_k}): "
                f"**{onset}**", ""]
    for d in diag.models:
        out += _model_section(d, diag)
    return "\n".join(out)


def plot(diag: Diagnosis, path: Path) -> Path:
    """Q(T) of every model with its CI band and the target line; beside it, along an archive, Q_train."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    along = len(diag.models) > 1 and all(d.log10_q_train is not None and d.update is not None for d in diag.models)
    fig, axes = plt.subplots(1, 2 if along else 1, figsize=(11 if along else 6, 4.2), squeeze=False)
    ax = axes[0, 0]
    cmap = plt.get_cmap("viridis")
    for i, d in enumerate(diag.models):
        col = cmap(i / max(len(diag.models) - 1, 1))
        c = d.curve
        ax.plot(c.T, c.log10_q, "o-", ms=3, color=col, label=d.label)
        if not np.allclose(c.ci_low, c.ci_high):
            ax.fill_between(c.T, c.ci_low, c.ci_high, color=col, alpha=0.2)
    ax.axhline(np.log10(diag.target), color="k", ls="--", lw=1, label=f"Q = {diag.target:g} (C = 1)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("T, sweeps per gradient")
    ax.set_ylabel("log10 Q(T), one chain")
    ax.legend(fontsize=7, ncol=2 if len(diag.models) > 6 else 1)
    ax.grid(alpha=0.3)
    if along:
        ax2 = axes[0, 1]
        u = [max(d.update, 0.5) for d in diag.models]
        ax2.plot(u, [d.log10_q_train for d in diag.models], "o-")
        ax2.axhline(0.0, color="k", ls="--", lw=1)
        if diag.onset_update is not None:
            ax2.axvline(max(diag.onset_update, 0.5), color="r", lw=1, label=f"onset: update {diag.onset_update}")
            ax2.legend(fontsize=8)
        ax2.set_xscale("log", base=2)
        ax2.set_xlabel("training update")
        ax2.set_ylabel(f"log10 Q_train (C = {diag.train_chains}, k = {diag.train_k})")
        ax2.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(diag: Diagnosis, out: Path | str, fmt: str = "md") -> tuple[Path, Path]:
    """Write ``<out>.md`` (or ``.html``) and ``<out>.png``; returns both paths."""
    out = Path(out)
    fig = plot(diag, out.with_suffix(".png"))
    text = to_markdown(diag, fig.name)
    if fmt == "html":
        text = (f"<!doctype html><meta charset='utf-8'><title>snrbench diagnosis</title>"
                f"<img src='{fig.name}' alt='Q(T)'><pre>{html.escape(to_markdown(diag))}</pre>")
    elif fmt != "md":
        raise ValueError(f"report format must be 'md' or 'html', got {fmt!r}")
    path = out.with_suffix(".html" if fmt == "html" else ".md")
    path.write_text(text)
    return path, fig
