"""Gi* against a 5-unit case worked by hand and against esda G_Local (test-only)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from geo.getis_ord import bh_threshold, esri_bins, gi_star
from geo.weights import distance_band, knn

LINE = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [4.0, 0.0]])


def test_five_units_by_hand():
    # y = 1,2,3,4,10 on a line, neighbours within 1 m, plus self.  n = 5, sum = 20,
    # mean = 4, population variance = 130/5 - 16 = 10, row sums W_i = 2,3,3,3,2.
    # Var(G*_i) = W_i (5 - W_i) / 4 / 25 * 10/16 = 6/100 * 0.625 = 0.0375 for every i.
    res = gi_star(np.array([1, 2, 3, 4, 10]), distance_band(LINE, 1.0))
    sd = math.sqrt(0.0375)
    assert res.g == pytest.approx([3 / 20, 6 / 20, 9 / 20, 17 / 20, 14 / 20])
    assert res.expected == pytest.approx([0.4, 0.6, 0.6, 0.6, 0.4])
    assert res.variance == pytest.approx([0.0375] * 5)
    assert res.z == pytest.approx([-0.25 / sd, -0.3 / sd, -0.15 / sd, 0.25 / sd, 0.3 / sd])
    assert res.z[4] == pytest.approx(1.5491933, abs=1e-6)
    assert res.p[4] == pytest.approx(0.1213352, abs=1e-6)  # two-sided
    assert res.bin.tolist() == [0, 0, 0, 0, 0]


@pytest.mark.parametrize("kind", ["band", "knn"])
def test_equals_esda(kind):
    from esda.getisord import G_Local
    from libpysal.weights import WSP

    rng = np.random.default_rng(42)
    xy = rng.uniform(0, 10_000, size=(400, 2))
    y = rng.poisson(np.where(xy[:, 0] < 3000, 6.0, 2.0))
    w = distance_band(xy, 900.0) if kind == "band" else knn(xy, 8)
    ours = gi_star(y, w)
    theirs = G_Local(y.astype(float), WSP(w).to_W(silence_warnings=True), transform="B", star=True,
                     permutations=0)
    assert np.abs(ours.z - theirs.Zs).max() < 1e-6
    assert np.abs(ours.g - theirs.Gs).max() < 1e-9
    assert (ours.bin > 0).sum() > 10  # the planted western excess shows up


def test_bins_and_fdr():
    z = np.array([3.0, -2.2, 1.7, 0.5, -3.5])
    p = np.array([0.0027, 0.0278, 0.0891, 0.617, 0.000465])
    assert esri_bins(z, p).tolist() == [3, -2, 1, 0, -3]
    # BH at 0.05 over 5 tests: sorted p <= k*0.01 -> 0.000465 (<=0.01), 0.0027 (<=0.02), 0.0278 (>0.03? no,
    # 0.0278 <= 0.03) -> cut 0.0278; at 0.10: 0.0891 <= 0.08? no -> cut 0.0278; at 0.01: 0.0027 <= 0.004
    assert bh_threshold(p, 0.05) == pytest.approx(0.0278)
    assert bh_threshold(p, 0.01) == pytest.approx(0.0027)
    assert esri_bins(z, p, fdr=True).tolist() == [3, -2, 0, 0, -3]


def test_bh_matches_esda_fdr():
    from esda import fdr

    # esda returns the critical value k*alpha/m, we return p_(k): same rejected set.
    p = np.random.default_rng(3).uniform(0, 1, 300) ** 3
    ours, theirs = bh_threshold(p, 0.05), fdr(p, 0.05)
    assert ((p <= ours) == (p < theirs)).all() and (p <= ours).sum() > 5


def test_no_variation_means_no_hotspot():
    res = gi_star(np.zeros(5), distance_band(LINE, 1.0))
    assert res.z.tolist() == [0] * 5 and res.bin.tolist() == [0] * 5
