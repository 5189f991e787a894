"""fastopt/files/state.py: round-trips and every rejection reason."""
from __future__ import annotations

import json
import math
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastopt.errors import InputError
from fastopt.files.state import parse_state, parse_timestamp, read_state, write_state

symbols = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=20)
positions = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9)
stamps = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                      timezones=st.just(timezone.utc))


@given(symbol=symbols, position=positions, stamp=stamps)
def test_single_position_round_trip(tmp_path_factory, symbol, position, stamp):
    path = tmp_path_factory.mktemp("s") / "state.json"
    write_state(path, symbol=symbol, position=position, updated_at=stamp, entry=1.5)
    state = read_state(path)
    assert state.positions == {symbol: position}
    assert state.updated_at == stamp and state.extra == {"entry": 1.5}


@given(pos=st.dictionaries(symbols, positions, min_size=1, max_size=6), stamp=stamps)
def test_multi_position_round_trip(tmp_path_factory, pos, stamp):
    path = tmp_path_factory.mktemp("s") / "state.json"
    write_state(path, positions=pos, updated_at=stamp)
    assert read_state(path).positions == pos


REJECTIONS = [
    ([], "expected a JSON object"),
    ({"positions": [1]}, "must be an object"),
    ({"positions": {"BTC": "1"}}, "must be a number"),
    ({"positions": {"BTC": True}}, "must be a number"),
    ({"positions": {"": 1.0}}, "non-empty string"),
    ({"positions": {"BTC": 1.0}, "symbol": "ETH"}, "not both"),
    ({"position": 1.0}, "without 'symbol'"),
    ({"symbol": "BTC"}, "without 'position'"),
    ({"symbol": 3, "position": 1.0}, "non-empty string"),
    ({"symbol": "BTC", "position": None}, "must be a number"),
    ({}, "no position"),
    ({"symbol": "BTC", "position": 1.0, "updated_at": 5}, "ISO-8601"),
    ({"symbol": "BTC", "position": 1.0, "updated_at": "yesterday"}, "not ISO-8601"),
]


@pytest.mark.parametrize("data,reason", REJECTIONS)
def test_every_rejection_reason(tmp_path, data, reason):
    with pytest.raises(ValueError, match=reason):
        parse_state(data)
    path = tmp_path / "state.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError) as info:
        read_state(path)
    assert str(info.value).startswith(str(path)) and reason in str(info.value)


@pytest.mark.parametrize("text,reason", [("", "empty file"), ("   \n", "empty file"), ("{", "invalid JSON"),
                                         ('{"symbol": "B", "position": NaN}', "NaN is not allowed"),
                                         ('{"symbol": "B", "position": Infinity}', "Infinity is not allowed"),
                                         (b"\xff\xfe", "cannot read")])
def test_unreadable_files(tmp_path, text, reason):
    path = tmp_path / "state.json"
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    with pytest.raises(InputError, match=reason):
        read_state(path)


def test_missing_file_and_write_refuses_invalid_state(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_state(tmp_path / "nope.json")
    with pytest.raises(ValueError):
        write_state(tmp_path / "s.json", symbol="BTC", position=math.nan)
    with pytest.raises(ValueError, match="not both"):
        write_state(tmp_path / "s.json", symbol="BTC", position=1.0, positions={"ETH": 1.0})
    assert not (tmp_path / "s.json").exists()


def test_naive_timestamps_are_utc_and_z_is_accepted():
    assert parse_timestamp("2024-01-01T00:00:00").tzinfo == timezone.utc
    assert parse_timestamp("2024-01-01T00:00:00Z") == datetime(2024, 1, 1, tzinfo=timezone.utc)
