"""Binary spatial weights as scipy sparse matrices, from metric coordinates (EPSG:3405).

Why our own: geo/ must not depend on libpysal at runtime, and a cKDTree over metric centroids
builds province-sized weights in milliseconds. Conventions match libpysal's ``DistanceBand``
(pairs with distance <= threshold, symmetric) and ``KNN`` (k nearest others, not symmetric).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree


def _coords(xy: np.ndarray) -> np.ndarray:
    arr = np.asarray(xy, dtype="float64")
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError("coordinates must be an (n, 2) array of metres")
    return arr


def distance_band(xy: np.ndarray, threshold_m: float) -> sparse.csr_matrix:
    """Binary weights: w_ij = 1 when 0 < d_ij <= threshold_m (metres); diagonal empty."""
    if threshold_m <= 0:
        raise ValueError("threshold_m must be > 0")
    pts = _coords(xy)
    n = len(pts)
    pairs = cKDTree(pts).query_pairs(threshold_m, output_type="ndarray")
    rows = np.concatenate([pairs[:, 0], pairs[:, 1]])
    cols = np.concatenate([pairs[:, 1], pairs[:, 0]])
    data = np.ones(len(rows))
    return sparse.csr_matrix((data, (rows, cols)), shape=(n, n))


def knn(xy: np.ndarray, k: int) -> sparse.csr_matrix:
    """Binary weights: w_ij = 1 when j is among the k nearest other units of i (row i)."""
    pts = _coords(xy)
    n = len(pts)
    if not 1 <= k < n:
        raise ValueError(f"k must be between 1 and n-1 = {n - 1}")
    _, idx = cKDTree(pts).query(pts, k=k + 1)
    rows, cols = [], []
    for i in range(n):  # drop self wherever ties put it, keep exactly k others
        others = [j for j in idx[i] if j != i][:k]
        rows.extend([i] * len(others))
        cols.extend(others)
    return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))


def with_self(w: sparse.spmatrix, value: float = 1.0) -> sparse.csr_matrix:
    """The same weights with every unit its own neighbour (the "star" in Gi*)."""
    w = sparse.csr_matrix(w, dtype="float64", copy=True)
    w.setdiag(value)
    return w


def row_standardise(w: sparse.spmatrix) -> sparse.csr_matrix:
    """Rows summing to 1 (islands stay all-zero)."""
    w = sparse.csr_matrix(w, dtype="float64")
    sums = np.asarray(w.sum(axis=1)).ravel()
    inv = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
    return sparse.diags(inv) @ w
