"""A fake Binance USD-M futures server for the reconciler's integration tests.

Threaded ``http.server`` bound to 127.0.0.1 on a free port. It implements the
endpoints ccxt's ``binanceusdm`` (4.5.90) uses for the reconciler, with
Binance's request signing (HMAC-SHA256 of the query (GET/DELETE) or form body
(POST), ``X-MBX-APIKEY``) on every endpoint Binance signs, filters (LOT_SIZE,
MARKET_LOT_SIZE incl. ``maxQty``, MIN_NOTIONAL) and error codes:

- GET  /fapi/v1/exchangeInfo, /fapi/v1/time, /fapi/v1/ticker/24hr, /fapi/v1/premiumIndex
- GET  /fapi/v3/positionRisk, /fapi/v2/positionRisk, /fapi/v1/leverageBracket (signed)
- GET  /fapi/v1/positionSide/dual (signed): ``{"dualSidePosition": hedge}``
- GET  /fapi/v3/account, /fapi/v2/account (signed; ccxt's fetch_balance), /fapi/v2/balance, /fapi/v3/balance
- POST /fapi/v1/order (signed; market orders only, see ``order_mode``)
- GET  /fapi/v1/order by origClientOrderId or orderId (signed)
- DELETE /fapi/v1/order by origClientOrderId or orderId (signed): cancels a working order; -2011
  "Unknown order sent." when there is none or it is already final (as Binance does)
- GET  /fapi/v1/openOrders (signed; ``symbol`` optional)

Knobs (all thread-safe through ``lock``):

- ``add_fault(method, path, *kinds)``: faults queued per (method, path), each consumed by one request:
  ``"500"``, ``"503"``, ``"429"``, ``"418"``, ``"timeout"`` (sleeps ``slow_s``, nothing applied),
  ``"apply_then_timeout"`` and ``"apply_then_500"`` (the order is applied but the answer is lost),
  ``"timeout_then_apply"`` (the client times out first, the order is applied ``late_s`` later),
  ``"insufficient"`` (code -2019), ``"delay:<s>"`` (waits ``s`` seconds, then answers normally),
  ``"reduce_only_refusal"`` (-2022 for the next reduce-only order), ``"apply_then_statusless"`` (applied,
  answered with an ack that carries no status).
- ``order_delays``: a deque of seconds; each POST /fapi/v1/order pops one and waits that long first.
- ``add_canned(method, path, status, payload)``: the next request to (method, path) gets this raw
  answer instead (after the signature check on signed routes), consumed once; e.g. positions ``[]``
  once, a premiumIndex with a wrong mark price once, an order ack without a status.
- ``order_mode``: ``"fill"`` (default: FILLED at once), ``"new_then_fill"`` (applied at once but
  answered ``NEW`` with executedQty 0, as Binance often does; lookups show FILLED),
  ``"partial:<fraction>"`` (that fraction, truncated to the step, fills at once; the rest stays
  working, PARTIALLY_FILLED), ``"stay_open"`` (NEW, nothing filled). ``fill_open(client_order_id=None)``
  fills what is still working (one order, or all).
- ``hedge = True``: hedge mode: positionSide/dual says true, positionRisk rows are LONG/SHORT (from
  ``set_hedge_position``), an order without positionSide LONG/SHORT is refused with -4061 (one
  with reduceOnly: -1106, as Binance refuses reduceOnly in hedge mode).
- ``manual_fill(base, qty)``: a trade by a human (signed qty): changes the position, no API order,
  logged in ``manual_fills`` (not in ``fills``).
- ``set_price(base, p)`` (mark and last price), ``set_index(base, p)`` (index price; default = mark),
  ``set_balance(wallet, unrealized_pnl=0)`` (USDT), ``set_max_qty(base, lot=..., market=...)``
  (LOT_SIZE / MARKET_LOT_SIZE maxQty; a market order above the MARKET_LOT_SIZE one: -4005).
- Logs: ``requests`` ((method, path) per request), ``requests_full`` (dicts ``method``, ``path``,
  ``params``: every query/body parameter as sent, e.g. ``newClientOrderId``, ``reduceOnly``,
  ``quantity``), ``fills`` (one entry per API fill: client_order_id, symbol, side, qty), ``orders``
  (client id -> order as Binance shows it; internal fields start with ``_``).
"""
from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import defaultdict, deque
from decimal import ROUND_DOWN, Decimal
from typing import Any

from fakes.http_fake import JsonHandler, LoopbackServer
from urllib.parse import parse_qsl, urlsplit

API_KEY = "test-key"
SECRET = "test-secret"
DEFAULT_MAX_QTY = Decimal("1000000")
OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")


def _market(base: str, price: float, step: str, min_qty: str, min_notional: str, tick: str, *,
            max_qty: str | None = None, market_max_qty: str | None = None) -> dict[str, Any]:
    return {"id": f"{base}USDT", "base": base, "price": price, "step": Decimal(step), "min_qty": Decimal(min_qty),
            "min_notional": Decimal(min_notional), "tick": tick, "index": None,
            "max_qty": Decimal(max_qty) if max_qty else DEFAULT_MAX_QTY,
            "market_max_qty": Decimal(market_max_qty) if market_max_qty else DEFAULT_MAX_QTY}


DEFAULT_MARKETS = [
    _market("BTC", 95000.0, "0.001", "0.001", "100", "0.10"),
    _market("ETH", 3500.0, "0.001", "0.001", "20", "0.01"),
    _market("SOL", 190.0, "1", "1", "5", "0.0100"),
]


class FakeBinance(LoopbackServer):
    """State + server. Use as a context manager; ``base_url`` is http://127.0.0.1:<port>."""

    def __init__(self, markets: list[dict[str, Any]] | None = None, *, slow_s: float = 3.0,
                 late_s: float = 3.0) -> None:
        self.markets = {m["id"]: {"index": None, "max_qty": DEFAULT_MAX_QTY, "market_max_qty": DEFAULT_MAX_QTY,
                                  **m} for m in (markets or DEFAULT_MARKETS)}
        self.positions: dict[str, Decimal] = defaultdict(Decimal)
        self.hedge = False
        self.hedge_positions: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        self.orders: dict[str, dict[str, Any]] = {}
        self.fills: list[dict[str, Any]] = []
        self.manual_fills: list[dict[str, Any]] = []
        self.faults: dict[tuple[str, str], deque[str]] = defaultdict(deque)
        self.canned: dict[tuple[str, str], deque[tuple[int, Any]]] = defaultdict(deque)
        self.order_delays: deque[float] = deque()
        self.order_mode = "fill"
        self.requests: list[tuple[str, str]] = []
        self.requests_full: list[dict[str, Any]] = []
        self.wallet = Decimal("100000")
        self.unrealized_pnl = Decimal("0")
        self.slow_s = slow_s
        self.late_s = late_s
        self.lock = threading.RLock()
        self._next_id = 1000
        self.serve(self._handler())

    # -- knobs --------------------------------------------------------------
    def add_fault(self, method: str, path: str, *kinds: str) -> None:
        with self.lock:
            self.faults[(method, path)].extend(kinds)

    def add_canned(self, method: str, path: str, status: int, payload: Any) -> None:
        """The next request to (method, path) is answered ``status`` + JSON ``payload`` (consumed once)."""
        with self.lock:
            self.canned[(method, path)].append((status, payload))

    def set_price(self, base: str, price: float) -> None:
        with self.lock:
            self.markets[f"{base}USDT"]["price"] = price

    def set_index(self, base: str, price: float | None) -> None:
        """Index price of ``base`` (None: same as the mark price)."""
        with self.lock:
            self.markets[f"{base}USDT"]["index"] = price

    def set_balance(self, wallet: float | str, unrealized_pnl: float | str = 0) -> None:
        """USDT wallet balance and unrealized PnL of the futures account (equity = their sum)."""
        with self.lock:
            self.wallet = Decimal(str(wallet))
            self.unrealized_pnl = Decimal(str(unrealized_pnl))

    def set_max_qty(self, base: str, *, lot: str | None = None, market: str | None = None) -> None:
        """LOT_SIZE (``lot``) and MARKET_LOT_SIZE (``market``) maxQty of ``base``'s market."""
        with self.lock:
            m = self.markets[f"{base}USDT"]
            if lot is not None:
                m["max_qty"] = Decimal(lot)
            if market is not None:
                m["market_max_qty"] = Decimal(market)

    def set_hedge_position(self, base: str, side: str, qty: float | str) -> None:
        """Hedge-mode position of one side (``LONG`` >= 0, ``SHORT`` <= 0), shown while ``hedge`` is on."""
        with self.lock:
            self.hedge_positions[(f"{base}USDT", side)] = Decimal(str(qty))

    def position(self, base: str) -> Decimal:
        with self.lock:
            return self.positions[f"{base}USDT"]

    def manual_fill(self, base: str, qty: float | str) -> None:
        """A trade by a human on the account: signed ``qty`` (base units) changes the position; no client id."""
        with self.lock:
            sym = f"{base}USDT"
            self.positions[sym] += Decimal(str(qty))
            self.manual_fills.append({"symbol": sym, "qty": Decimal(str(qty))})

    def fill_open(self, client_order_id: str | None = None) -> int:
        """Fill what is still working of one open order (or of every open order); returns how many."""
        with self.lock:
            done = 0
            for cid, order in self.orders.items():
                if order["status"] in OPEN_STATUSES and client_order_id in (None, cid):
                    _fill(self, order, order["_qty"] - order["_filled"])
                    done += 1
            return done

    # ------------------------------------------------------------------
    def _handler(self):
        fake = self

        class Handler(JsonHandler):
            def _error(self, status: int, code: int, msg: str) -> None:
                self._send(status, {"code": code, "msg": msg})

            def _dispatch(self, method: str) -> None:
                parts = urlsplit(self.path)
                path = parts.path
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                raw = body if method == "POST" else parts.query
                params = dict(parse_qsl(raw, keep_blank_values=True))
                with fake.lock:
                    fake.requests.append((method, path))
                    fake.requests_full.append({"method": method, "path": path, "params": dict(params)})
                    queue = fake.faults.get((method, path))
                    fault = queue.popleft() if queue else None
                    delay = fake.order_delays.popleft() if (method, path) == ORDER and fake.order_delays else 0.0
                if delay:
                    time.sleep(delay)
                if fault is not None and fault.startswith("delay:"):
                    time.sleep(float(fault.split(":", 1)[1]))
                    fault = None
                if fault in ("500", "503"):
                    return self._send(int(fault), {"code": -1001, "msg": "Internal error; unable to process your "
                                                   "request. Please try again."})
                if fault in ("429", "418"):
                    return self._error(int(fault), -1003, "Too many requests; please use the websocket.")
                if fault == "timeout":
                    time.sleep(fake.slow_s)
                    return self._error(503, -1007, "Timeout waiting for response from backend server.")
                handler = ROUTES.get((method, path))
                if handler is not None and handler[1]:  # signed
                    problem = _check_signature(raw, self.headers.get("X-MBX-APIKEY"))
                    if problem:
                        return self._error(401, -1022, problem)
                with fake.lock:
                    canned_queue = fake.canned.get((method, path))
                    canned = canned_queue.popleft() if canned_queue else None
                if canned is not None:
                    return self._send(*canned)
                if handler is None:
                    return self._error(404, -5000, f"path not found: {method} {path}")
                if fault == "insufficient":
                    return self._error(400, -2019, "Margin is insufficient.")
                if fault == "reduce_only_refusal" and params.get("reduceOnly") == "true":
                    return self._error(400, -2022, "ReduceOnly Order is rejected.")
                if fault == "timeout_then_apply":
                    time.sleep(fake.late_s)
                status, payload = handler[0](fake, params)
                if fault == "apply_then_timeout":
                    time.sleep(fake.slow_s)
                    return self._error(503, -1007, "Timeout waiting for response from backend server.")
                if fault == "apply_then_500":
                    return self._send(500, {"code": -1001, "msg": "Internal error."})
                if fault == "apply_then_statusless" and isinstance(payload, dict):  # an ack saying nothing
                    payload = {k: v for k, v in payload.items() if k in ("orderId", "clientOrderId", "symbol")}
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
                {"filterType": "LOT_SIZE", "stepSize": step, "minQty": min_qty, "maxQty": str(m["max_qty"])},
                {"filterType": "MARKET_LOT_SIZE", "stepSize": step, "minQty": min_qty,
                 "maxQty": str(m["market_max_qty"])},
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
    with fake.lock:
        out = [{"symbol": m["id"], "markPrice": f"{m['price']:.8f}",
                "indexPrice": f"{(m['price'] if m['index'] is None else m['index']):.8f}",
                "estimatedSettlePrice": f"{m['price']:.8f}", "lastFundingRate": "0.0001", "interestRate": "0.0001",
                "nextFundingTime": _now_ms() + 3600000, "time": _now_ms()} for m in fake.markets.values()]
    if "symbol" in params:
        out = [t for t in out if t["symbol"] == params["symbol"]]
        if not out:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        return 200, out[0]
    return 200, out


def _position_row(fake: FakeBinance, sym: str, side: str, amt: Decimal) -> dict[str, Any]:
    price = Decimal(str(fake.markets[sym]["price"]))
    notional = amt * price
    return {"symbol": sym, "positionSide": side, "positionAmt": str(amt), "entryPrice": str(price),
            "breakEvenPrice": str(price), "markPrice": str(price), "unRealizedProfit": "0",
            "liquidationPrice": "0", "isolatedMargin": "0", "notional": str(notional),
            "marginAsset": "USDT", "isolatedWallet": "0", "initialMargin": str(abs(notional) / 10),
            "maintMargin": str(abs(notional) / 200), "positionInitialMargin": str(abs(notional) / 10),
            "openOrderInitialMargin": "0", "adl": 1, "bidNotional": "0", "askNotional": "0",
            "leverage": "10", "marginType": "cross", "updateTime": _now_ms()}


def _position_risk(fake: FakeBinance, params: dict[str, str]) -> tuple[int, Any]:
    out = []
    with fake.lock:
        if fake.hedge:
            for (sym, side), amt in sorted(fake.hedge_positions.items()):
                if amt != 0:
                    out.append(_position_row(fake, sym, side, amt))
        else:
            for sym, amt in fake.positions.items():
                if amt != 0:
                    out.append(_position_row(fake, sym, "BOTH", amt))
    return 200, out


def _position_mode(fake: FakeBinance, params: dict[str, str]) -> tuple[int, Any]:
    return 200, {"dualSidePosition": bool(fake.hedge)}


def _leverage_bracket(fake: FakeBinance, params: dict[str, str]) -> tuple[int, Any]:
    return 200, [{"symbol": m["id"], "brackets": [{"bracket": 1, "initialLeverage": 50, "notionalCap": 1e9,
                                                   "notionalFloor": 0, "maintMarginRatio": 0.004, "cum": 0.0}]}
                 for m in fake.markets.values()]


def _balance(fake: FakeBinance, params: dict[str, str]) -> tuple[int, Any]:
    with fake.lock:
        wallet, upnl = fake.wallet, fake.unrealized_pnl
    return 200, [{"accountAlias": "fake", "asset": "USDT", "balance": str(wallet), "crossWalletBalance": str(wallet),
                  "crossUnPnl": str(upnl), "availableBalance": str(wallet + upnl),
                  "maxWithdrawAmount": str(wallet), "marginAvailable": True, "updateTime": _now_ms()}]


def _account(fake: FakeBinance, params: dict[str, str]) -> tuple[int, Any]:
    """GET /fapi/v3/account (what ccxt's binanceusdm fetch_balance reads): single-asset mode, USDT."""
    with fake.lock:
        wallet, upnl = fake.wallet, fake.unrealized_pnl
        positions = [{"symbol": sym, "positionSide": "BOTH", "positionAmt": str(amt), "unrealizedProfit": "0",
                      "isolatedMargin": "0", "notional": str(amt * Decimal(str(fake.markets[sym]["price"]))),
                      "isolatedWallet": "0", "initialMargin": "0", "maintMargin": "0", "updateTime": _now_ms()}
                     for sym, amt in fake.positions.items() if amt != 0]
    margin = wallet + upnl
    zero = "0.00000000"
    return 200, {"totalInitialMargin": zero, "totalMaintMargin": zero, "totalWalletBalance": str(wallet),
                 "totalUnrealizedProfit": str(upnl), "totalMarginBalance": str(margin),
                 "totalPositionInitialMargin": zero, "totalOpenOrderInitialMargin": zero,
                 "totalCrossWalletBalance": str(wallet), "totalCrossUnPnl": str(upnl),
                 "availableBalance": str(margin), "maxWithdrawAmount": str(wallet),
                 "assets": [{"asset": "USDT", "walletBalance": str(wallet), "unrealizedProfit": str(upnl),
                             "marginBalance": str(margin), "maintMargin": zero, "initialMargin": zero,
                             "positionInitialMargin": zero, "openOrderInitialMargin": zero,
                             "crossWalletBalance": str(wallet), "crossUnPnl": str(upnl),
                             "availableBalance": str(margin), "maxWithdrawAmount": str(wallet),
                             "updateTime": _now_ms()}],
                 "positions": positions}


def _order_view(order: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in order.items() if not k.startswith("_")}


def _fill(fake: FakeBinance, order: dict[str, Any], qty: Decimal) -> None:
    """Fill ``qty`` more of ``order`` at the current price (caller holds the lock). A reduce-only order
    fills at most the position left; one that can no longer reduce anything expires (as on Binance)."""
    sym = order["symbol"]
    sign = 1 if order["side"] == "BUY" else -1
    if order["reduceOnly"]:
        held = fake.positions[sym]
        qty = min(qty, abs(held)) if held != 0 and (held > 0) != (sign > 0) else Decimal(0)
    price = Decimal(str(fake.markets[sym]["price"]))
    if qty > 0:
        if order["_hedge_side"] is not None:
            fake.hedge_positions[(sym, order["_hedge_side"])] += sign * qty
        else:
            fake.positions[sym] += sign * qty
        cost = Decimal(order["cumQuote"]) + qty * price
        order["_filled"] += qty
        order["cumQuote"] = format(cost, "f")
        order["avgPrice"] = format(cost / order["_filled"], "f")
        fake.fills.append({"client_order_id": order["clientOrderId"], "symbol": sym, "side": order["side"],
                           "qty": qty})
    order["executedQty"] = order["cumQty"] = format(order["_filled"], "f")
    if order["_filled"] >= order["_qty"]:
        order["status"] = "FILLED"
    elif qty == 0 and order["reduceOnly"]:
        order["status"] = "EXPIRED"
    else:
        order["status"] = "PARTIALLY_FILLED" if order["_filled"] > 0 else "NEW"
    order["updateTime"] = _now_ms()


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
    if qty > m["market_max_qty"]:
        return 400, {"code": -4005, "msg": "Quantity greater than max quantity."}
    side = params.get("side")
    if side not in ("BUY", "SELL"):
        return 400, {"code": -1117, "msg": "Invalid side."}
    position_side = params.get("positionSide", "BOTH")
    if fake.hedge and position_side not in ("LONG", "SHORT") or not fake.hedge and position_side != "BOTH":
        return 400, {"code": -4061, "msg": "Order's position side does not match user's setting."}
    if fake.hedge and "reduceOnly" in params:
        return 400, {"code": -1106, "msg": "Parameter 'reduceonly' sent when not required."}
    reduce_only = params.get("reduceOnly") == "true"
    cid = params.get("newClientOrderId") or f"auto{fake._next_id}"
    price = Decimal(str(m["price"]))
    mode = fake.order_mode
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
        fake._next_id += 1
        order = {"orderId": fake._next_id, "symbol": sym, "status": "NEW", "clientOrderId": cid, "price": "0",
                 "avgPrice": "0.00", "origQty": str(qty), "executedQty": "0", "cumQty": "0",
                 "cumQuote": "0", "timeInForce": "GTC", "type": "MARKET", "reduceOnly": reduce_only,
                 "closePosition": False, "side": side, "positionSide": position_side, "stopPrice": "0",
                 "workingType": "CONTRACT_PRICE", "priceProtect": False, "origType": "MARKET",
                 "priceMatch": "NONE", "selfTradePreventionMode": "NONE", "goodTillDate": 0,
                 "time": _now_ms(), "updateTime": _now_ms(),
                 "_qty": qty, "_filled": Decimal(0), "_hedge_side": position_side if fake.hedge else None}
        fake.orders[cid] = order
        if mode.startswith("partial:"):
            part = (qty * Decimal(mode.split(":", 1)[1]) / m["step"]).to_integral_value(ROUND_DOWN) * m["step"]
            if part > 0:
                _fill(fake, order, min(part, qty))
        elif mode in ("fill", "new_then_fill"):
            _fill(fake, order, qty)
        elif mode != "stay_open":
            raise ValueError(f"unknown order_mode {mode!r}")
        view = _order_view(order)
        if mode == "new_then_fill":  # applied, but the answer says NEW with nothing executed
            view.update(status="NEW", executedQty="0", cumQty="0", cumQuote="0", avgPrice="0.00")
    return 200, view


def _find_order(fake: FakeBinance, params: dict[str, str]) -> dict[str, Any] | None:
    cid = params.get("origClientOrderId")
    order = fake.orders.get(cid) if cid else None
    if order is None and "orderId" in params:
        order = next((o for o in fake.orders.values() if str(o["orderId"]) == params["orderId"]), None)
    if order is None or order["symbol"] != params.get("symbol"):
        return None
    return order


def _get_order(fake: FakeBinance, params: dict[str, str]) -> tuple[int, Any]:
    with fake.lock:
        order = _find_order(fake, params)
        if order is None:
            return 400, {"code": -2013, "msg": "Order does not exist."}
        return 200, _order_view(order)


def _cancel_order(fake: FakeBinance, params: dict[str, str]) -> tuple[int, Any]:
    with fake.lock:
        order = _find_order(fake, params)
        if order is None or order["status"] not in OPEN_STATUSES:
            return 400, {"code": -2011, "msg": "Unknown order sent."}
        order["status"] = "CANCELED"
        order["updateTime"] = _now_ms()
        return 200, _order_view(order)


def _open_orders(fake: FakeBinance, params: dict[str, str]) -> tuple[int, Any]:
    with fake.lock:
        return 200, [_order_view(o) for o in fake.orders.values()
                     if o["status"] in OPEN_STATUSES and params.get("symbol") in (None, o["symbol"])]


ORDER = ("POST", "/fapi/v1/order")

# (method, path) -> (handler, signed)
ROUTES = {
    ("GET", "/fapi/v1/exchangeInfo"): (_exchange_info, False),
    ("GET", "/fapi/v1/time"): (_time, False),
    ("GET", "/fapi/v1/ticker/24hr"): (_tickers, False),
    ("GET", "/fapi/v1/premiumIndex"): (_premium, False),
    ("GET", "/fapi/v3/positionRisk"): (_position_risk, True),
    ("GET", "/fapi/v2/positionRisk"): (_position_risk, True),
    ("GET", "/fapi/v1/positionSide/dual"): (_position_mode, True),
    ("GET", "/fapi/v1/leverageBracket"): (_leverage_bracket, True),
    ("GET", "/fapi/v2/balance"): (_balance, True),
    ("GET", "/fapi/v3/balance"): (_balance, True),
    ("GET", "/fapi/v2/account"): (_account, True),
    ("GET", "/fapi/v3/account"): (_account, True),
    ORDER: (_new_order, True),
    ("GET", "/fapi/v1/order"): (_get_order, True),
    ("DELETE", "/fapi/v1/order"): (_cancel_order, True),
    ("GET", "/fapi/v1/openOrders"): (_open_orders, True),
}
