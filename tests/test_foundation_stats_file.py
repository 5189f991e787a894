"""stats.json contract: every shape round-trips bit for bit; every corruption has its reason."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastopt.files import stats as stats_file
from fastopt.errors import InputError
from fastopt.files.stats import SHAPES, build_stats, loads_stats, parse_stats, read_stats, write_stats

DAY0 = np.datetime64("2020-01-01", "D")


@st.composite
def series(draw):
    """Unique (possibly gappy, unordered) days and finite returns > -1."""
    offsets = draw(st.lists(st.integers(min_value=0, max_value=3000), min_size=1, max_size=80, unique=True))
    returns = draw(
        st.lists(
            st.floats(min_value=-0.999999, max_value=5.0, allow_nan=False, allow_infinity=False, width=64),
            min_size=len(offsets),
            max_size=len(offsets),
        )
    )
    dates = DAY0 + np.array(offsets, dtype="timedelta64[D]")
    return dates, np.array(returns, dtype=np.float64)


@given(series(), st.sampled_from(SHAPES))
def test_every_shape_round_trips_exactly(tmp_path_factory, data, shape):
    dates, returns = data
    path = tmp_path_factory.mktemp("rt") / "stats.json"
    write_stats(path, strategy="s", symbol="BTC/USDT:USDT", dates=dates, returns=returns, shape=shape, interval="1d")
    parsed = read_stats(path)
    order = np.argsort(dates)
    assert np.array_equal(parsed.dates, dates[order])
    # bit for bit, including the sign of zero
    assert parsed.returns.tobytes() == returns[order].tobytes()
    assert parsed.metadata["symbol"] == "BTC/USDT:USDT"
    assert parsed.metadata["interval"] == "1d"
    assert "daily_returns" not in parsed.metadata and "daily_dates" not in parsed.metadata
    assert bool(parsed.warnings) == bool(np.any(np.abs(returns) > 1))


def test_written_summary_keys_are_percent():
    obj = build_stats(
        strategy="s", symbol="X", dates=["2024-01-01", "2024-01-02"], returns=[0.10, -0.20]
    )
    assert obj["Total Return [%]"] == pytest.approx((1.1 * 0.8 - 1) * 100, abs=1e-4)
    assert obj["Max Drawdown [%]"] == pytest.approx(20.0, abs=1e-4)
    assert obj["start"] == "2024-01-01" and obj["end"] == "2024-01-02"
    assert obj["daily_dates"] == ["2024-01-01", "2024-01-02"]


def test_the_three_shapes_parse_to_the_same_series():
    lists = {"daily_dates": ["2024-01-02", "2024-01-01"], "daily_returns": [0.02, 0.01], "symbol": "A"}
    mapping = {"daily_returns": {"2024-01-01": 0.01, "2024-01-02": 0.02}}
    records = {"daily_returns": [{"date": "2024-01-01", "return": 0.01}, {"date": "2024-01-02", "return": 0.02}]}
    parsed = [parse_stats(x) for x in (lists, mapping, records)]
    for p in parsed:
        assert p.dates.tolist() == parsed[0].dates.tolist()
        assert p.returns.tolist() == [0.01, 0.02]
    assert parsed[0].metadata == {"symbol": "A"}


BASE = {"strategy": "s", "daily_dates": ["2024-01-01", "2024-01-02", "2024-01-03"], "daily_returns": [0.01, 0.0, -0.01]}

CORRUPTIONS = [
    ("not an object", [1, 2], "expected a JSON object"),
    ("no series", {"strategy": "s"}, "no 'daily_returns'"),
    ("lists without dates", {"daily_returns": [0.1]}, "'daily_dates' is missing"),
    ("length mismatch", {**BASE, "daily_dates": BASE["daily_dates"][:2]}, "has 2 entries"),
    ("empty", {"daily_dates": [], "daily_returns": []}, "empty series"),
    ("string return", {**BASE, "daily_returns": [0.01, "0.2", 0.0]}, "daily_returns[1] must be a number, got str"),
    ("null return", {**BASE, "daily_returns": [0.01, None, 0.0]}, "got null"),
    ("bool return", {**BASE, "daily_returns": [True, 0.0, 0.0]}, "got bool"),
    ("total loss", {**BASE, "daily_returns": [0.01, -1.0, 0.0]}, "<= -1"),
    ("bad date", {**BASE, "daily_dates": ["2024-01-01", "2024-02-30", "2024-01-03"]}, "daily_dates[1]"),
    ("sloppy date", {**BASE, "daily_dates": ["2024-01-01", "2024-1-02", "2024-01-03"]}, "not a valid"),
    ("number date", {**BASE, "daily_dates": ["2024-01-01", 20240102, "2024-01-03"]}, "must be a 'YYYY-MM-DD' string"),
    ("duplicate date", {**BASE, "daily_dates": ["2024-01-01", "2024-01-01", "2024-01-03"]}, "duplicate date 2024-01-01"),
    ("series not list", {"daily_returns": 3}, "must be a list or an object"),
    ("record missing key", {"daily_returns": [{"date": "2024-01-01"}]}, "with 'date' and 'return'"),
    ("dates not list", {"daily_dates": "2024-01-01", "daily_returns": [0.1]}, "'daily_dates' must be a list"),
]


@pytest.mark.parametrize("label,data,reason", CORRUPTIONS, ids=[c[0] for c in CORRUPTIONS])
def test_corruptions_are_refused_with_reason(label, data, reason):
    with pytest.raises(ValueError) as err:
        parse_stats(data)
    assert reason in str(err.value)


@pytest.mark.parametrize(
    "content,reason",
    [
        (b"", "empty file"),
        (b"{\"daily_returns\": [0.1,", "invalid JSON"),
        (b"{\"daily_dates\": [\"2024-01-01\"], \"daily_returns\": [NaN]}", "invalid JSON"),
        (b"{\"daily_dates\": [\"2024-01-01\"], \"daily_returns\": [Infinity]}", "invalid JSON"),
        (b"{\"daily_dates\": [\"2024-01-01\"], \"daily_returns\": [1e999]}", "invalid JSON"),
    ],
)
def test_bad_json_refused(tmp_path, content, reason):
    with pytest.raises(ValueError, match=reason):
        loads_stats(content)
    path = tmp_path / "stats.json"
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        read_stats(path)
    assert str(err.value).startswith(f"{path}: ")
    assert err.value.exit_code == 2


def test_percent_looking_returns_warn():
    parsed = parse_stats({"daily_dates": ["2024-01-01", "2024-01-02"], "daily_returns": [1.5, 2.0]})
    assert len(parsed.warnings) == 1 and "percent" in parsed.warnings[0]


def test_missing_file_is_input_error(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_stats(tmp_path / "nope.json")


def test_failed_write_leaves_old_file_intact(tmp_path):
    path = tmp_path / "stats.json"
    write_stats(path, strategy="s", symbol="X", dates=["2024-01-01"], returns=[0.01])
    before = path.read_bytes()
    # invalid series: refused before any write
    with pytest.raises(ValueError):
        write_stats(path, strategy="s", symbol="X", dates=["2024-01-01"], returns=[-1.5])
    # unserializable metadata (NaN): refused by strict JSON before any write
    with pytest.raises(ValueError):
        write_stats(path, strategy="s", symbol="X", dates=["2024-01-01"], returns=[0.01], note=math.nan)
    # unserializable object
    with pytest.raises(TypeError):
        write_stats(path, strategy="s", symbol="X", dates=["2024-01-01"], returns=[0.01], note=object())
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["stats.json"]  # no temp file left behind
    assert json.loads(before)["daily_returns"] == [0.01]


def test_build_rejects_bad_arguments():
    with pytest.raises(ValueError, match="shape"):
        build_stats(strategy="s", symbol=None, dates=["2024-01-01"], returns=[0.0], shape="nope")
    with pytest.raises(ValueError, match="2 dates but 1 returns"):
        build_stats(strategy="s", symbol=None, dates=["2024-01-01", "2024-01-02"], returns=[0.0])
    with pytest.raises(ValueError, match="duplicate"):
        build_stats(strategy="s", symbol=None, dates=["2024-01-01", "2024-01-01"], returns=[0.0, 0.0])
    assert stats_file.SERIES_KEYS == ("daily_dates", "daily_returns")


def _outcome(fn, content):
    try:
        parsed = fn(content)
    except ValueError as exc:
        return ("error", str(exc))
    return ("ok", parsed.dates.tobytes(), parsed.returns.tobytes(), parsed.metadata, parsed.warnings)


BAD_CONTENTS = [json.dumps(data).encode() for _, data, _ in CORRUPTIONS] + [
    b"",
    b"{",
    b"{\"daily_dates\": [\"2024-01-01\"], \"daily_returns\": [NaN]}",
    b"{\"daily_dates\": [\"2024-01-011\", \"024-01-01\"], \"daily_returns\": [0.1, 0.2]}",
    b"{\"daily_dates\": [\"2024-01-01|2024\"], \"daily_returns\": [0.1]}",
    b"{\"daily_dates\": [\"2024-01-01\", \"2024-01-02\"], \"daily_returns\": [0.1, true]}",
    b"{\"daily_dates\": [\"2024-01-01\", \"2024-01-02\"], \"daily_returns\": [0.1, 1e308]}",
    "{\"daily_dates\": [\"2024-01-0\u0661\"], \"daily_returns\": [0.1]}".encode(),
]


@given(st.lists(st.one_of(series(), st.sampled_from(BAD_CONTENTS)), min_size=1, max_size=8), st.sampled_from(SHAPES))
def test_batched_parsing_equals_one_by_one(items, shape):
    """loads_many (the loader's vectorized path) gives exactly loads_stats' result per file."""
    contents = []
    for item in items:
        if isinstance(item, bytes):
            contents.append(item)
        else:
            dates, returns = item
            obj = build_stats(strategy="s", symbol="X", dates=dates, returns=returns, shape=shape)
            contents.append(json.dumps(obj).encode())
    batched = stats_file.loads_many(contents)
    assert len(batched) == len(contents)
    for content, result in zip(contents, batched):
        expected = _outcome(loads_stats, content)
        got = ("error", str(result)) if isinstance(result, ValueError) else _outcome(lambda _: result, content)
        assert got == expected


@given(
    st.lists(
        st.one_of(
            st.dates().map(lambda d: d.isoformat()),
            st.text(alphabet="0123456789-|/ T:a\u0661", min_size=8, max_size=12),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_fast_date_path_accepts_exactly_the_canonical_days(days):
    """The vectorized parser agrees with the plain per-string check on any input."""
    fast = stats_file._fast_days(days, len(days))
    canonical = all(stats_file._is_iso_day(d) for d in days)
    assert (fast is not None) == canonical
    if canonical:
        assert fast.tolist() == np.array(days, dtype="datetime64[D]").tolist()
