"""A fake Bitget server (classic account, API v2 mix) for the reconciler's venue tests, behind the
``VenueFake`` protocol of ``tests/fakes/venue_matrix.py``.

Threaded ``http.server`` on 127.0.0.1 (port 0), serving only what ccxt 4.5.90's ``bitget`` class calls
for the reconciler (with ``reconciler.venues.bitget.PROFILE``), plus the two endpoints plain ccxt would
call instead (the spot wallet and the UTA probe), in Bitget's envelope
``{"code": "00000", "msg": "success", "requestTime": ms, "data": ...}``:

- GET  /api/v2/public/time
- GET  /api/v2/spot/public/coins (ccxt's load_markets fetches currencies first: ``has['fetchCurrencies']``)
- GET  /api/v2/mix/market/contracts?productType=... (USDT-FUTURES: BTCUSDT, ETHUSDT, SOLUSDT perpetuals and
  one USDT-margined delivery contract; COIN-FUTURES: BTCUSD inverse perpetual; USDC-FUTURES: BTCPERP;
  the S*-FUTURES demo types: empty)
- GET  /api/v2/mix/market/tickers?productType=... (lastPr, markPrice, indexPrice)
- GET  /api/v2/mix/position/all-position?productType&marginCoin (signed)
- GET  /api/v2/mix/account/accounts?productType (signed; ccxt fetch_balance with defaultType swap)
- GET  /api/v2/mix/account/account?symbol&productType&marginCoin (signed; ``posMode``)
- GET  /api/v2/spot/account/assets (signed; the spot wallet: what plain ccxt's fetch_balance reads)
- GET  /api/v2/spot/public/symbols, /api/v2/margin/currencies (plain ccxt's market load also reads spot)
- GET  /api/v3/account/settings (signed; ccxt's UTA probe: a classic account answers 40084)
- POST /api/v2/mix/order/place-order (signed; market orders; answers an ack ``{orderId, clientOid}``)
- GET  /api/v2/mix/order/detail?symbol&productType&(clientOid|orderId) (signed; 40109 when unknown)
- POST /api/v2/mix/order/cancel-order (signed; 40768 unknown order, 22001 nothing to cancel)
- GET  /api/v2/mix/order/orders-pending?productType[&symbol][&clientOid] (signed)

Signing as Bitget: ``ACCESS-SIGN = base64(HMAC-SHA256(secret, timestamp + METHOD + path + ["?" + query]
+ body))`` with ``ACCESS-KEY``, ``ACCESS-TIMESTAMP`` (within 30 s) and ``ACCESS-PASSPHRASE``; a wrong key
is 40006, a missing passphrase 40011, a wrong passphrase 40012, a bad signature 40009, a stale timestamp
40008 (HTTP 400, Bitget's envelope).

Orders (amounts in base units: Bitget contracts have size 1): ``size`` must be a multiple of the
market's ``sizeMultiplier`` (else 40808), at least ``minTradeNum`` (45111), at most ``maxMarketOrderQty``
(40808; code assumed, Bitget documents no dedicated one), worth at least ``minTradeUSDT`` unless
reduce-only (45110). Reduce-only (``reduceOnly: "YES"``) with no position to reduce: 22002; above the
position: filled up to the position. A ``clientOid`` already used: 40786 "Duplicate clientOid".
``order_mode``: ``"fill"`` (default, filled at once at the mark price) or ``"stay_open"`` (live, nothing
filled). ``hedge = True``: posMode hedge_mode; an order without ``tradeSide`` is refused with 40774.
``uta_account = True``: the probe answers success and every classic private endpoint 40085.

Faults (``inject(kind)``, consumed by the next order, ``reduce_only_refusal`` by the next reduce-only one):
``timeout_applied`` (applied, answered after ``slow_s``), ``error_applied`` (applied, HTTP 500 code
40015), ``rate_limited`` (HTTP 429 code 429, not applied), ``insufficient_margin`` (40762, not applied),
``statusless`` (applied, ``data: null``), ``reduce_only_refusal`` (22002). ``add_canned(method, path,
status, payload)``: the next request there gets that raw answer (after the signature check).

Logs: ``requests_full`` (``method``, ``path``, ``params``: query and JSON body merged, ``headers``),
``fills`` (client_order_id, symbol, side, qty in contracts = base units).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import defaultdict, deque
from decimal import Decimal
from typing import Any

from fakes.http_fake import JsonHandler, LoopbackServer
from urllib.parse import parse_qsl, unquote, urlsplit

API_KEY = "bg-test-key"
SECRET = "bg-test-secret"
PASSPHRASE = "bg-test-passphrase"

#: venue-matrix fault kinds this fake implements
FAULT_KINDS = ("timeout_applied", "error_applied", "rate_limited", "insufficient_margin", "statusless",
               "reduce_only_refusal")


def _contract(symbol: str, base: str, quote: str, margin: str, product: str, price: float, step: str,
              min_qty: str, *, max_qty: str = "1000000", symbol_type: str = "perpetual",
              delivery: str = "") -> dict[str, Any]:
    return {"id": symbol, "base": base, "quote": quote, "margin": margin, "product": product, "price": price,
            "index": None, "step": Decimal(step), "min_qty": Decimal(min_qty), "max_qty": Decimal(max_qty),
            "min_usdt": Decimal("5"), "symbol_type": symbol_type, "delivery": delivery}


_FAR = str(int(time.time() * 1000) + 200 * 86400000)
DEFAULT_MARKETS = [
    _contract("BTCUSDT", "BTC", "USDT", "USDT", "USDT-FUTURES", 95000.0, "0.001", "0.001", max_qty="100"),
    _contract("ETHUSDT", "ETH", "USDT", "USDT", "USDT-FUTURES", 3500.0, "0.01", "0.01", max_qty="5000"),
    _contract("SOLUSDT", "SOL", "USDT", "USDT", "USDT-FUTURES", 190.0, "0.1", "0.1", max_qty="50000"),
    _contract("BTCUSDT0626", "BTC", "USDT", "USDT", "USDT-FUTURES", 95500.0, "0.001", "0.001",
              symbol_type="delivery", delivery=_FAR),
    _contract("BTCUSD", "BTC", "USD", "BTC", "COIN-FUTURES", 95000.0, "0.001", "0.001"),
    _contract("BTCPERP", "BTC", "USDC", "USDC", "USDC-FUTURES", 95000.0, "0.0001", "0.0001"),
]
PRODUCT_TYPES = ("USDT-FUTURES", "COIN-FUTURES", "USDC-FUTURES", "SUSDT-FUTURES", "SCOIN-FUTURES",
                 "SUSDC-FUTURES")
OPEN_STATES = ("live", "partially_filled")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _ok(data: Any) -> tuple[int, Any]:
    return 200, {"code": "00000", "msg": "success", "requestTime": _now_ms(), "data": data}


def _err(code: str, msg: str, status: int = 400) -> tuple[int, Any]:
    return status, {"code": code, "msg": msg, "requestTime": _now_ms(), "data": None}


class FakeBitget(LoopbackServer):
    """State + server (context manager); ``base_url`` is http://127.0.0.1:<port>."""

    exchange_id = "bitget"
    env = {"BITGET_API_KEY": API_KEY, "BITGET_SECRET": SECRET, "BITGET_PASSWORD": PASSPHRASE}

    def __init__(self, markets: list[dict[str, Any]] | None = None, *, slow_s: float = 2.0) -> None:
        self.markets = {m["id"]: dict(m) for m in (markets or DEFAULT_MARKETS)}
        traded = [m for m in self.markets.values()
                  if m["product"] == "USDT-FUTURES" and m["symbol_type"] == "perpetual"]
        self.symbols = {m["base"]: f"{m['base']}/USDT:USDT" for m in traded}
        self.prices = {m["base"]: float(m["price"]) for m in traded}
        self.steps = {m["base"]: float(m["step"]) for m in traded}
        self.positions: dict[str, Decimal] = defaultdict(Decimal)
        self.hedge = False
        self.hedge_positions: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        self.uta_account = False
        self.orders: dict[str, dict[str, Any]] = {}
        self.fills: list[dict[str, Any]] = []
        self.faults: deque[str] = deque()
        self.canned: dict[tuple[str, str], deque[tuple[int, Any]]] = defaultdict(deque)
        self.order_mode = "fill"
        self.requests_full: list[dict[str, Any]] = []
        self.wallet = Decimal("100000")
        self.unrealized_pnl = Decimal("0")
        self.spot_wallet = Decimal("12.5")
        self.slow_s = slow_s
        self.lock = threading.RLock()
        self._next_id = 1_300_000_000_000_000_000
        self.serve(self._handler())

    # -- VenueFake protocol and knobs -------------------------------------------
    def position(self, base: str) -> float:
        """Signed one-way position of ``base``'s USDT perpetual, base units."""
        with self.lock:
            return float(self.positions[f"{base}USDT"])

    def inject(self, kind: str) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}")
        with self.lock:
            self.faults.append(kind)

    def add_canned(self, method: str, path: str, status: int, payload: Any) -> None:
        with self.lock:
            self.canned[(method, path)].append((status, payload))

    def set_balance(self, wallet: float | str, unrealized_pnl: float | str = 0) -> None:
        """USDT wallet balance and unrealized PnL of the USDT-M futures account."""
        with self.lock:
            self.wallet = Decimal(str(wallet))
            self.unrealized_pnl = Decimal(str(unrealized_pnl))

    def set_position(self, market_id: str, qty: float | str) -> None:
        """A one-way position (signed base units) on any listed market, e.g. the delivery contract."""
        with self.lock:
            self.positions[market_id] = Decimal(str(qty))

    # -- HTTP -------------------------------------------------------------------
    def _handler(self):
        fake = self

        class Handler(JsonHandler):
            def _dispatch(self, method: str) -> None:
                parts = urlsplit(self.path)
                path, query = parts.path, parts.query
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
                if body:
                    try:
                        loaded = json.loads(body)
                    except ValueError:
                        return self._send(*_err("40017", "Parameter verification failed"))
                    if isinstance(loaded, dict):
                        params.update(loaded)
                with fake.lock:
                    fake.requests_full.append({"method": method, "path": path, "params": dict(params),
                                               "headers": {k.upper(): v for k, v in self.headers.items()
                                                           if k.upper().startswith("ACCESS-")}})
                route = ROUTES.get((method, path))
                if route is None:
                    return self._send(*_err("40404", "Request URL NOT FOUND", 404))
                handler, signed = route
                if signed:
                    problem = _check_signature(method, path, query, body, self.headers)
                    if problem:
                        return self._send(*problem)
                    if fake.uta_account and path.startswith("/api/v2/"):
                        return self._send(*_err("40085", "You are in Unified Account mode, and the Classic "
                                                         "Account API is not supported at this time"))
                with fake.lock:
                    queue = fake.canned.get((method, path))
                    canned = queue.popleft() if queue else None
                if canned is not None:
                    return self._send(*canned)
                fault = None
                if (method, path) == PLACE_ORDER:
                    with fake.lock:
                        reduce_only = str(params.get("reduceOnly", "")).upper() == "YES"
                        for i, kind in enumerate(fake.faults):
                            if kind != "reduce_only_refusal" or reduce_only:
                                fault = kind
                                del fake.faults[i]
                                break
                if fault == "rate_limited":
                    return self._send(*_err("429", "Too Many Requests", 429))
                if fault == "insufficient_margin":
                    return self._send(*_err("40762", "The order amount exceeds the balance"))
                if fault == "reduce_only_refusal":
                    return self._send(*_err("22002", "No position to close"))
                status, payload = handler(fake, params)
                if fault == "timeout_applied":
                    time.sleep(fake.slow_s)
                elif fault == "error_applied" and status == 200:
                    return self._send(*_err("40015", "System is abnormal, please try again later", 500))
                elif fault == "statusless" and status == 200:
                    payload = {**payload, "data": None}
                return self._send(status, payload)

        return Handler


def _check_signature(method: str, path: str, query: str, body: str, headers: Any) -> tuple[int, Any] | None:
    """Bitget's checks, in its order: key, passphrase, timestamp, signature."""
    key = headers.get("ACCESS-KEY")
    if not key:
        return _err("40001", "ACCESS_KEY cannot be empty")
    if key != API_KEY:
        return _err("40006", "Invalid ACCESS_KEY")
    passphrase = headers.get("ACCESS-PASSPHRASE")
    if not passphrase:
        return _err("40011", "ACCESS_PASSPHRASE cannot be empty")
    if passphrase != PASSPHRASE:
        return _err("40012", "apikey/password is incorrect")
    stamp = headers.get("ACCESS-TIMESTAMP") or ""
    if not stamp.isdigit() or abs(int(stamp) - _now_ms()) > 30_000:
        return _err("40008", "Request timestamp expired")
    prehash = stamp + method + path + (("?" + unquote(query)) if query else "") + body
    expected = base64.b64encode(hmac.new(SECRET.encode(), prehash.encode(), hashlib.sha256).digest()).decode()
    if not hmac.compare_digest(expected, headers.get("ACCESS-SIGN") or ""):
        return _err("40009", "sign signature error")
    return None


# -- handlers (fake, params) -> (status, payload); each takes the lock itself ------------------------------
def _time(fake: FakeBitget, params: dict[str, Any]) -> tuple[int, Any]:
    return _ok({"serverTime": str(_now_ms())})


def _coins(fake: FakeBitget, params: dict[str, Any]) -> tuple[int, Any]:
    """GET /api/v2/spot/public/coins: ccxt's load_markets calls fetch_currencies first (``has`` is True)."""
    coins = sorted({c for m in fake.markets.values() for c in (m["base"], m["quote"], m["margin"])} - {"USD"})
    return _ok([{"coinId": str(i + 1), "coin": coin, "transfer": "true", "areaCoin": "no", "chains": [
        {"chain": "ERC20", "needTag": "false", "withdrawable": "true", "rechargeable": "true", "withdrawFee": "1",
         "extraWithdrawFee": "0", "depositConfirm": "12", "withdrawConfirm": "64", "minDepositAmount": "0.01",
         "minWithdrawAmount": "10", "browserUrl": "https://etherscan.io/tx/", "contractAddress": None,
         "withdrawStep": "0", "withdrawMinScale": "8", "congestion": "normal"}]} for i, coin in enumerate(coins)])


def _spot_symbols(fake: FakeBitget, params: dict[str, Any]) -> tuple[int, Any]:
    """GET /api/v2/spot/public/symbols (plain ccxt loads spot markets too; the profile does not)."""
    bases = sorted({m["base"] for m in fake.markets.values() if m["product"] == "USDT-FUTURES"})
    return _ok([{"symbol": f"{b}USDT", "baseCoin": b, "quoteCoin": "USDT", "minTradeAmount": "0",
                 "maxTradeAmount": "10000000000", "takerFeeRate": "0.002", "makerFeeRate": "0.002",
                 "pricePrecision": "2", "quantityPrecision": "4", "quotePrecision": "6", "status": "online",
                 "minTradeUSDT": "1", "buyLimitPriceRatio": "0.05", "sellLimitPriceRatio": "0.05"} for b in bases])


def _margin_currencies(fake: FakeBitget, params: dict[str, Any]) -> tuple[int, Any]:
    """GET /api/v2/margin/currencies (plain ccxt's market load): no margin pairs here."""
    return _ok([])


def _contracts(fake: FakeBitget, params: dict[str, Any]) -> tuple[int, Any]:
    product = params.get("productType")
    if product not in PRODUCT_TYPES:
        return _err("40019", "Parameter productType cannot be empty")
    out = []
    with fake.lock:
        for m in fake.markets.values():
            if m["product"] != product:
                continue
            decimals = max(0, -m["step"].as_tuple().exponent)
            out.append({
                "symbol": m["id"], "baseCoin": m["base"], "quoteCoin": m["quote"], "buyLimitPriceRatio": "0.05",
                "sellLimitPriceRatio": "0.05", "feeRateUpRatio": "0.005", "makerFeeRate": "0.0002",
                "takerFeeRate": "0.0006", "openCostUpRatio": "0.01", "supportMarginCoins": [m["margin"]],
                "minTradeNum": str(m["min_qty"]), "priceEndStep": "1", "volumePlace": str(decimals),
                "pricePlace": "1", "sizeMultiplier": str(m["step"]), "symbolType": m["symbol_type"],
                "minTradeUSDT": str(m["min_usdt"]), "maxSymbolOrderNum": "200", "maxProductOrderNum": "400",
                "maxPositionNum": "150", "symbolStatus": "normal", "offTime": "-1", "limitOpenTime": "-1",
                "deliveryTime": m["delivery"], "deliveryStartTime": "", "deliveryPeriod": "", "launchTime": "",
                "fundInterval": "8", "minLever": "1", "maxLever": "125", "posLimit": "0.05", "maintainTime": "",
                "maxMarketOrderQty": str(m["max_qty"]), "maxOrderQty": str(m["max_qty"] * 2),
            })
    return _ok(out)


def _tickers(fake: FakeBitget, params: dict[str, Any]) -> tuple[int, Any]:
    product = params.get("productType")
    if product not in PRODUCT_TYPES:
        return _err("40019", "Parameter productType cannot be empty")
    out = []
    with fake.lock:
        for m in fake.markets.values():
            if m["product"] != product:
                continue
            p = f"{m['price']:.1f}"
            index = f"{(m['price'] if m['index'] is None else m['index']):.1f}"
            out.append({"symbol": m["id"], "lastPr": p, "askPr": p, "bidPr": p, "bidSz": "1", "askSz": "1",
                        "high24h": p, "low24h": p, "ts": str(_now_ms()), "change24h": "0", "baseVolume": "1000",
                        "quoteVolume": "1000000", "usdtVolume": "1000000", "openUtc": p, "changeUtc24h": "0",
                        "indexPrice": index, "fundingRate": "0.0001", "holdingAmount": "1000",
                        "deliveryStartTime": None, "deliveryTime": None, "deliveryStatus": "", "open24h": p,
                        "markPrice": p})
    return _ok(out)


def _position_row(fake: FakeBitget, market_id: str, side: str, qty: Decimal, mode: str) -> dict[str, Any]:
    price = Decimal(str(fake.markets[market_id]["price"]))
    size = abs(qty)
    return {"marginCoin": fake.markets[market_id]["margin"], "symbol": market_id, "holdSide": side,
            "openDelegateSize": "0", "marginSize": str(size * price / 20), "available": str(size), "locked": "0",
            "total": str(size), "leverage": "20", "achievedProfits": "0", "openPriceAvg": str(price),
            "marginMode": "crossed", "posMode": mode, "unrealizedPL": "0", "liquidationPrice": "0",
            "keepMarginRate": "0.004", "markPrice": str(price), "marginRatio": "0.01",
            "breakEvenPrice": str(price), "totalFee": "0", "deductedFee": "0", "assetMode": "single",
            "autoMargin": "off", "cTime": str(_now_ms()), "uTime": str(_now_ms())}


def _positions(fake: FakeBitget, params: dict[str, Any]) -> tuple[int, Any]:
    product = params.get("productType")
    if product not in PRODUCT_TYPES or not params.get("marginCoin"):
        return _err("40019", "Parameter productType cannot be empty")
    out = []
    with fake.lock:
        if fake.hedge:
            for (mid, side), qty in sorted(fake.hedge_positions.items()):
                if qty != 0 and fake.markets[mid]["product"] == product:
                    out.append(_position_row(fake, mid, side, qty, "hedge_mode"))
        else:
            for mid, qty in sorted(fake.positions.items()):
                if qty != 0 and fake.markets[mid]["product"] == product:
                    out.append(_position_row(fake, mid, "long" if qty > 0 else "short", qty, "one_way_mode"))
    return _ok(out)


def _usdt_account(fake: FakeBitget) -> dict[str, Any]:
    equity = fake.wallet + fake.unrealized_pnl
    return {"marginCoin": "USDT", "locked": "0", "available": str(equity), "crossedMaxAvailable": str(equity),
            "isolatedMaxAvailable": str(equity), "maxTransferOut": str(fake.wallet), "accountEquity": str(equity),
            "usdtEquity": str(equity), "btcEquity": str(equity / Decimal("95000")), "crossedRiskRate": "0",
            "unrealizedPL": str(fake.unrealized_pnl), "coupon": "0", "unionTotalMargin": str(equity),
            "unionAvailable": str(equity), "unionMm": "0", "assetList": [], "isolatedMargin": "0",
            "crossedMargin": "0", "crossedUnrealizedPL": str(fake.unrealized_pnl), "isolatedUnrealizedPL": "0",
            "assetMode": "single"}


def _accounts(fake: FakeBitget, params: dict[str, Any]) -> tuple[int, Any]:
    if params.get("productType") != "USDT-FUTURES":
        return _ok([]) if params.get("productType") in PRODUCT_TYPES else _err("40019", "Parameter productType "
                                                                                       "cannot be empty")
    with fake.lock:
        return _ok([_usdt_account(fake)])


def _account(fake: FakeBitget, params: dict[str, Any]) -> tuple[int, Any]:
    if params.get("productType") != "USDT-FUTURES" or params.get("marginCoin") != "USDT":
        return _err("40019", "Parameter productType cannot be empty")
    with fake.lock:
        if params.get("symbol") not in fake.markets:
            return _err("40034", f"Parameter {params.get('symbol')} does not exist")
        row = _usdt_account(fake)
        row.update({"crossedMarginLeverage": 20, "isolatedLongLever": 20, "isolatedShortLever": 20,
                    "marginMode": "crossed", "posMode": "hedge_mode" if fake.hedge else "one_way_mode"})
        return _ok(row)


def _spot_assets(fake: FakeBitget, params: dict[str, Any]) -> tuple[int, Any]:
    with fake.lock:
        return _ok([{"coin": "USDT", "available": str(fake.spot_wallet), "limitAvailable": "0", "frozen": "0",
                     "locked": "0", "uTime": str(_now_ms())}])


def _uta_settings(fake: FakeBitget, params: dict[str, Any]) -> tuple[int, Any]:
    with fake.lock:
        if not fake.uta_account:
            return _err("40084", "You are in Classic Account mode, and the Unified Account API is not supported "
                                 "at this time")
        return _ok({"assetMode": "union", "holdMode": "one_way_mode", "symbolConfigList": [],
                    "coinConfigList": []})


def _order_view(order: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in order.items() if not k.startswith("_")}


def _fill(fake: FakeBitget, order: dict[str, Any], qty: Decimal) -> None:
    """Fill ``qty`` more of ``order`` at the mark price (lock held); reduce-only fills at most the position."""
    mid = order["symbol"]
    sign = 1 if order["side"] == "buy" else -1
    if order["reduceOnly"] == "YES":
        held = fake.positions[mid]
        qty = min(qty, abs(held)) if held != 0 and (held > 0) != (sign > 0) else Decimal(0)
    price = Decimal(str(fake.markets[mid]["price"]))
    if qty > 0:
        fake.positions[mid] += sign * qty
        filled = order["_filled"] + qty
        cost = Decimal(order["quoteVolume"]) + qty * price
        order.update(_filled=filled, baseVolume=format(filled, "f"), quoteVolume=format(cost, "f"),
                     priceAvg=format(cost / filled, "f"), fee=format(-cost * Decimal("0.0006"), "f"))
        fake.fills.append({"client_order_id": order["clientOid"], "symbol": mid, "side": order["side"], "qty": qty})
    if order["_filled"] >= order["_size"]:
        order["state"] = "filled"
    elif qty == 0 and order["reduceOnly"] == "YES":
        order["state"] = "canceled"
    else:
        order["state"] = "partially_filled" if order["_filled"] > 0 else "live"
    order["uTime"] = str(_now_ms())


def _place_order(fake: FakeBitget, params: dict[str, Any]) -> tuple[int, Any]:
    mid = params.get("symbol")
    with fake.lock:
        m = fake.markets.get(mid)
        if m is None or params.get("productType") != m["product"]:
            return _err("40034", f"Parameter {mid} does not exist")
        if params.get("marginCoin") != m["margin"]:
            return _err("40017", "Parameter verification failed marginCoin")
        if params.get("orderType") != "market":
            return _err("40017", "Parameter verification failed orderType")
        side = params.get("side")
        if side not in ("buy", "sell"):
            return _err("40017", "Parameter verification failed side")
        if params.get("marginMode") not in ("crossed", "isolated"):
            return _err("40017", "Parameter verification failed marginMode")
        try:
            size = Decimal(str(params["size"]))
        except (KeyError, ArithmeticError):
            return _err("40017", "Parameter verification failed size")
        if size <= 0 or size % m["step"] != 0:
            return _err("40808", f"Parameter verification exception size checkBDScale error value={size} "
                                 f"checkScale={max(0, -m['step'].as_tuple().exponent)}")
        if size < m["min_qty"]:
            return _err("45111", "less than the minimum order quantity")
        if size > m["max_qty"]:
            return _err("40808", f"Parameter verification exception size {size} > maxMarketOrderQty {m['max_qty']}")
        if fake.hedge and params.get("tradeSide") is None:
            return _err("40774", "The order type for unilateral position must also be the unilateral position type.")
        reduce_only = str(params.get("reduceOnly", "NO")).upper() == "YES"
        cid = params.get("clientOid")
        if cid is not None and cid in fake.orders:
            return _err("40786", "Duplicate clientOid")
        price = Decimal(str(m["price"]))
        held = fake.positions[mid]
        sign = 1 if side == "buy" else -1
        if reduce_only:
            if held == 0 or (held > 0) == (sign > 0):
                return _err("22002", "No position to close")
        elif size * price < m["min_usdt"]:
            return _err("45110", f"less than the minimum amount {m['min_usdt']} USDT")
        fake._next_id += 1
        oid = str(fake._next_id)
        cid = cid if cid is not None else str(fake._next_id + 1)
        order = {"symbol": mid, "size": format(size, "f"), "orderId": oid, "clientOid": cid, "baseVolume": "0",
                 "priceAvg": "", "fee": "0", "price": "", "state": "live", "side": side, "force": "gtc",
                 "totalProfits": "0", "posSide": "net", "marginCoin": m["margin"], "presetStopSurplusPrice": "",
                 "presetStopLossPrice": "", "quoteVolume": "0", "orderType": "market", "leverage": "20",
                 "marginMode": params["marginMode"], "reduceOnly": "YES" if reduce_only else "NO",
                 "enterPointSource": "API", "tradeSide": "close" if reduce_only else "open",
                 "posMode": "one_way_mode", "orderSource": "market", "cancelReason": "",
                 "cTime": str(_now_ms()), "uTime": str(_now_ms()), "_size": size, "_filled": Decimal(0)}
        fake.orders[cid] = order
        if fake.order_mode == "fill":
            _fill(fake, order, size)
        elif fake.order_mode != "stay_open":
            raise ValueError(f"unknown order_mode {fake.order_mode!r}")
        return _ok({"orderId": oid, "clientOid": cid})


def _find(fake: FakeBitget, params: dict[str, Any]) -> dict[str, Any] | None:
    order = fake.orders.get(params["clientOid"]) if params.get("clientOid") else None
    if order is None and params.get("orderId"):
        order = next((o for o in fake.orders.values() if o["orderId"] == params["orderId"]), None)
    if order is None or order["symbol"] != params.get("symbol"):
        return None
    return order


def _detail(fake: FakeBitget, params: dict[str, Any]) -> tuple[int, Any]:
    if not params.get("symbol") or params.get("productType") not in PRODUCT_TYPES:
        return _err("40019", "Parameter symbol cannot be empty")
    if not params.get("clientOid") and not params.get("orderId"):
        return _err("40017", "Either orderId or clientOid is required")
    with fake.lock:
        order = _find(fake, params)
        if order is None:
            return _err("40109", "The data of the order cannot be found, please confirm the order number")
        return _ok(_order_view(order))


def _cancel(fake: FakeBitget, params: dict[str, Any]) -> tuple[int, Any]:
    if not params.get("symbol") or params.get("productType") not in PRODUCT_TYPES:
        return _err("40019", "Parameter symbol cannot be empty")
    with fake.lock:
        order = _find(fake, params)
        if order is None:
            return _err("40768", "Order does not exist")
        if order["state"] not in OPEN_STATES:
            return _err("22001", "No order to cancel")
        order["state"] = "canceled"
        order["uTime"] = str(_now_ms())
        return _ok({"orderId": order["orderId"], "clientOid": order["clientOid"]})


def _pending(fake: FakeBitget, params: dict[str, Any]) -> tuple[int, Any]:
    product = params.get("productType")
    if product not in PRODUCT_TYPES:
        return _err("40019", "Parameter productType cannot be empty")
    limit = int(params.get("limit") or 100)
    with fake.lock:
        rows = [_order_view(o) for o in fake.orders.values()
                if o["state"] in OPEN_STATES and fake.markets[o["symbol"]]["product"] == product
                and params.get("symbol") in (None, o["symbol"]) and params.get("clientOid") in (None, o["clientOid"])]
    rows = rows[:limit]
    return _ok({"entrustedList": rows or None, "endId": rows[-1]["orderId"] if rows else None})


PLACE_ORDER = ("POST", "/api/v2/mix/order/place-order")

# (method, path) -> (handler, signed)
ROUTES = {
    ("GET", "/api/v2/public/time"): (_time, False),
    ("GET", "/api/v2/spot/public/coins"): (_coins, False),
    ("GET", "/api/v2/spot/public/symbols"): (_spot_symbols, False),
    ("GET", "/api/v2/margin/currencies"): (_margin_currencies, False),
    ("GET", "/api/v2/mix/market/contracts"): (_contracts, False),
    ("GET", "/api/v2/mix/market/tickers"): (_tickers, False),
    ("GET", "/api/v2/mix/position/all-position"): (_positions, True),
    ("GET", "/api/v2/mix/account/accounts"): (_accounts, True),
    ("GET", "/api/v2/mix/account/account"): (_account, True),
    ("GET", "/api/v2/spot/account/assets"): (_spot_assets, True),
    ("GET", "/api/v3/account/settings"): (_uta_settings, True),
    PLACE_ORDER: (_place_order, True),
    ("GET", "/api/v2/mix/order/detail"): (_detail, True),
    ("POST", "/api/v2/mix/order/cancel-order"): (_cancel, True),
    ("GET", "/api/v2/mix/order/orders-pending"): (_pending, True),
}
