"""Options and entry point shared by `fastopt reconcile` and `python -m reconciler`."""
from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastopt.files.atomic import dumps_json
from fastopt.files.config import read_config, validate_for_trading
from fastopt.errors import EXIT_CODES, EXIT_FAILURE, EXIT_OK, InputError
from fastopt.options import max_leverage
from reconciler.engine import PAPER_DB_NAME, CycleReport, EngineSettings, Reconciler
from reconciler.loop import HEARTBEAT_NAME, PollingLoop
from reconciler.notify import Notifier, parse_notify
from reconciler.report import Reporter
from reconciler.runlock import RunLock

SUMMARY = "Turn the portfolio into orders: paper exchange by default, or any ccxt exchange."

EPILOG = """examples:
  fastopt reconcile --once --exchange paper                     # one cycle (cron), paper exchange
  fastopt reconcile --once --dry-run --json                     # print the plan, send nothing
  fastopt reconcile --exchange paper --prices prices.json       # loop, prices from a file (offline)
  FASTOPT_OFFLINE=1 fastopt reconcile --once --prices data/prices   # last closes of *.csv in a folder
  BINANCEUSDM_API_KEY=... BINANCEUSDM_SECRET=... \\
    fastopt reconcile --exchange binanceusdm --max-order-usd 5000
  fastopt reconcile --exchange binanceusdm --exchange-config testnet.json

  fastopt reconcile --accept-config                             # trade a config held back by --max-config-jump
  fastopt reconcile --repair-journal                            # after "orders.jsonl is damaged at line N"

files (next to the config): last_reconcile.json (snapshot before orders), last_cycle.json (outcome of the
last cycle, for `fastopt status`), orders.jsonl (order journal), paper_exchange.sqlite (paper positions, cash,
fills), reconciler.heartbeat (touched every poll and by --once),
reconciler.lock (one reconciler per config folder: a second one refuses to start),
accepted_config.json (the last config traded), accept_config.json (--accept-config request),
STOP (create it to stop sending orders), HALTED (with --manual-resume; remove it to resume).
keys: <EXCHANGE_ID>_API_KEY, <EXCHANGE_ID>_SECRET, <EXCHANGE_ID>_PASSWORD environment variables only.

logs: --log-file PATH (rotated at --log-max-bytes, keeping --log-backups files), --log-json for JSON lines.
alerts: the config's "notify" section (webhook_url, telegram_chat_id + FASTOPT_TELEGRAM_TOKEN); see
docs/reconciler.md "Alerts". SIGTERM/SIGINT: the order in flight finishes (journal, send, outcome), the rest
of the cycle is not sent (journaled not_sent, re-planned by the next run), one line, exit 0.

here, with --once: 0 the cycle reached its targets; 1 it could not (a rejection, a capped order, an unresolved,
blocked, unpriced or implausibly priced symbol, a held-back config, a read failure, halt, kill switch,
another reconciler running); 2 bad input (config, state, journal damaged, option): nothing was sent.

""" + EXIT_CODES


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add = parser.add_argument
    add("--config", default="portfolio_config.json", help="portfolio config (default %(default)s)")
    add("--strategies", default="strategies", help="folder of strategies/<name>/state.json (default %(default)s)")
    add("--exchange", default="paper", help="'paper' (default, embedded) or a ccxt id such as binanceusdm")
    add("--exchange-config", metavar="FILE", help="JSON: ccxt constructor params, 'options', 'api_base_url'")
    add("--prices", metavar="FILE", help="paper prices when offline: JSON symbol->price, or a folder of OHLCV "
        "*.csv (last close); default prices.json next to the config if present")
    add("--once", action="store_true", help="run one cycle and exit (cron)")
    add("--dry-run", action="store_true", help="print the plan, send nothing, write nothing")
    add("--interval", type=float, default=5.0, help="seconds between polls (default %(default)s)")
    add("--full-every", type=float, default=60.0, help="full cycle at least every N seconds (default %(default)s)")
    add("--threshold", type=float, default=10.0, help="skip differences under this notional, account currency "
        "(default %(default)s)")
    add("--max-leverage", type=max_leverage, default=5.0, help="refuse configs above it, > 0; gross cap = "
        "account_value x it (default %(default)s; the rule of fastopt optimize/walkforward/sweep --max-leverage)")
    add("--max-order-usd", type=float, default=None, help="cap on any single order's notional (default none)")
    add("--stale-after", type=float, default=6.0, help="warn when a state is older than N hours (default %(default)s)")
    add("--halt-after", type=int, default=3, help="halt trading after N consecutive failed position reads "
        "(default %(default)s)")
    add("--manual-resume", action="store_true", help="after a halt, resume only when the HALTED file is removed")
    add("--fee-bps", type=float, default=4.0, help="paper taker fee in basis points (default %(default)s)")
    add("--slippage-bps", type=float, default=2.0, help="paper slippage in basis points (default %(default)s)")
    add("--read-retries", type=int, default=3, help="attempts per exchange read (default %(default)s)")
    add("--backoff", type=float, default=0.5, help="first retry delay in seconds, doubling (default %(default)s)")
    add("--order-settle", type=float, default=30.0, help="seconds after sending before an order the exchange "
        "does not know is declared never applied (after a timeout; ccxt exchanges; default %(default)s)")
    add("--max-position", type=float, default=3.0, help="refuse a state.json whose |position| exceeds this signed "
        "fraction of the strategy's capital, like a corrupt file (default %(default)s)")
    add("--max-price-deviation", type=float, default=0.10, help="refuse to trade a symbol whose mark price is "
        "further than this fraction from the venue's reference price, or jumped twice as far since the last read "
        "(default %(default)s)")
    add("--equity-tolerance", type=float, default=0.10, help="refuse a config whose account_value exceeds the "
        "venues' equity by more than this fraction (default %(default)s)")
    add("--max-config-jump", type=float, default=2.0, help="hold back a new config whose account_value x leverage "
        "is more than this factor above the last accepted one (default %(default)s); see --accept-config")
    add("--accept-config", action="store_true", help="accept the current config despite --max-config-jump (the "
        "running reconciler, or the next run, picks it up), then exit")
    add("--repair-journal", action="store_true", help="repair a damaged orders.jsonl (damaged lines moved aside, "
        "order ids in them looked up before anything is sent), then exit")
    add("--cancel-after", type=float, default=60.0, help="cancel an order still open or partially filled this many "
        "seconds after it was sent, then re-plan (default %(default)s)")
    add("--reject-backoff", type=float, default=60.0, help="seconds before a rejected order is tried again "
        "unchanged, doubling up to 30 min (default %(default)s)")
    add("--confirm-delay", type=float, default=0.25, help="seconds between a position read that contradicts the "
        "journal and the read that must confirm it (default %(default)s)")
    add("--max-cycles", type=int, default=None, help=argparse.SUPPRESS)
    add("--json", action="store_true", help="print the cycle result as JSON on stdout (with --once/--dry-run)")
    add("--quiet", action="store_true", help="no console lines (errors still set the exit code)")
    add("--log-file", metavar="PATH", help="also write every line to PATH, rotated (see --log-max-bytes)")
    add("--log-max-bytes", type=int, default=10 << 20, help="rotate the log file at this size in bytes "
        "(default %(default)s)")
    add("--log-backups", type=int, default=5, help="rotated log files kept: PATH.1 ... (default %(default)s)")
    add("--log-json", action="store_true", help="the log file holds one JSON object per line (ts, level, message, "
        "event fields)")


def _check(args: argparse.Namespace) -> None:
    positive = {"--interval": args.interval, "--full-every": args.full_every, "--max-leverage": args.max_leverage,
                "--stale-after": args.stale_after, "--max-position": args.max_position,
                "--max-price-deviation": args.max_price_deviation}
    if not math.isfinite(args.max_config_jump) or args.max_config_jump < 1:
        raise InputError(f"--max-config-jump must be a number >= 1, got {args.max_config_jump}")
    for name, value in positive.items():
        if not math.isfinite(value) or value <= 0:
            raise InputError(f"{name} must be a positive number, got {value}")
    for name, value in {"--threshold": args.threshold, "--fee-bps": args.fee_bps,
                        "--slippage-bps": args.slippage_bps, "--backoff": args.backoff,
                        "--order-settle": args.order_settle, "--equity-tolerance": args.equity_tolerance,
                        "--cancel-after": args.cancel_after, "--reject-backoff": args.reject_backoff,
                        "--confirm-delay": args.confirm_delay}.items():
        if not math.isfinite(value) or value < 0:
            raise InputError(f"{name} must be >= 0, got {value}")
    if args.max_order_usd is not None and (not math.isfinite(args.max_order_usd) or args.max_order_usd <= 0):
        raise InputError(f"--max-order-usd must be a positive number, got {args.max_order_usd}")
    if args.log_max_bytes < 1024 or args.log_backups < 0:
        raise InputError("--log-max-bytes must be >= 1024 and --log-backups >= 0")
    if args.halt_after < 1 or args.read_retries < 1:
        raise InputError("--halt-after and --read-retries must be >= 1")
    if not Path(args.strategies).is_dir():
        raise InputError("strategies folder not found", path=args.strategies)


def read_exchange_config(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("exchange config not found", path=path) from None
    except (OSError, ValueError) as exc:
        raise InputError(f"invalid exchange config: {exc}", path=path) from None
    if not isinstance(data, dict) or not isinstance(data.get("options", {}), dict):
        raise InputError("exchange config must be a JSON object ('options' an object)", path=path)
    return data


def build_reconciler(args: argparse.Namespace, *, reporter: Reporter | None = None, after_send_hook=None) -> Reconciler:
    """Everything one run needs, from parsed options (also used by tests and the bench)."""
    from reconciler.venues.paper import PaperExchange
    from reconciler.venues.prices import PriceSource
    from reconciler.venues.ccxt_venue import CcxtVenue

    config_path = Path(args.config)
    settings = EngineSettings(
        config_path=config_path, strategies_dir=Path(args.strategies), default_exchange=args.exchange,
        threshold=args.threshold, max_leverage=args.max_leverage, max_order_usd=args.max_order_usd,
        stale_after_s=args.stale_after * 3600.0, dry_run=args.dry_run, halt_after=args.halt_after,
        manual_resume=args.manual_resume, max_abs_position=args.max_position,
        max_price_deviation=args.max_price_deviation, equity_tolerance=args.equity_tolerance,
        max_config_jump=args.max_config_jump, cancel_after_s=args.cancel_after,
        reject_backoff_s=args.reject_backoff, confirm_delay_s=args.confirm_delay,
    )
    exchange_settings = read_exchange_config(args.exchange_config) if args.exchange_config else None
    folder = settings.folder
    price_file = args.prices
    if price_file is None and (folder / "prices.json").exists():
        price_file = folder / "prices.json"

    def factory(name: str, venue_settings: dict[str, Any]):
        if name == "paper":
            # exchange_settings.paper = {...} arrives unwrapped; an --exchange-config file may keep the "paper" key
            paper = venue_settings.get("paper", venue_settings)
            if not isinstance(paper, dict):
                raise InputError("exchange settings 'paper' must be an object", path=config_path)
            account_value = read_config(config_path, missing_ok=True).get("account_value") or 10_000.0
            online = paper.get("price_source_settings") or {}
            if not isinstance(online, dict):
                raise InputError("exchange settings 'paper.price_source_settings' must be an object", path=config_path)
            source = PriceSource(price_file=price_file, online_exchange=str(paper.get("price_source", "binanceusdm")),
                                 online_settings=online)
            def number(key: str, default: float) -> float:
                value = paper.get(key, default)
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise InputError(f"invalid paper settings: {key} must be a number, got {value!r}",
                                     path=config_path)
                return float(value)

            fee_bps, slippage_bps = number("fee_bps", args.fee_bps), number("slippage_bps", args.slippage_bps)
            try:
                return PaperExchange(folder / PAPER_DB_NAME, price_source=source, initial_cash=float(account_value),
                                     fee_bps=fee_bps, slippage_bps=slippage_bps,
                                     markets=paper.get("markets"), read_only=args.dry_run)
            except (ValueError, KeyError, TypeError) as exc:
                raise InputError(f"invalid paper settings: {exc}", path=config_path) from None
        return CcxtVenue(name, settings=venue_settings, read_attempts=args.read_retries, backoff_s=args.backoff,
                         order_settle_s=args.order_settle)

    own = reporter is None
    reporter = reporter or make_reporter(args)
    try:
        return Reconciler(settings, venue_factory=factory, exchange_settings=exchange_settings,
                          reporter=reporter, after_send_hook=after_send_hook)
    except BaseException:
        if own:
            reporter.close(timeout_s=0.0)  # the notifier's thread and the log file are not left behind
        raise


def make_reporter(args: argparse.Namespace, *, env: dict[str, str] | None = None) -> Reporter:
    """The console/log-file reporter of a run, with the config's notifier (InputError: bad ``notify`` section,
    unwritable log file). A config that cannot be read yet gets no notifier (the cycle reports the config)."""
    config_path = Path(args.config)
    try:
        config = read_config(config_path, missing_ok=True)
    except InputError:
        config = {}
    log_file = getattr(args, "log_file", None)
    try:
        reporter = Reporter(quiet=args.quiet, log_file=log_file, log_json=getattr(args, "log_json", False),
                            log_max_bytes=getattr(args, "log_max_bytes", 10 << 20),
                            log_backups=getattr(args, "log_backups", 5),
                            context={"folder": str(config_path.resolve().parent)})
    except OSError as exc:
        raise InputError(f"cannot open the log file: {exc.strerror or exc}", path=log_file) from None
    if not args.dry_run:  # a dry run alerts nobody
        reporter.notifier = Notifier.from_config(config, env=env, path=config_path, warn=reporter.warn)
    return reporter


class StopFlag:
    """Set by SIGTERM/SIGINT (see :func:`stop_on_signals`): ``flag()`` is True and ``reason`` names the signal."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def __call__(self) -> bool:
        return self.reason is not None

    def handle(self, signum: int, frame: object) -> None:
        if self.reason is None:  # a second signal changes nothing: the order in flight still finishes
            self.reason = signal.Signals(signum).name

    def sleep(self, seconds: float) -> None:
        """Sleep ``seconds``, waking within 0.1 s once the flag is set."""
        end = time.monotonic() + seconds
        while self.reason is None:
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(0.1, left))


@contextmanager
def stop_on_signals(flag: StopFlag) -> Iterator[StopFlag]:
    """SIGTERM and SIGINT set ``flag`` instead of ending the process (never between journal and send);
    the previous handlers come back afterwards. Outside the main thread nothing is installed."""
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {sig: signal.signal(sig, flag.handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _latest_per_order(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-order results of several cycles: the latest result of each client order id, in first-seen order
    (an order whose outcome was unknown in one cycle and resolved by the next is counted once, as resolved).
    An order resolved by a lookup at the start of a cycle is reported by that cycle's log, not here."""
    latest: dict[str, dict[str, Any]] = {}
    for r in results:
        latest[r.get("client_order_id") or f"#{len(latest)}"] = r
    # an order not sent in one cycle and re-planned (under a new id) in a later one is not an outcome
    later = {}
    for i, r in enumerate(latest.values()):
        later[(r.get("venue"), r.get("symbol"))] = i
    return [r for i, r in enumerate(latest.values())
            if r.get("status") != "not_sent" or later[(r.get("venue"), r.get("symbol"))] == i]


def _report_json(report: CycleReport) -> dict[str, Any]:
    def label(key):
        return f"{key[1]}@{key[0]}"

    return {
        "status": report.status, "message": report.message, "problems": report.problems,
        "counts": report.counts(),
        "target_notional": {label(k): v for k, v in sorted(report.target_notional.items())},
        "live_amount": {label(k): v for k, v in sorted(report.live_base.items())},
        "orders": [{"exchange": o.venue, "symbol": o.symbol, "side": o.side, "amount": str(o.amount),
                    "reduce_only": o.reduce_only, "leg": o.leg, "price": o.price} for o in report.plan.orders],
        "skipped": [{"exchange": k.venue, "symbol": k.symbol, "reason": k.reason} for k in report.plan.skipped],
        "results": report.results,
    }


def _accept_config(args: argparse.Namespace) -> int:
    """``--accept-config``: record the operator's acceptance of the config on disk (validated first)."""
    from reconciler.accepted import read_accepted, request_accept

    config_path = Path(args.config)
    raw = read_config(config_path)
    trading = validate_for_trading(raw, max_leverage=args.max_leverage, path=config_path)
    folder = config_path.resolve().parent
    previous = read_accepted(folder)
    sha = request_accept(folder, raw)
    budget = trading.account_value * trading.leverage
    before = "none" if previous is None else f"{previous.gross_budget:,.2f} (accepted {previous.accepted_at})"
    print(f"accepted config {sha[:12]}: account_value {trading.account_value:,.2f} x leverage {trading.leverage:g} "
          f"= gross budget {budget:,.2f} (last accepted: {before}); the reconciler trades it from its next cycle "
          "(the equity check still applies)")
    return EXIT_OK


def _repair_journal(args: argparse.Namespace) -> int:
    from reconciler.engine import JOURNAL_NAME
    from reconciler.journal import repair_journal

    print(repair_journal(Path(args.config).resolve().parent / JOURNAL_NAME))
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    _check(args)
    if args.accept_config:
        return _accept_config(args)
    if args.repair_journal:
        if args.dry_run:
            raise InputError("--repair-journal rewrites the journal: it cannot be combined with --dry-run")
        with RunLock.acquire(Path(args.config).resolve().parent, config_path=Path(args.config)):
            return _repair_journal(args)
    if args.dry_run:  # a dry run sends and writes nothing: it may look while a live run trades
        return _run(args, None)
    # one reconciler per config folder: an flock on the folder itself (deleting reconciler.lock changes nothing)
    with RunLock.acquire(Path(args.config).resolve().parent, config_path=Path(args.config)) as lock:
        return _run(args, lock)


def _run(args: argparse.Namespace, lock: RunLock | None) -> int:
    reconciler = build_reconciler(args)
    try:
        with stop_on_signals(StopFlag()) as flag:
            reconciler.should_stop = flag
            return _run_with(args, lock, reconciler, flag)
    finally:
        reconciler.report.close(timeout_s=2.0)  # delivers the last alerts (at most 2 s), closes the log file


def _run_with(args: argparse.Namespace, lock: RunLock | None, reconciler: Reconciler, flag: StopFlag) -> int:
    if args.once or args.dry_run:
        try:
            report = reconciler.run_cycle()  # InputError propagates: exit 2 with the reason
        finally:
            if not args.dry_run:
                _touch(reconciler.folder / HEARTBEAT_NAME)  # a cron run is alive too (fastopt status)
        results = list(report.results)
        # an uncertain order: re-read positions and re-plan, at most twice; a settle window that blocks a
        # symbol (an earlier order that may still be applied late) is waited out here, bounded by
        # --order-settle: a new process would start the window again, so cron could never resolve it
        deadline = time.monotonic() + args.order_settle + 5.0
        retries = 0
        while not args.dry_run and not flag():
            wait = reconciler.settle_wait_s
            if report.status == "incomplete" and retries < 2:
                retries += 1
            elif wait > 0 and time.monotonic() + wait < deadline:
                flag.sleep(wait + 0.05)
            else:
                break
            report = reconciler.run_cycle()
            results.extend(report.results)
        report.results = _latest_per_order(results)  # what this run did, across its cycles
        if flag():
            reconciler.report.warn(f"stopping on {flag.reason}: the order in flight finished, the rest of the cycle "
                                   "was not sent (re-planned by the next run)")
            if args.json:
                sys.stdout.write(dumps_json(_report_json(report)))
            return EXIT_OK
        if args.json:
            sys.stdout.write(dumps_json(_report_json(report)))
        if not report.ok:
            if not args.json:
                print(f"reconcile: {report.status}: {report.message}", file=sys.stderr)
            return EXIT_FAILURE
        return EXIT_OK
    try:
        stale_s = parse_notify(read_config(args.config, missing_ok=True).get("notify")).config_stale_after_s
    except InputError:
        stale_s = parse_notify(None).config_stale_after_s
    loop = PollingLoop(reconciler, interval_s=args.interval, full_every_s=args.full_every,
                       max_cycles=args.max_cycles, lock=lock, should_stop=flag, sleep=flag.sleep,
                       stop_reason=lambda: None if flag.reason is None else f"{flag.reason}: the order in flight "
                       "finished", config_stale_after_s=stale_s)
    return loop.run()


def _touch(path: Path) -> None:
    try:
        path.touch()
    except OSError:
        pass  # a full disk: `fastopt status` reports the heartbeat as stale, which it then is
