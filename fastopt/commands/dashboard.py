"""`fastopt dashboard`: serve the read-only local dashboard page (docs/dashboard.md)."""
from __future__ import annotations

import argparse
import os
import socket
import sys

from fastopt.options import positive_number
from fastopt.errors import EXIT_CODES, FastoptError, InputError

SUMMARY = "Serve a read-only local web page of the reconciler: health, target vs live, equity, orders, alerts."


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = """examples:
  fastopt dashboard                                   # http://127.0.0.1:8050/ for portfolio_config.json here
  fastopt dashboard --config live/portfolio_config.json --port 9000
  FASTOPT_DASHBOARD_TOKEN=$(python -c 'import secrets; print(secrets.token_urlsafe(24))') \\
      fastopt dashboard --host 0.0.0.0               # open http://HOST:8050/?token=<the token>

Read-only: it reads the files next to the config (as `fastopt status` does) and never changes them.
Served on 127.0.0.1 only, unless a token is set (--token or FASTOPT_DASHBOARD_TOKEN, at least 16
characters); then every request needs it (?token=... or Authorization: Bearer ...).
Needs the extra: pip install 'fastopt[dashboard]' (without it: exit 1).

""" + EXIT_CODES
    parser.add_argument("--config", default="portfolio_config.json",
                        help="portfolio config; the reconciler's files are read next to it (default %(default)s)")
    parser.add_argument("--port", type=int, default=8050, help="TCP port (default %(default)s; 0: any free port)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default %(default)s; another address needs --token)")
    parser.add_argument("--token", default=None,
                        help="require this token on every request (default: $FASTOPT_DASHBOARD_TOKEN; prefer the "
                        "variable: a command line is visible to other users)")
    parser.add_argument("--refresh", type=positive_number, default=5.0, metavar="SECONDS",
                        help="the page reloads its data this often, 0.5..3600 (default %(default)s)")
    parser.add_argument("--stale-after", type=positive_number, default=None, metavar="SECONDS",
                        help="as `fastopt status --stale-after` (default: its default)")
    parser.add_argument("--strategies", default=None,
                        help="folder of strategies/<name>/state.json (default: strategies next to the config)")
    parser.add_argument("--walkforward", default=None, metavar="STATS_JSON",
                        help="walk-forward stats.json for the equity curve when there are no paper fills "
                        "(default: walkforward/stats.json next to the config)")


def run(args: argparse.Namespace) -> int:
    from fastopt.dashboard import EXTRA_HINT
    from fastopt.dashboard.app import TOKEN_ENV, check_bind, create_app, is_loopback

    token = args.token if args.token is not None else (os.environ.get(TOKEN_ENV) or None)
    check_bind(args.host, token)
    if not 0.5 <= args.refresh <= 3600:
        raise InputError(f"--refresh must be 0.5..3600 seconds, got {args.refresh:g}")
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port must be 0..65535, got {args.port}")
    if not os.path.isfile(args.config):
        raise InputError("config not found", path=args.config)
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ModuleNotFoundError as exc:
        raise FastoptError(f"the dashboard needs the {exc.name} package: {EXTRA_HINT}") from None

    app = create_app(args.config, token=token, loopback_only=is_loopback(args.host), refresh_s=args.refresh,
                     stale_after_s=args.stale_after, strategies_dir=args.strategies, walkforward=args.walkforward)
    try:
        infos = socket.getaddrinfo(args.host.strip("[]"), args.port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
        family, _, _, _, address = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)  # listening before the line below: a client that read it can connect at once
    except OSError as exc:
        raise FastoptError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"fastopt dashboard: http://{shown}:{port}/{'?token=<token>' if token else ''} "
          f"({os.path.abspath(args.config)}; Ctrl-C to stop)", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, server_header=False,
                                           lifespan="off"))
    server.run(sockets=[sock])
    print("fastopt dashboard: stopped", file=sys.stderr)
    return 0
