"""Weights against hand-built matrices and libpysal (test-only dependency)."""

from __future__ import annotations

import numpy as np
import pytest

from geo.weights import distance_band, knn, row_standardise, with_self

LINE = np.array([[0.0, 0.0], [100.0, 0.0], [200.0, 0.0], [300.0, 0.0], [450.0, 0.0]])


def test_distance_band_by_hand():
    w = distance_band(LINE, 100.0).toarray()  # d <= 100 m counts, like libpysal DistanceBand
    expected = np.zeros((5, 5))
    for i, j in [(0, 1), (1, 2), (2, 3)]:
        expected[i, j] = expected[j, i] = 1
    assert (w == expected).all()
    assert with_self(distance_band(LINE, 100.0)).diagonal().tolist() == [1, 1, 1, 1, 1]


def test_knn_by_hand():
    w = knn(LINE, 1).toarray()
    assert [int(np.argmax(r)) for r in w] == [1, 0, 1, 2, 3]
    assert (w.sum(axis=1) == 1).all() and np.trace(w) == 0
    with pytest.raises(ValueError):
        knn(LINE, 5)


def test_matches_libpysal():
    from libpysal.weights import KNN, DistanceBand

    rng = np.random.default_rng(7)
    xy = rng.uniform(0, 5000, size=(200, 2))
    ours = distance_band(xy, 600.0).toarray()
    theirs = DistanceBand(xy, threshold=600.0, binary=True, silence_warnings=True).full()[0]
    assert (ours == theirs).all()
    assert (knn(xy, 6).toarray() == KNN(xy, k=6).full()[0]).all()


def test_row_standardise_keeps_islands_zero():
    w = row_standardise(distance_band(LINE, 100.0)).toarray()
    assert w[1].tolist() == [0.5, 0, 0.5, 0, 0] and w[4].sum() == 0
