"""fastopt/files/config.py: read, merge (keys preserved), write, and every trading rejection."""
from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastopt.files.config import (
    DEFAULT_ACCOUNT_VALUE,
    OPTIMIZER_KEYS,
    merge_config,
    read_config,
    validate_for_trading,
    write_config,
)
from fastopt.errors import InputError

names = st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=8)


@st.composite
def valid_configs(draw):
    keys = draw(st.lists(names, min_size=1, max_size=8, unique=True))
    raw = draw(st.lists(st.floats(0.0, 1.0), min_size=len(keys), max_size=len(keys)))
    if sum(raw) == 0:
        raw[0] = 1.0
    total = sum(raw)
    weights = {k: w / total for k, w in zip(keys, raw)}
    return {"account_value": draw(st.floats(1.0, 1e9)), "leverage": draw(st.floats(0.01, 5.0)), "weights": weights,
            "exchanges": {keys[0]: "bybit"}, "asset_specs": {"x": {"lot_size": 1}}, "messages": {"m": "hi"}}


@given(config=valid_configs())
def test_round_trip_and_validation_accepts_valid_configs(tmp_path_factory, config):
    path = tmp_path_factory.mktemp("c") / "portfolio_config.json"
    write_config(path, config)
    back = read_config(path)
    assert back == config
    trading = validate_for_trading(back, max_leverage=5.0, path=path)
    assert trading.weights == config["weights"] and trading.exchanges == config["exchanges"]


@given(config=valid_configs(), new_weights=st.dictionaries(names, st.floats(0, 1), min_size=1))
def test_merge_replaces_optimizer_keys_and_preserves_the_rest(config, new_weights):
    merged = merge_config(config, {"weights": new_weights, "leverage": 1.25})
    assert merged["weights"] == new_weights and merged["leverage"] == 1.25
    for key in ("account_value", "exchanges", "asset_specs", "messages"):
        assert merged[key] == config[key]
    assert list(merged)[: len(config)] == list(config)  # key order preserved
    assert "weights" in OPTIMIZER_KEYS and "account_value" not in OPTIMIZER_KEYS


def test_merge_account_value_only_when_given():
    assert merge_config({}, {})["account_value"] == DEFAULT_ACCOUNT_VALUE
    assert merge_config({"account_value": 5.0}, {})["account_value"] == 5.0
    assert merge_config({"account_value": 5.0}, {}, account_value=7)["account_value"] == 7.0
    with pytest.raises(ValueError):
        merge_config({}, {"account_value": 1.0})


GOOD = {"account_value": 1000.0, "leverage": 1.0, "weights": {"a": 0.5, "b": 0.5}}
REJECTIONS = [
    ({"account_value": 0}, "account_value"), ({"account_value": -1}, "account_value"),
    ({"account_value": "1000"}, "account_value"), ({"account_value": True}, "account_value"),
    ({"account_value": None}, "account_value"),
    ({"leverage": 0}, "leverage"), ({"leverage": -1}, "leverage"), ({"leverage": math.inf}, "leverage"),
    ({"leverage": math.nan}, "leverage"), ({"leverage": 6.0}, "above the maximum"), ({"leverage": "2"}, "leverage"),
    ({"weights": {}}, "non-empty"), ({"weights": [0.5, 0.5]}, "non-empty"),
    ({"weights": {"a": -0.1, "b": 1.1}}, ">= 0"), ({"weights": {"a": math.nan, "b": 1.0}}, ">= 0"),
    ({"weights": {"a": "0.5", "b": 0.5}}, ">= 0"), ({"weights": {"a": 0.5, "b": 0.4}}, "sum to"),
    ({"weights": {"a": 0.0, "b": 0.0}}, "sum to"), ({"weights": {"a": 0.5, "b": 0.5 + 2e-6}}, "sum to"),
    ({"exchanges": {"a": ""}}, "exchanges"), ({"exchanges": ["bybit"]}, "exchanges"),
    ({"exchange_settings": [1]}, "exchange_settings"),
]


@pytest.mark.parametrize("change,reason", REJECTIONS)
def test_every_trading_rejection(tmp_path, change, reason):
    with pytest.raises(InputError, match=reason) as info:
        validate_for_trading({**GOOD, **change}, max_leverage=5.0, path=tmp_path / "c.json")
    assert "refusing to trade" in str(info.value) and str(info.value).startswith(str(tmp_path / "c.json"))


def test_weight_sum_tolerance_is_1e_6():
    validate_for_trading({**GOOD, "weights": {"a": 0.5, "b": 0.5 + 5e-7}}, max_leverage=5.0)


@pytest.mark.parametrize("text,reason", [("", "empty file"), ("{", "invalid JSON"), ("[1]", "JSON object"),
                                         ('{"leverage": NaN}', "NaN is not allowed")])
def test_read_rejections(tmp_path, text, reason):
    path = tmp_path / "portfolio_config.json"
    path.write_text(text)
    with pytest.raises(InputError, match=reason):
        read_config(path)


def test_missing_config_and_atomic_write_refuses_nan(tmp_path):
    path = tmp_path / "portfolio_config.json"
    with pytest.raises(InputError, match="not found"):
        read_config(path)
    assert read_config(path, missing_ok=True) == {}
    write_config(path, GOOD)
    with pytest.raises(ValueError):
        write_config(path, {**GOOD, "leverage": math.nan})
    assert json.loads(path.read_text()) == GOOD  # the failed write left the old file intact
