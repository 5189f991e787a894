"""A fake Kraken Futures server for the reconciler's venue tests (ccxt ``krakenfutures`` 4.5.90).

Threaded ``http.server`` on 127.0.0.1 (port 0). Only the endpoints the reconciler reaches through the real
ccxt class and the venue profile (``reconciler/venues/krakenfutures.py``), with Kraken's response shapes:

- GET  /derivatives/api/v3/instruments (public): PF_XBTUSD, PF_ETHUSD, PF_SOLUSD (``flexible_futures``,
  contract size 1, step ``10**-contractValueTradePrecision``), PI_XBTUSD (inverse perp), FF_XBTUSD_261225
  (dated linear future), in_xbtusd (index)
- GET  /derivatives/api/v3/tickers (public): ``markPrice``, ``indexPrice``, ``last``
- GET  /derivatives/api/v3/openpositions, /derivatives/api/v3/accounts (``flex`` portfolio in USD)
- POST /derivatives/api/v3/sendorder (``orderType`` mkt only; params in the query string as ccxt sends
  them): market orders fill at once at the mark price (``order_mode = "stay_open"``: they rest, untouched);
  ``size`` checked against the step (``invalidSize``), the max position (``maxPositionViolation``);
  reduce-only orders that would not reduce: ``wouldNotReducePosition``; a reused ``cliOrdId``:
  ``clientOrderIdAlreadyExist`` (all HTTP 200 with ``sendStatus.status``, as Kraken answers)
- GET/POST /derivatives/api/v3/orders/status: ``orderIds`` / ``cliOrdIds`` filters (repeatable); answers only
  for orders open or final for less than ``recent_s`` seconds (5 on Kraken); unknown ids are ignored and
  with no usable filter every such order is listed
- GET  /api/history/v2/orders: the account's order events (OrderPlaced, OrderUpdated ``full_fill``,
  OrderCancelled, OrderRejected) with ``clientId``; ``tradeable``, ``since``, ``sort``, ``count``,
  ``continuation_token`` (token also in the ``Next-Continuation-Token`` header and ``continuationToken``)
- GET  /derivatives/api/v3/openorders; POST /derivatives/api/v3/cancelorder (``order_id`` or ``cliOrdId``;
  ``cancelled`` / ``notFound`` / ``filled``)

Authentication on every private endpoint, as Kraken checks it: header ``APIKey`` must be the key, and
``Authent`` = base64(HMAC-SHA512(base64decode(secret), SHA256(postData + Nonce + endpointPath))), where
``postData`` is the query string (or the body), ``Nonce`` the optional header and ``endpointPath`` the URL
path without ``/derivatives`` (``/api/v3/sendorder``). Otherwise HTTP 401
``{"result": "error", "error": "authenticationError"}``.

Faults (``inject(kind)``, each consumed by the next POST sendorder): ``timeout_applied`` (applied, answered
after ``slow_s``), ``error_applied`` (applied, HTTP 500 ``Server Error``), ``rate_limited`` (not applied,
HTTP 429 ``apiLimitExceeded``), ``insufficient_margin`` (not applied, ``insufficientAvailableFunds``),
``statusless`` (applied, ``sendStatus`` with only ``order_id``), ``reduce_only_refusal`` (the next
reduce-only order is refused with ``wouldNotReducePosition``). ``add_canned(method, path, status, payload)``
answers the next request to that route with a raw payload (after the auth check).

Units: ``size``, ``fills[*]["qty"]`` and positions in contracts = base units (contract size 1); prices
and balances in USD.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections import defaultdict, deque
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from fakes.http_fake import JsonHandler, LoopbackServer
from urllib.parse import parse_qsl, urlsplit

API_KEY = "kf-test-key"
SECRET = base64.b64encode(b"kraken-futures-fake-secret-0123456789").decode()

#: (Kraken id, base, price, contractValueTradePrecision)
PERPS = [("PF_XBTUSD", "BTC", 95000.0, 4), ("PF_ETHUSD", "ETH", 3500.0, 3), ("PF_SOLUSD", "SOL", 190.0, 2)]
DERIV = "/derivatives/api/v3/"
HISTORY = "/api/history/v2/"
SENDORDER = ("POST", DERIV + "sendorder")


def _iso(ts: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if ts is None else ts, timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _num(d: Decimal) -> float:
    return float(d)


class FakeKrakenFutures(LoopbackServer):
    """State + server; a context manager. Implements the VenueFake protocol (tests/fakes/venue_matrix.py)."""

    exchange_id = "krakenfutures"
    env = {"KRAKENFUTURES_API_KEY": API_KEY, "KRAKENFUTURES_SECRET": SECRET}

    def __init__(self, *, slow_s: float = 2.0, recent_s: float = 5.0) -> None:
        self.markets = {mid: {"id": mid, "base": base, "price": price, "index": None,
                              "step": Decimal(1).scaleb(-prec), "precision": prec,
                              "max_position": Decimal("1000000")} for mid, base, price, prec in PERPS}
        self.symbols = {m["base"]: f"{m['base']}/USD:USD" for m in self.markets.values()}
        self.prices = {m["base"]: m["price"] for m in self.markets.values()}
        self.steps = {m["base"]: float(m["step"]) for m in self.markets.values()}  # contract size 1
        self.positions: dict[str, Decimal] = defaultdict(Decimal)
        #: rows of other contracts shown by openpositions (inverse, dated): never fastopt's
        self.other_positions: list[dict[str, Any]] = []
        self.orders: dict[str, dict[str, Any]] = {}  # uid -> order
        self.by_cid: dict[str, str] = {}
        self.events: list[dict[str, Any]] = []  # history elements, oldest first
        self.fills: list[dict[str, Any]] = []
        self.requests_full: list[dict[str, Any]] = []
        self.faults: deque[str] = deque()
        self.canned: dict[tuple[str, str], deque[tuple[int, Any]]] = defaultdict(deque)
        self.order_mode = "fill"
        self.wallet = Decimal("100000")
        self.unrealized_pnl = Decimal("0")
        self.has_flex = True
        self.slow_s = slow_s
        self.recent_s = recent_s
        self.lock = threading.RLock()
        self.serve(self._handler())

    # -- protocol ---------------------------------------------------------------
    def position(self, base: str) -> float:
        with self.lock:
            return float(self.positions[f"PF_{'XBT' if base == 'BTC' else base}USD"])

    def inject(self, kind: str) -> None:
        if kind not in ("timeout_applied", "error_applied", "rate_limited", "insufficient_margin", "statusless",
                        "reduce_only_refusal"):
            raise ValueError(kind)
        with self.lock:
            self.faults.append(kind)

    # -- knobs ------------------------------------------------------------------
    def add_canned(self, method: str, path: str, status: int, payload: Any) -> None:
        with self.lock:
            self.canned[(method, path)].append((status, payload))

    def set_balance(self, wallet: float | str, unrealized_pnl: float | str = 0) -> None:
        with self.lock:
            self.wallet = Decimal(str(wallet))
            self.unrealized_pnl = Decimal(str(unrealized_pnl))

    def add_foreign_order(self, cid: str, mid: str = "PF_XBTUSD", qty: str = "0.001") -> str:
        """An order placed by someone else (another client id), filled now; returns its uid."""
        with self.lock:
            order = self._new_record(mid, "buy", Decimal(qty), False, cid)
            self._fill(order)
            return order["uid"]

    # -- order book-keeping (caller holds the lock) -------------------------------
    def _new_record(self, mid: str, side: str, qty: Decimal, reduce_only: bool, cid: str | None) -> dict[str, Any]:
        now = time.time()
        order = {"uid": str(uuid.uuid4()), "cid": cid, "symbol": mid, "side": side, "qty": qty,
                 "filled": Decimal(0), "reduce_only": reduce_only, "status": "ENTERED_BOOK", "created": now,
                 "updated": now, "final_at": None, "price": Decimal(str(self.markets[mid]["price"]))}
        self.orders[order["uid"]] = order
        if cid:
            self.by_cid[cid] = order["uid"]
        self._event("OrderPlaced", order, reason="new_user_order")
        return order

    def _history_order(self, order: dict[str, Any]) -> dict[str, Any]:
        return {"uid": order["uid"], "accountUid": "fake-account", "tradeable": order["symbol"],
                "direction": "Buy" if order["side"] == "buy" else "Sell",
                "quantity": str(order["qty"] - order["filled"]), "filled": str(order["filled"]),
                "timestamp": str(int(order["created"] * 1000)), "limitPrice": str(order["price"]),
                "orderType": "IoC", "clientId": order["cid"] or "", "reduceOnly": order["reduce_only"],
                "lastUpdateTimestamp": str(int(order["updated"] * 1000))}

    def _event(self, kind: str, order: dict[str, Any], *, reason: str, old: dict[str, Any] | None = None) -> None:
        body: dict[str, Any]
        if kind == "OrderUpdated":
            body = {"oldOrder": old, "newOrder": self._history_order(order), "reason": reason, "reducedQuantity": ""}
        else:
            body = {"order": self._history_order(order), "reason": reason}
            if kind == "OrderPlaced":
                body.update(reducedQuantity="", algoId="")
        self.events.append({"uid": str(uuid.uuid4()), "timestamp": int(time.time() * 1000), "event": {kind: body}})

    def _fill(self, order: dict[str, Any], qty: Decimal | None = None) -> Decimal:
        """Fill (at most ``qty`` of) what remains; a reduce-only order fills at most the position."""
        mid = order["symbol"]
        remaining = order["qty"] - order["filled"] if qty is None else qty
        sign = 1 if order["side"] == "buy" else -1
        if order["reduce_only"]:
            held = self.positions[mid]
            remaining = min(remaining, abs(held)) if held and (held > 0) != (sign > 0) else Decimal(0)
        if remaining > 0:
            old = self._history_order(order)
            self.positions[mid] += sign * remaining
            order["filled"] += remaining
            order["updated"] = time.time()
            self.fills.append({"client_order_id": order["cid"], "symbol": mid, "side": order["side"],
                               "qty": remaining})
            if order["filled"] >= order["qty"]:
                order["status"] = "FULLY_EXECUTED"
                order["final_at"] = time.time()
                self._event("OrderUpdated", order, reason="full_fill", old=old)
            else:
                order["status"] = "PARTIALLY_FILLED"
                self._event("OrderUpdated", order, reason="partial_fill", old=old)
        return remaining

    def _finish(self, order: dict[str, Any], status: str, kind: str, reason: str) -> None:
        order["status"] = status
        order["updated"] = order["final_at"] = time.time()
        self._event(kind, order, reason=reason)

    def _visible(self, order: dict[str, Any]) -> bool:
        """orders/status shows open orders and orders final for less than ``recent_s`` seconds."""
        return order["final_at"] is None or time.time() - order["final_at"] < self.recent_s

    # -- HTTP -----------------------------------------------------------------------
    def _handler(self):
        fake = self

        class Handler(JsonHandler):
            def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _dispatch(self, method: str) -> None:
                parts = urlsplit(self.path)
                path = parts.path
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                post_data = parts.query or body
                pairs = parse_qsl(parts.query, keep_blank_values=True) + parse_qsl(body, keep_blank_values=True)
                multi: dict[str, list[str]] = defaultdict(list)
                for k, v in pairs:
                    multi[k].append(v)
                params = {k: v[-1] for k, v in multi.items()}
                with fake.lock:
                    fake.requests_full.append({"method": method, "path": path, "params": dict(params)})
                route = ROUTES.get((method, path))
                if route is None:
                    return self._send(404, {"result": "error", "serverTime": _iso(), "error": "notFound"})
                handler, private = route
                if private:
                    problem = _auth_problem(path, post_data, self.headers)
                    if problem:
                        return self._send(401, {"result": "error", "serverTime": _iso(), "error": problem})
                with fake.lock:
                    queue = fake.canned.get((method, path))
                    canned = queue.popleft() if queue else None
                    fault = fake.faults.popleft() if (method, path) == SENDORDER and fake.faults else None
                if canned is not None:
                    return self._send(*canned)
                if fault == "rate_limited":
                    return self._send(429, {"result": "error", "serverTime": _iso(), "error": "apiLimitExceeded"})
                if fault == "insufficient_margin":
                    return self._send(200, {"result": "success", "serverTime": _iso(), "sendStatus": {
                        "status": "insufficientAvailableFunds", "receivedTime": _iso(), "orderEvents": []}})
                if fault == "reduce_only_refusal" and params.get("reduceOnly") != "true":
                    with fake.lock:  # not a reduce-only order: the refusal waits for the next one
                        fake.faults.appendleft(fault)
                    fault = None
                status, payload, headers = handler(fake, params, multi, fault)
                if fault == "timeout_applied":
                    time.sleep(fake.slow_s)
                elif fault == "error_applied":
                    return self._send(500, {"result": "error", "serverTime": _iso(), "error": "Server Error"})
                elif fault == "statusless" and isinstance(payload, dict) and "sendStatus" in payload:
                    payload = {"result": "success", "serverTime": _iso(),
                               "sendStatus": {"order_id": payload["sendStatus"].get("order_id"),
                                              "receivedTime": _iso()}}
                return self._send(status, payload, headers)

        return Handler


def _auth_problem(path: str, post_data: str, headers: Any) -> str | None:
    if headers.get("APIKey") != API_KEY:
        return "authenticationError"
    authent = headers.get("Authent")
    if not authent:
        return "authenticationError"
    endpoint = path[len("/derivatives"):] if path.startswith("/derivatives/") else path
    message = (post_data + (headers.get("Nonce") or "") + endpoint).encode()
    digest = hashlib.sha256(message).digest()
    expected = base64.b64encode(hmac.new(base64.b64decode(SECRET), digest, hashlib.sha512).digest()).decode()
    return None if hmac.compare_digest(expected, authent) else "authenticationError"


Reply = tuple[int, Any, dict[str, str] | None]


def _ok(**payload: Any) -> Reply:
    return 200, {"result": "success", **payload, "serverTime": _iso()}, None


def _instruments(fake: FakeKrakenFutures, params: dict[str, str], multi: Any, fault: Any) -> Reply:
    out = []
    for m in fake.markets.values():
        out.append({"symbol": m["id"], "type": "flexible_futures", "tradeable": True, "tickSize": 0.01,
                    "contractSize": 1, "impactMidSize": 1, "maxPositionSize": float(m["max_position"]),
                    "openingDate": "2022-03-01T00:00:00.000Z",
                    "marginLevels": [{"numNonContractUnits": 0, "initialMargin": 0.02, "maintenanceMargin": 0.01}],
                    "fundingRateCoefficient": 8, "maxRelativeFundingRate": 0.001,
                    "contractValueTradePrecision": m["precision"], "postOnly": False,
                    "feeScheduleUid": "fee-uid", "mtf": False, "base": m["base"], "quote": "USD",
                    "pair": f"{m['base']}:USD", "category": "", "tags": [], "tradfi": False})
    out.append({"symbol": "PI_XBTUSD", "type": "futures_inverse", "underlying": "rr_xbtusd", "tickSize": 0.5,
                "contractSize": 1, "tradeable": True, "impactMidSize": 1, "maxPositionSize": 1000000,
                "openingDate": "2018-08-31T00:00:00.000Z", "marginLevels": [],
                "fundingRateCoefficient": 8, "maxRelativeFundingRate": 0.001, "isin": "GB00J62YGL67",
                "contractValueTradePrecision": 0, "postOnly": False, "feeScheduleUid": "fee-uid", "tags": []})
    out.append({"symbol": "FF_XBTUSD_261225", "type": "flexible_futures", "underlying": "rr_xbtusd",
                "lastTradingTime": "2026-12-25T16:00:00.000Z", "tickSize": 1, "contractSize": 1, "tradeable": True,
                "impactMidSize": 1, "maxPositionSize": 1000000, "openingDate": "2026-06-01T00:00:00.000Z",
                "marginLevels": [], "contractValueTradePrecision": 4, "postOnly": False, "tags": []})
    out.append({"symbol": "in_xbtusd", "type": "spot index", "tradeable": False})
    return _ok(instruments=out)


def _tickers(fake: FakeKrakenFutures, params: dict[str, str], multi: Any, fault: Any) -> Reply:
    out = []
    with fake.lock:
        for m in fake.markets.values():
            p = m["price"]
            out.append({"tag": "perpetual", "pair": f"{m['base']}:USD", "symbol": m["id"], "markPrice": p,
                        "bid": p, "bidSize": 1.0, "ask": p, "askSize": 1.0, "vol24h": 100.0, "volumeQuote": 100.0 * p,
                        "openInterest": 10.0, "open24h": p, "high24h": p, "low24h": p,
                        "indexPrice": p if m["index"] is None else m["index"], "last": p, "lastTime": _iso(),
                        "lastSize": 0.1, "suspended": False, "fundingRate": 0.0, "fundingRatePrediction": 0.0,
                        "postOnly": False})
    out.append({"symbol": "in_xbtusd", "last": fake.markets["PF_XBTUSD"]["price"], "lastTime": _iso()})
    return _ok(tickers=out)


def _open_positions(fake: FakeKrakenFutures, params: dict[str, str], multi: Any, fault: Any) -> Reply:
    with fake.lock:
        rows = [{"side": "long" if size > 0 else "short", "symbol": mid, "price": fake.markets[mid]["price"],
                 "fillTime": _iso(), "size": _num(abs(size)), "unrealizedFunding": 0.0, "pnlCurrency": "USD"}
                for mid, size in fake.positions.items() if size != 0]
        rows += [dict(r) for r in fake.other_positions]
    return _ok(openPositions=rows)


def _accounts(fake: FakeKrakenFutures, params: dict[str, str], multi: Any, fault: Any) -> Reply:
    with fake.lock:
        wallet, upnl = fake.wallet, fake.unrealized_pnl
        has_flex = fake.has_flex
    accounts: dict[str, Any] = {
        "cash": {"balances": {"usd": "0.0", "xbt": "0.0", "usdt": "0.0"}, "type": "cashAccount"},
        "fi_xbtusd": {"auxiliary": {"usd": 0, "pv": 0.0, "pnl": 0.0, "af": 0.0, "funding": 0.0},
                      "marginRequirements": {"im": 0.0, "mm": 0.0, "lt": 0.0, "tt": 0.0},
                      "triggerEstimates": {"im": 0, "mm": 0, "lt": 0, "tt": 0},
                      "balances": {"xbt": 0.0}, "currency": "xbt", "type": "marginAccount"},
    }
    if has_flex:
        w, u = _num(wallet), _num(upnl)
        accounts["flex"] = {"currencies": {"USD": {"quantity": w, "value": w, "collateral": w, "available": w}},
                            "initialMargin": 0.0, "initialMarginWithOrders": 0.0, "maintenanceMargin": 0.0,
                            "balanceValue": w, "portfolioValue": w + u, "collateralValue": w, "pnl": 0.0,
                            "unrealizedFunding": 0.0, "totalUnrealized": u, "totalUnrealizedAsMargin": u,
                            "availableMargin": w + u, "marginEquity": w + u,
                            "type": "multiCollateralMarginAccount"}
    return _ok(accounts=accounts)


def _order_view(order: dict[str, Any]) -> dict[str, Any]:
    """An order as orders/status, cancelorder and sendorder show it (numbers in contracts / USD)."""
    return {"orderId": order["uid"], "cliOrdId": order["cid"], "type": "mkt", "symbol": order["symbol"],
            "side": order["side"], "quantity": _num(order["qty"]), "filled": _num(order["filled"]),
            "limitPrice": _num(order["price"]), "reduceOnly": order["reduce_only"],
            "timestamp": _iso(order["created"]), "lastUpdateTimestamp": _iso(order["updated"])}


def _send_order(fake: FakeKrakenFutures, params: dict[str, str], multi: Any, fault: Any) -> Reply:
    def status_only(status: str) -> Reply:
        return _ok(sendStatus={"status": status, "receivedTime": _iso(), "orderEvents": []})

    mid = params.get("symbol", "").upper()
    if mid not in fake.markets:
        return status_only("marketInactive") if mid else (400, {"result": "error", "serverTime": _iso(),
                                                                "error": "requiredArgumentMissing"}, None)
    if params.get("orderType") != "mkt":
        return status_only("invalidOrderType")
    side = params.get("side")
    if side not in ("buy", "sell"):
        return status_only("invalidSide")
    m = fake.markets[mid]
    try:
        qty = Decimal(params["size"])
    except Exception:
        return status_only("invalidSize")
    if qty <= 0 or qty % m["step"] != 0:
        return status_only("invalidSize")
    cid = params.get("cliOrdId") or None
    if cid is not None and len(cid) > 100:
        return status_only("clientOrderIdTooLong")
    reduce_only = params.get("reduceOnly") == "true"
    with fake.lock:
        if cid is not None and cid in fake.by_cid:
            return status_only("clientOrderIdAlreadyExist")
        held = fake.positions[mid]
        sign = 1 if side == "buy" else -1
        reduces = held != 0 and (held > 0) != (sign > 0)
        if reduce_only and (fault == "reduce_only_refusal" or not reduces):
            order = fake._new_record(mid, side, qty, True, cid)
            fake._finish(order, "REJECTED", "OrderRejected", "WOULD_NOT_REDUCE_POSITION")
            return _ok(sendStatus={"status": "wouldNotReducePosition", "order_id": order["uid"],
                                   "receivedTime": _iso(), "orderEvents": [
                                       {"uid": order["uid"], "order": _order_view(order),
                                        "reason": "WOULD_NOT_REDUCE_POSITION", "type": "REJECT"}]})
        if not reduce_only and abs(held + sign * qty) > m["max_position"]:
            return status_only("maxPositionViolation")
        order = fake._new_record(mid, side, qty, reduce_only, cid)
        if fake.order_mode == "stay_open":
            return _ok(sendStatus={"status": "placed", "order_id": order["uid"], "receivedTime": _iso(),
                                   "orderEvents": [{"uid": order["uid"], "order": _order_view(order),
                                                    "reducedQuantity": None, "type": "PLACE"}]})
        prior = _order_view(order)
        prior["type"] = "ioc"
        done = fake._fill(order)
        if order["filled"] < order["qty"]:  # a reduce-only remainder (or nothing to fill): cancelled
            fake._finish(order, "CANCELLED", "OrderCancelled", "ioc_remainder")
        events = [{"type": "EXECUTION", "executionId": str(uuid.uuid4()), "price": _num(order["price"]),
                   "amount": _num(done), "orderPriorEdit": None, "orderPriorExecution": prior,
                   "takerReducedQuantity": None}] if done > 0 else []
        return _ok(sendStatus={"status": "placed", "order_id": order["uid"], "receivedTime": _iso(),
                               "orderEvents": events})


def _orders_status(fake: FakeKrakenFutures, params: dict[str, str], multi: dict[str, list[str]],
                   fault: Any) -> Reply:
    with fake.lock:
        wanted_uids = {u for u in multi.get("orderIds", []) if u in fake.orders}
        wanted_cids = {c for c in multi.get("cliOrdIds", []) if c in fake.by_cid}
        filtered = bool(wanted_uids or wanted_cids)
        out = []
        for order in fake.orders.values():
            if not fake._visible(order):
                continue
            if filtered and order["uid"] not in wanted_uids and order["cid"] not in wanted_cids:
                continue
            out.append({"order": {"type": "ORDER", **_order_view(order)}, "status": order["status"],
                        "updateReason": None,
                        "error": "WOULD_NOT_REDUCE_POSITION" if order["status"] == "REJECTED" else None})
    return _ok(orders=out)


def _history_orders(fake: FakeKrakenFutures, params: dict[str, str], multi: Any, fault: Any) -> Reply:
    with fake.lock:
        events = list(fake.events)
    tradeable = params.get("tradeable")
    since = int(params.get("since") or 0)
    selected = [e for e in events if e["timestamp"] >= since and (
        tradeable is None or next(iter(e["event"].values())).get(
            "newOrder", next(iter(e["event"].values())).get("order", {})).get("tradeable") == tradeable)]
    if params.get("sort", "desc") == "desc":
        selected.reverse()
    start = int(base64.b64decode(params["continuation_token"]).decode()) if params.get("continuation_token") else 0
    count = int(params.get("count") or 1000)
    page = selected[start:start + count]
    payload: dict[str, Any] = {"accountUid": "fake-account", "len": len(page), "elements": page}
    headers = None
    if start + count < len(selected):
        token = base64.b64encode(str(start + count).encode()).decode()
        payload["continuationToken"] = token
        headers = {"Next-Continuation-Token": token}
    return 200, payload, headers


def _open_orders(fake: FakeKrakenFutures, params: dict[str, str], multi: Any, fault: Any) -> Reply:
    with fake.lock:
        rows = [{"order_id": o["uid"], "cliOrdId": o["cid"], "symbol": o["symbol"], "side": o["side"],
                 "orderType": "lmt", "limitPrice": _num(o["price"]), "unfilledSize": _num(o["qty"] - o["filled"]),
                 "receivedTime": _iso(o["created"]),
                 "status": "untouched" if o["filled"] == 0 else "partiallyFilled", "filledSize": _num(o["filled"]),
                 "reduceOnly": o["reduce_only"], "lastUpdateTime": _iso(o["updated"])}
                for o in fake.orders.values() if o["status"] in ("ENTERED_BOOK", "PARTIALLY_FILLED")]
    return _ok(openOrders=rows)


def _cancel_order(fake: FakeKrakenFutures, params: dict[str, str], multi: Any, fault: Any) -> Reply:
    with fake.lock:
        uid = params.get("order_id") or fake.by_cid.get(params.get("cliOrdId", ""))
        order = fake.orders.get(uid or "")
        if order is None or order["status"] in ("CANCELLED", "REJECTED"):
            return _ok(cancelStatus={"status": "notFound", "receivedTime": _iso()})
        if order["status"] == "FULLY_EXECUTED":
            return _ok(cancelStatus={"status": "filled", "receivedTime": _iso()})
        fake._finish(order, "CANCELLED", "OrderCancelled", "cancelled_by_user")
        return _ok(cancelStatus={"status": "cancelled", "order_id": order["uid"], "receivedTime": _iso(),
                                 "orderEvents": [{"uid": order["uid"], "order": _order_view(order),
                                                  "type": "CANCEL"}]})


# (method, path) -> (handler, private)
ROUTES = {
    ("GET", DERIV + "instruments"): (_instruments, False),
    ("GET", DERIV + "tickers"): (_tickers, False),
    ("GET", DERIV + "openpositions"): (_open_positions, True),
    ("GET", DERIV + "accounts"): (_accounts, True),
    SENDORDER: (_send_order, True),
    ("GET", DERIV + "orders/status"): (_orders_status, True),
    ("POST", DERIV + "orders/status"): (_orders_status, True),
    ("GET", HISTORY + "orders"): (_history_orders, True),
    ("GET", DERIV + "openorders"): (_open_orders, True),
    ("POST", DERIV + "cancelorder"): (_cancel_order, True),
}
