"""The retrieval kernel's helpers shared by content, ALS and the hybrid (numpy only)."""

from __future__ import annotations

import numpy as np

from socialrec.models.retrieval import history_rows, most_similar, row_index, unit_profile


def test_history_rows_sorted_by_item_and_known_items_only():
    index = row_index(np.array(["a", "b", "c"]))
    assert index == {"a": 0, "b": 1, "c": 2}
    history = [{"item": "c", "w": 2.0, "own": True}, {"item": "zz", "w": 9.0, "own": False},
               {"item": "a", "w": 1.0, "own": False}]
    rows, w, own = history_rows(history, index, with_own=True)
    assert rows.tolist() == [0, 2] and w.tolist() == [1.0, 2.0] and own.tolist() == [False, True]
    rows, w, own = history_rows(history, index)  # no own field read: all False
    assert rows.dtype == np.int64 and w.dtype == np.float64 and not own.any()
    # The order the history arrived in does not matter.
    assert history_rows(history[::-1], index)[0].tolist() == [0, 2]


def test_unit_profile_and_most_similar():
    m = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=np.float32)
    p = unit_profile(np.array([3.0, 4.0]), m, np.array([0, 1]))
    np.testing.assert_allclose(p, [0.6, 0.8], atol=1e-7)
    assert p.dtype == np.float32
    assert unit_profile(np.array([1.0, -1.0]), m, np.array([0, 0])) is None  # cancels out
    # Item 2 (0.6, 0.8) is closer to engaged item 1 (0, 1) than to item 0; item 0 to itself.
    assert most_similar(m, np.array([2, 0]), np.array([0, 1])).tolist() == [1, 0]
