"""A fake Bybit v5 server (linear USDT perpetuals of a Unified Trading Account) for the venue tests.

Threaded ``http.server`` on 127.0.0.1 (port 0), serving only what ccxt's ``bybit`` (4.5.90) calls for
the reconciler, with Bybit's answer shapes (``{"retCode", "retMsg", "result", "retExtInfo", "time"}``)
and its v5 signing: headers ``X-BAPI-API-KEY``, ``X-BAPI-TIMESTAMP``, ``X-BAPI-RECV-WINDOW``,
``X-BAPI-SIGN`` = hex HMAC-SHA256(secret, timestamp + key + recvWindow + query string (GET) or JSON
body (POST)). A wrong key answers retCode 10003, a bad signature 10004, a stale timestamp 10002.

Public:

- GET /v5/market/instruments-info (``category`` linear: the markets below; ``status=PreLaunch``: none;
  other categories: none)
- GET /v5/market/tickers (``category`` linear: ``lastPrice``, ``markPrice``, ``indexPrice``)

Signed:

- GET /v5/position/list (``settleCoin``: rows with a size; ``symbol``: that symbol's rows even flat)
- GET /v5/account/wallet-balance (``accountType=UNIFIED`` only, as on a UTA)
- GET /v5/account/info (``unifiedMarginStatus``), GET /v5/user/query-api (ccxt's UTA probe; ``uta``)
- GET /v5/asset/coin/query-info (ccxt's ``load_markets`` fetches currencies with it when keys are set)
- POST /v5/order/create (market orders; ``orderLinkId`` stored, duplicates refused with 110072)
- GET /v5/order/realtime (``openOnly`` 0: open orders; 1: recent closed ones), GET /v5/order/history
  (closed orders); filters ``orderLinkId``, ``orderId``, ``symbol``, ``settleCoin``; ``limit``/``cursor``
- POST /v5/order/cancel (by ``orderLinkId`` or ``orderId``; 110001 when none is open)

Markets: BTCUSDT, ETHUSDT, SOLUSDT (LinearPerpetual, USDT), plus out-of-scope BTCPERP (USDC perpetual)
and BTCUSDT-26DEC25 (LinearFutures, dated). Amounts (``qty``) are in base coin (Bybit's linear contract
is one base unit). Filters: ``qtyStep``, ``minOrderQty``, ``minNotionalValue``, ``maxMktOrderQty``.

Knobs (thread-safe through ``lock``): ``inject(kind)`` (venue-matrix faults on the next order),
``add_canned(method, path, payload, status=200)`` (the next request to it gets that answer, after the
signature check), ``fail(path, ret_code, msg)`` (every request to ``path`` answers that retCode until
``fail(path, None)``), ``hedge`` (positions in hedge mode: rows with ``positionIdx`` 1/2, an order with
positionIdx 0 refused with 10001), ``unified_status`` (``unifiedMarginStatus``, 6 = UTA2.0 Pro),
``order_mode`` ("fill" or "stay_open"), ``realtime_closed`` (False: ``openOnly=1`` finds nothing, as after
a Bybit restart), ``set_position(symbol_id, qty)``, ``set_max_market_qty(base, qty)``.
Logs: ``requests_full`` (method, path, params: query and JSON body merged), ``fills``
(client_order_id, symbol, side, qty in contracts), ``orders`` (orderLinkId -> Bybit's order view).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections import defaultdict, deque
from decimal import Decimal
from typing import Any

from fakes.http_fake import JsonHandler, LoopbackServer
from urllib.parse import parse_qsl, urlsplit

API_KEY = "bybit-test-key"
SECRET = "bybit-test-secret"
OPEN = ("New", "PartiallyFilled")

#: venue-matrix fault kind -> what the next POST /v5/order/create does
FAULT_KINDS = ("timeout_applied", "error_applied", "rate_limited", "insufficient_margin", "statusless",
               "reduce_only_refusal")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _market(symbol: str, base: str, price: float, step: str, min_qty: str, min_notional: str, tick: str, *,
            settle: str = "USDT", contract_type: str = "LinearPerpetual", delivery: str = "0",
            max_qty: str = "1190", max_mkt_qty: str = "119") -> dict[str, Any]:
    return {"symbol": symbol, "base": base, "price": Decimal(str(price)), "step": Decimal(step),
            "min_qty": Decimal(min_qty), "min_notional": Decimal(min_notional), "tick": tick, "settle": settle,
            "contract_type": contract_type, "delivery": delivery, "max_qty": Decimal(max_qty),
            "max_mkt_qty": Decimal(max_mkt_qty)}


def default_markets() -> list[dict[str, Any]]:
    return [
        _market("BTCUSDT", "BTC", 95000.0, "0.001", "0.001", "5", "0.10", max_qty="1190", max_mkt_qty="119"),
        _market("ETHUSDT", "ETH", 3500.0, "0.01", "0.01", "5", "0.01", max_qty="7240", max_mkt_qty="724"),
        _market("SOLUSDT", "SOL", 190.0, "0.1", "0.1", "5", "0.010", max_qty="79770", max_mkt_qty="7977"),
        # out of scope: a USDC perpetual and a dated USDT future
        _market("BTCPERP", "BTC", 95010.0, "0.001", "0.001", "1", "0.5", settle="USDC"),
        _market("BTCUSDT-26DEC25", "BTC", 95500.0, "0.001", "0.001", "5", "0.5", contract_type="LinearFutures",
                delivery="1766736000000"),
    ]


class FakeBybit(LoopbackServer):
    """State + server (a context manager); the venue-fake protocol of ``tests/fakes/venue_matrix.py``."""

    exchange_id = "bybit"
    env = {"BYBIT_API_KEY": API_KEY, "BYBIT_SECRET": SECRET}

    def __init__(self, *, slow_s: float = 2.0) -> None:
        self.markets = {m["symbol"]: m for m in default_markets()}
        perps = [m for m in self.markets.values() if m["contract_type"] == "LinearPerpetual" and m["settle"] == "USDT"]
        self.symbols = {m["base"]: f"{m['base']}/USDT:USDT" for m in perps}
        self.prices = {m["base"]: float(m["price"]) for m in perps}
        self.steps = {m["base"]: float(m["step"]) for m in perps}  # one step, base units (contract = 1 base)
        self.positions: dict[str, Decimal] = defaultdict(Decimal)
        self.hedge = False
        self.unified_status = 6
        self.order_mode = "fill"
        self.realtime_closed = True
        self.orders: dict[str, dict[str, Any]] = {}
        self.fills: list[dict[str, Any]] = []
        self.requests_full: list[dict[str, Any]] = []
        self.faults: deque[str] = deque()
        self.canned: dict[tuple[str, str], deque[tuple[int, Any]]] = defaultdict(deque)
        self.failing: dict[str, tuple[int, str]] = {}
        self.wallet = Decimal("100000")
        self.unrealized_pnl = Decimal("0")
        self.slow_s = slow_s
        self.lock = threading.RLock()
        self.serve(self._handler())

    # -- protocol -------------------------------------------------------------
    def position(self, base: str) -> float:
        """Signed position of ``base``'s USDT perpetual, base units."""
        with self.lock:
            return float(self.positions[f"{base}USDT"])

    def inject(self, kind: str) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}")
        with self.lock:
            self.faults.append(kind)

    # -- knobs ----------------------------------------------------------------
    def add_canned(self, method: str, path: str, payload: Any, status: int = 200) -> None:
        with self.lock:
            self.canned[(method, path)].append((status, payload))

    def fail(self, path: str, ret_code: int | None, msg: str = "") -> None:
        with self.lock:
            if ret_code is None:
                self.failing.pop(path, None)
            else:
                self.failing[path] = (ret_code, msg)

    def set_position(self, symbol_id: str, qty: float | str) -> None:
        with self.lock:
            self.positions[symbol_id] = Decimal(str(qty))

    def set_max_market_qty(self, base: str, qty: str) -> None:
        with self.lock:
            self.markets[f"{base}USDT"]["max_mkt_qty"] = Decimal(qty)

    # -- server ---------------------------------------------------------------
    def _handler(self):
        fake = self

        class Handler(JsonHandler):
            def _send(self, status: int, payload: Any) -> None:
                body = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if not isinstance(payload, str) else "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _dispatch(self, method: str) -> None:
                parts = urlsplit(self.path)
                path = parts.path
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                params: dict[str, Any] = dict(parse_qsl(parts.query, keep_blank_values=True))
                if method == "POST" and body:
                    try:
                        params.update(json.loads(body))
                    except ValueError:
                        return self._send(200, _err(10001, "request body is not json"))
                with fake.lock:
                    fake.requests_full.append({"method": method, "path": path, "params": dict(params)})
                route = ROUTES.get((method, path))
                if route is None:
                    return self._send(404, _err(10017, f"route not found: {method} {path}"))
                handler, signed = route
                if signed:
                    problem = _check_signature(self.headers, parts.query if method == "GET" else body)
                    if problem is not None:
                        return self._send(200, problem)
                with fake.lock:
                    queue = fake.canned.get((method, path))
                    canned = queue.popleft() if queue else None
                    failing = fake.failing.get(path)
                if canned is not None:
                    return self._send(*canned)
                if failing is not None:
                    return self._send(200, _err(*failing))
                fault = None
                if (method, path) == ORDER:
                    with fake.lock:
                        if fake.faults and (fake.faults[0] != "reduce_only_refusal" or params.get("reduceOnly")):
                            fault = fake.faults.popleft()
                if fault == "rate_limited":
                    return self._send(200, _err(10006, "Too many visits!"))
                if fault == "insufficient_margin":
                    return self._send(200, _err(110007, "ab not enough for new order"))
                if fault == "reduce_only_refusal":
                    return self._send(200, _err(110017, "Reduce-only rule not satisfied"))
                status, payload = handler(fake, params)
                if fault == "timeout_applied":
                    time.sleep(fake.slow_s)
                elif fault == "error_applied":
                    return self._send(502, "<html><body><h1>502 Bad Gateway</h1></body></html>")
                elif fault == "statusless" and payload.get("retCode") == 0:
                    payload = {**payload, "result": {}}
                return self._send(status, payload)

        return Handler


def _ok(result: Any) -> dict[str, Any]:
    return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": _now_ms()}


def _err(code: int, msg: str) -> dict[str, Any]:
    return {"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {}, "time": _now_ms()}


def _check_signature(headers: Any, payload: str) -> dict[str, Any] | None:
    key = headers.get("X-BAPI-API-KEY")
    ts = headers.get("X-BAPI-TIMESTAMP")
    recv = headers.get("X-BAPI-RECV-WINDOW") or "5000"
    sign = headers.get("X-BAPI-SIGN")
    if key != API_KEY:
        return _err(10003, "API key is invalid.")
    if not ts or not sign:
        return _err(10004, "error sign! missing signature headers")
    expected = hmac.new(SECRET.encode(), f"{ts}{key}{recv}{payload}".encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, sign):
        return _err(10004, "error sign! origin_string[...]")
    if abs(_now_ms() - int(ts)) > int(recv) + 1000:
        return _err(10002, "invalid request, please check your server timestamp or recv_window param")
    return None


# -- market data ------------------------------------------------------------------
def _instruments(fake: FakeBybit, params: dict[str, Any]) -> tuple[int, Any]:
    category = params.get("category")
    rows = []
    if category == "linear" and params.get("status") != "PreLaunch":
        with fake.lock:
            for m in fake.markets.values():
                rows.append({
                    "symbol": m["symbol"], "contractType": m["contract_type"], "status": "Trading",
                    "baseCoin": m["base"], "quoteCoin": m["settle"], "launchTime": "1585526400000",
                    "deliveryTime": m["delivery"], "deliveryFeeRate": "", "priceScale": "2",
                    "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
                    "priceFilter": {"minPrice": m["tick"], "maxPrice": "1999999.80", "tickSize": m["tick"]},
                    "lotSizeFilter": {"maxOrderQty": str(m["max_qty"]), "minOrderQty": str(m["min_qty"]),
                                      "qtyStep": str(m["step"]), "postOnlyMaxOrderQty": str(m["max_qty"]),
                                      "maxMktOrderQty": str(m["max_mkt_qty"]),
                                      "minNotionalValue": str(m["min_notional"])},
                    "unifiedMarginTrade": True, "fundingInterval": 480, "settleCoin": m["settle"],
                    "copyTrading": "both", "upperFundingRate": "0.005", "lowerFundingRate": "-0.005",
                    "isPreListing": False, "preListingInfo": None,
                    "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"},
                })
    return 200, _ok({"category": category, "list": rows, "nextPageCursor": ""})


def _tickers(fake: FakeBybit, params: dict[str, Any]) -> tuple[int, Any]:
    rows = []
    if params.get("category") == "linear":
        with fake.lock:
            for m in fake.markets.values():
                if params.get("symbol") not in (None, m["symbol"]):
                    continue
                p = str(m["price"])
                rows.append({"symbol": m["symbol"], "lastPrice": p, "indexPrice": p, "markPrice": p,
                             "prevPrice24h": p, "price24hPcnt": "0", "highPrice24h": p, "lowPrice24h": p,
                             "prevPrice1h": p, "openInterest": "1000", "openInterestValue": "1000000",
                             "turnover24h": "1000000", "volume24h": "1000", "fundingRate": "0.0001",
                             "nextFundingTime": str(_now_ms() + 3600000), "predictedDeliveryPrice": "",
                             "basisRate": "", "deliveryFeeRate": "", "deliveryTime": "0", "ask1Size": "1",
                             "bid1Price": p, "ask1Price": p, "bid1Size": "1", "basis": ""})
    return 200, _ok({"category": params.get("category"), "list": rows})


# -- account ---------------------------------------------------------------------
def _position_row(fake: FakeBybit, symbol: str, idx: int, size: Decimal) -> dict[str, Any]:
    price = fake.markets[symbol]["price"]
    side = "" if size == 0 else ("Buy" if (size > 0 if idx == 0 else idx == 1) else "Sell")
    return {"positionIdx": idx, "riskId": 1, "riskLimitValue": "2000000", "symbol": symbol, "side": side,
            "size": str(abs(size)), "avgPrice": str(price), "positionValue": str(abs(size) * price),
            "tradeMode": 0, "autoAddMargin": 0, "positionStatus": "Normal", "leverage": "10",
            "markPrice": str(price), "liqPrice": "", "bustPrice": "", "positionIM": str(abs(size) * price / 10),
            "positionMM": str(abs(size) * price / 200), "positionBalance": "", "takeProfit": "0.00",
            "stopLoss": "0.00", "trailingStop": "0.00", "sessionAvgPrice": "", "delta": "", "gamma": "",
            "vega": "", "theta": "", "unrealisedPnl": "0", "curRealisedPnl": "0", "cumRealisedPnl": "0",
            "adlRankIndicator": 2, "createdTime": "1676538056258", "updatedTime": str(_now_ms()),
            "seq": 1, "isReduceOnly": False, "mmrSysUpdatedTime": "", "leverageSysUpdatedTime": ""}


def _positions(fake: FakeBybit, params: dict[str, Any]) -> tuple[int, Any]:
    if params.get("category") != "linear":
        return 200, _ok({"category": params.get("category"), "list": [], "nextPageCursor": ""})
    symbol, settle = params.get("symbol"), params.get("settleCoin")
    if symbol is None and settle is None:
        return 200, _err(10001, "params error: symbol or settleCoin is required")
    rows = []
    with fake.lock:
        for sym, m in fake.markets.items():
            if symbol not in (None, sym) or settle not in (None, m["settle"]):
                continue
            size = fake.positions[sym]
            if fake.hedge:
                long, short = (size, Decimal(0)) if size >= 0 else (Decimal(0), -size)
                for idx, qty in ((1, long), (2, short)):
                    if qty != 0 or symbol is not None:
                        rows.append(_position_row(fake, sym, idx, qty))
            elif size != 0 or symbol is not None:
                rows.append(_position_row(fake, sym, 0, size))
    return 200, _ok({"category": "linear", "list": rows, "nextPageCursor": ""})


def _wallet(fake: FakeBybit, params: dict[str, Any]) -> tuple[int, Any]:
    if params.get("accountType") != "UNIFIED":
        return 200, _err(10001, "accountType only support UNIFIED.")
    with fake.lock:
        wallet, upnl = fake.wallet, fake.unrealized_pnl
    eq = wallet + upnl
    coin = {"coin": "USDT", "equity": str(eq), "usdValue": str(eq), "walletBalance": str(wallet),
            "free": "", "locked": "0", "spotHedgingQty": "0", "borrowAmount": "0", "availableToWithdraw": "",
            "accruedInterest": "0", "totalOrderIM": "0", "totalPositionIM": "0", "totalPositionMM": "0",
            "unrealisedPnl": str(upnl), "cumRealisedPnl": "0", "bonus": "0", "marginCollateral": True,
            "collateralSwitch": True, "availableToBorrow": ""}
    return 200, _ok({"list": [{"accountType": "UNIFIED", "accountIMRate": "0", "accountMMRate": "0",
                               "totalEquity": str(eq), "totalWalletBalance": str(wallet),
                               "totalMarginBalance": str(eq), "totalAvailableBalance": str(eq),
                               "totalPerpUPL": str(upnl), "totalInitialMargin": "0",
                               "totalMaintenanceMargin": "0", "accountLTV": "0", "coin": [coin]}]})


def _account_info(fake: FakeBybit, params: dict[str, Any]) -> tuple[int, Any]:
    return 200, _ok({"marginMode": "REGULAR_MARGIN", "updatedTime": str(_now_ms()),
                     "unifiedMarginStatus": fake.unified_status, "dcpStatus": "OFF", "timeWindow": 10,
                     "smpGroup": 0, "isMasterTrader": False, "spotHedgingStatus": "OFF"})


def _coin_info(fake: FakeBybit, params: dict[str, Any]) -> tuple[int, Any]:
    """GET /v5/asset/coin/query-info: ccxt's load_markets fetches currencies with it when keys are set."""
    rows = [{"name": c, "coin": c, "remainAmount": "1000000",
             "chains": [{"chainType": c, "confirmation": "12", "withdrawFee": "1", "depositMin": "0",
                         "withdrawMin": "1", "chain": c, "chainDeposit": "1", "chainWithdraw": "1",
                         "minAccuracy": "8"}]} for c in ("USDT", "USDC", "BTC", "ETH", "SOL")]
    return 200, _ok({"rows": rows})


def _query_api(fake: FakeBybit, params: dict[str, Any]) -> tuple[int, Any]:
    uta = 1 if fake.unified_status >= 3 else 0
    return 200, _ok({"id": "1", "note": "fake", "apiKey": API_KEY, "readOnly": 0, "secret": "",
                     "permissions": {"ContractTrade": ["Order", "Position"], "Wallet": []}, "ips": ["*"],
                     "type": 1, "unified": 0, "uta": uta, "userID": 1, "isMaster": True})


# -- orders ----------------------------------------------------------------------
def _view(order: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in order.items() if not k.startswith("_")}


def _fill(fake: FakeBybit, order: dict[str, Any]) -> None:
    """Fill what is left of ``order`` at the market price (caller holds the lock)."""
    sym = order["symbol"]
    qty = order["_qty"] - order["_filled"]
    sign = 1 if order["side"] == "Buy" else -1
    price = fake.markets[sym]["price"]
    if qty > 0:
        fake.positions[sym] += sign * qty
        order["_filled"] += qty
        value = Decimal(order["cumExecValue"]) + qty * price
        order["cumExecValue"] = str(value)
        order["avgPrice"] = str(value / order["_filled"])
        fake.fills.append({"client_order_id": order["orderLinkId"], "symbol": sym, "side": order["side"].lower(),
                           "qty": float(qty)})
    order["cumExecQty"] = str(order["_filled"])
    order["leavesQty"] = str(order["_qty"] - order["_filled"])
    order["leavesValue"] = str((order["_qty"] - order["_filled"]) * price)
    order["orderStatus"] = "Filled" if order["_filled"] >= order["_qty"] else "PartiallyFilled"
    order["updatedTime"] = str(_now_ms())


def _create(fake: FakeBybit, params: dict[str, Any]) -> tuple[int, Any]:
    if params.get("category") != "linear":
        return 200, _err(10001, "params error: category")
    sym = params.get("symbol")
    m = fake.markets.get(sym)
    if m is None:
        return 200, _err(10001, "params error: symbol invalid")
    if params.get("orderType") != "Market":
        return 200, _err(10001, "params error: only market orders on this fake")
    side = params.get("side")
    if side not in ("Buy", "Sell"):
        return 200, _err(10001, "params error: side invalid")
    link = params.get("orderLinkId") or ""
    if len(link) > 36 or not all(c.isalnum() or c in "-_" for c in link):
        return 200, _err(10001, "params error: orderLinkId invalid")
    try:
        qty = Decimal(str(params.get("qty")))
    except Exception:
        return 200, _err(10001, "params error: qty invalid")
    if qty <= 0 or qty % m["step"] != 0:
        return 200, _err(10001, "Qty invalid")
    if qty < m["min_qty"]:
        return 200, _err(10001, "The number of contracts exceeds minimum limit allowed")
    if qty > m["max_mkt_qty"]:
        return 200, _err(10001, "The number of contracts exceeds maximum limit allowed: too large")
    idx = int(params.get("positionIdx") or 0)
    if (idx == 0) == fake.hedge:
        return 200, _err(10001, "position idx not match position mode")
    reduce_only = params.get("reduceOnly") is True
    with fake.lock:
        if link and link in fake.orders:
            return 200, _err(110072, "OrderLinkedID is duplicate")
        held = fake.positions[sym]
        sign = 1 if side == "Buy" else -1
        if reduce_only:
            if held == 0 or (held > 0) == (sign > 0):
                return 200, _err(110017, "current position is zero, cannot fix reduce-only order qty")
            qty = min(qty, abs(held))
        elif qty * m["price"] < m["min_notional"]:
            return 200, _err(110094, f"Order does not meet minimum order value {m['min_notional']}USDT")
        order_id = str(uuid.uuid4())
        price = m["price"] * (Decimal("1.05") if side == "Buy" else Decimal("0.95"))
        now = str(_now_ms())
        order = {"symbol": sym, "orderType": "Market", "orderLinkId": link, "orderId": order_id,
                 "cancelType": "UNKNOWN", "avgPrice": "", "stopOrderType": "", "lastPriceOnCreated": str(m["price"]),
                 "orderStatus": "New", "takeProfit": "", "cumExecValue": "0", "tpslMode": "", "smpType": "None",
                 "triggerDirection": 0, "blockTradeId": "", "isLeverage": "", "rejectReason": "EC_NoError",
                 "price": str(price), "orderIv": "", "createdTime": now, "tpTriggerBy": "", "positionIdx": idx,
                 "timeInForce": "IOC", "leavesValue": str(qty * m["price"]), "updatedTime": now, "side": side,
                 "smpGroup": 0, "triggerPrice": "", "cumExecFee": "0", "leavesQty": str(qty), "slTriggerBy": "",
                 "closeOnTrigger": False, "placeType": "", "cumExecQty": "0", "reduceOnly": reduce_only,
                 "qty": str(qty), "stopLoss": "", "smpOrderId": "", "triggerBy": "",
                 "_qty": qty, "_filled": Decimal(0), "_settle": m["settle"]}
        fake.orders[link or order_id] = order
        if fake.order_mode == "fill":
            _fill(fake, order)
        elif fake.order_mode != "stay_open":
            raise ValueError(f"unknown order_mode {fake.order_mode!r}")
    return 200, _ok({"orderId": order_id, "orderLinkId": link})


def _select(fake: FakeBybit, params: dict[str, Any], *, closed: bool) -> list[dict[str, Any]]:
    out = []
    for order in fake.orders.values():
        if (order["orderStatus"] in OPEN) == closed:
            continue
        if params.get("orderLinkId") not in (None, order["orderLinkId"]):
            continue
        if params.get("orderId") not in (None, order["orderId"]):
            continue
        if params.get("symbol") not in (None, order["symbol"]):
            continue
        if params.get("settleCoin") not in (None, order["_settle"]):
            continue
        out.append(order)
    out.sort(key=lambda o: int(o["createdTime"]), reverse=True)
    return out


def _page(rows: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    limit = min(50, max(1, int(params.get("limit") or 20)))
    start = int(params.get("cursor") or 0)
    chunk = rows[start:start + limit]
    cursor = str(start + limit) if start + limit < len(rows) else ""
    return _ok({"category": "linear", "list": [_view(o) for o in chunk], "nextPageCursor": cursor})


def _realtime(fake: FakeBybit, params: dict[str, Any]) -> tuple[int, Any]:
    if params.get("category") != "linear":
        return 200, _err(10001, "params error: category")
    if not any(params.get(k) for k in ("symbol", "baseCoin", "settleCoin")):
        return 200, _err(10001, "params error: symbol, baseCoin or settleCoin is required")
    with fake.lock:
        closed = str(params.get("openOnly", "0")) == "1"
        rows = _select(fake, params, closed=closed) if (not closed or fake.realtime_closed) else []
        return 200, _page(rows, params)


def _history(fake: FakeBybit, params: dict[str, Any]) -> tuple[int, Any]:
    if params.get("category") != "linear":
        return 200, _err(10001, "params error: category")
    with fake.lock:
        return 200, _page(_select(fake, params, closed=True), params)


def _cancel(fake: FakeBybit, params: dict[str, Any]) -> tuple[int, Any]:
    with fake.lock:
        found = [o for o in _select(fake, params, closed=False) if params.get("orderLinkId") or params.get("orderId")]
        if not found:
            return 200, _err(110001, "order not exists or too late to cancel")
        order = found[0]
        order["orderStatus"] = "Cancelled"
        order["cancelType"] = "CancelByUser"
        order["updatedTime"] = str(_now_ms())
        return 200, _ok({"orderId": order["orderId"], "orderLinkId": order["orderLinkId"]})


ORDER = ("POST", "/v5/order/create")

# (method, path) -> (handler, signed)
ROUTES = {
    ("GET", "/v5/market/instruments-info"): (_instruments, False),
    ("GET", "/v5/market/tickers"): (_tickers, False),
    ("GET", "/v5/position/list"): (_positions, True),
    ("GET", "/v5/account/wallet-balance"): (_wallet, True),
    ("GET", "/v5/account/info"): (_account_info, True),
    ("GET", "/v5/user/query-api"): (_query_api, True),
    ("GET", "/v5/asset/coin/query-info"): (_coin_info, True),
    ORDER: (_create, True),
    ("GET", "/v5/order/realtime"): (_realtime, True),
    ("GET", "/v5/order/history"): (_history, True),
    ("POST", "/v5/order/cancel"): (_cancel, True),
}
