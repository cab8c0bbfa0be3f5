"""Heatmaps, composition and diel composition against a small occurrence table counted by hand."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from analysis.report.when_where import composition, diel_composition, gaps, heatmap, token_ranks

NAN = np.nan


@pytest.fixture
def occurrence() -> pd.DataFrame:
    """Site A recorded on 15 and 17 March, site B on the 15th; nothing on the 16th."""
    rows = [
        ("A", dt.date(2024, 3, 15), 5, 0, 3, 3.0, 0.75),
        ("A", dt.date(2024, 3, 15), 5, 1, 1, 1.0, 0.25),
        ("A", dt.date(2024, 3, 17), 6, 1, 2, 2.0, 1.0),
        ("B", dt.date(2024, 3, 15), 23, 0, 4, 4.0, 1.0),
    ]
    columns = ["site", "date", "hour", "sonotype", "n", "seconds", "share"]
    return pd.DataFrame(rows, columns=columns)


def test_heatmap_cells_hold_shares_zero_where_recorded_and_nan_where_not(occurrence):
    data = heatmap(occurrence, 0)
    assert data.sites == ["A", "B"]
    assert [d.date() for d in data.dates] == [dt.date(2024, 3, 15), dt.date(2024, 3, 17)]
    assert data.values.shape == (2, 24, 2)
    expected = np.full((2, 24, 2), NAN)
    expected[0, 5, 0] = 0.75
    expected[0, 6, 1] = 0.0  # site A recorded at 06 h on the 17th: only sonotype 1
    expected[1, 23, 0] = 1.0
    np.testing.assert_array_equal(data.values, expected)
    assert data.cap == pytest.approx(np.percentile([0.75, 1.0], 99))


def test_heatmap_of_a_sonotype_absent_everywhere_is_zero_where_recorded(occurrence):
    data = heatmap(occurrence, 2)
    assert np.nansum(data.values) == 0.0
    assert np.count_nonzero(~np.isnan(data.values)) == 3
    assert data.cap == 1.0


def test_gaps_mark_dates_that_are_not_consecutive():
    dates = [pd.Timestamp(d) for d in ("2024-03-15", "2024-03-16", "2024-03-20", "2025-01-01")]
    assert gaps(dates) == [1, 2]


def test_composition_is_the_share_of_each_sites_seconds(occurrence):
    sites, shares = composition(occurrence, 3)
    assert sites == ["A", "B"]
    np.testing.assert_allclose(shares, [[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])


def test_diel_composition_per_hour_of_one_site(occurrence):
    shares = diel_composition(occurrence, "A", 2)
    assert shares.shape == (24, 2)
    np.testing.assert_allclose(shares[5], [0.75, 0.25])
    np.testing.assert_allclose(shares[6], [0.0, 1.0])
    assert shares[[h for h in range(24) if h not in (5, 6)]].sum() == 0.0


def test_token_ranks_add_up_sites_and_hours():
    usage = pd.DataFrame(
        {
            "site": ["A", "A", "B", "B"],
            "hour": [1, 2, 1, 1],
            "token": [7, 7, 3, 9],
            "n": [2, 3, 4, 1],
        }
    )
    assert token_ranks(usage).tolist() == [5, 4, 1]
