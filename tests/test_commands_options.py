"""The shared argparse parsers of fastopt.options: what each accepts, and a one-line message otherwise."""
from __future__ import annotations

import argparse
import math

import pytest
from hypothesis import given, strategies as st

from fastopt import options

TEXTS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-5, max_value=5).map(str),
    st.sampled_from(["", "x", "auto", " AUTO ", "1e400", "-0", "nan", "inf", "0.5", "1,2"]),
    st.text(max_size=6),
)


def _as_float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _as_int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


CASES = {
    "finite_number": lambda t: (v := _as_float(t)) is not None and math.isfinite(v),
    "positive_number": lambda t: (v := _as_float(t)) is not None and math.isfinite(v) and v > 0,
    "non_negative_number": lambda t: (v := _as_float(t)) is not None and math.isfinite(v) and v >= 0,
    "positive_int": lambda t: (v := _as_int(t)) is not None and v >= 1,
    "non_negative_int": lambda t: (v := _as_int(t)) is not None and v >= 0,
    "shrinkage": lambda t: t.strip().lower() == "auto" or ((v := _as_float(t)) is not None and 0 <= v <= 1),
}


@pytest.mark.parametrize("name", sorted(CASES))
@given(text=TEXTS)
def test_parser_accepts_exactly_its_range(name, text):
    parse = getattr(options, name)
    if CASES[name](text):
        value = parse(text)
        assert value == "auto" if name == "shrinkage" and text.strip().lower() == "auto" else value == float(text)
    else:
        with pytest.raises(argparse.ArgumentTypeError) as info:
            parse(text)
        message = str(info.value)
        assert message.startswith("expected ") and "\n" not in message and repr(text) in message


def test_commands_use_the_shared_parsers():
    from fastopt.commands import optimize, sweep, walkforward

    for module in (optimize, walkforward, sweep):
        parser = argparse.ArgumentParser()
        module.configure(parser)
        types = {action.dest: action.type for action in parser._actions}
        assert types["shrinkage"] is options.shrinkage
        assert types["max_leverage"] is options.max_leverage  # one rule everywhere (fastopt/options.py)
        assert types["periods_per_year"] is options.periods_per_year
    for module in (optimize, walkforward):
        parser = argparse.ArgumentParser()
        module.configure(parser)
        types = {action.dest: action.type for action in parser._actions}
        assert types["target_vol"] is options.target_vol and types["lookback"] is options.lookback
    parser = argparse.ArgumentParser()
    walkforward.configure(parser)
    types = {action.dest: action.type for action in parser._actions}
    assert types["random_n"] is options.non_negative_int
    assert types["cost_bps"] is options.non_negative_number and types["max_weight"] is options.positive_number


@pytest.mark.parametrize("command", ["optimize", "walkforward", "sweep"])
def test_negative_seed_is_a_usage_error_not_an_internal_error(command, tmp_path, monkeypatch, capsys):
    """numpy refuses negative seeds: the CLI must say so in one line (exit 2), before any work."""
    from fastopt import cli

    monkeypatch.chdir(tmp_path)
    argv = [command, "--seed", "-1"] + (["--target-vol", "0.3"] if command == "optimize" else [])
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2 and "--seed" in err and "expected a whole number >= 0" in err
    assert "internal error" not in err and "Traceback" not in err
