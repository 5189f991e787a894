"""What optimize, walkforward and sweep share at their edges: loading a strategies folder without
ever skipping silently, --strict, --max-stale-days, --allow-synthetic, the short-lookback warning.

Not a command (no SUMMARY / configure / run): the helpers the command modules call.
"""
from __future__ import annotations

import argparse
import logging
import sys
from contextlib import contextmanager
from typing import Any

from fastopt.errors import InputError
from fastopt.files.screen import DEFAULT_MAX_STALE_DAYS, ScreenedPanel, Skip, screen_panel, skip_lines
from fastopt.options import lookback_warning, non_negative_int


def add_screen_options(parser: argparse.ArgumentParser) -> None:
    """--strict, --max-stale-days and --allow-synthetic (same words in every command)."""
    add = parser.add_argument
    add("--strict", action="store_true",
        help="any skipped strategy is an error: exit 2, one line per skip, nothing written")
    add("--max-stale-days", type=non_negative_int, default=DEFAULT_MAX_STALE_DAYS, metavar="DAYS",
        help="skip a strategy whose last day trails the others' last day by more than DAYS calendar days "
             f"(its missing days would count as 0 returns) (default {DEFAULT_MAX_STALE_DAYS})")
    add("--allow-synthetic", action="store_true",
        help="use strategies backtested on synthetic prices (stats.json price_source 'synthetic'); they are "
             "marked '(synthetic)' on tables and plots (default: skipped)")


@contextmanager
def _quiet_loader():
    """The loader logs each skip; the command prints them grouped instead (once, not twice)."""
    logger = logging.getLogger("fastopt.files.loader")
    before = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = before


def load_screened(command: str, strategies: str, args: argparse.Namespace, **load_options: Any) -> ScreenedPanel:
    """``load_panel(strategies, **load_options)`` then :func:`screen_panel`; reports every skip on stderr.

    With ``args.strict`` any skip raises InputError (exit 2) after one stderr line per skip.
    """
    from fastopt.files.loader import load_panel

    with _quiet_loader():
        panel = load_panel(strategies, **load_options)
    for message in panel.warnings:
        if not message.startswith("skipped "):
            print(f"fastopt {command}: warning: {message}", file=sys.stderr)
    screened = screen_panel(panel, strategies, max_stale_days=args.max_stale_days,
                            allow_synthetic=args.allow_synthetic)
    report_skips(command, screened.skips, screened.n_found, strict=args.strict)
    if screened.synthetic:
        print(f"fastopt {command}: warning: {len(screened.synthetic)} strategies backtested on synthetic prices "
              f"(--allow-synthetic): {', '.join(screened.synthetic)}", file=sys.stderr)
    return screened


def report_skips(command: str, skips: list[Skip], n_found: int, *, strict: bool) -> None:
    """Print the grouped skip report on stderr; with ``strict``, one error line per skip and InputError."""
    if not skips:
        return
    if strict:
        for skip in skips:
            print(f"fastopt {command}: error: skipped {skip.file}: {skip.reason}", file=sys.stderr)
        raise InputError(f"--strict: {len(skips)} of {n_found} strategies skipped (listed above); nothing written")
    for line in skip_lines(skips, n_found):
        print(f"fastopt {command}: {line}", file=sys.stderr)


def warn_lookback(command: str, days: int) -> None:
    """The short-lookback warning on stderr (under 60 days: it fits noise)."""
    message = lookback_warning(int(days))
    if message:
        print(f"fastopt {command}: warning: {message}", file=sys.stderr)
