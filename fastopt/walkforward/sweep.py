"""Parameter sweeps of the walk-forward on dask.distributed.

A sweep is the grid ``universes x lookbacks x allocators x target_vols x
rebalances``; every grid point is one walk-forward run as one Dask task. Each
universe (a strategies folder) is loaded once on the client and scattered to
the workers, so workers need no access to the files (``--scheduler`` may point
at a remote cluster). Results come back as one flat row per grid point
(:data:`ROW_FIELDS`); a grid point that cannot run (too little history for its
lookback, a bad allocator) gives a row with ``status="error"`` and the reason,
instead of failing the whole sweep.

Dask is imported only inside :func:`run_sweep` (the single-machine walk-forward
never needs it). Units in the rows: returns, drawdowns, vols and turnover are
fractions; Sharpe/Sortino annualized; ``managed_beats_pct_sharpe`` is percent.
"""
from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastopt.errors import FastoptError, InputError

__all__ = ["SweepSpec", "grid_points", "run_point", "run_sweep", "sort_rows", "rows_to_csv", "ROW_FIELDS"]

#: Columns of a sweep row, in CSV order.
ROW_FIELDS = (
    "universe", "lookback", "allocator", "target_vol", "rebalance", "status", "error",
    "start", "end", "oos_days", "n_strategies",
    "sharpe", "total_return", "cagr", "sortino", "max_drawdown", "ann_vol", "avg_turnover",
    "avg_leverage", "cash_days", "no_rising_days",
    "equal_weight_sharpe", "inverse_vol_sharpe", "random_median_sharpe", "managed_beats_pct_sharpe",
    "elapsed_seconds",
)


@dataclass(frozen=True)
class SweepSpec:
    """The grid and the settings shared by every run.

    ``universes``: strategies folders; ``target_vols``: fractions per year, or
    None for "no target" (unlevered). Shared: ``random_n``, ``seed``,
    ``cost_bps``, ``max_leverage``, ``when_negative``, ``max_weight``, ``shrinkage``.
    """

    universes: Sequence[str]
    lookbacks: Sequence[int] = (365,)
    allocators: Sequence[str] = ("slope_std",)
    target_vols: Sequence[float | None] = (None,)
    rebalances: Sequence[int] = (1,)
    random_n: int = 200
    seed: int = 42
    cost_bps: float = 0.0
    max_leverage: float = 5.0
    when_negative: str = "cash"
    max_weight: float = 1.0
    shrinkage: float | str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        for label, values in (("universes", self.universes), ("lookbacks", self.lookbacks),
                              ("allocators", self.allocators), ("target vols", self.target_vols),
                              ("rebalance periods", self.rebalances)):
            if not values:
                raise InputError(f"the sweep needs at least one value for {label}")
        from fastopt.options import check_lookback, check_max_leverage, check_target_vol

        for value in self.lookbacks:
            check_lookback(value)
        for value in self.rebalances:
            if int(value) < 1:
                raise InputError(f"rebalance must be >= 1 day, got {value}")
        for value in self.target_vols:
            if value is not None:
                check_target_vol(value)
        check_max_leverage(self.max_leverage)


def grid_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every grid point as a dict (universe, lookback, allocator, target_vol, rebalance), in grid order."""
    return [
        {"universe": str(u), "lookback": int(lb), "allocator": str(a),
         "target_vol": None if tv is None else float(tv), "rebalance": int(rb)}
        for u, lb, a, tv, rb in itertools.product(
            spec.universes, spec.lookbacks, spec.allocators, spec.target_vols, spec.rebalances
        )
    ]


def run_point(data: dict[str, Any], point: dict[str, Any], shared: dict[str, Any]) -> dict[str, Any]:
    """One walk-forward (a Dask task; also callable directly). Returns a flat row.

    ``data``: {"returns": T x N, "names": [...], "dates": datetime64[D] (T)};
    ``point``: a grid point; ``shared``: the keyword options common to the sweep.
    """
    from fastopt.walkforward.core import walkforward

    row: dict[str, Any] = {name: None for name in ROW_FIELDS}
    row.update(point)
    try:
        result = walkforward(
            data["returns"], lookback=point["lookback"], rebalance=point["rebalance"],
            allocator=point["allocator"], names=data["names"], dates=data["dates"],
            target_vol=point["target_vol"], **shared,
        )
    except FastoptError as err:
        row["status"] = "error"
        row["error"] = str(err)
        row["n_strategies"] = len(data["names"])
        return row
    managed = result.managed
    rnd = result.random
    dates = result.dates
    row.update(
        status="ok", error="",
        start=str(dates[0]) if dates is not None else str(result.lookback),
        end=str(dates[-1]) if dates is not None else str(result.lookback + result.n_days - 1),
        oos_days=result.n_days, n_strategies=len(result.names),
        sharpe=managed.sharpe, total_return=managed.total_return, cagr=managed.cagr,
        sortino=managed.sortino, max_drawdown=managed.max_drawdown, ann_vol=managed.ann_vol,
        avg_turnover=managed.avg_turnover, avg_leverage=float(result.leverage.mean()),
        cash_days=result.cash_days, no_rising_days=result.no_rising_days,
        equal_weight_sharpe=result.benchmarks["equal_weight"].sharpe,
        inverse_vol_sharpe=result.benchmarks["inverse_vol"].sharpe,
        random_median_sharpe=rnd.percentile("sharpes", 50) if rnd is not None and rnd.n else None,
        managed_beats_pct_sharpe=rnd.managed_beats_pct_sharpe if rnd is not None and rnd.n else None,
        elapsed_seconds=result.elapsed_seconds,
    )
    return row


def _shared_options(spec: SweepSpec) -> dict[str, Any]:
    return {
        "random_n": spec.random_n, "seed": spec.seed, "cost_bps": spec.cost_bps,
        "max_leverage": spec.max_leverage, "when_negative": spec.when_negative,
        "max_weight": spec.max_weight, "shrinkage": spec.shrinkage, **spec.extra,
    }


def load_universes(universes: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Load every strategies folder once: {folder: {"returns", "names", "dates"}}."""
    from fastopt.files.loader import load_panel

    out: dict[str, dict[str, Any]] = {}
    for folder in dict.fromkeys(str(u) for u in universes):
        panel = load_panel(folder)
        out[folder] = {"returns": panel.returns, "names": list(panel.names), "dates": panel.dates}
    return out


def run_sweep(
    spec: SweepSpec,
    *,
    workers: int = 2,
    scheduler: str | None = None,
    processes: bool = True,
    threads_per_worker: int = 1,
    universes_data: dict[str, dict[str, Any]] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Run the grid on Dask and return the rows in grid order.

    ``scheduler``: address of an existing cluster; otherwise a LocalCluster of
    ``workers`` workers (``processes=False`` for in-process threads) is started
    and closed. ``universes_data`` lets the caller pass pre-loaded universes
    (same shape as :func:`load_universes`); otherwise they are loaded here.
    ``progress(done, total)`` is called as results arrive.
    """
    spec.validate()
    points = grid_points(spec)
    data = universes_data if universes_data is not None else load_universes(spec.universes)
    shared = _shared_options(spec)
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:  # pragma: no cover - dask is a declared dependency of the sweep extra
        raise InputError("fastopt sweep needs dask[distributed]: pip install 'fastopt[sweep]'") from None

    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise FastoptError(f"cannot connect to the Dask scheduler {scheduler!r}: {exc}") from None
    else:
        if workers < 1:
            raise InputError(f"workers must be >= 1, got {workers}")
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=threads_per_worker, processes=processes,
            dashboard_address=None,
        )
        client = Client(cluster)
    try:
        run_id = uuid.uuid4().hex[:12]
        # scatter a one-element list: scattering a dict would scatter its values under its keys
        scattered = {name: client.scatter([payload], hash=False)[0] for name, payload in data.items()}
        futures = [
            client.submit(run_point, scattered[p["universe"]], p, shared, key=f"walkforward-{run_id}-{index}",
                          pure=False)
            for index, p in enumerate(points)
        ]
        order = {future.key: index for index, future in enumerate(futures)}
        rows: list[dict[str, Any] | None] = [None] * len(points)
        done = 0
        for future in as_completed(futures):
            rows[order[future.key]] = future.result()
            done += 1
            if progress is not None:
                progress(done, len(points))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return [row for row in rows if row is not None]


def sort_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows by out-of-sample Sharpe, best first; failed runs last."""
    def key(row: dict[str, Any]) -> tuple[int, float]:
        sharpe = row.get("sharpe")
        ok = row.get("status") == "ok" and sharpe is not None and np.isfinite(sharpe)
        return (0, -float(sharpe)) if ok else (1, 0.0)

    return sorted(rows, key=key)


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if np.isfinite(value) else ""
    return str(value)


def rows_to_csv(rows: list[dict[str, Any]]) -> str:
    """CSV text of the rows (header = :data:`ROW_FIELDS`)."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(ROW_FIELDS)
    for row in rows:
        writer.writerow([_csv_cell(row.get(name)) for name in ROW_FIELDS])
    return buffer.getvalue()


def rows_to_jsonable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with numpy scalars turned into plain Python values (strict-JSON safe)."""
    out = []
    for row in rows:
        clean: dict[str, Any] = {}
        for name in ROW_FIELDS:
            value = row.get(name)
            if isinstance(value, (np.floating, float)):
                value = float(value) if np.isfinite(value) else None
            elif isinstance(value, np.integer):
                value = int(value)
            clean[name] = value
        out.append(clean)
    return out
