"""A :class:`~.diagnose.Diagnosis` as a person reads it: Markdown or HTML text beside a Q(T) figure."""
from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np

from .diagnose import Diagnosis, ModelDiagnosis
from .verdict import NEVER_REACHED

__all__ = ["to_markdown", "write_report", "plot", "figure"]


def _num(x, fmt: str = ".3g") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—" if x is None or math.isnan(x) else ("∞" if x > 0 else "−∞")
    return format(x, fmt)


def _plan(p) -> str:
    if p is None:
        return "none within the chain cap"
    s = f"C = {p.chains:,} chains × k = {p.sweeps:,} sweeps = {p.chain_sweeps:,} chain-sweeps per gradient"
    return s + (f", {_num(p.seconds)} s here" if math.isfinite(p.seconds) else "")


def _has_ci(c) -> bool:
    """A curve with sampling error (Monte Carlo); exact and entry curves have none and get no CI column."""
    lo, hi = np.asarray(c.ci_low, dtype=float), np.asarray(c.ci_high, dtype=float)
    return not np.array_equal(lo, hi, equal_nan=True)


def _model_section(d: ModelDiagnosis, diag: Diagnosis) -> list[str]:
    c = d.curve
    out = [f"## {d.label} ({d.n_visible} × {d.n_hidden}, {d.units} units)", "",
           f"- Q(T) by: {c.method}; ‖g‖² = {_num(c.grad_norm2)}, Tr Cov(1) = {_num(c.total_variance)} (f²)",
           f"- T*(1), sweeps one chain needs for Q ≥ 1: **{_num(d.t_star_1)}**"]
    if c.equilibrated is not None:
        zs = ", ".join(f"{k} {v:+.2f}" for k, v in c.z.items())
        out.append(f"- equilibration check: **{'passed' if c.equilibrated else 'FAILED'}** ({zs})")
    if d.agreement is not None:
        out.append(f"- certification: **{d.agreement.sentence()}**")
    out += [f"- {line}" for line in c.details + (d.second.details if d.second is not None else ())]
    out += [f"- cheapest plan for Q_train ≥ {diag.target:g}: **{_plan(d.best)}**",
            f"- fastest here: {_plan(d.fastest)}" if d.fastest is not None else "- fastest here: not timed"]
    if d.log10_q_train is not None:
        out.append(f"- the training's own (C = {diag.train_chains}, k = {diag.train_k}): "
                   f"Q_train = {10 ** d.log10_q_train:.3g}" + (" (no measured signal)" if d.log10_q_train == -math.inf else ""))
    if c.modes:
        out.append("- slow modes: " + "; ".join(f"τ = {_num(m.tau)} sweeps (S/V = {m.weight:.2f}, "
                                                 f"{m.share:.0%} of Tr Cov(T_max))" for m in c.modes))
    out += [f"- warning: {w}" for w in d.warnings]
    ci = _has_ci(c)
    out += ["", "| T | log10 Q |" + (" 95% CI |" if ci else "") + " C needed | chain-sweeps |",
            "|---:|---:|" + (":---|" if ci else "") + "---:|---:|"]
    by_k = {p.sweeps: p for p in d.plans}
    for t, q, lo, hi in zip(c.T, c.log10_q, c.ci_low, c.ci_high):
        p = by_k.get(int(t))
        out.append(f"| {int(t)} | {_num(float(q), '.2f')} | "
                   + (f"[{_num(float(lo), '.2f')}, {_num(float(hi), '.2f')}] | " if ci else "")
                   + f"{'—' if p is None else f'{p.chains:,}'} | {'—' if p is None else f'{p.chain_sweeps:,}'} |")
    return out + [""]


def to_markdown(diag: Diagnosis, figure: str | None = None) -> str:
    """The report as Markdown (``figure``: a relative path to embed); it opens with the verdict."""
    out = ["# snrbench diagnosis", "", f"**{diag.verdict}**", "",
           f"Speed {diag.speed}; observables: {diag.observables}; target Q_train ≥ {diag.target:g}; device "
           f"{diag.device}; {diag.seconds:.1f} s wall" + (f"; estimated {sum(s for _, s in diag.estimate):.0f} s "
                                                          "before the run" if diag.estimate else "") + ".", ""]
    if diag.stopped:
        out += [f"Stopped at --max-minutes after {len(diag.models)} of {diag.n_models} models: {diag.stopped}.", ""]
    if figure:
        out += [f"![Q(T)]({figure})", ""]
    if diag.onset_status is not None:
        words = {"never reached 1": NEVER_REACHED, "no onset": "Q_train reached 1 and stayed: no onset among the saved updates",
                 "onset": f"forecast plateau onset: **update {diag.onset_update}** (first Q_train < 1 after ≥ 1)"}
        out += [f"Along training (C = {diag.train_chains}, k = {diag.train_k}): {words[diag.onset_status]}.", ""]
    for d in diag.models:
        out += _model_section(d, diag)
    return "\n".join(out)


def figure(diag: Diagnosis):
    """Q(T) of every model (with its CI band where it has sampling error), the target line, T*(1) and
    the recommended (C, k) of the last model; beside it, along an archive, Q_train. Legends list only
    what is drawn. Returns the matplotlib figure (:func:`plot` saves it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    along = diag.onset_status is not None
    fig, axes = plt.subplots(1, 2 if along else 1, figsize=(11 if along else 6.4, 4.4), squeeze=False)
    ax = axes[0, 0]
    cmap = plt.get_cmap("viridis")
    for i, d in enumerate(diag.models):
        col = cmap(i / max(len(diag.models) - 1, 1)) if len(diag.models) > 1 else "C0"
        c = d.curve
        ax.plot(c.T, c.log10_q, "o-", ms=3, color=col, label=d.label)
        if _has_ci(c):  # a lower end of −∞ (Q = 0 inside the CI) is drawn down to the axis
            lo = np.where(np.isfinite(c.ci_low), c.ci_low, np.nanmin(np.where(np.isfinite(c.ci_low), c.ci_low, np.nan))
                          - 1.0 if np.any(np.isfinite(c.ci_low)) else np.nan)
            ax.fill_between(c.T, lo, c.ci_high, color=col, alpha=0.2)
        if d.second is not None:
            ax.plot(d.second.T, d.second.log10_q, "x--", ms=4, color=col, lw=1,
                    label=f"{d.label}: {d.agreement.generators[1]} starts")
    ax.axhline(np.log10(diag.target), color="k", ls="--", lw=1, label=f"Q = {diag.target:g} (C = 1)")
    last = diag.models[-1] if diag.models else None
    if last is not None and math.isfinite(last.t_star_1):
        ax.axvline(last.t_star_1, color="0.4", ls=":", lw=1.2, label=f"T*(1) = {last.t_star_1:.3g} sweeps")
    if last is not None and last.best is not None:
        b = last.best
        ax.plot([b.sweeps], [b.log10_q_train], "*", ms=13, color="crimson", zorder=5,
                label=f"recommended: C = {b.chains:,}, k = {b.sweeps:,} (C·Q(k) ≥ {diag.target:g})")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("T, sweeps per gradient")
    ax.set_ylabel("log10 Q(T), one chain")
    ax.legend(fontsize=7, ncol=2 if len(diag.models) > 6 else 1, loc="best")
    ax.grid(alpha=0.3)
    if along:
        ax2 = axes[0, 1]
        u = [max(d.update, 0.5) for d in diag.models]
        q = [max(d.log10_q_train, -12.0) for d in diag.models]
        ax2.plot(u, q, "o-", label=f"Q_train (C = {diag.train_chains}, k = {diag.train_k})")
        ax2.axhline(0.0, color="k", ls="--", lw=1, label="Q_train = 1")
        if diag.onset_update is not None:
            ax2.axvline(max(diag.onset_update, 0.5), color="r", lw=1, label=f"onset: update {diag.onset_update}")
        ax2.legend(fontsize=8)
        ax2.set_xscale("log", base=2)
        ax2.set_xlabel("training update")
        ax2.set_ylabel("log10 Q_train")
        ax2.set_title(NEVER_REACHED if diag.onset_status == "never reached 1" else "along training", fontsize=9)
        ax2.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot(diag: Diagnosis, path: Path) -> Path:
    """:func:`figure` saved as ``path`` with a tight bounding box (no label is cut at the edge)."""
    import matplotlib.pyplot as plt

    fig = figure(diag)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
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
