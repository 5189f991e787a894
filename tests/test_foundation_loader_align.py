"""The run-based alignment: both scatter paths agree, and gappy files align like a dense reference."""
from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from fastopt.files import loader
from fastopt.files.loader import load_panel
from fastopt.files.stats import write_stats

DAY0 = np.datetime64("2022-03-01", "D")


@st.composite
def gappy_universes(draw):
    """name -> (sorted unique days, returns); days drawn with gaps, runs and late starts."""
    out = {}
    for j in range(draw(st.integers(1, 5))):
        offsets = sorted(draw(st.sets(st.integers(0, 120), min_size=1, max_size=60)))
        values = draw(st.lists(st.floats(-0.5, 0.5, allow_nan=False, width=64), min_size=len(offsets),
                               max_size=len(offsets)))
        out[f"s{j}"] = (DAY0 + np.array(offsets, dtype="timedelta64[D]"), np.array(values))
    return out


def dense_reference(series, *, lookback=None):
    """Union of the days, sorted; a cell per (day, strategy); missing = 0. Plain numpy, no runs."""
    union = np.unique(np.concatenate([d for d, _ in series.values()]))
    if lookback is not None:
        union = union[union > union[-1] - np.timedelta64(lookback, "D")]
    names = sorted(n for n, (d, _) in series.items() if np.isin(d, union).any())
    table = np.zeros((union.size, len(names)))
    for j, name in enumerate(names):
        days, values = series[name]
        inside = np.isin(days, union)
        table[np.searchsorted(union, days[inside]), j] = values[inside]
    return union, names, table


@given(gappy_universes(), st.one_of(st.none(), st.integers(1, 130)), st.booleans())
def test_gappy_files_align_like_the_dense_reference(tmp_path_factory, series, lookback, vectorized):
    root = tmp_path_factory.mktemp("u")
    for name, (days, values) in series.items():
        write_stats(root / name / "stats.json", strategy=name, symbol=None, dates=days, returns=values)
    saved = loader._LOOP_RUNS_MAX
    loader._LOOP_RUNS_MAX = -1 if vectorized else saved
    try:
        panel = load_panel(root, lookback=lookback, min_history_days=0)
    finally:
        loader._LOOP_RUNS_MAX = saved
    dates, names, table = dense_reference(series, lookback=lookback)
    assert panel.names == names
    assert np.array_equal(panel.dates, dates)
    assert panel.returns.tobytes() == table.tobytes()


@given(st.data())
def test_scatter_paths_agree(data):
    n_days = data.draw(st.integers(1, 30))
    n_columns = data.draw(st.integers(1, 4))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    rows, columns, starts, lengths = [], [], [], []
    at = 0
    for column in range(n_columns):  # non-overlapping runs down each column
        row = int(rng.integers(0, n_days))
        while row < n_days:
            length = int(rng.integers(1, n_days - row + 1))
            rows.append(row), columns.append(column), starts.append(at), lengths.append(length)
            at += length
            row += length + int(rng.integers(1, 4))
    values = rng.standard_normal(at)
    arrays = {"run_row": np.array(rows, dtype=np.int64), "run_column": np.array(columns, dtype=np.int64),
              "run_at": np.array(starts, dtype=np.int64), "run_len": np.array(lengths, dtype=np.int64)}
    saved = loader._LOOP_RUNS_MAX
    try:
        loader._LOOP_RUNS_MAX = 10**9
        looped = loader._scatter(values, n_days=n_days, n_columns=n_columns, **arrays)
        loader._LOOP_RUNS_MAX = -1
        vectorized = loader._scatter(values, n_days=n_days, n_columns=n_columns, **arrays)
    finally:
        loader._LOOP_RUNS_MAX = saved
    assert looped.tobytes() == vectorized.tobytes()
    assert np.count_nonzero(looped) == np.count_nonzero(values)
