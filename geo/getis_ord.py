"""Getis-Ord Gi* (local G with the unit counted as its own neighbour), binary weights.

Reproduces esda ``G_Local(y, w, transform='B', star=True)``: the diagonal of W is set to 1,
G*_i = sum_j w_ij y_j / sum_j y_j, and the analytic moments are

    E[G*_i] = W_i / n,   Var[G*_i] = W_i (n - W_i) / (n - 1) / n^2 * s^2 / ybar^2,

with W_i the row sum (self included), ybar and s^2 the mean and population variance of y.
p-values are two-sided from the normal; bins follow the Esri convention (+-3: 99 %, +-2: 95 %,
+-1: 90 %). Optional false-discovery-rate control uses Benjamini-Hochberg per confidence level,
as ArcGIS does, instead of the fixed 0.10/0.05/0.01 thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.stats import norm

from geo.weights import with_self

LEVELS = ((0.01, 3), (0.05, 2), (0.10, 1))  # (alpha, |bin|), strictest first


@dataclass(frozen=True)
class GiStar:
    """Per-unit results, aligned with the input order."""

    g: np.ndarray
    expected: np.ndarray
    variance: np.ndarray
    z: np.ndarray
    p: np.ndarray    # two-sided normal p-value
    bin: np.ndarray  # -3..+3 (Esri), 0 = not significant
    fdr: bool


def bh_threshold(p: np.ndarray, alpha: float) -> float:
    """Benjamini-Hochberg: the largest p_(k) with p_(k) <= k alpha / m; 0.0 when none qualify
    (then nothing is significant at this level)."""
    ps = np.sort(np.asarray(p, dtype="float64"))
    m = len(ps)
    if m == 0:
        return 0.0
    ok = np.nonzero(ps <= np.arange(1, m + 1) * alpha / m)[0]
    return float(ps[ok[-1]]) if len(ok) else 0.0


def esri_bins(z: np.ndarray, p: np.ndarray, fdr: bool = False) -> np.ndarray:
    """-3..+3 by confidence level; with ``fdr`` each level's p cut-off comes from BH."""
    z = np.asarray(z, dtype="float64")
    p = np.asarray(p, dtype="float64")
    out = np.zeros(len(z), dtype="int8")
    for alpha, level in reversed(LEVELS):  # loosest first, stricter levels overwrite
        cut = bh_threshold(p, alpha) if fdr else alpha
        sig = (p <= cut) if fdr else (p < cut)
        out[sig] = level
    return (out * np.sign(z)).astype("int8")


def gi_star(y: np.ndarray, w: sparse.spmatrix, fdr: bool = False) -> GiStar:
    """Gi* of counts/values ``y`` over binary neighbour weights ``w`` (diagonal ignored and set
    to 1). Units without variation (all y equal) get z = 0, p = 1: nothing stands out."""
    y = np.asarray(y, dtype="float64").ravel()
    n = len(y)
    if w.shape != (n, n):
        raise ValueError(f"weights are {w.shape}, values have {n} units")
    if n < 3:
        raise ValueError("Gi* needs at least 3 units")
    ws = with_self(w)
    total = y.sum()
    mean = total / n
    var_y = (y**2).sum() / n - mean**2
    card = np.asarray(ws.sum(axis=1)).ravel()
    expected = card / n
    if total == 0 or var_y <= 1e-12 * max(mean**2, 1.0):
        zeros = np.zeros(n)
        return GiStar(zeros, expected, zeros, zeros, np.ones(n), np.zeros(n, dtype="int8"), fdr)
    g = (ws @ y) / total
    variance = card * (n - card) / (n - 1) / n**2 * (var_y / mean**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(variance > 0, (g - expected) / np.sqrt(variance), 0.0)
    p = 2.0 * norm.sf(np.abs(z))
    return GiStar(g, expected, variance, z, p, esri_bins(z, p, fdr), fdr)
