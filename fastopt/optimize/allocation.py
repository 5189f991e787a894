"""`Allocation`: the result of an optimization (weights plus how they were found)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Status values and what they mean (docs/objective.md has the details).
STATUSES = {
    "optimal": "KKT conditions certified: the global optimum of the convex slope/std problem",
    "local": "a KKT point of a non-convex objective (slope_std_compound): best found, not certified global",
    "single_strategy": "only one usable strategy: weight 1",
    "no_rising_curve": "every strategy's curve slope is <= 0: least-bad allocation, no rising curve exists",
    "unbounded": "a long-only mix with (numerically) zero variance and positive slope exists: ratio unbounded",
    "ill_conditioned": "covariance singular or near-singular on the solution's support (N >= T?)",
    "cardinality_heuristic": "max_strategies given: best support found by search, exact weights on it",
    "max_iterations": "iteration limit reached before the KKT certificate: best point found",
    "allocator": "weights from an allocator that does not optimize the score",
}


@dataclass(frozen=True, repr=False)
class Allocation:
    """Weights of one optimization and how they were found.

    ``weights``: float64 (N,), >= 0, summing to 1 (read-only array). The
    optimizer never returns all zeros: with nothing to hold it raises
    ``NothingToDo``; going to cash is the caller's decision (e.g. the
    walk-forward's ``when_negative="cash"`` on status ``no_rising_curve``);
    ``score``: annualized slope/std of the objective at ``weights``;
    ``status``: one of ``STATUSES``; ``solver``: "search", "exact", ...;
    ``iterations``: local-refinement iterations; ``message``: one human line;
    ``diagnostics``: kkt_gap, candidates, starts, excluded, fallback, timings...;
    ``names``: the strategy of each weight (a tuple; None when the input had no
    names: :meth:`weights_by_name` then uses ``s0, s1, ...`` like the walk-forward);
    ``sharpe`` / ``vol``: annualized Sharpe ratio and volatility of the portfolio's
    daily returns on the optimized window (NaN when not measured, e.g. ``solve_ratio``,
    which never sees the returns).
    """

    weights: np.ndarray
    score: float
    status: str
    solver: str
    iterations: int = 0
    message: str = ""
    diagnostics: dict[str, Any] = field(default_factory=dict)
    names: tuple[str, ...] | None = None
    sharpe: float = float("nan")
    vol: float = float("nan")

    def __post_init__(self) -> None:
        w = np.array(self.weights, dtype=np.float64, copy=True).reshape(-1)
        w.setflags(write=False)
        object.__setattr__(self, "weights", w)
        if self.names is not None:
            names = tuple(str(n) for n in self.names)
            if len(names) != w.size:
                raise ValueError(f"{len(names)} names for {w.size} weights")
            object.__setattr__(self, "names", names)

    @property
    def support(self) -> np.ndarray:
        """Indices of the strategies with a positive weight."""
        return np.flatnonzero(self.weights > 0)

    @property
    def labels(self) -> tuple[str, ...]:
        """``names``, or ``s0, s1, ...`` when the input had none."""
        return self.names if self.names is not None else tuple(f"s{k}" for k in range(self.weights.size))

    def weights_by_name(self, *, held_only: bool = False) -> dict[str, float]:
        """Strategy name -> weight, in the input's column order (``held_only``: positive weights only)."""
        return {name: float(w) for name, w in zip(self.labels, self.weights) if w > 0 or not held_only}

    def to_series(self):  # -> pandas.Series (pandas imported lazily)
        """The weights as a pandas Series indexed by strategy name (named "weight")."""
        import pandas as pd

        return pd.Series(np.array(self.weights), index=pd.Index(list(self.labels), name="strategy"),
                         name="weight", dtype="float64")

    def summary(self) -> dict[str, Any]:
        """One dict: score, annualized Sharpe and vol of the portfolio, status, and how many strategies it holds."""
        return {
            "score": float(self.score),
            "sharpe": float(self.sharpe),
            "vol": float(self.vol),
            "status": self.status,
            "n_strategies": int(self.weights.size),
            "n_held": int(np.count_nonzero(self.weights > 0)),
        }

    def __repr__(self) -> str:
        held = self.support
        top = held[np.argsort(-self.weights[held], kind="stable")][:5]
        labels = self.labels
        shown = ", ".join(f"{labels[k]}: {self.weights[k]:.3f}" for k in top)
        if held.size > top.size:
            shown += f", ... ({held.size - top.size} more)"
        return (f"Allocation(status={self.status!r}, score={self.score:.4g}, sharpe={self.sharpe:.4g}, "
                f"vol={self.vol:.4g}, held {held.size} of {self.weights.size}: {{{shown}}})")


def normalize_weights(weights: np.ndarray) -> np.ndarray:
    """Clip tiny negatives to 0 and rescale so that the weights sum to 1 (float terms).

    After the division, the largest weight absorbs the remaining rounding so
    that ``math.fsum(w) == 1`` as closely as float64 allows.
    """
    w = np.asarray(weights, dtype=np.float64).copy()
    w[w < 0] = 0.0
    total = w.sum()
    if not total > 0:
        raise ValueError("cannot normalize all-zero weights")
    w /= total
    k = int(np.argmax(w))
    w[k] = 0.0
    rest = w.sum()  # the others (no np.delete copy)
    w[k] = 1.0 - rest
    return w
