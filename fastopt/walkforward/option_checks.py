"""The library side of the shared option rules of ``fastopt.options``: InputError "<name> <reason>".

``fastopt.walkforward(target_vol=30)`` and ``SweepSpec`` refuse a value with the words the
commands print for the same value (``fastopt optimize --target-vol 30``).
"""
from __future__ import annotations

from fastopt.errors import InputError
from fastopt.options import lookback_problem, max_leverage_problem, periods_per_year_problem, target_vol_problem

__all__ = ["check_target_vol", "check_max_leverage", "check_lookback", "check_periods_per_year"]


def _check(problem: str | None, name: str) -> None:
    if problem is not None:
        raise InputError(f"{name} {problem}")


def check_target_vol(value: object, name: str = "target_vol") -> float:
    """``value`` as a float; InputError when it is not a fraction per year in (0, 10]."""
    _check(target_vol_problem(value), name)
    return float(value)  # type: ignore[arg-type]


def check_max_leverage(value: object, name: str = "max_leverage") -> float:
    """``value`` as a float; InputError when it is not a finite number > 0."""
    _check(max_leverage_problem(value), name)
    return float(value)  # type: ignore[arg-type]


def check_lookback(value: object, name: str = "lookback") -> int:
    """``value`` as an int; InputError when it is not a whole number of days >= 2."""
    _check(lookback_problem(value), name)
    return int(value)  # type: ignore[call-overload]


def check_periods_per_year(value: object, name: str = "periods_per_year") -> float:
    """``value`` as a float; InputError when it is not a finite number > 0."""
    _check(periods_per_year_problem(value), name)
    return float(value)  # type: ignore[arg-type]
