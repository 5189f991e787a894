"""Numerically constant columns: excluded from every fit, with the reason "constant".

A column of daily returns is *numerically constant* when its standard deviation (ddof=1,
per day) is at most ``CONSTANT_RTOL`` = 1e-12 times its scale, the larger of

- its own level, the root mean square of its values (a constant c read back from JSON or
  summed in a long window varies by a few ulps of c, ~1e-16 c; the mean of T <= 10**4
  days can be off by up to T * 2.2e-16 ~ 2e-12 of the level, so anything within 1e-12 of the
  level is rounding of a constant, whatever the offset c), and
- the panel's typical daily std, the median std of the columns that vary (a column whose
  variation is 10**-12 of the others' carries no information at their scale: a zero-mean
  column of 1e-19 noise next to strategies of 1 % daily vol).

Both are relative, so the rule does not depend on the units the returns are scaled by. Such
a column has (almost) zero variance: the slope/std ratio would give it a score of ~1e15 and the
vol target the leverage cap, which is never what the numbers mean. Exact zero variance is the
special case std = 0.
"""
from __future__ import annotations

import numpy as np

#: Relative std under which a column is numerically constant (see the module docstring).
CONSTANT_RTOL = 1e-12

__all__ = ["CONSTANT_RTOL", "constant_columns", "constant_from_moments", "constant_reason"]


def constant_from_moments(std: np.ndarray, rms: np.ndarray, rtol: float = CONSTANT_RTOL) -> np.ndarray:
    """The rule itself, from each column's daily std (ddof 1) and root mean square: std <= rtol x
    max(rms, the median std of the columns that vary). (N,) booleans."""
    varying = std[std > 0]
    typical = float(np.median(varying)) if varying.size else 0.0
    return std <= rtol * np.maximum(rms, typical)


def constant_columns(returns: np.ndarray, rtol: float = CONSTANT_RTOL) -> np.ndarray:
    """(N,) booleans: True for the numerically constant columns of a T x N window (T >= 2)."""
    arr = np.asarray(returns, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] == 0:
        return np.zeros(arr.shape[1] if arr.ndim == 2 else 0, dtype=bool)
    n_days = arr.shape[0]
    square_sums = np.einsum("ti,ti->i", arr, arr)
    mean = arr.sum(axis=0) / n_days
    # sum of squared deviations = sum x^2 - T mean^2 loses every digit for a constant column (it is
    # rounding of c^2 T), so the deviations are summed directly where that difference is small
    deviations = square_sums - n_days * mean * mean
    doubtful = deviations <= 1e-6 * square_sums
    if doubtful.any():
        cols = np.flatnonzero(doubtful)
        centered = arr[:, cols] - mean[cols]
        deviations[cols] = np.einsum("ti,ti->i", centered, centered)
    std = np.sqrt(np.maximum(deviations, 0.0) / (n_days - 1))
    return constant_from_moments(std, np.sqrt(square_sums / n_days), rtol)


def constant_reason(column: np.ndarray) -> str:
    """The exclusion reason of a constant column (one line)."""
    std = float(np.std(np.asarray(column, dtype=np.float64), ddof=1))
    if std == 0:
        return "constant: zero variance in the window"
    return (f"constant: daily std {std:.3g} is below {CONSTANT_RTOL:g} of its level or of the panel's "
            "typical std (numerically a constant)")
