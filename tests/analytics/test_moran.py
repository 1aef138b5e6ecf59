"""Local Moran's I against a hand-computed case and esda Moran_Local (test-only)."""

from __future__ import annotations

import numpy as np
import pytest

from geo.moran import local_moran
from geo.weights import distance_band, knn

LINE = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [4.0, 0.0]])


def test_by_hand():
    # y = 1,2,3,4,10: mean 4, sd sqrt(10); z = (-3,-2,-1,0,6)/sqrt(10); sum z^2 = 50/10 = 5
    # unit 4: lag = z_3 = 0 -> I = 0; unit 0: lag = z_1 -> I = 4 * (-3)(-2)/10 / 5 = 0.48
    res = local_moran(np.array([1, 2, 3, 4, 10]), distance_band(LINE, 1.0))
    assert res.i[0] == pytest.approx(0.48)
    assert res.i[4] == pytest.approx(0.0)
    # unit 2: lag = (z_1 + z_3)/2 = -1/sqrt(10) -> I = 4 * (-1)(-1)/10 / 5 = 0.08
    assert res.i[2] == pytest.approx(0.08)
    assert res.quadrant[0] == 3  # low-low


def test_equals_esda():
    from esda.moran import Moran_Local
    from libpysal.weights import WSP

    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 10_000, size=(300, 2))
    y = rng.poisson(3 + xy[:, 0] / 2000)
    w = knn(xy, 6)
    ours = local_moran(y, w, permutations=99)
    theirs = Moran_Local(y.astype(float), WSP(w).to_W(silence_warnings=True), transformation="r",
                         permutations=0)
    assert np.abs(ours.i - theirs.Is).max() < 1e-9
    assert (ours.quadrant == theirs.q).all()
    assert ours.p_sim is not None and ((ours.p_sim > 0) & (ours.p_sim <= 0.5 + 1e-9)).all()
