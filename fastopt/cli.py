"""`fastopt <command>` entry point.

Each command lives in ``fastopt/commands/<name>.py`` and exposes:

- ``SUMMARY``: one line for ``fastopt --help``;
- ``configure(parser)``: adds its options (and an epilog with examples);
- ``run(args) -> int``: does the work and returns the exit code.

Only the selected command's module is imported, so ``fastopt optimize`` does not
pay for importing ccxt or dask. Exit codes: the table ``fastopt.errors.EXIT_CODES``
(0 ok, 1 the operation failed, 2 bad input/usage, 3 nothing to do, 4 status unhealthy),
printed by every ``--help``; logs go to stderr, results to stdout.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from fastopt.errors import EXIT_CODES, EXIT_FAILURE, EXIT_USAGE, FastoptError

#: command name -> module under fastopt.commands. Order is the --help order.
COMMANDS: dict[str, str] = {
    "backtest": "backtest",
    "optimize": "optimize",
    "walkforward": "walkforward",
    "sweep": "sweep",
    "reconcile": "reconcile",
    "status": "status",
    "dashboard": "dashboard",
    "check": "check",
    "warmup": "warmup",
    "init": "init",
}

_TOP_EPILOG = """examples:
  fastopt backtest --strategies strategies
  fastopt optimize --target-vol 0.30
  fastopt walkforward --lookback 365 --random-n 1000
  fastopt reconcile --once --exchange paper
  fastopt init my_portfolio                  # a workspace with an example strategy (pip installs)
  fastopt <command> --help

""" + EXIT_CODES


def _load(name: str):
    return importlib.import_module(f"fastopt.commands.{COMMANDS[name]}")


def _available() -> dict[str, str]:
    """Commands whose module is present, with their one-line summary."""
    out: dict[str, str] = {}
    for name in COMMANDS:
        try:
            out[name] = getattr(_load(name), "SUMMARY", "")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("fastopt.commands."):
                continue
            raise
    return out


def _top_parser(available: dict[str, str]) -> argparse.ArgumentParser:
    width = max((len(n) for n in available), default=8) + 2
    listing = "\n".join(f"  {n:<{width}}{s}" for n, s in available.items())
    return argparse.ArgumentParser(
        prog="fastopt",
        description="fastopt: fast, trustworthy portfolio manager for many trading strategies.",
        epilog=f"commands:\n{listing}\n\n{_TOP_EPILOG}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="fastopt [-h] [--version] <command> [options]",
    )


def build_parser(command: str) -> argparse.ArgumentParser:
    """The full argument parser of one command."""
    module = _load(command)
    parser = argparse.ArgumentParser(
        prog=f"fastopt {command}",
        description=getattr(module, "SUMMARY", None),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    module.configure(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns (and, as a console script, exits with) the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        parser = _top_parser(_available())
        parser.print_help(sys.stdout if args else sys.stderr)
        return 0 if args else EXIT_USAGE
    if args[0] == "--version":
        from fastopt import __version__

        print(f"fastopt {__version__}")
        return 0
    command = args[0]
    if command not in COMMANDS:
        print(f"fastopt: unknown command {command!r}; run `fastopt --help` for the list", file=sys.stderr)
        return EXIT_USAGE
    try:
        parser = build_parser(command)
    except ModuleNotFoundError as exc:
        print(f"fastopt: command {command!r} is not available ({exc})", file=sys.stderr)
        return EXIT_USAGE
    try:
        namespace = parser.parse_args(args[1:])
    except SystemExit as exc:  # argparse: --help (0) or usage error (2)
        return int(exc.code or 0)
    module = _load(command)
    try:
        return int(module.run(namespace) or 0)
    except FastoptError as err:
        print(f"fastopt {command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"fastopt {command}: interrupted", file=sys.stderr)
        return 130
    except MemoryError as exc:  # a resource limit (e.g. --random-n 10**12), not a bug
        detail = f": {exc}" if str(exc) else ""
        print(f"fastopt {command}: error: out of memory{detail}; ask for less (fewer days, strategies or "
              "random portfolios)", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:  # a bug, not bad input: one line unless debugging
        if os.environ.get("FASTOPT_DEBUG"):
            raise
        print(
            f"fastopt {command}: internal error: {type(exc).__name__}: {exc} "
            "(set FASTOPT_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
