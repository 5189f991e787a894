"""`fastopt status`: is it running, is it trading, am I on target, what is my PnL.

The data comes from :func:`reconciler.health.collect_status` (one dict; a dashboard calls the same
function); this module only parses options and renders it. Exit 0 healthy, 4 unhealthy (each reason
listed first, in red), 3 nothing has run here yet.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from fastopt.files.atomic import dumps_json
from fastopt.options import positive_number
from fastopt.errors import EXIT_CODES, InputError, NothingToDo

SUMMARY = "Is the reconciler running and on target: health, last cycle, target vs live, equity and PnL."

def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = """examples:
  fastopt status                              # one screen: problems first, then the details
  fastopt status --config live/portfolio_config.json --json
  fastopt status --stale-after 900            # cron runs every 10 min: a 15 min old heartbeat is fine

here: 0 healthy; 4 unhealthy: heartbeat, last cycle or snapshot older than --stale-after (or missing),
HALTED, STOP, unresolved order intents, a damaged journal, a last cycle that did not end ok (rejections,
blocked or unpriced symbols, a config held back, ...); 3 nothing has run next to this config yet;
2 bad option.
--json: every field of the screen plus "healthy" (bool), "problems" and "warnings" (one line each).

""" + EXIT_CODES
    parser.add_argument("--config", default="portfolio_config.json",
                        help="portfolio config; the reconciler's files are read next to it (default %(default)s)")
    parser.add_argument("--strategies", default=None,
                        help="folder of strategies/<name>/state.json (default: strategies next to the config)")
    parser.add_argument("--stale-after", type=positive_number, default=120.0, metavar="SECONDS",
                        help="heartbeat, last cycle and snapshot older than this are a problem (default %(default)s; "
                        "with cron --once, more than the cron interval)")
    parser.add_argument("--state-stale-after", type=positive_number, default=6.0, metavar="HOURS",
                        help="warn about state.json files older than this (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the status as JSON on stdout")


def read_snapshot(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NothingToDo("no snapshot yet (run `fastopt reconcile` first)", path=path) from None
    except (OSError, ValueError) as exc:
        raise InputError(f"unreadable snapshot: {exc}", path=path) from None
    if not isinstance(data, dict) or not isinstance(data.get("target"), dict) or not isinstance(data.get("live"), dict):
        raise InputError("not a reconcile snapshot (needs 'target' and 'live' objects)", path=path)
    return data


def run(args: argparse.Namespace) -> int:
    from reconciler.health import EXIT_UNHEALTHY, collect_status

    status = collect_status(args.config, stale_after_s=args.stale_after, strategies_dir=args.strategies,
                            state_stale_after_s=args.state_stale_after * 3600.0)
    if status["snapshot"] is None and status["last_cycle"] is None and status["heartbeat"]["age_s"] is None:
        if status["config"]["error"] and "not found" in status["config"]["error"]:
            raise InputError(status["config"]["error"], path=args.config)
        raise NothingToDo("no snapshot yet (run `fastopt reconcile` first)",
                          path=Path(status["folder"]) / "last_reconcile.json")
    if args.json:
        sys.stdout.write(dumps_json(status))
    else:
        render(status)
    return 0 if status["healthy"] else EXIT_UNHEALTHY


def _money(value: Any) -> str:
    return "-" if not isinstance(value, (int, float)) else f"{value:,.2f}"


def render(status: dict[str, Any], *, console: Any = None) -> None:
    """One screen: problems first (red), warnings (yellow), the daemon, the last cycle, equity, ages, the table."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from reconciler.health import human_age

    out = console or Console(width=None if sys.stdout.isatty() else 140, highlight=False)
    if status["healthy"]:
        out.print("[bold green]✓ healthy[/bold green]")
    else:
        out.print(f"[bold red]✗ UNHEALTHY: {len(status['problems'])} problem(s)[/bold red]")
    for problem in status["problems"]:
        out.print(f"[red]  ✗ {escape(problem)}[/red]")
    for warning in status["warnings"]:
        out.print(f"[yellow]  ! {escape(warning)}[/yellow]")

    lock = status["lock"]
    if lock["held"]:
        daemon = f"running (pid {lock['pid']}, holds the run lock)" if lock["pid"] else "running (holds the run lock)"
    elif lock["held"] is False:
        daemon = "not running (no process holds the run lock)"
    else:
        daemon = "unknown (no lock information)"
    lines = [("reconciler", f"{daemon}; heartbeat {human_age(status['heartbeat']['age_s'])}")]
    cycle = status["last_cycle"]
    if cycle:
        counts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted((cycle.get("counts") or {}).items()))
        text = (f"{cycle.get('status')} {human_age(cycle.get('age_s'))} ({cycle.get('ts')}): "
                f"{cycle.get('planned', 0)} planned, {cycle.get('sent', 0)} sent{f' ({counts})' if counts else ''}")
        if cycle.get("message"):
            text += f"; {cycle['message']}"
        lines.append(("last cycle", text))
    else:
        lines.append(("last cycle", "none recorded"))
    intents = status["unresolved_intents"]
    lines.append(("safety", f"STOP {'PRESENT' if status['stop'] else 'absent'}; HALTED "
                            f"{'PRESENT' if status['halted']['present'] else 'no'}; unresolved intents {len(intents)}"))
    equity = status["equity"]
    for venue, e in equity["by_venue"].items():
        pnl = ""
        if e.get("pnl") is not None:
            pnl = f", PnL {e['pnl']:+,.2f} ({e['pnl_pct']:+.2f} %) since start {_money(e.get('start'))}"
        elif e.get("unpriced"):
            pnl = f" (unpriced: {', '.join(e['unpriced'])})"
        lines.append((f"equity {venue}", f"{_money(e.get('equity'))}{pnl} [{e.get('source')}]"))
    if equity["total"] is not None and equity["account_value"] is not None:
        lines.append(("equity total", f"{_money(equity['total'])} vs account_value {_money(equity['account_value'])}"
                                      f" ({equity['pnl_vs_account_value']:+,.2f})"))
    config = status["config"]
    ages = [st["age_s"] for st in status["states"] if st["age_s"] is not None]
    lines.append(("inputs", f"config written {human_age(config['age_s'])}; {len(status['states'])} weighted "
                            f"state(s), newest {human_age(min(ages) if ages else None)}, oldest "
                            f"{human_age(max(ages) if ages else None)}"))
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        out.print(f"[bold]{key:<{width}}[/bold]  {escape(value)}")

    snapshot = status["snapshot"]
    if snapshot is None:
        out.print("no snapshot yet: no target vs live table")
        return
    table = Table(title=f"target vs live, snapshot {snapshot['ts']} ({human_age(snapshot['age_s'])})")
    for col in ("symbol", "exchange", "price", "target", "live", "target $", "live $", "gap $"):
        table.add_column(col, justify="left" if col in ("symbol", "exchange") else "right")
    for r in status["rows"]:
        table.add_row(r["symbol"], str(r["exchange"]), f"{r['price']:,.6g}" if r["price"] else "-",
                      f"{r['target_amount']:.6g}", f"{r['live_amount']:.6g}", f"{r['target_notional']:,.2f}",
                      f"{r['live_notional']:,.2f}", f"{r['gap_notional']:+,.2f}")
    out.print(table)
    out.print(f"{len(status['orders'])} order(s) planned by that cycle, {len(status['skipped'])} skipped")
