"""The dashboard: pure data functions, the bind/token rules and the Starlette app (docs/dashboard.md).

Data (every function reads the files next to the config, read-only, no network, no lock):

* :func:`dashboard_data` - the whole page as one JSON-able dict: ``status`` (exactly
  :func:`reconciler.health.collect_status`, the data of ``fastopt status --json``), ``weights``
  (from the config), ``equity_curve`` (:func:`equity_curve`), ``orders`` (:func:`recent_orders`)
  and ``alerts`` (:func:`recent_alerts`);
* :func:`equity_curve` - the paper account's equity after each fill (``paper_exchange.sqlite``),
  else the walk-forward's curve (``walkforward/stats.json`` next to the config), else nothing;
* :func:`recent_orders` - the last intents of ``orders.jsonl`` with their outcomes;
* :func:`recent_alerts` - the last lines of ``alerts.jsonl`` when the reconciler keeps one, else the
  events and problems of the last cycle (``last_cycle.json``).

Access rules (:func:`check_bind`, :class:`AccessGuard`): loopback only, unless a token is set; with a
token every request carries it (``?token=`` or ``Authorization: Bearer``; constant-time comparison). Without
a token the ``Host`` header must name the loopback (a page of another site cannot read the dashboard
through DNS rebinding).

Starlette and uvicorn are imported only by :func:`create_app` and the CLI, so this module's data
functions work without the ``dashboard`` extra.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import math
import os
import socket
import sqlite3
from collections.abc import Mapping
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from fastopt.errors import FastoptError, InputError

#: the reconciler's files (names as in reconciler.engine; repeated so the data functions import nothing heavy)
JOURNAL_NAME = "orders.jsonl"
PAPER_DB_NAME = "paper_exchange.sqlite"
LAST_CYCLE_NAME = "last_cycle.json"
#: a file of alerts (one JSON object a line: ts, kind, level, message) next to the config, when one is kept
ALERTS_NAME = "alerts.jsonl"
#: where `fastopt walkforward --output walkforward` (make demo) writes, relative to the config's folder
WALKFORWARD_STATS = Path("walkforward") / "stats.json"
#: the most points of the equity curve sent to the page (older ones are thinned out, the last is kept)
MAX_CURVE_POINTS = 2000
#: bytes read from the end of orders.jsonl / alerts.jsonl
TAIL_BYTES = 2 << 20
#: shortest accepted token (characters)
MIN_TOKEN_LEN = 16
TOKEN_ENV = "FASTOPT_DASHBOARD_TOKEN"


# -- access rules ---------------------------------------------------------------------------------------------
def is_loopback(host: str) -> bool:
    """True when every address ``host`` resolves to is a loopback address (127.0.0.0/8, ::1)."""
    name = host.strip().strip("[]")
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)


def check_bind(host: str, token: str | None) -> None:
    """InputError unless serving on ``host`` with ``token`` is allowed.

    Loopback needs no token; any other address (``0.0.0.0``, ``::``, a LAN address, a host name that
    resolves elsewhere) needs one. A token has at least :data:`MIN_TOKEN_LEN` characters, no whitespace.
    """
    if token is not None:
        if len(token) < MIN_TOKEN_LEN or any(c.isspace() for c in token) or not token.isprintable():
            raise InputError(f"--token must be at least {MIN_TOKEN_LEN} printable characters without spaces "
                             "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(24))'`)")
        return
    if not is_loopback(host):
        raise InputError(f"refusing to serve the dashboard on {host or repr(host)}: only the loopback (127.0.0.1) is served "
                         f"without a token; set --token (or {TOKEN_ENV}) to serve on another address")


def token_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison (the time does not depend on where the strings differ)."""
    return given is not None and hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def _host_of(header: str) -> str:
    """The host part of a ``Host`` header: ``[::1]:8050`` -> ``::1``, ``localhost:8050`` -> ``localhost``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


def _loopback_name(host: str) -> bool:
    """``localhost`` or a loopback address literal (no name lookup: a ``Host`` header is the client's word)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class AccessGuard:
    """ASGI middleware: the token (when set) on every request; a loopback ``Host`` when serving the loopback."""

    def __init__(self, app: Any, *, token: str | None, loopback_only: bool) -> None:
        self.app = app
        self.token = token
        self.loopback_only = loopback_only

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.loopback_only and not _loopback_name(_host_of(headers.get("host", ""))):
            await _plain(send, 421, "421 misdirected: this dashboard answers only to 127.0.0.1 or localhost\n")
            return
        if self.token is not None:
            given = None
            auth = headers.get("authorization", "")
            if auth[:7].lower() == "bearer ":
                given = auth[7:].strip()
            else:
                from urllib.parse import parse_qs

                values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
                given = values[0] if values else None
            if not token_matches(self.token, given):
                await _plain(send, 401, "401 unauthorized: this dashboard needs its token "
                             "(?token=... or Authorization: Bearer ...)\n",
                             extra=[(b"www-authenticate", b'Bearer realm="fastopt dashboard"')])
                return
        await self.app(scope, receive, send)


async def _plain(send: Any, status: int, text: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = text.encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
                            (b"cache-control", b"no-store"), *(extra or [])]})
    await send({"type": "http.response.body", "body": body})


# -- data -----------------------------------------------------------------------------------------------------
def _tail_lines(path: Path, tail_bytes: int = TAIL_BYTES) -> list[bytes]:
    """The complete lines in the last ``tail_bytes`` of ``path`` (the first, possibly cut, is dropped)."""
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        start = max(0, size - tail_bytes)
        handle.seek(start)
        data = handle.read()
    lines = data.splitlines()
    return lines[1:] if start > 0 and lines else lines


def _json_objects(lines: list[bytes]) -> list[dict[str, Any]]:
    out = []
    for raw in lines:
        try:
            rec = json.loads(raw)
        except ValueError:
            continue  # a torn or damaged line: `fastopt status` reports the journal; the page shows the rest
        if isinstance(rec, dict):
            out.append(rec)
    return out


def recent_orders(folder: Path, *, limit: int = 50) -> list[dict[str, Any]]:
    """The last ``limit`` order intents of ``orders.jsonl``, newest first, each with its outcome.

    Fields: ``ts``, ``client_order_id``, ``venue``, ``symbol``, ``side``, ``amount``, ``reduce_only``, ``leg``,
    ``price`` (the plan's), ``cycle``, ``status`` (the outcome's, or ``"unresolved"`` when the journal has none
    yet), ``filled``, ``average``, ``error``, ``outcome_ts``.
    """
    path = folder / JOURNAL_NAME
    if not path.is_file():
        return []
    intents: dict[str, dict[str, Any]] = {}
    for rec in _json_objects(_tail_lines(path)):
        cid = str(rec.get("client_order_id"))
        if rec.get("event") == "intent":
            intents[cid] = {"ts": rec.get("ts"), "client_order_id": cid, "venue": rec.get("venue"),
                            "symbol": rec.get("symbol"), "side": rec.get("side"), "amount": rec.get("amount"),
                            "reduce_only": bool(rec.get("reduce_only")), "leg": rec.get("leg"),
                            "price": rec.get("price"), "cycle": rec.get("cycle"), "status": "unresolved",
                            "filled": None, "average": None, "error": None, "outcome_ts": None}
        elif rec.get("event") == "outcome" and cid in intents:
            intents[cid].update(status=rec.get("status"), filled=rec.get("filled"), average=rec.get("average"),
                                error=rec.get("error"), outcome_ts=rec.get("ts"))
    return list(reversed(list(intents.values())[-limit:]))


def recent_alerts(folder: Path, *, limit: int = 50) -> dict[str, Any]:
    """``{"source", "items"}``: the last ``limit`` alerts, newest first (``ts``, ``kind``, ``level``, ``message``).

    Source: ``alerts.jsonl`` next to the config when it exists; else ``last_cycle.json`` (its events, then its
    problems as ``kind: "problem"``); else none.
    """
    path = folder / ALERTS_NAME
    if path.is_file():
        items = [{k: rec.get(k) for k in ("ts", "kind", "level", "message")}
                 for rec in _json_objects(_tail_lines(path))]
        return {"source": ALERTS_NAME, "items": list(reversed(items[-limit:]))}
    try:
        cycle = json.loads((folder / LAST_CYCLE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"source": None, "items": []}
    if not isinstance(cycle, dict):
        return {"source": None, "items": []}
    items = [{k: e.get(k) for k in ("ts", "kind", "level", "message")}
             for e in (cycle.get("events") or []) if isinstance(e, dict)]
    items += [{"ts": cycle.get("ts"), "kind": "problem", "level": "error", "message": str(p)}
              for p in (cycle.get("problems") or [])]
    return {"source": LAST_CYCLE_NAME, "items": list(reversed(items[-limit:]))}


def _thin(points: list[list[Any]], limit: int = MAX_CURVE_POINTS) -> list[list[Any]]:
    """At most ``limit`` points, evenly spaced, always keeping the first and the last."""
    if len(points) <= limit:
        return points
    step = (len(points) - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]


def paper_curve(db_path: Path) -> list[list[Any]]:
    """``[[ts, equity], ...]``: the paper account's equity at its creation and after each fill.

    Rebuilt from the fills (read-only): cash starts at the starting cash (cash now + signed notionals + fees,
    as :func:`reconciler.health.paper_equity`); after each fill, equity = cash + sum(position x the last fill
    price of each symbol), the only prices the database keeps.
    """
    db = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True, timeout=1.0)
    try:
        cash_now = float(db.execute("SELECT value FROM meta WHERE key = 'cash'").fetchone()[0])
        row = db.execute("SELECT value FROM meta WHERE key = 'created_at'").fetchone()
        created = row[0] if row else None
        fills = db.execute("SELECT ts, symbol, side, amount, price, fee FROM fills ORDER BY ts, rowid").fetchall()
    finally:
        db.close()
    flows = [((1.0 if side == "buy" else -1.0) * float(amount) * float(price), float(fee))
             for _, _, side, amount, price, fee in fills]
    cash = cash_now + math.fsum(f for f, _ in flows) + math.fsum(fee for _, fee in flows)
    points: list[list[Any]] = [[_iso(created) if created else (_iso(fills[0][0]) if fills else None), cash]]
    positions: dict[str, float] = {}
    marks: dict[str, float] = {}
    for (ts, symbol, side, amount, price, fee), (flow, _) in zip(fills, flows):
        sign = 1.0 if side == "buy" else -1.0
        positions[symbol] = positions.get(symbol, 0.0) + sign * float(amount)
        marks[symbol] = float(price)
        cash -= flow + float(fee)
        points.append([_iso(ts), cash + math.fsum(a * marks[s] for s, a in positions.items())])
    return points if points[0][0] is not None else points[1:]


def walkforward_curve(stats_path: Path, start_value: float) -> list[list[Any]]:
    """``[[date, value], ...]``: ``start_value`` grown by the walk-forward's net daily returns."""
    doc = json.loads(stats_path.read_text(encoding="utf-8"))
    dates, returns = doc.get("daily_dates") or [], doc.get("managed_returns") or []
    value, points = float(start_value), []
    for day, r in zip(dates, returns):
        value *= 1.0 + float(r)
        points.append([str(day), value])
    return points


_CACHE: dict[tuple[str, Path], tuple[tuple[Any, ...], Any]] = {}


def _signature(*paths: Path) -> tuple[Any, ...]:
    out = []
    for path in paths:
        try:
            st = path.stat()
            out.append((st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            out.append(None)
    return tuple(out)


def _cached(kind: str, path: Path, compute: Any, *extra: Path) -> Any:
    """``compute(path)``, recomputed only when ``path`` (or ``extra``: a WAL file) changed (mtime, size, inode):
    the page asks every few seconds, a big walk-forward stats.json or paper book is parsed once per change."""
    sig = _signature(path, *extra)
    hit = _CACHE.get((kind, path))
    if hit is not None and hit[0] == sig:
        return hit[1]
    value = compute(path)
    if len(_CACHE) > 64:
        _CACHE.clear()
    _CACHE[(kind, path)] = (sig, value)
    return value


def equity_curve(folder: Path, status: Mapping[str, Any], *, walkforward: Path | None = None) -> dict[str, Any]:
    """``{"source", "label", "points": [[ts, value], ...], "error"}`` for the page's chart.

    Paper fills first (``paper_exchange.sqlite`` with at least one fill): one point at the book's creation,
    one after each fill, and a last one at the end of the last cycle with the status's paper equity (marked
    at the snapshot's prices), so the curve ends on the number the status shows. Else the walk-forward
    (``walkforward`` or ``walkforward/stats.json`` next to the config), starting at the config's
    account_value (a backtest, labelled as such). Else no points.
    """
    db = folder / PAPER_DB_NAME
    error = None
    if db.is_file():
        try:
            points = list(_cached("paper", db, paper_curve, db.with_name(db.name + "-wal")))
        except (sqlite3.Error, OSError, TypeError, ValueError) as exc:
            points, error = [], f"paper book unreadable: {exc}"
        if len(points) > 1:
            paper = ((status.get("equity") or {}).get("by_venue") or {}).get("paper") or {}
            cycle_ts = (status.get("last_cycle") or {}).get("ts")
            if isinstance(paper.get("equity"), (int, float)) and cycle_ts and _iso(cycle_ts) >= points[-1][0]:
                points.append([_iso(cycle_ts), float(paper["equity"])])
            return {"source": "paper", "label": "paper account equity after each fill; the last point: the status's "
                    "equity at the last cycle's prices", "points": _thin(points), "error": None}
    stats = walkforward if walkforward is not None else folder / WALKFORWARD_STATS
    if stats.is_file():
        start = (status.get("config") or {}).get("account_value") or 1.0
        try:
            growth = _cached("walkforward", stats, lambda p: walkforward_curve(p, 1.0))
            points = [[day, float(start) * value] for day, value in growth]
        except (OSError, ValueError, TypeError) as exc:
            return {"source": None, "label": "", "points": [], "error": f"{stats}: {exc}"}
        return {"source": "walkforward", "label": f"walk-forward backtest ({stats.name}, out of sample, not live "
                "trading), from the config's account value", "points": _thin(points), "error": error}
    return {"source": None, "label": "", "points": [], "error": error}


def config_weights(config_path: Path) -> dict[str, Any]:
    """``{"weights": [{"strategy", "weight", "exchange"}], "account_value", "leverage", "error"}``, largest first."""
    from fastopt.files.config import read_config

    try:
        raw = read_config(config_path)
    except FastoptError as err:
        return {"weights": [], "account_value": None, "leverage": None, "error": err.reason}
    weights = raw.get("weights") if isinstance(raw.get("weights"), dict) else {}
    exchanges = raw.get("exchanges") if isinstance(raw.get("exchanges"), dict) else {}
    rows = [{"strategy": str(name), "weight": float(w), "exchange": exchanges.get(name)}
            for name, w in weights.items()
            if isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w)]
    rows.sort(key=lambda r: (-r["weight"], r["strategy"]))
    return {"weights": rows, "account_value": raw.get("account_value"), "leverage": raw.get("leverage"),
            "error": None}


def dashboard_data(config_path: str | os.PathLike[str], *, now: datetime | None = None,
                   stale_after_s: float | None = None, strategies_dir: str | os.PathLike[str] | None = None,
                   walkforward: str | os.PathLike[str] | None = None, orders: int = 50,
                   alerts: int = 50) -> dict[str, Any]:
    """Everything the page shows, as one JSON-able dict (non-finite numbers become null).

    ``status`` is :func:`reconciler.health.collect_status` with the same arguments as ``fastopt status``
    (``stale_after_s`` default: its default), so the banner and the per-symbol table are the status's.
    """
    from reconciler.health import collect_status

    config_path = Path(config_path)
    folder = config_path.resolve().parent
    kwargs: dict[str, Any] = {"now": now, "strategies_dir": strategies_dir}
    if stale_after_s is not None:
        kwargs["stale_after_s"] = stale_after_s
    status = collect_status(config_path, **kwargs)
    return _finite({
        "generated_at": _iso(now or datetime.now(timezone.utc)),
        "status": status,
        "weights": config_weights(config_path),
        "equity_curve": equity_curve(folder, status, walkforward=None if walkforward is None else Path(walkforward)),
        "orders": recent_orders(folder, limit=orders),
        "alerts": recent_alerts(folder, limit=alerts),
    })


def _iso(value: Any) -> str:
    """ISO 8601 UTC with a ``Z`` (seconds precision) from a datetime or an ISO string; the input if unparseable."""
    moment = value
    if not isinstance(value, datetime):
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _finite(obj: Any) -> Any:
    """A copy with NaN/inf as None and every key a string (strict JSON for the browser)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


# -- the page -------------------------------------------------------------------------------------------------
def _static(name: str) -> str:
    return resources.files("fastopt.dashboard").joinpath("static", name).read_text(encoding="utf-8")


def render_page(refresh_s: float) -> tuple[str, str]:
    """``(html, content_security_policy)``: ``static/index.html`` with its stylesheet and script inlined.

    Inlined so that one request (carrying the token) loads everything; the CSP allows exactly these two
    inline blocks (by hash) and requests to this origin, nothing else (no CDN, no external font or image).
    """
    css, js = _static("dashboard.css"), _static("dashboard.js")
    config = json.dumps({"refresh_ms": int(refresh_s * 1000)})
    js = f"const FASTOPT_DASHBOARD = {config};\n{js}"
    html = _static("index.html").replace("/*STYLE*/", css).replace("/*SCRIPT*/", js)

    def digest(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"

    csp = (f"default-src 'none'; script-src {digest(js)}; style-src {digest(css)}; connect-src 'self'; "
           "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return html, csp


def create_app(config_path: str | os.PathLike[str], *, token: str | None = None, loopback_only: bool = True,
               refresh_s: float = 5.0, stale_after_s: float | None = None,
               strategies_dir: str | os.PathLike[str] | None = None,
               walkforward: str | os.PathLike[str] | None = None) -> Any:
    """The ASGI app: ``GET /`` (the page), ``GET /api/dashboard`` (:func:`dashboard_data` as JSON),
    ``GET /api/status`` (:func:`reconciler.health.collect_status`, as ``fastopt status --json``).

    Read-only: GET and HEAD only. Wrapped in :class:`AccessGuard` (token, loopback ``Host``).
    """
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, Response
    from starlette.routing import Route

    html, csp = render_page(refresh_s)
    security = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                "X-Frame-Options": "DENY"}

    def json_response(data: Any) -> Response:
        body = json.dumps(data, allow_nan=False, ensure_ascii=False, default=str)
        return Response(body, media_type="application/json", headers=security)

    def page(request: Any) -> Response:
        return HTMLResponse(html, headers={**security, "Content-Security-Policy": csp})

    def api_dashboard(request: Any) -> Response:
        return json_response(dashboard_data(config_path, stale_after_s=stale_after_s, strategies_dir=strategies_dir,
                                            walkforward=walkforward))

    def api_status(request: Any) -> Response:
        from reconciler.health import collect_status

        kwargs: dict[str, Any] = {"strategies_dir": strategies_dir}
        if stale_after_s is not None:
            kwargs["stale_after_s"] = stale_after_s
        return json_response(_finite(collect_status(config_path, **kwargs)))

    app = Starlette(routes=[Route("/", page, methods=["GET"]),
                            Route("/api/dashboard", api_dashboard, methods=["GET"]),
                            Route("/api/status", api_status, methods=["GET"])])
    return AccessGuard(app, token=token, loopback_only=loopback_only)
