"""The option rules shared by every command and the library: argparse ``type=`` parsers and ``check_*``.

Each parser takes the option's text and returns the parsed value or raises
``argparse.ArgumentTypeError`` (argparse turns it into a one-line usage error,
exit 2); each ``check_*`` takes a library argument and raises ``InputError`` with the same
words. None accepts NaN or infinity.
"""
from __future__ import annotations

import argparse
import math

from fastopt.errors import InputError


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def finite_number(text: str) -> float:
    """Any finite float (range checks are the command's)."""
    value = _number(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_number(text: str) -> float:
    """A finite float > 0."""
    value = _number(text)
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def non_negative_number(text: str) -> float:
    """A finite float >= 0."""
    value = _number(text)
    if not value >= 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """A whole number >= 1 (days, counts)."""
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """A whole number >= 0."""
    value = _whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def shrinkage(text: str) -> float | str:
    """Covariance shrinkage intensity: a fraction in [0, 1], or the string 'auto' (Ledoit-Wolf)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1] or 'auto', got {text!r}")
    return value


# ---------------------------------------------------------------------------------------------
# One rule per option shared by every command (optimize, walkforward, sweep, reconcile) and by
# the library functions (fastopt.walkforward, fastopt.walkforward.sweep.SweepSpec): the same value gets
# the same verdict and the same words everywhere. ``*_problem`` returns the reason a value is refused
# (None when it is fine); the argparse types raise ArgumentTypeError with the reason (argparse prefixes
# the option name); the ``check_*`` functions at the end raise InputError("<name> <reason>") with it
# for the library.

#: Largest --target-vol accepted, a fraction per year: above it the value looks like a percent.
TARGET_VOL_MAX = 10.0
#: Below this many days a fitted window is mostly noise (a warning, not an error).
LOOKBACK_NOISE_DAYS = 60


def _as_float(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def target_vol_problem(value: object) -> str | None:
    """Why ``value`` is not a target annual volatility (a fraction per year in (0, 10]), or None."""
    number = _as_float(value)
    if number is None or not math.isfinite(number):
        return f"must be a finite fraction per year (0.30 = 30 %/yr), got {value!r}"
    if number <= 0:
        return f"must be a fraction per year in (0, {TARGET_VOL_MAX:g}] (0.30 = 30 %/yr), got {number:g}"
    if number > TARGET_VOL_MAX:
        return (f"must be a fraction per year in (0, {TARGET_VOL_MAX:g}] (0.30 = 30 %/yr), got {number:g}: "
                f"it looks like a percent (write {number / 100:g})")
    return None


def max_leverage_problem(value: object) -> str | None:
    """Why ``value`` is not a leverage cap (a finite number > 0, times the account value), or None."""
    number = _as_float(value)
    if number is None or not math.isfinite(number) or number <= 0:
        return f"must be a finite number > 0 (times the account value), got {value!r}"
    return None


def lookback_problem(value: object) -> str | None:
    """Why ``value`` is not a lookback (a whole number of days >= 2), or None."""
    if isinstance(value, bool) or not isinstance(value, int) and not (
            hasattr(value, "__index__") and not isinstance(value, float)):
        return f"must be a whole number of days >= 2, got {value!r}"
    if int(value) < 2:  # type: ignore[call-overload]
        return f"must be a whole number of days >= 2, got {int(value)}"  # type: ignore[call-overload]
    return None


def lookback_warning(days: int) -> str | None:
    """The warning for a short fit window (under ``LOOKBACK_NOISE_DAYS`` days), or None."""
    if days < LOOKBACK_NOISE_DAYS:
        return (f"a {days}-day lookback fits noise: a slope/std (or Sharpe) fitted on under "
                f"{LOOKBACK_NOISE_DAYS} days is mostly luck")
    return None


def periods_per_year_problem(value: object) -> str | None:
    """Why ``value`` is not an annualization factor (finite, > 0; 365 crypto, 252 stocks), or None."""
    number = _as_float(value)
    if number is None or not math.isfinite(number) or number <= 0:
        return f"must be a finite number > 0 (365 for daily crypto, 252 for stock days), got {value!r}"
    return None


def _typed(parse, problem):
    def parser(text: str):
        value = parse(text)
        reason = problem(value)
        if reason is not None:
            raise argparse.ArgumentTypeError(reason)
        return value

    return parser


def target_vol(text: str) -> float:
    """argparse type of --target-vol: a fraction per year in (0, 10] (see :func:`target_vol_problem`)."""
    return _typed(_number, target_vol_problem)(text)


def max_leverage(text: str) -> float:
    """argparse type of --max-leverage: a finite number > 0."""
    return _typed(_number, max_leverage_problem)(text)


def lookback(text: str) -> int:
    """argparse type of --lookback: a whole number of days >= 2 (the warning under 60 is the command's)."""
    return _typed(_whole_number, lookback_problem)(text)


def periods_per_year(text: str) -> float:
    """argparse type of --periods-per-year: a finite number > 0."""
    return _typed(_number, periods_per_year_problem)(text)


# --------------------------------------------------------------------------- the library side
# ``fastopt.walkforward(target_vol=30)`` and ``SweepSpec`` refuse a value with the words the
# commands print for the same value (``fastopt optimize --target-vol 30``): InputError "<name> <reason>".


def _check_problem(problem: str | None, name: str) -> None:
    if problem is not None:
        raise InputError(f"{name} {problem}")


def check_target_vol(value: object, name: str = "target_vol") -> float:
    """``value`` as a float; InputError when it is not a fraction per year in (0, 10]."""
    _check_problem(target_vol_problem(value), name)
    return float(value)  # type: ignore[arg-type]


def check_max_leverage(value: object, name: str = "max_leverage") -> float:
    """``value`` as a float; InputError when it is not a finite number > 0."""
    _check_problem(max_leverage_problem(value), name)
    return float(value)  # type: ignore[arg-type]


def check_lookback(value: object, name: str = "lookback") -> int:
    """``value`` as an int; InputError when it is not a whole number of days >= 2."""
    _check_problem(lookback_problem(value), name)
    return int(value)  # type: ignore[call-overload]


def check_periods_per_year(value: object, name: str = "periods_per_year") -> float:
    """``value`` as a float; InputError when it is not a finite number > 0."""
    _check_problem(periods_per_year_problem(value), name)
    return float(value)  # type: ignore[arg-type]
