"""Eigenpairs of a reversible chain's generator with high *relative* accuracy in the small eigenvalues.

The symmetrised generator ``L = D^{1/2} (I − K) D^{-1/2}`` (``D = diag p``) is built from directly
computed, positive off-diagonal quantities (never ``1 − K_ii``); its small eigenvalues (the gaps,
down to 1e-30 and below) are then determined to relative accuracy by those inputs, and are resolved
by a dense QR eigensolver in arbitrary precision (FLINT/Arb through python-flint) at ``prec`` bits,
doubling ``prec`` until the smallest non-zero eigenvalue sits well above the working precision.
"""
from __future__ import annotations

import numpy as np

__all__ = ["sym_generator_eigh"]


def _float64_matrix(A, B, extra, p):
    D = A.sum(axis=1) + B.sum(axis=1) + extra
    s = np.sqrt(p)
    M = (B - A) / np.outer(s, s)
    np.fill_diagonal(M, D / p)
    return M


def _arb_matrix(A, B, extra, p, prec):
    import flint

    flint.ctx.prec = prec
    N = len(p)
    sp = [flint.arb(float(x)).sqrt() for x in p]
    rows = []
    for i in range(N):
        row, D = [], flint.arb(float(extra[i]))
        for j in range(N):
            if i != j:
                a, b = flint.arb(float(A[i, j])), flint.arb(float(B[i, j]))
                D += a + b  # the diagonal is the exact sum of the rates: zero row sums stay exact
                row.append((b - a) / (sp[i] * sp[j]))
            else:
                row.append(None)
        row[i] = D / flint.arb(float(p[i]))
        rows.append(row)
    return flint.arb_mat(rows)


def _realify(vals: np.ndarray, vecs: np.ndarray, rtol: float) -> np.ndarray:
    """Real orthonormal eigenvectors of a real symmetric matrix from complex ones.

    Each complex eigenvector's real and imaginary parts are real eigenvectors of the same
    eigenvalue; within a group of eigenvalues equal to ``rtol`` (exact degeneracies, resolved far
    below float64)  the span of all of them is
    orthonormalised by an SVD.
    """
    N = len(vals)
    U = np.empty((vecs.shape[0], N))
    i = 0
    while i < N:
        j = i + 1
        scale = max(abs(vals[i]), 1e-300)
        while j < N and abs(vals[j] - vals[i]) <= rtol * max(scale, abs(vals[j])):
            j += 1
        block = np.concatenate([vecs[:, i:j].real, vecs[:, i:j].imag], axis=1)
        u, _, _ = np.linalg.svd(block, full_matrices=False)
        U[:, i:j] = u[:, : j - i]
        i = j
    q, r = np.linalg.qr(U)
    return q * np.sign(np.diag(r))


def sym_generator_eigh(A, B, extra, p, prec: int = 256, max_prec: int = 4096):
    """Eigen-decomposition of ``L[i,j] = (B_ij − A_ij)/√(p_i p_j)`` (i ≠ j), ``L[i,i] = D_i/p_i``.

    ``D_i = Σ_{j≠i} (A_ij + B_ij) + extra_i`` is summed in the working precision, so a generator
    with zero row sums keeps them exactly. ``A, B ≥ 0`` (N × N, diagonals zero), ``extra ≥ 0`` and
    ``p > 0`` are float64 inputs whose
    relative accuracy carries over to the small eigenvalues. Returns ``(mu, U, method, check)``:
    eigenvalues ascending (float64, each to high relative accuracy), orthonormal float64
    eigenvectors (columns), the method string, and the largest absolute difference between these
    eigenvalues and a float64 ``eigh`` of the same matrix (a self-check; should be ~1e-15).
    """
    import flint

    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    extra = np.asarray(extra, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    if np.any(np.diag(A)) or np.any(np.diag(B)):
        raise ValueError("generator inputs A, B must have zero diagonals")
    if np.any(A < 0) or np.any(B < 0) or np.any(extra < 0) or np.any(p <= 0):
        raise ValueError("generator inputs must be non-negative (p positive)")
    N = len(p)
    M64 = _float64_matrix(A, B, extra, p)
    mu64 = np.linalg.eigvalsh(M64)
    old = flint.ctx.prec
    try:
        while True:
            M = _arb_matrix(A, B, extra, p, prec)
            vals, vecs = flint.acb_mat(M).eig(right=True, algorithm="approx")
            mu = np.array([float(v.real.mid()) for v in vals])
            # the floor below which an eigenvalue is not resolved at this precision
            floor = 2.0 ** (-prec + 64) * max(1.0, np.abs(mu).max())
            nonzero = np.abs(mu)[np.abs(mu) > floor]
            smallest = nonzero.min() if nonzero.size else np.inf
            if smallest > 2.0 ** (-prec + 128) or prec >= max_prec:
                break
            prec *= 2
        V = np.array(
            [[complex(float(vecs[i, k].real.mid()), float(vecs[i, k].imag.mid())) for k in range(N)] for i in range(N)]
        )
    finally:
        flint.ctx.prec = old
    order = np.argsort(mu)
    mu, V = mu[order], V[:, order]
    U = _realify(mu, V, 2.0 ** (-prec // 2))
    check = float(np.abs(np.sort(mu) - mu64).max())
    return mu, U, f"arb-qr-{prec}bit", check
