"""Local Moran's I (Anselin 1995) with row-standardised weights, as esda ``Moran_Local``.

I_i = (n - 1) z_i (sum_j w_ij z_j) / sum_k z_k^2, with z = (y - ybar) / sd(y) and W
row-standardised without self-neighbours. Quadrants: 1 HH, 2 LH, 3 LL, 4 HL (esda's q).
Pseudo p-values by conditional permutation are optional (seeded, so reproducible).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from geo.weights import row_standardise


@dataclass(frozen=True)
class LocalMoran:
    i: np.ndarray
    quadrant: np.ndarray
    p_sim: np.ndarray | None


def local_moran(y: np.ndarray, w: sparse.spmatrix, permutations: int = 0, seed: int = 12345) -> LocalMoran:
    """Local Moran's I of ``y`` over binary/any weights ``w`` (self-weights removed)."""
    y = np.asarray(y, dtype="float64").ravel()
    n = len(y)
    if w.shape != (n, n) or n < 3:
        raise ValueError("weights must be n x n with n >= 3")
    w = sparse.csr_matrix(w, dtype="float64", copy=True)
    w.setdiag(0)
    w.eliminate_zeros()
    wr = row_standardise(w)
    sd = y.std()
    if sd == 0:
        return LocalMoran(np.zeros(n), np.zeros(n, dtype="int8"), np.ones(n) if permutations else None)
    z = (y - y.mean()) / sd
    den = (z * z).sum()
    lag = wr @ z
    stat = (n - 1) * z * lag / den
    quad = np.where(z > 0, np.where(lag > 0, 1, 4), np.where(lag > 0, 2, 3)).astype("int8")
    p_sim = _conditional_permutation(z, wr, stat, den, permutations, seed) if permutations else None
    return LocalMoran(stat, quad, p_sim)


def _conditional_permutation(z: np.ndarray, wr: sparse.csr_matrix, stat: np.ndarray, den: float,
                             permutations: int, seed: int) -> np.ndarray:
    """Folded pseudo p-value: (1 + #{|I_sim| >= |I_obs| on the same side}) / (1 + permutations)."""
    rng = np.random.default_rng(seed)
    n = len(z)
    out = np.ones(n)
    for i in range(n):
        row = wr.getrow(i)
        k = row.nnz
        if k == 0:
            continue
        others = np.delete(np.arange(n), i)
        draws = np.stack([rng.choice(others, size=k, replace=False) for _ in range(permutations)])
        lags = (z[draws] * row.data).sum(axis=1)
        sims = (n - 1) * z[i] * lags / den
        larger = (sims >= stat[i]).sum()
        larger = min(larger, permutations - larger)
        out[i] = (larger + 1) / (permutations + 1)
    return out
