"""Integrated autocorrelation time of sampled series (Sokal's automatic window).

Convention ``τ = 1 + 2 Σ_{t≥1} ρ_t`` (so ``Var(mean of L samples) ≈ τ · Var / L``), estimated as in
emcee: the normalised autocorrelation function of each chain by FFT, averaged over chains, summed
up to the smallest window ``M`` with ``M ≥ c · τ̂(M)`` (``c = 5``). Pure functions on arrays.
"""
from __future__ import annotations

import numpy as np

__all__ = ["AutocorrError", "autocorr_function", "auto_window", "integrated_time"]


class AutocorrError(RuntimeError):
    """The series is too short for a reliable τ; ``tau`` carries the partial estimate."""

    def __init__(self, message: str, tau: float):
        super().__init__(message)
        self.tau = tau


def _next_pow_two(n: int) -> int:
    return 1 << max(0, int(n - 1).bit_length())


def autocorr_function(x) -> np.ndarray:
    """Normalised autocorrelation ``ρ_t`` (``ρ_0 = 1``) of ``x`` with shape ``(L,)`` or ``(chains, L)``.

    Each chain's ACF is computed about its own mean by FFT (zero-padded, no wrap-around), then the
    ACFs are averaged over chains. Dimensionless; length L.
    """
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    if x.ndim != 2 or x.shape[1] < 2:
        raise ValueError(f"series must have shape (L,) or (chains, L) with L ≥ 2, got {np.shape(x)}")
    if not np.all(np.isfinite(x)):
        raise ValueError("series contains NaN or inf")
    L = x.shape[1]
    n = 2 * _next_pow_two(L)
    y = x - x.mean(axis=1, keepdims=True)
    f = np.fft.rfft(y, n=n, axis=1)
    acf = np.fft.irfft(f * np.conjugate(f), n=n, axis=1)[:, :L]
    var = acf[:, :1]
    if np.any(var <= 0):
        raise ValueError("a chain is constant: its autocorrelation is undefined")
    return (acf / var).mean(axis=0)


def auto_window(taus: np.ndarray, c: float) -> int:
    """Sokal's window: the first ``M`` with ``M ≥ c · τ̂(M)``; the last index if none."""
    m = np.arange(len(taus)) < c * taus
    return int(np.argmin(m)) if np.any(~m) else len(taus) - 1


def integrated_time(x, c: float = 5.0, tol: float = 50.0, quiet: bool = False) -> float:
    """``τ`` of ``x`` (shape ``(L,)`` or ``(chains, L)``), in steps of the series.

    Raises :class:`AutocorrError` (with the estimate in ``.tau``) when ``L < tol · τ``, unless
    ``quiet``, in which case the estimate is returned as is.
    """
    f = autocorr_function(x)
    taus = 2.0 * np.cumsum(f) - 1.0
    tau = float(taus[auto_window(taus, c)])
    L = f.size
    if tol * tau > L and not quiet:
        raise AutocorrError(f"series of length {L} is shorter than {tol:g}·τ = {tol * tau:.1f}; "
                            f"τ ≈ {tau:.3g} is unreliable", tau)
    return tau
