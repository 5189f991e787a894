"""A fake Binance USD-M futures server for the reconciler's integration tests.

Threaded ``http.server`` bound to 127.0.0.1 on a free port. It implements the
endpoints ccxt's ``binanceusdm`` uses for the reconciler, with Binance's
request signing (HMAC-SHA256 of the query/body, ``X-MBX-APIKEY``), filters
(LOT_SIZE, MARKET_LOT_SIZE, MIN_NOTIONAL) and error codes:

- GET  /fapi/v1/exchangeInfo, /fapi/v1/time, /fapi/v1/ticker/24hr, /fapi/v1/premiumIndex
- GET  /fapi/v3/positionRisk, /fapi/v2/positionRisk, /fapi/v1/leverageBracket (signed)
- POST /fapi/v1/order (signed; market orders fill at once at the current price)
- GET  /fapi/v1/order by origClientOrderId (signed)
- GET  /fapi/v2/balance, /fapi/v3/balance (signed)

Faults are queued per (method, path): ``"500"``, ``"503"``, ``"429"``,
``"418"``, ``"timeout"`` (sleeps past the client timeout, nothing applied),
``"apply_then_timeout"`` and ``"apply_then_500"`` (the order is applied but
the answer is lost), ``"timeout_then_apply"`` (the client times out first, the
order is applied ``late_s`` later, after an immediate lookup found nothing),
``"insufficient"`` (code -2019).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import defaultdict, deque
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

API_KEY = "test-key"
SECRET = "test-secret"


def _market(base: str, price: float, step: str, min_qty: str, min_notional: str, tick: str) -> dict[str, Any]:
    return {"id": f"{base}USDT", "base": base, "price": price, "step": Decimal(step), "min_qty": Decimal(min_qty),
            "min_notional": Decimal(min_notional), "tick": tick}


DEFAULT_MARKETS = [
    _market("BTC", 95000.0, "0.001", "0.001", "100", "0.10"),
    _market("ETH", 3500.0, "0.001", "0.001", "20", "0.01"),
    _market("SOL", 190.0, "1", "1", "5", "0.0100"),
]


class FakeBinance:
    """State + server. Use as a context manager; ``base_url`` is http://127.0.0.1:<port>."""

    def __init__(self, markets: list[dict[str, Any]] | None = None, *, slow_s: float = 3.0,
                 late_s: float = 3.0) -> None:
        self.markets = {m["id"]: dict(m) for m in (markets or DEFAULT_MARKETS)}
        self.positions: dict[str, Decimal] = defaultdict(Decimal)
        self.orders: dict[str, dict[str, Any]] = {}
        self.fills: list[dict[str, Any]] = []
        self.faults: dict[tuple[str, str], deque[str]] = defaultdict(deque)
        self.requests: list[tuple[str, str]] = []
        self.slow_s = slow_s
        self.late_s = late_s
        self.lock = threading.Lock()
        self._next_id = 1000
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # client gave up (timeout tests)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "FakeBinance":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add_fault(self, method: str, path: str, *kinds: str) -> None:
        with self.lock:
            self.faults[(method, path)].extend(kinds)

    def set_price(self, base: str, price: float) -> None:
        with self.lock:
            self.markets[f"{base}USDT"]["price"] = price

    def position(self, base: str) -> Decimal:
        with self.lock:
            return self.positions[f"{base}USDT"]

    # ------------------------------------------------------------------
    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, payload: Any) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _error(self, status: int, code: int, msg: str) -> None:
                self._send(status, {"code": code, "msg": msg})

            def do_GET(self) -> None:
                self._dispatch("GET")

            def do_POST(self) -> None:
                self._dispatch("POST")

            def _dispatch(self, method: str) -> None:
                parts = urlsplit(self.path)
                path = parts.path
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                raw = parts.query if method == "GET" else body
                params = dict(parse_qsl(raw, keep_blank_values=True))
                with fake.lock:
                    fake.requests.append((method, path))
                    queue = fake.faults.get((method, path))
                    fault = queue.popleft() if queue else None
                if fault in ("500", "503"):
                    return self._send(int(fault), {"code": -1001, "msg": "Internal error; unable to process your "
                                                   "request. Please try again."})
                if fault in ("429", "418"):
                    return self._error(int(fault), -1003, "Too many requests; please use the websocket.")
                if fault == "timeout":
                    time.sleep(fake.slow_s)
                    return self._error(503, -1007, "Timeout waiting for response from backend server.")
                handler = ROUTES.get((method, path))
                if handler is None:
                    return self._error(404, -5000, f"path not found: {method} {path}")
                if handler[1]:  # signed
                    problem = _check_signature(raw, self.headers.get("X-MBX-APIKEY"))
                    if problem:
                        return self._error(401, -1022, problem)
                if fault == "insufficient":
                    return self._error(400, -2019, "Margin is insufficient.")
                if fault == "timeout_then_apply":
                    time.sleep(fake.late_s)
                status, payload = handler[0](fake, params)
                if fault == "apply_then_timeout":
                    time.sleep(fake.slow_s)
                    return self._error(503, -1007, "Timeout waiting for response from backend server.")
                if fault == "apply_then_500":
                    return self._send(500, {"code": -1001, "msg": "Internal error."})
                return self._send(status, payload)

        return Handler


def _check_signature(raw: str, api_key: str | None) -> str | None:
    if api_key != API_KEY:
        return "Invalid API-key, IP, or permissions for action."
    if "&signature=" not in raw:
        return "Signature for this request was not sent."
    payload, signature = raw.rsplit("&signature=", 1)
    expected = hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return "Signature for this request is not valid."
    params = dict(parse_qsl(payload))
    if "timestamp" not in params:
        return "Mandatory parameter 'timestamp' was not sent."
    return None


def _now_ms() -> int:
    return int(time.time() * 1000)


def _exchange_info(fake: FakeBinance, params: dict[str, str]) -> tuple[int, Any]:
    symbols = []
    for m in fake.markets.values():
        step, min_qty = str(m["step"]), str(m["min_qty"])
        symbols.append({
            "symbol": m["id"], "pair": m["id"], "contractType": "PERPETUAL", "deliveryDate": 4133404800000,
            "onboardDate": 1569398400000, "status": "TRADING", "maintMarginPercent": "2.5000",
            "requiredMarginPercent": "5.0000", "baseAsset": m["base"], "quoteAsset": "USDT", "marginAsset": "USDT",
            "pricePrecision": 2, "quantityPrecision": max(0, -m["step"].as_tuple().exponent),
            "baseAssetPrecision": 8, "quotePrecision": 8, "underlyingType": "COIN", "underlyingSubType": [],
            "settlePlan": 0, "triggerProtect": "0.0500", "liquidationFee": "0.012500",
            "marketTakeBound": "0.05", "maxMoveOrderLimit": 10000,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": m["tick"], "maxPrice": "4529764", "tickSize": m["tick"]},
                {"filterType": "LOT_SIZE", "stepSize": step, "minQty": min_qty, "maxQty": "1000000"},
                {"filterType": "MARKET_LOT_SIZE", "stepSize": step, "minQty": min_qty, "maxQty": "1000000"},
                {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                {"filterType": "MIN_NOTIONAL", "notional": str(m["min_notional"])},
                {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500",
                 "multiplierDecimal": "4"},
            ],
            "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET"],
            "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
        })
    return 200, {"timezone": "UTC", "serverTime": _now_ms(), "futuresType": "U_MARGINED", "rateLimits": [],
                 "exchangeFilters": [], "assets": [{"asset": "USDT", "marginAvailable": True}], "symbols": symbols}


def _time(fake: FakeBinance, params: dict[str, str]) -> tuple[int, Any]:
    return 200, {"serverTime": _now_ms()}


def _tickers(fake: FakeBinance, params: dict[str, str]) -> tuple[int, Any]:
    out = []
    for m in fake.markets.values():
        p = f"{m['price']:.8f}"
        out.append({"symbol": m["id"], "priceChange": "0", "priceChangePercent": "0", "weightedAvgPrice": p,
                    "lastPrice": p, "lastQty": "1", "openPrice": p, "highPrice": p, "lowPrice": p, "volume": "1000",
                    "quoteVolume": "1000000", "openTime": _now_ms() - 86400000, "closeTime": _now_ms(),
                    "firstId": 1, "lastId": 2, "count": 2})
    if "symbol" in params:
        out = [t for t in out if t["symbol"] == params["symbol"]]
        return 200, out[0] if out else {}
    return 200, out


def _premium(fake: FakeBinance, params: dict[str, str]) -> tuple[int, Any]:
    out = [{"symbol": m["id"], "markPrice": f"{m['price']:.8f}", "indexPrice": f"{m['price']:.8f}",
            "estimatedSettlePrice": f"{m['price']:.8f}", "lastFundingRate": "0.0001", "interestRate": "0.0001",
            "nextFundingTime": _now_ms() + 3600000, "time": _now_ms()} for m in fake.markets.values()]
    return 200, out


def _position_risk(fake: FakeBinance, params: dict[str, str]) -> tuple[int, Any]:
    out = []
    with fake.lock:
        for sym, amt in fake.positions.items():
            if amt == 0:
                continue
            price = Decimal(str(fake.markets[sym]["price"]))
            notional = amt * price
            out.append({"symbol": sym, "positionSide": "BOTH", "positionAmt": str(amt), "entryPrice": str(price),
                        "breakEvenPrice": str(price), "markPrice": str(price), "unRealizedProfit": "0",
                        "liquidationPrice": "0", "isolatedMargin": "0", "notional": str(notional),
                        "marginAsset": "USDT", "isolatedWallet": "0", "initialMargin": str(abs(notional) / 10),
                        "maintMargin": str(abs(notional) / 200), "positionInitialMargin": str(abs(notional) / 10),
                        "openOrderInitialMargin": "0", "adl": 1, "bidNotional": "0", "askNotional": "0",
                        "leverage": "10", "marginType": "cross", "updateTime": _now_ms()})
    return 200, out


def _leverage_bracket(fake: FakeBinance, params: dict[str, str]) -> tuple[int, Any]:
    return 200, [{"symbol": m["id"], "brackets": [{"bracket": 1, "initialLeverage": 50, "notionalCap": 1e9,
                                                   "notionalFloor": 0, "maintMarginRatio": 0.004, "cum": 0.0}]}
                 for m in fake.markets.values()]


def _balance(fake: FakeBinance, params: dict[str, str]) -> tuple[int, Any]:
    return 200, [{"accountAlias": "fake", "asset": "USDT", "balance": "100000", "crossWalletBalance": "100000",
                  "crossUnPnl": "0", "availableBalance": "100000", "maxWithdrawAmount": "100000",
                  "marginAvailable": True, "updateTime": _now_ms()}]


def _order_view(order: dict[str, Any]) -> dict[str, Any]:
    return dict(order)


def _new_order(fake: FakeBinance, params: dict[str, str]) -> tuple[int, Any]:
    sym = params.get("symbol")
    if sym not in fake.markets:
        return 400, {"code": -1121, "msg": "Invalid symbol."}
    if params.get("type") != "MARKET":
        return 400, {"code": -1116, "msg": "Invalid orderType."}
    m = fake.markets[sym]
    try:
        qty = Decimal(params["quantity"])
    except Exception:
        return 400, {"code": -1102, "msg": "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed."}
    if qty <= 0:
        return 400, {"code": -4003, "msg": "Quantity less than or equal to zero."}
    if qty % m["step"] != 0:
        return 400, {"code": -1111, "msg": "Precision is over the maximum defined for this asset."}
    if qty < m["min_qty"]:
        return 400, {"code": -4005, "msg": "Quantity less than min quantity."}
    side = params.get("side")
    if side not in ("BUY", "SELL"):
        return 400, {"code": -1117, "msg": "Invalid side."}
    reduce_only = params.get("reduceOnly") == "true"
    cid = params.get("newClientOrderId") or f"auto{fake._next_id}"
    price = Decimal(str(m["price"]))
    with fake.lock:
        if cid in fake.orders:
            return 400, {"code": -4116, "msg": "ClientOrderId is duplicated."}
        held = fake.positions[sym]
        sign = 1 if side == "BUY" else -1
        if reduce_only:
            if held == 0 or (held > 0) == (sign > 0):
                return 400, {"code": -2022, "msg": "ReduceOnly Order is rejected."}
            qty = min(qty, abs(held))
        elif qty * price < m["min_notional"]:
            return 400, {"code": -4164, "msg": f"Order's notional must be no smaller than {m['min_notional']} "
                                              "(unless you choose reduce only)."}
        fake.positions[sym] = held + sign * qty
        fake._next_id += 1
        order = {"orderId": fake._next_id, "symbol": sym, "status": "FILLED", "clientOrderId": cid, "price": "0",
                 "avgPrice": str(price), "origQty": str(qty), "executedQty": str(qty), "cumQty": str(qty),
                 "cumQuote": str(qty * price), "timeInForce": "GTC", "type": "MARKET", "reduceOnly": reduce_only,
                 "closePosition": False, "side": side, "positionSide": "BOTH", "stopPrice": "0",
                 "workingType": "CONTRACT_PRICE", "priceProtect": False, "origType": "MARKET",
                 "priceMatch": "NONE", "selfTradePreventionMode": "NONE", "goodTillDate": 0,
                 "time": _now_ms(), "updateTime": _now_ms()}
        fake.orders[cid] = order
        fake.fills.append({"client_order_id": cid, "symbol": sym, "side": side, "qty": qty})
    return 200, _order_view(order)


def _get_order(fake: FakeBinance, params: dict[str, str]) -> tuple[int, Any]:
    cid = params.get("origClientOrderId")
    with fake.lock:
        order = fake.orders.get(cid) if cid else None
        if order is None and "orderId" in params:
            order = next((o for o in fake.orders.values() if str(o["orderId"]) == params["orderId"]), None)
    if order is None or order["symbol"] != params.get("symbol"):
        return 400, {"code": -2013, "msg": "Order does not exist."}
    return 200, _order_view(order)


# (method, path) -> (handler, signed)
ROUTES = {
    ("GET", "/fapi/v1/exchangeInfo"): (_exchange_info, False),
    ("GET", "/fapi/v1/time"): (_time, False),
    ("GET", "/fapi/v1/ticker/24hr"): (_tickers, False),
    ("GET", "/fapi/v1/premiumIndex"): (_premium, False),
    ("GET", "/fapi/v3/positionRisk"): (_position_risk, True),
    ("GET", "/fapi/v2/positionRisk"): (_position_risk, True),
    ("GET", "/fapi/v1/leverageBracket"): (_leverage_bracket, True),
    ("GET", "/fapi/v2/balance"): (_balance, True),
    ("GET", "/fapi/v3/balance"): (_balance, True),
    ("POST", "/fapi/v1/order"): (_new_order, True),
    ("GET", "/fapi/v1/order"): (_get_order, True),
}
