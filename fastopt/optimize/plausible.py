"""Is an in-sample fit believable enough to trade? The check ``fastopt optimize`` runs before writing.

A slope/std optimum on a window can be "optimal" and still absurd: a mix with almost no
in-sample variance (an annual vol of 0.01 %) scores a Sharpe of thousands, and the vol
target then levers it to the cap. Real diversified strategy books rarely show an in-sample
annualized Sharpe above ~3 or an annual vol under 1 %; beyond the thresholds below the
numbers say more about the window (too short, near-duplicates, a stale or constant column)
than about the future.
"""
from __future__ import annotations

import math

#: Default lowest believable in-sample annual volatility of the portfolio (a fraction per year: 0.01 = 1 %).
DEFAULT_MIN_ANN_VOL = 0.01
#: Default highest believable in-sample annualized Sharpe ratio of the portfolio.
DEFAULT_MAX_SHARPE = 5.0

__all__ = ["DEFAULT_MIN_ANN_VOL", "DEFAULT_MAX_SHARPE", "implausible_reason"]


def implausible_reason(ann_vol: float, sharpe: float, *, min_ann_vol: float = DEFAULT_MIN_ANN_VOL,
                       max_sharpe: float = DEFAULT_MAX_SHARPE) -> str | None:
    """Why an in-sample result is implausible (one line), or None when it is believable.

    ``ann_vol``: the portfolio's in-sample annual volatility (fraction per year);
    ``sharpe``: its in-sample annualized Sharpe ratio (mean / std * sqrt(periods per year)).
    A NaN vol or Sharpe is implausible too.
    """
    problems = []
    if not ann_vol >= min_ann_vol or not math.isfinite(ann_vol):
        problems.append(f"in-sample annual vol {ann_vol:.4%} is below {min_ann_vol:.2%}")
    if not sharpe <= max_sharpe or not math.isfinite(sharpe):
        problems.append(f"in-sample annualized Sharpe {sharpe:.3g} is above {max_sharpe:g}")
    if not problems:
        return None
    return " and ".join(problems)
