"""Which loaded strategies a command may use, and an honest account of the ones it may not.

``load_panel`` already skips unreadable, malformed and too-short stats.json files
(``Panel.skipped``: name -> reason). :func:`screen_panel` adds two rules the
commands apply on top, and turns every skip into a :class:`Skip` (strategy, file,
reason) that the commands print grouped by reason and put in their ``--json``:

- **stale**: a strategy whose own last day trails the panel's last day by more than
  ``max_stale_days`` calendar days is skipped (its missing days would count as 0
  returns, so a strategy that stopped months ago would look like a riskless one);
- **synthetic**: a strategy whose stats.json says ``"price_source": "synthetic"``
  (written by ``fastopt.backtest.strategy`` when the backtest ran on the seeded
  synthetic market of ``fastopt.backtest.prices``) is skipped unless
  ``allow_synthetic``; when allowed it is kept and listed in ``ScreenedPanel.synthetic``
  so that tables and plots can mark it.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fastopt.files.panel import Panel

#: Default --max-stale-days: calendar days a strategy's last day may trail the panel's last day.
DEFAULT_MAX_STALE_DAYS = 3
#: The ``price_source`` value of a stats.json backtested on the synthetic market.
SYNTHETIC_SOURCE = "synthetic"
#: Marker appended to a synthetic strategy's name on tables and plots.
SYNTHETIC_MARK = "(synthetic)"

__all__ = ["Skip", "ScreenedPanel", "screen_panel", "group_skips", "skip_lines", "is_synthetic",
           "DEFAULT_MAX_STALE_DAYS", "SYNTHETIC_MARK"]


@dataclass(frozen=True)
class Skip:
    """One strategy left out: its name, its stats.json path, and why (one line)."""

    strategy: str
    file: str
    reason: str

    @property
    def group(self) -> str:
        """The kind of reason, for grouping (the details stay in ``reason``)."""
        return reason_group(self.reason)

    def as_dict(self) -> dict[str, str]:
        return {"strategy": self.strategy, "file": self.file, "reason": self.reason}


@dataclass(frozen=True)
class ScreenedPanel:
    """The panel of the strategies a command may use, the skips, and the synthetic ones kept."""

    panel: Panel
    skips: list[Skip] = field(default_factory=list)
    synthetic: list[str] = field(default_factory=list)
    n_found: int = 0


def reason_group(reason: str) -> str:
    """A short label for a skip reason: the groups of the stderr report."""
    text = reason.lower()
    if "synthetic" in text:
        return "synthetic prices"
    if "trails the panel" in text:
        return "stale"
    if text == "constant" or text.startswith("constant"):
        return "constant"
    if "day(s) of history" in text or "no daily return inside the window" in text:
        return "too little history in the window"
    if "cannot read" in text:
        return "unreadable"
    return "invalid stats.json"


def is_synthetic(metadata: dict | None) -> bool:
    """True when a stats.json's metadata records a backtest on the synthetic market."""
    return isinstance(metadata, dict) and str(metadata.get("price_source", "")).lower() == SYNTHETIC_SOURCE


def stats_file(strategies_dir: str | os.PathLike[str], name: str) -> str:
    return str(Path(strategies_dir) / name / "stats.json")


def screen_panel(
    panel: Panel,
    strategies_dir: str | os.PathLike[str],
    *,
    max_stale_days: int = DEFAULT_MAX_STALE_DAYS,
    allow_synthetic: bool = False,
) -> ScreenedPanel:
    """Drop stale (and, unless ``allow_synthetic``, synthetic) strategies; every skip as a :class:`Skip`.

    ``max_stale_days``: calendar days (>= 0) a strategy's own last day may trail the
    panel's last day. Days that only dropped strategies had are removed from the panel.
    """
    if isinstance(max_stale_days, bool) or int(max_stale_days) != max_stale_days or max_stale_days < 0:
        from fastopt.errors import InputError

        raise InputError(f"max_stale_days must be a whole number of days >= 0, got {max_stale_days!r}")
    skips = [Skip(name, stats_file(strategies_dir, name), reason) for name, reason in panel.skipped.items()]
    n_found = panel.n_strategies + len(skips)
    if panel.n_strategies == 0:
        return ScreenedPanel(panel, skips, [], n_found)
    end = panel.dates[-1]
    keep: list[str] = []
    synthetic: list[str] = []
    for k, name in enumerate(panel.names):
        file = stats_file(strategies_dir, name)
        trail = int((end - min(panel.last_date[k], end)).astype(np.int64))
        if is_synthetic(panel.metadata.get(name)):
            if not allow_synthetic:
                skips.append(Skip(name, file, "backtested on synthetic prices, not market data "
                                              "(pass --allow-synthetic to use it anyway)"))
                continue
            synthetic.append(name)
        if trail > max_stale_days:
            skips.append(Skip(name, file, f"its last day {panel.last_date[k]} trails the panel's last day {end} "
                                          f"by {trail} days (more than --max-stale-days {max_stale_days})"))
            if name in synthetic:
                synthetic.remove(name)
            continue
        keep.append(name)
    if len(keep) == panel.n_strategies:
        return ScreenedPanel(panel, skips, synthetic, n_found)
    kept = panel.select(keep)
    skipped = {**panel.skipped, **{s.strategy: s.reason for s in skips}}
    if keep:
        rows = kept.active_mask().any(axis=1)
        kept = Panel(dates=kept.dates[rows], names=kept.names, returns=kept.returns[rows],
                     first_date=kept.first_date, last_date=kept.last_date, skipped=skipped,
                     metadata=kept.metadata, warnings=kept.warnings)
    else:
        kept = Panel(dates=np.array([], dtype="datetime64[D]"), names=[], returns=np.zeros((0, 0)),
                     first_date=np.array([], dtype="datetime64[D]"), last_date=np.array([], dtype="datetime64[D]"),
                     skipped=skipped, metadata={}, warnings=kept.warnings)
    return ScreenedPanel(kept, skips, synthetic, n_found)


def group_skips(skips: Iterable[Skip]) -> dict[str, list[Skip]]:
    """Skips by :func:`reason_group`, groups in order of first appearance."""
    groups: dict[str, list[Skip]] = {}
    for skip in skips:
        groups.setdefault(skip.group, []).append(skip)
    return groups


def skip_lines(skips: list[Skip], n_found: int) -> list[str]:
    """The stderr report: a count line then one line per reason group listing each file and its reason."""
    if not skips:
        return []
    lines = [f"skipped {len(skips)} of {n_found} strategies:"]
    for group, members in group_skips(skips).items():
        details = "; ".join(f"{s.file}: {s.reason}" for s in members)
        lines.append(f"  {group} ({len(members)}): {details}")
    return lines
