"""Version table and size shares from a clustering history written by hand."""

import numpy as np

from analysis.report.stability import growth_rows, size_shares, version_rows

HISTORY = [
    {"version": 1, "kind": "fit", "created": "2025-01-02T03:04:05+00:00", "n_rows": 400,
     "n_new_rows": 400, "inertia": 0.5, "sizes": [300, 100]},
    {"version": 2, "kind": "update", "created": "2026-01-02T03:04:05+00:00", "n_rows": 600,
     "n_new_rows": 200, "reassigned": 0.25, "reassigned_method": "exact", "relabelled": 0.0,
     "drift_mean": 0.15,
     "drift_max": 0.2, "drift": [0.1, 0.2], "inertia": 0.25, "sizes": [300, 300]},
    {"version": 3, "kind": "update", "n_rows": 600},
]  # fmt: skip


def test_version_rows_show_each_version():
    rows = version_rows(HISTORY)
    assert rows[0] == ["1", "fit", "2025-01-02 03:04", "400", "400", "–", "–", "–", "–", "0.5"]
    assert rows[1] == [
        "2", "update", "2026-01-02 03:04", "600", "200", "0.00%", "25.00% (exact)", "0.15",
        "0.2", "0.25",
    ]  # fmt: skip
    assert rows[2][:2] == ["3", "update"]
    assert rows[2][5:7] == ["–", "–"]


def test_histories_written_before_the_split_show_their_churn_as_would_move():
    old = [{"version": 2, "kind": "update", "churn": 0.1, "churn_method": "sample"}]
    assert version_rows(old)[0][5:7] == ["–", "10.00% (sample)"]


def test_size_shares_skip_versions_without_sizes():
    versions, shares = size_shares(HISTORY, 2)
    assert versions == [1, 2]
    np.testing.assert_allclose(shares, [[0.75, 0.25], [0.5, 0.5]])
    assert size_shares(HISTORY, 3)[1].shape == (0, 3)


def test_growth_compares_the_rows_before_the_update_with_the_rows_it_added():
    history = [
        {"version": 1, "kind": "fit", "sizes": [100, 300, 100]},
        {"version": 2, "kind": "update", "relabel_all": False, "sizes": [160, 330, 260]},
    ]
    # before: 20 / 60 / 20 %; the 250 new rows: 60, 30, 160 → 24 / 12 / 64 %
    assert growth_rows(history, 3) == [
        ["1", "60.0%", "12.0%", "-48.0"],
        ["2", "20.0%", "64.0%", "+44.0"],
        ["0", "20.0%", "24.0%", "+4.0"],
    ]
    relabelled = [history[0], {**history[1], "relabel_all": True}]
    assert growth_rows(relabelled, 3) == []
    assert growth_rows(history[:1], 3) == []


def test_a_sonotype_opened_by_the_update_is_marked_new_and_had_no_rows_before():
    history = [
        {"version": 1, "kind": "fit", "sizes": [300, 100]},
        {"version": 2, "kind": "update", "sizes": [360, 140, 100], "new_sonotypes": [2]},
    ]
    # the 200 new rows: 60 / 40 / 100
    assert growth_rows(history, 3)[0] == ["2 (new)", "0.0%", "50.0%", "+50.0"]
