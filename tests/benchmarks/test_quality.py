"""The quality harness's summary: mean ± sd over seeds, yardstick once, update vs one fit."""

import pandas as pd

from benchmarks.quality import summarise


def _rows(seed: int, clustering: str, nmi: float) -> list[dict]:
    common = {"unit": "window", "k": 8, "seed": seed, "clustering": clustering, "ari": 0.1}
    common["edge_share"] = 0.1 + seed / 10
    return [
        {**common, "method": f"sonotypes ({clustering})", "nmi": nmi, "probe": 0.5},
        {**common, "method": "spectral shape", "nmi": 0.4 + seed / 100, "probe": 0.9},
    ]


def test_summary_has_one_row_per_method_and_the_update_ratio():
    rows = []
    for seed, (default, onefit) in enumerate([(0.18, 0.2), (0.27, 0.3)]):
        rows += _rows(seed, "default", default) + _rows(seed, "onefit", onefit)
    # per-seed tables concatenated keep their own row numbers
    text = summarise(pd.concat([pd.DataFrame(rows[:4]), pd.DataFrame(rows[4:])]))
    lines = text.splitlines()
    assert "| window | sonotypes: default | 0.225 ± 0.064 |" in text
    assert "| window | sonotypes: onefit | 0.250 ± 0.071 |" in text
    # the yardstick is the same whichever clustering: counted once per seed
    assert sum("spectral shape" in line for line in lines) == 1
    assert "| window | spectral shape | 0.405 ± 0.007 |" in text
    assert "(per window): 0.90, 0.90" in text
    assert "(max over seeds): default 0.20, onefit 0.20" in text
    assert text.startswith("seeds: [0, 1], k = 8")
