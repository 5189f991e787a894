"""The loader's fast path for consecutive-day files (stats_file._splice) equals the plain per-file parse.

``loads_stats`` (orjson on the whole file, then entry-by-entry checks) is the
reference; ``loads_many`` must give exactly its result (values bit for bit,
metadata, warnings, or the same error text) on well-formed files in every
layout, on files with tricky metadata, and on random byte-level corruptions of
a well-formed file.
"""
from __future__ import annotations

import json

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from fastopt.files import stats as stats_file
from fastopt.files.stats import loads_many, loads_stats

DAY0 = np.datetime64("2019-12-25", "D")


def _outcome(result):
    if isinstance(result, ValueError):
        return ("error", str(result))
    return ("ok", result.dates.tobytes(), result.returns.tobytes(), result.metadata, result.warnings)


def _reference(content: bytes):
    try:
        return _outcome(loads_stats(content))
    except ValueError as exc:
        return ("error", str(exc))


TRICKY_METADATA = [
    {},
    {"strategy": "s", "symbol": "BTC/USDT:USDT", "interval": "1d"},
    {"note": "daily_dates"},
    {"note": "\"daily_returns\": [1, 2]"},
    {"note": "__fastopt_spliced_daily_dates__"},
    {"note": "a ] b [ c"},
    {"nested": {"daily_dates": ["2020-01-01"], "daily_returns": [0.5]}},
    {"list": [1, 2, {"daily_returns": [3]}]},
    {"live": True, "sharpe": None, "Total Return [%]": 12.5},
]

LAYOUTS = [
    lambda obj: orjson.dumps(obj),
    lambda obj: json.dumps(obj).encode(),
    lambda obj: json.dumps(obj, indent=2).encode(),
    lambda obj: json.dumps(obj, indent="\t").encode(),
    lambda obj: json.dumps(obj, separators=(" , ", " : ")).encode(),
    lambda obj: json.dumps(obj, ensure_ascii=True).encode().replace(b"\n", b"\r\n"),
]

returns_values = st.one_of(
    st.floats(min_value=-0.99, max_value=0.99, allow_nan=False, width=64),
    st.integers(min_value=-0, max_value=1),
    st.floats(min_value=-5.0, max_value=50.0, allow_nan=False, width=64),  # |r| > 1 and r <= -1 too
)


@st.composite
def consecutive_files(draw):
    start = DAY0 + np.timedelta64(draw(st.integers(0, 4000)), "D")
    values = draw(st.lists(returns_values, min_size=1, max_size=40))
    days = np.datetime_as_string(start + np.arange(len(values)), unit="D").tolist()
    metadata = draw(st.sampled_from(TRICKY_METADATA))
    order = draw(st.sampled_from(["meta_first", "series_first", "returns_first", "between"]))
    if order == "meta_first":
        obj = {**metadata, "daily_dates": days, "daily_returns": values}
    elif order == "series_first":
        obj = {"daily_dates": days, "daily_returns": values, **metadata}
    elif order == "returns_first":
        obj = {"daily_returns": values, **metadata, "daily_dates": days}
    else:
        obj = {"daily_dates": days, **metadata, "daily_returns": values}
    return draw(st.sampled_from(LAYOUTS))(obj)


@settings(max_examples=150)
@given(st.lists(consecutive_files(), min_size=1, max_size=6))
def test_fast_path_equals_per_file_parse(contents):
    batched = loads_many(contents)
    for content, result in zip(contents, batched):
        assert _outcome(result) == _reference(content)


@given(consecutive_files())
def test_plain_layouts_take_the_fast_path(content):
    """Guards the test above: without nested series keys, every layout is spliced (not the generic path)."""
    data = orjson.loads(content)
    nested = any(isinstance(v, (dict, list)) for k, v in data.items() if k not in stats_file.SERIES_KEYS)
    if not nested and b"__fastopt_spliced_" not in content:
        assert stats_file._splice(content) is not None


MUTATION_BYTES = list(b'"[]{},:-0123456789.eE \n\\tfnuNI') + [0xD9]


@settings(max_examples=300)
@given(
    consecutive_files(),
    st.lists(
        st.tuples(st.sampled_from(["replace", "insert", "delete"]), st.floats(0, 1, exclude_max=True),
                  st.sampled_from(MUTATION_BYTES)),
        min_size=1,
        max_size=3,
    ),
)
def test_corrupted_bytes_give_the_per_file_result(content, mutations):
    data = bytearray(content)
    for kind, where, byte in mutations:
        at = int(where * len(data)) if data else 0
        if kind == "replace" and data:
            data[at] = byte
        elif kind == "insert":
            data.insert(at, byte)
        elif data:
            del data[at]
    corrupted = bytes(data)
    (result,) = loads_many([corrupted])
    assert _outcome(result) == _reference(corrupted)


def test_specific_near_misses():
    good = b'{"daily_dates": ["2024-02-28", "2024-02-29", "2024-03-01"], "daily_returns": [0.1, -0.2, 0.3]}'
    cases = [
        good,
        good.replace(b"2024-03-01", b"2024-03-02"),  # a gap: generic path, still accepted
        good.replace(b"2024-02-29", b"2023-02-29"),  # not a day
        good.replace(b"0.3]", b"0.3, 0.4]"),  # lengths differ
        good.replace(b'"2024-03-01"]', b'"2024-03-01", "2024-03-02"]'),
        good.replace(b"-0.2", b"-1.0"),  # r <= -1
        good.replace(b"-0.2", b"1e400"),  # overflow: invalid JSON for orjson
        good.replace(b"-0.2", b"true"),
        good.replace(b"-0.2", b"01"),
        good.replace(b'"2024-02-29"', b'"2024-02-\\u00329"'),  # escaped digit: same day
        good.replace(b'"daily_returns"', b'"daily_returns", "x"', 1),
        good + b"x",
        good[:-1] + b', "daily_dates": ["2024-01-01"]}',  # duplicate key: the last one wins
        b'{"a": "daily_dates": ["2024-01-01"], "daily_returns": [0.1]}',
        b'{"daily_dates": ["2024-01-01"]  ,  "daily_returns": [ 0.1 ] }',
        b'{"daily_dates": [], "daily_returns": []}',
    ]
    batched = loads_many(cases)
    for content, result in zip(cases, batched):
        assert _outcome(result) == _reference(content), content
    assert _outcome(batched[0])[0] == "ok" and _outcome(batched[1])[0] == "ok"
    assert _outcome(batched[9]) == _outcome(batched[0])


@given(st.lists(st.one_of(consecutive_files(), st.sampled_from([b"{", b'{"daily_returns": {"2024-01-01": 0.5}}'])),
                min_size=1, max_size=5))
def test_batch_does_not_depend_on_the_callers_buffer_after_add(contents):
    """StatsBatch.add may be fed one reused buffer: overwriting it after add changes no result."""
    batch = stats_file.StatsBatch()
    buffer = bytearray()
    for content in contents:
        buffer[:] = content
        batch.add(buffer)
        buffer[:] = b"\xff" * len(buffer)  # scribble over it before the next file
    results = batch.finish()
    assert [_outcome(r) for r in results] == [_reference(c) for c in contents]
