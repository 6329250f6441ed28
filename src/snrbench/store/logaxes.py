"""Log axes whose pixels do not depend on the CPU: for every figure written under ``leaderboard/`` or ``results/``.

Matplotlib's log scale maps each point through numpy's vectorised ``log`` (and its ticks through ``power``),
whose last bit depends on the SIMD kernels numpy picks for the CPU (``NPY_DISABLE_CPU_FEATURES`` changes
it), and one bit can move an antialiased pixel, so the PNG bytes differ between machines. Instead a figure
draws the logarithms, taken one value at a time by the C library (``math.log2``/``math.log10``, exact on
powers of the base) or read as stored (``log10_q``), on *linear* axes, and :func:`log_ticks` labels
integer positions k as ``2^k`` or ``10^k``. The picture is the log-log plot; only where the numbers are
computed changes.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["log2_exact", "log10_exact", "log_ticks"]


def log2_exact(values) -> np.ndarray:
    """log2 of positive values (e.g. window lengths T in sweeps, budgets in chain-sweeps), by ``math.log2``
    one at a time: exact on powers of two, and not numpy's vectorised log, whose last bit depends on the CPU."""
    return np.array([math.log2(v) for v in np.asarray(values, dtype=np.float64).ravel().tolist()])


def log10_exact(values) -> np.ndarray:
    """log10 of positive values by ``math.log10`` one at a time (see :func:`log2_exact`)."""
    return np.array([math.log10(v) for v in np.asarray(values, dtype=np.float64).ravel().tolist()])


def log_ticks(ax, x: int | None = 2, y: int | None = 10) -> None:
    """Label an axes drawn in (log_x, log_y) coordinates: integer positions k read ``x^k`` on the x axis
    and ``y^k`` on the y axis (at most about 6 ticks each; None leaves that axis linear and as it is)."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    for axis, base in ((ax.xaxis, x), (ax.yaxis, y)):
        if base is None:
            continue
        axis.set_major_locator(MaxNLocator(integer=True, nbins=6))
        axis.set_major_formatter(FuncFormatter(lambda v, _, b=base: f"${b}^{{{int(round(v))}}}$"))
