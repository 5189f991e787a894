"""`fastopt check`: validate the whole trading setup without trading.

Takes the same options as `fastopt reconcile` (pass it the options of your service) and checks, in
order: the config (as the reconciler validates it), its ``notify`` section, every weighted strategy's
state.json and stats.json, the order journal, that the folder is writable, and per venue: keys present,
the venue reachable with its start-up self-check (``check_account``) and equity read, prices present
and plausible (``reconciler.guards.judge_prices``). Nothing is sent and nothing is written but one
temporary file (deleted at once). One line per check: ✓ or ✗ with the reason.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastopt.files.atomic import dumps_json
from fastopt.errors import EXIT_CODES, EXIT_FAILURE, EXIT_OK, FastoptError

SUMMARY = "Validate the trading setup without trading: config, states, stats, keys, venues, prices, disk."

EPILOG = """examples:
  fastopt check                                               # paper setup in the current folder
  fastopt check --exchange binanceusdm --config live/portfolio_config.json --strategies live/strategies
  fastopt check --json

Takes every option of `fastopt reconcile` (give it the same ones as the service); nothing is sent.
here: 0 every check passed; 1 at least one failed (each ✗ line says why); 2 bad option.

""" + EXIT_CODES

Check = dict[str, Any]


def configure(parser: argparse.ArgumentParser) -> None:
    from reconciler.cli import configure as reconcile_options

    reconcile_options(parser)
    parser.epilog = EPILOG
    parser.description = SUMMARY


def _item(checks: list[Check], name: str, fn: Callable[[], str]) -> bool:
    """Run one check: ``fn`` returns the detail line of a pass, or raises (the failure's reason)."""
    try:
        detail = fn()
        checks.append({"name": name, "ok": True, "detail": detail})
        return True
    except (FastoptError, OSError, ValueError, TypeError, KeyError) as err:
        from reconciler.errors import scrub

        reason = err.reason if isinstance(err, FastoptError) else f"{type(err).__name__}: {err}"
        checks.append({"name": name, "ok": False, "detail": scrub(str(reason)).splitlines()[0] if reason else "failed"})
        return False


def run_checks(args: argparse.Namespace, *, env: dict[str, str] | None = None) -> list[Check]:
    """Every check, in order: ``[{"name", "ok", "detail"}]`` (see the module docstring)."""
    from fastopt.files.config import read_config, validate_for_trading
    from fastopt.files.state import read_state
    from fastopt.files.stats import read_stats
    from reconciler.engine import JOURNAL_NAME
    from reconciler.inputs import unknown_weighted
    from reconciler.journal import OrderJournal
    from reconciler.notify import TOKEN_ENV, parse_notify

    env = dict(os.environ) if env is None else env
    checks: list[Check] = []
    config_path = Path(args.config)
    folder = config_path.resolve().parent
    strategies = Path(args.strategies)
    state: dict[str, Any] = {}

    def config() -> str:
        raw = read_config(config_path)
        trading = validate_for_trading(raw, max_leverage=args.max_leverage, path=config_path)
        missing = unknown_weighted(strategies, [n for n, w in trading.weights.items() if w > 0])
        if missing:
            raise FastoptError(f"{len(missing)} weighted strateg{'y has' if len(missing) == 1 else 'ies have'} no "
                               f"folder under {strategies}: {', '.join(missing[:5])}")
        state["raw"], state["trading"] = raw, trading
        return (f"{config_path}: account_value {trading.account_value:,.2f}, leverage {trading.leverage:g}, "
                f"{sum(1 for w in trading.weights.values() if w > 0)} weighted strateg(ies)")

    if not _item(checks, "config", config):
        return checks
    raw, trading = state["raw"], state["trading"]
    weighted = sorted(n for n, w in trading.weights.items() if w > 0)

    def notify() -> str:
        settings = parse_notify(raw.get("notify"), path=config_path)
        if not settings.enabled:
            return "no notify section: alerts go to the log only"
        if settings.telegram_chat_id and not (env.get(TOKEN_ENV) or "").strip():
            raise FastoptError(f"notify.telegram_chat_id is set but {TOKEN_ENV} is not in the environment")
        where = [w for w, on in (("webhook", settings.webhook_url), ("Telegram", settings.telegram_chat_id)) if on]
        return f"alerts to {' and '.join(where)}"

    _item(checks, "notify", notify)

    def each_file(kind: str, reader: Callable[[Path], Any]) -> Callable[[], str]:
        def check() -> str:
            bad = []
            for name in weighted:
                try:
                    value = reader(strategies / name / kind)
                    if kind == "state.json":
                        for symbol, position in value.positions.items():
                            if not math.isfinite(position) or abs(position) > args.max_position:
                                raise FastoptError(f"{strategies / name / kind}: position {position:g} of {symbol} is "
                                                   f"outside +-{args.max_position:g} (--max-position)")
                except FastoptError as err:
                    bad.append(str(err))
            if bad:
                raise FastoptError(f"{len(bad)} of {len(weighted)} invalid: " + "; ".join(bad[:3])
                                   + (" ..." if len(bad) > 3 else ""))
            return f"{len(weighted)} of {len(weighted)} valid"
        return check

    _item(checks, "state.json files", each_file("state.json", read_state))
    _item(checks, "stats.json files", each_file("stats.json", read_stats))

    def journal() -> str:
        path = folder / JOURNAL_NAME
        if not path.exists():
            return f"{path} does not exist yet (created by the first order)"
        j = OrderJournal(path, read_only=True, warn=lambda line: None)
        pending = len(j.unfinished()) + len(j.unresolved_ids)
        return f"{path} readable" + (f"; {pending} unfinished intent(s), looked up by the next run" if pending else "")

    _item(checks, "order journal", journal)

    def disk() -> str:
        fd, name = tempfile.mkstemp(prefix=".fastopt-check-", dir=folder)
        try:
            os.write(fd, b"fastopt check\n")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(name)
        return f"{folder} writable"

    _item(checks, "disk", disk)
    _venue_checks(args, checks, raw, trading, weighted, strategies)
    return checks


def _venue_checks(args: argparse.Namespace, checks: list[Check], raw: dict[str, Any], trading: Any,
                  weighted: list[str], strategies: Path) -> None:
    """Per venue: keys, reachable + self-check + equity, prices plausible for every symbol to trade or held."""
    from fastopt.files.state import read_state
    from reconciler.cli import build_reconciler
    from reconciler.guards import judge_prices
    from reconciler.report import Reporter

    dry = argparse.Namespace(**{**vars(args), "dry_run": True, "quiet": True})
    holder: dict[str, Any] = {}

    def setup() -> str:
        holder["rec"] = build_reconciler(dry, reporter=Reporter(quiet=True))
        return "reconciler built (dry run: nothing is sent or written)"

    if not _item(checks, "reconciler setup", setup):
        return
    rec = holder["rec"]
    settings = trading.exchange_settings
    symbol_map = raw.get("symbol_map") if isinstance(raw.get("symbol_map"), dict) else {}
    venues = sorted({args.exchange, *trading.exchanges.values()})
    wanted: dict[str, set[str]] = {v: set() for v in venues}
    for name in weighted:
        try:
            positions = read_state(strategies / name / "state.json").positions
        except FastoptError:
            continue  # reported by the state.json check
        venue = trading.exchanges.get(name, args.exchange)
        for symbol in positions:
            wanted[venue].add(symbol)

    for name in venues:
        def keys(name: str = name) -> str:
            if name == "paper":
                return "paper: no keys needed"
            rec.venues[name] = rec.venue_factory(name, rec._settings_for(name, settings))
            return f"{name}: credentials present in the environment ({name.upper()}_API_KEY, ...)"

        if not _item(checks, f"keys {name}", keys):
            continue

        def reachable(name: str = name) -> str:
            venue = rec.venue(name, settings)  # the venue's start-up self-check (check_account)
            positions = venue.fetch_positions()
            equity = venue.fetch_equity()
            holder[name] = positions
            shown = "unknown" if equity is None else f"{equity:,.2f}"
            return f"{name}: reachable, self-check passed, {len(positions)} open position(s), equity {shown}"

        if not _item(checks, f"venue {name}", reachable):
            continue

        def prices(name: str = name) -> str:
            venue = rec.venues[name]
            mapped = symbol_map.get(name, {}) if isinstance(symbol_map.get(name, {}), dict) else {}
            symbols, unknown = set(holder.get(name) or {}), []
            for raw_symbol in sorted(wanted[name]):
                resolved = venue.resolve_symbol(mapped.get(raw_symbol, raw_symbol))
                if resolved is None:
                    unknown.append(raw_symbol)
                else:
                    symbols.add(resolved)
            if unknown:
                raise FastoptError(f"{name}: {', '.join(unknown[:5])} name(s) no market")
            if not symbols:
                return f"{name}: nothing to price (no target, no position)"
            ordered = sorted(symbols)
            marks = venue.fetch_prices(ordered)
            refs = venue.reference_prices(ordered)
            verdict = judge_prices({(name, k): v for k, v in marks.items()}, {(name, k): v for k, v in refs.items()},
                                   rec._price_seen, now_s=rec.clock(), max_deviation=args.max_price_deviation)
            missing = [s for s in ordered if s not in marks]
            refused = [f"{k[1]}: {why}" for k, why in verdict.refused.items()]
            if missing or refused:
                reasons = ([f"no price for {', '.join(missing[:5])}"] if missing else []) + refused[:3]
                raise FastoptError(f"{name}: " + "; ".join(reasons))
            return f"{name}: {len(ordered)} price(s) plausible" + (" (checked against the reference price)"
                                                                  if refs else "")

        _item(checks, f"prices {name}", prices)


def run(args: argparse.Namespace) -> int:
    from reconciler.cli import _check as check_options

    check_options(args)  # InputError (exit 2) for a bad option, as `fastopt reconcile` would
    checks = run_checks(args)
    ok = all(c["ok"] for c in checks)
    if args.json:
        sys.stdout.write(dumps_json({"ok": ok, "checks": checks}))
    else:
        from rich.console import Console
        from rich.markup import escape

        console = Console(width=None if sys.stdout.isatty() else 140, highlight=False)
        for c in checks:
            mark = "[green]✓[/green]" if c["ok"] else "[bold red]✗[/bold red]"
            console.print(f"{mark} [bold]{escape(c['name'])}[/bold]: {escape(c['detail'])}")
        failed = sum(not c["ok"] for c in checks)
        console.print("[bold green]all checks passed[/bold green]" if ok else
                      f"[bold red]{failed} check(s) failed[/bold red]")
    return EXIT_OK if ok else EXIT_FAILURE
