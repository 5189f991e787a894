"""A fake OKX (API v5) server for the reconciler's venue tests, behind the venue-fake protocol of
``tests/fakes/venue_matrix.py``.

Threaded ``http.server`` on 127.0.0.1 (port 0), serving only what ccxt's ``okx`` class (4.5.90) calls for the
reconciler, with OKX's answer shapes (``{"code": "0", "data": [...], "msg": ""}``; a failed order is HTTP 200
``{"code": "1", "data": [{"sCode": ..., "sMsg": ...}], "msg": "All operations failed"}``):

- GET  /api/v5/public/instruments?instType=SWAP|SPOT|FUTURES|OPTION (``ctVal``, ``lotSz``, ``minSz``,
  ``maxLmtSz``, ``maxMktSz``), /api/v5/public/mark-price, /api/v5/market/tickers, /api/v5/public/time
- GET  /api/v5/account/positions, /api/v5/account/balance, /api/v5/account/config (signed)
- GET  /api/v5/asset/currencies (signed: ccxt's okx ``load_markets`` calls it whenever keys are set; fastopt's
  ``fetchCurrencies: False`` option is not read by okx)
- POST /api/v5/trade/order and /api/v5/trade/batch-orders (signed; market orders, ``sz`` in contracts)
- GET  /api/v5/trade/order by ``clOrdId`` or ``ordId`` (signed; ``51603`` "Order does not exist")
- POST /api/v5/trade/cancel-order (signed; ``51400`` when there is no working order with that id)
- GET  /api/v5/trade/orders-pending (signed)

Auth as OKX does it: ``OK-ACCESS-KEY`` (else 401 ``50111``), ``OK-ACCESS-PASSPHRASE`` (else 401 ``50105``),
``OK-ACCESS-TIMESTAMP`` ISO time within 30 s (else 401 ``50102``) and ``OK-ACCESS-SIGN`` = base64 HMAC-SHA256 of
``timestamp + method + path?query + body`` (else 401 ``50113``).

Orders: ``sz`` must be a multiple of ``lotSz`` (``51121``), at least ``minSz`` (``51020``), at most ``maxMktSz``
(``51202``); ``clOrdId`` 1-32 letters/digits (``51000``) and unique (``51016``); ``posSide`` must be absent or
``net`` in net mode, ``long``/``short`` in long/short mode (``51000``); reduce-only orders with no position in the
other direction are refused (``51169``/``51170``) and fill at most the position. Market orders fill at once at the
mark price (``order_mode = "stay_open"``: they stay ``live``); the answer is OKX's ack (no state).

Knobs: ``inject(kind)`` (venue-matrix faults on the next order request), ``add_canned(method, path, status,
payload)`` (next answer to that route, after the auth check), ``pos_mode`` (``net_mode``/``long_short_mode``),
``acct_lv``, ``set_balance``, ``set_price``, ``foreign_rows`` (raw position rows of other instruments: margin,
futures, options, inverse swaps), ``hedge_rows``. Logs: ``requests_full`` (``method``, ``path``, ``params``:
query and JSON body merged; a batch's first order), ``fills`` (client_order_id, symbol, side, qty in contracts),
``orders`` (clOrdId -> OKX order).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from collections import defaultdict, deque
from datetime import datetime
from decimal import Decimal
from typing import Any

from fakes.http_fake import JsonHandler, LoopbackServer
from urllib.parse import parse_qsl, urlsplit

API_KEY = "okx-test-key"
SECRET = "okx-test-secret"
PASSPHRASE = "okx-test-passphrase"
API = "/api/v5/"
_CLORDID = re.compile(r"^[A-Za-z0-9]{1,32}$")


def _swap(base: str, price: float, ct_val: str, lot: str, min_sz: str, tick: str, *, max_mkt: str = "100000",
          max_lmt: str = "1000000") -> dict[str, Any]:
    return {"instId": f"{base}-USDT-SWAP", "base": base, "price": price, "ct_val": Decimal(ct_val),
            "lot": Decimal(lot), "min_sz": Decimal(min_sz), "tick": tick, "max_mkt": Decimal(max_mkt),
            "max_lmt": Decimal(max_lmt)}


#: linear USDT swaps: BTC 0.01 BTC per contract, ETH 0.1 ETH, SOL 1 SOL (OKX's ctVal)
DEFAULT_MARKETS = [
    _swap("BTC", 95000.0, "0.01", "0.01", "0.01", "0.1"),
    _swap("ETH", 3500.0, "0.1", "0.01", "0.01", "0.01"),
    _swap("SOL", 190.0, "1", "0.01", "0.01", "0.001"),
]


def _now_ms() -> str:
    return str(int(time.time() * 1000))


def _instrument(inst_type: str, inst_id: str, *, base: str, quote: str, settle: str, ct_val: str,
                ct_val_ccy: str, ct_type: str, lot: str, min_sz: str, tick: str, uly: str = "",
                exp: str = "", stk: str = "", opt: str = "", max_mkt: str = "100000",
                max_lmt: str = "1000000") -> dict[str, Any]:
    return {"alias": "", "baseCcy": base if inst_type == "SPOT" else "", "category": "1",
            "ctMult": "1" if ct_val else "",
            "ctType": ct_type, "ctVal": ct_val, "ctValCcy": ct_val_ccy, "expTime": exp, "instFamily": uly,
            "instId": inst_id, "instType": inst_type, "lever": "100" if inst_type != "SPOT" else "10",
            "listTime": "1611916800000", "lotSz": lot, "maxIcebergSz": max_lmt, "maxLmtAmt": "20000000",
            "maxLmtSz": max_lmt, "maxMktAmt": "", "maxMktSz": max_mkt, "maxStopSz": max_mkt,
            "maxTriggerSz": max_lmt, "maxTwapSz": max_lmt, "minSz": min_sz, "optType": opt,
            "quoteCcy": quote if inst_type == "SPOT" else "", "ruleType": "normal", "settleCcy": settle,
            "state": "live", "stk": stk, "tickSz": tick, "uly": uly}


class FakeOkx(LoopbackServer):
    """State + server; a context manager. ``base_url`` is http://127.0.0.1:<port>."""

    exchange_id = "okx"
    env = {"OKX_API_KEY": API_KEY, "OKX_SECRET": SECRET, "OKX_PASSWORD": PASSPHRASE}

    def __init__(self, markets: list[dict[str, Any]] | None = None, *, slow_s: float = 2.0) -> None:
        self.markets = {m["instId"]: dict(m) for m in (markets or DEFAULT_MARKETS)}
        self.symbols = {m["base"]: f"{m['base']}/USDT:USDT" for m in self.markets.values()}
        self.prices = {m["base"]: float(m["price"]) for m in self.markets.values()}
        self.steps = {m["base"]: float(m["lot"] * m["ct_val"]) for m in self.markets.values()}
        self.positions: dict[str, Decimal] = defaultdict(Decimal)  # instId -> signed contracts (net mode)
        self.pos_mode = "net_mode"
        self.acct_lv = "2"
        self.adj_eq: str = ""  # set (USD) for a multi-currency / portfolio margin account
        self.wallet = Decimal("100000")
        self.unrealized_pnl = Decimal("0")
        self.foreign_rows: list[dict[str, Any]] = []
        self.hedge_rows: list[dict[str, Any]] = []
        self.orders: dict[str, dict[str, Any]] = {}
        self.fills: list[dict[str, Any]] = []
        self.faults: deque[str] = deque()
        self.canned: dict[tuple[str, str], deque[tuple[int, Any]]] = defaultdict(deque)
        self.order_mode = "fill"
        self.requests_full: list[dict[str, Any]] = []
        self.slow_s = slow_s
        self.lock = threading.RLock()
        self._next_id = 600000000000000000
        self.serve(self._handler())

    # -- protocol -------------------------------------------------------------
    def position(self, base: str) -> float:
        """Signed position in base units (contracts x ctVal) of ``base``'s USDT swap."""
        with self.lock:
            m = self.markets[f"{base}-USDT-SWAP"]
            return float(self.positions[m["instId"]] * m["ct_val"])

    def inject(self, kind: str) -> None:
        """Queue a venue-matrix fault for the next order request (``reduce_only_refusal``: the next reduce-only
        order)."""
        if kind not in ("timeout_applied", "error_applied", "rate_limited", "insufficient_margin", "statusless",
                        "reduce_only_refusal"):
            raise ValueError(kind)
        with self.lock:
            self.faults.append(kind)

    # -- knobs ----------------------------------------------------------------
    def add_canned(self, method: str, path: str, status: int, payload: Any) -> None:
        """The next request to (method, path) gets this answer (after the auth check), once."""
        with self.lock:
            self.canned[(method, path)].append((status, payload))

    def set_price(self, base: str, price: float) -> None:
        with self.lock:
            self.markets[f"{base}-USDT-SWAP"]["price"] = price
            self.prices[base] = price

    def set_balance(self, wallet: float | str, unrealized_pnl: float | str = 0) -> None:
        with self.lock:
            self.wallet = Decimal(str(wallet))
            self.unrealized_pnl = Decimal(str(unrealized_pnl))

    def order_requests(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r["params"] for r in self.requests_full
                    if r["method"] == "POST" and r["path"] in (API + "trade/order", API + "trade/batch-orders")]

    # -- HTTP -----------------------------------------------------------------
    def _handler(self):
        fake = self

        class Handler(JsonHandler):
            def _send(self, status: int, payload: Any) -> None:
                body = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client timed out and closed the connection
                    pass

            def _dispatch(self, method: str) -> None:
                parts = urlsplit(self.path)
                path = parts.path
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                params: dict[str, Any] = dict(parse_qsl(parts.query, keep_blank_values=True))
                payload: Any = None
                if body:
                    try:
                        payload = json.loads(body)
                    except ValueError:
                        return self._send(400, {"code": "50002", "msg": "Json data format error", "data": []})
                    first = payload[0] if isinstance(payload, list) and payload else payload
                    if isinstance(first, dict):
                        params.update(first)
                with fake.lock:
                    fake.requests_full.append({"method": method, "path": path, "params": dict(params)})
                route = ROUTES.get((method, path))
                if route is None:
                    return self._send(404, {"code": "50115", "msg": "Invalid request method or path", "data": []})
                handler, signed = route
                if signed:
                    problem = _check_auth(self.headers, method, self.path, body)
                    if problem is not None:
                        return self._send(401, {"code": problem[0], "msg": problem[1], "data": []})
                with fake.lock:
                    queue = fake.canned.get((method, path))
                    canned = queue.popleft() if queue else None
                if canned is not None:
                    return self._send(*canned)
                if handler is _place:
                    return self._place(payload)
                status, answer = handler(fake, params)
                return self._send(status, answer)

            def _place(self, payload: Any) -> None:
                orders = payload if isinstance(payload, list) else [payload]
                if len(orders) != 1 or not isinstance(orders[0], dict):
                    return self._send(200, {"code": "51000", "msg": "Parameter error", "data": []})
                request = orders[0]
                with fake.lock:
                    fault = fake.faults[0] if fake.faults else None
                    reduce_only = request.get("reduceOnly") in (True, "true")
                    if fault == "reduce_only_refusal":
                        fault = "reduce_only_refusal" if reduce_only else None
                    if fault is not None:
                        fake.faults.popleft()
                if fault == "rate_limited":
                    return self._send(429, {"code": "50011", "msg": "Too Many Requests", "data": []})
                if fault == "insufficient_margin":
                    return self._send(200, _failed(request, "51008", "Order failed. Insufficient USDT margin in "
                                                                     "account"))
                if fault == "reduce_only_refusal":
                    return self._send(200, _failed(request, "51169", "Order placement failed because you don't "
                                                                     "have any positions in this direction for "
                                                                     "this contract."))
                answer = _place(fake, request)
                if fault == "timeout_applied":
                    time.sleep(fake.slow_s)
                elif fault == "error_applied" and answer.get("code") == "0":
                    return self._send(500, {"code": "50026", "msg": "System error. Try again later.", "data": []})
                elif fault == "statusless" and answer.get("code") == "0":
                    return self._send(200, {"code": "0", "data": [], "msg": ""})
                return self._send(200, answer)

        return Handler


def _check_auth(headers: Any, method: str, raw_path: str, body: str) -> tuple[str, str] | None:
    if headers.get("OK-ACCESS-KEY") != API_KEY:
        return "50111", "Invalid OK-ACCESS-KEY"
    if headers.get("OK-ACCESS-PASSPHRASE") != PASSPHRASE:
        return "50105", "Your OK-ACCESS-PASSPHRASE is incorrect."
    stamp = headers.get("OK-ACCESS-TIMESTAMP") or ""
    try:
        sent = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return "50112", "Invalid OK-ACCESS-TIMESTAMP"
    if abs(time.time() - sent) > 30:
        return "50102", "Timestamp request expired"
    expected = base64.b64encode(hmac.new(SECRET.encode(), f"{stamp}{method}{raw_path}{body}".encode(),
                                         hashlib.sha256).digest()).decode()
    if not hmac.compare_digest(expected, headers.get("OK-ACCESS-SIGN") or ""):
        return "50113", "Invalid Sign"
    return None


def _ok(data: list[Any]) -> tuple[int, Any]:
    return 200, {"code": "0", "data": data, "msg": ""}


def _failed(request: dict[str, Any], code: str, msg: str) -> dict[str, Any]:
    return {"code": "1", "data": [{"clOrdId": str(request.get("clOrdId", "")), "ordId": "", "sCode": code,
                                   "sMsg": msg, "tag": "", "ts": _now_ms()}],
            "inTime": _now_ms() + "000", "msg": "All operations failed", "outTime": _now_ms() + "000"}


# -- public -------------------------------------------------------------------------
def _instruments(fake: FakeOkx, params: dict[str, Any]) -> tuple[int, Any]:
    kind = params.get("instType")
    out: list[dict[str, Any]] = []
    with fake.lock:
        if kind == "SWAP":
            for m in fake.markets.values():
                out.append(_instrument("SWAP", m["instId"], base="", quote="", settle="USDT",
                                       ct_val=str(m["ct_val"]), ct_val_ccy=m["base"], ct_type="linear",
                                       lot=str(m["lot"]), min_sz=str(m["min_sz"]), tick=m["tick"],
                                       uly=f"{m['base']}-USDT", max_mkt=str(m["max_mkt"]), max_lmt=str(m["max_lmt"])))
            # an inverse swap: 100 USD per contract, settled in BTC (never fastopt's)
            out.append(_instrument("SWAP", "BTC-USD-SWAP", base="", quote="", settle="BTC", ct_val="100",
                                   ct_val_ccy="USD", ct_type="inverse", lot="1", min_sz="1", tick="0.1",
                                   uly="BTC-USD"))
        elif kind == "SPOT":
            out.append(_instrument("SPOT", "BTC-USDT", base="BTC", quote="USDT", settle="", ct_val="",
                                   ct_val_ccy="", ct_type="", lot="0.00000001", min_sz="0.00001", tick="0.1"))
        elif kind == "FUTURES":
            out.append(_instrument("FUTURES", "BTC-USDT-261225", base="", quote="", settle="USDT", ct_val="0.01",
                                   ct_val_ccy="BTC", ct_type="linear", lot="0.1", min_sz="0.1", tick="0.1",
                                   uly="BTC-USDT", exp="1798185600000"))
        elif kind == "OPTION":
            if params.get("uly") == "BTC-USD":
                out.append(_instrument("OPTION", "BTC-USD-261225-100000-C", base="", quote="", settle="BTC",
                                       ct_val="1", ct_val_ccy="BTC", ct_type="", lot="1", min_sz="1",
                                       tick="0.0005", uly="BTC-USD", exp="1798185600000", stk="100000", opt="C"))
        else:
            return 200, {"code": "51000", "msg": "Parameter instType error", "data": []}
    return _ok(out)


def _mark_price(fake: FakeOkx, params: dict[str, Any]) -> tuple[int, Any]:
    with fake.lock:
        rows = [{"instType": "SWAP", "instId": m["instId"], "markPx": f"{m['price']}", "ts": _now_ms()}
                for m in fake.markets.values()]
    if params.get("instType", "SWAP") != "SWAP":
        rows = []
    if "instId" in params:
        rows = [r for r in rows if r["instId"] == params["instId"]]
    return _ok(rows)


def _tickers(fake: FakeOkx, params: dict[str, Any]) -> tuple[int, Any]:
    with fake.lock:
        rows = []
        for m in fake.markets.values():
            p = f"{m['price']}"
            rows.append({"instType": "SWAP", "instId": m["instId"], "last": p, "lastSz": "1", "askPx": p,
                         "askSz": "10", "bidPx": p, "bidSz": "10", "open24h": p, "high24h": p, "low24h": p,
                         "volCcy24h": "1000", "vol24h": "100000", "ts": _now_ms(), "sodUtc0": p, "sodUtc8": p})
    return _ok(rows if params.get("instType", "SWAP") == "SWAP" else [])


def _time(fake: FakeOkx, params: dict[str, Any]) -> tuple[int, Any]:
    return _ok([{"ts": _now_ms()}])


# -- account ------------------------------------------------------------------------
def _position_row(fake: FakeOkx, inst_id: str, pos: Decimal, pos_side: str) -> dict[str, Any]:
    m = fake.markets[inst_id]
    price = Decimal(str(m["price"]))
    notional = abs(pos) * m["ct_val"] * price
    return {"adl": "1", "availPos": "", "avgPx": str(price), "baseBal": "", "bePx": str(price), "cTime": _now_ms(),
            "ccy": "USDT", "closeOrderAlgo": [], "deltaBS": "", "deltaPA": "", "fee": "0", "fundingFee": "0",
            "gammaBS": "", "gammaPA": "", "idxPx": str(price), "imr": str(notional / 10), "instId": inst_id,
            "instType": "SWAP", "interest": "", "last": str(price), "lever": "10", "liab": "", "liabCcy": "",
            "liqPenalty": "0", "liqPx": "", "margin": "", "markPx": str(price), "mgnMode": "cross", "mgnRatio": "",
            "mmr": str(notional / 200), "notionalUsd": str(notional), "optVal": "", "pendingCloseOrdLiabVal": "",
            "pnl": "0", "pos": str(pos), "posCcy": "", "posId": str(abs(hash(inst_id)) % 10**18),
            "posSide": pos_side, "quoteBal": "", "realizedPnl": "0", "spotInUseAmt": "", "thetaBS": "",
            "thetaPA": "", "tradeId": "1", "uTime": _now_ms(), "upl": "0", "uplLastPx": "0", "uplRatio": "0",
            "vegaBS": "", "vegaPA": ""}


def _positions(fake: FakeOkx, params: dict[str, Any]) -> tuple[int, Any]:
    with fake.lock:
        rows = []
        if fake.pos_mode == "long_short_mode":
            rows.extend(dict(r) for r in fake.hedge_rows)
        else:
            rows.extend(_position_row(fake, inst, pos, "net") for inst, pos in fake.positions.items() if pos != 0)
        rows.extend(dict(r) for r in fake.foreign_rows)
    if params.get("instType"):
        rows = [r for r in rows if r.get("instType") == params["instType"]]
    if params.get("instId"):
        wanted = set(str(params["instId"]).split(","))
        rows = [r for r in rows if r.get("instId") in wanted]
    return _ok(rows)


def _balance(fake: FakeOkx, params: dict[str, Any]) -> tuple[int, Any]:
    with fake.lock:
        wallet, upl, adj_eq = fake.wallet, fake.unrealized_pnl, fake.adj_eq
    eq = wallet + upl
    return _ok([{"adjEq": adj_eq, "availEq": "", "borrowFroz": "", "details": [{
        "accAvgPx": "", "availBal": str(wallet), "availEq": str(eq), "borrowFroz": "", "cashBal": str(wallet),
        "ccy": "USDT", "clSpotInUseAmt": "", "crossLiab": "", "disEq": str(eq), "eq": str(eq), "eqUsd": str(eq),
        "fixedBal": "0", "frozenBal": "0", "imr": "0", "interest": "", "isoEq": "0", "isoLiab": "", "isoUpl": "0",
        "liab": "", "maxLoan": "", "mgnRatio": "", "mmr": "0", "notionalLever": "0", "ordFrozen": "0",
        "rewardBal": "0", "smtSyncEq": "0", "spotBal": "", "spotInUseAmt": "", "spotIsoBal": "0", "stgyEq": "0",
        "twap": "0", "uTime": _now_ms(), "upl": str(upl), "uplLiab": ""}],
        "imr": "", "isoEq": "0", "mgnRatio": "", "mmr": "", "notionalUsd": "", "ordFroz": "",
        "totalEq": str(eq), "uTime": _now_ms(), "upl": str(upl)}])


def _currencies(fake: FakeOkx, params: dict[str, Any]) -> tuple[int, Any]:
    """``GET /api/v5/asset/currencies`` (signed): ccxt's okx calls it from load_markets whenever keys are set."""
    rows = []
    for ccy, chain in (("USDT", "USDT-TRC20"), ("BTC", "BTC-Bitcoin"), ("ETH", "ETH-ERC20"), ("SOL", "SOL-Solana")):
        rows.append({"burningFeeRate": "", "canDep": True, "canInternal": True, "canWd": True, "ccy": ccy,
                     "chain": chain, "ctAddr": "", "depEstOpenTime": "", "depQuotaFixed": "", "depQuoteDailyLayer2": "",
                     "fee": "1", "logoLink": "", "mainNet": True, "maxFee": "1", "maxFeeForCtAddr": "",
                     "maxWd": "1000000",
                     "minDep": "0.0001", "minDepArrivalConfirm": "1", "minFee": "1", "minFeeForCtAddr": "",
                     "minInternal": "0.0001", "minWd": "1", "minWdUnlockConfirm": "1", "name": ccy, "needTag": False,
                     "usedDepQuotaFixed": "", "usedWdQuota": "0", "wdEstOpenTime": "", "wdQuota": "10000000",
                     "wdTickSz": "8"})
    return _ok(rows)


def _config(fake: FakeOkx, params: dict[str, Any]) -> tuple[int, Any]:
    with fake.lock:
        return _ok([{"acctLv": fake.acct_lv, "acctStpMode": "cancel_maker", "autoLoan": False,
                     "ctIsoMode": "automatic", "enableSpotBorrow": False, "greeksType": "PA", "ip": "",
                     "kycLv": "2", "label": "fastopt", "level": "Lv1", "levelTmp": "", "liquidationGear": "-1",
                     "mainUid": "44705892343619584", "mgnIsoMode": "automatic", "opAuth": "0",
                     "perm": "read_only,trade", "posMode": fake.pos_mode, "roleType": "0",
                     "spotBorrowAutoRepay": False, "spotOffsetType": "", "spotRoleType": "0",
                     "spotTraderInsts": [], "traderInsts": [], "type": "0", "uid": "44705892343619584"}])


# -- orders ------------------------------------------------------------------------
def _order_view(order: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in order.items() if not k.startswith("_")}


def _fill(fake: FakeOkx, order: dict[str, Any], qty: Decimal) -> None:
    """Fill ``qty`` contracts more of ``order`` at the mark price (caller holds the lock); a reduce-only order
    fills at most the position left."""
    inst = order["instId"]
    sign = 1 if order["side"] == "buy" else -1
    held = fake.positions[inst]
    if order["reduceOnly"] == "true":
        qty = min(qty, abs(held)) if held != 0 and (held > 0) != (sign > 0) else Decimal(0)
    price = Decimal(str(fake.markets[inst]["price"]))
    if qty > 0:
        fake.positions[inst] += sign * qty
        filled = order["_filled"] + qty
        cost = Decimal(order["_cost"]) + qty * price
        order.update(_filled=filled, _cost=cost, accFillSz=str(filled), fillSz=str(qty), fillPx=str(price),
                     avgPx=str(cost / filled), fillTime=_now_ms(), tradeId=str(fake._next_id))
        fake.fills.append({"client_order_id": order["clOrdId"], "symbol": inst, "side": order["side"], "qty": qty})
    if order["_filled"] >= order["_sz"]:
        order["state"] = "filled"
    elif qty == 0 and order["reduceOnly"] == "true":
        order["state"] = "canceled"
    else:
        order["state"] = "partially_filled" if order["_filled"] > 0 else "live"
    order["uTime"] = _now_ms()


def _place(fake: FakeOkx, request: dict[str, Any]) -> dict[str, Any]:
    """One order of ``POST /api/v5/trade/order`` (or a one-order batch): OKX's answer body."""
    inst = request.get("instId")
    if inst not in fake.markets:
        return _failed(request, "51001", "Instrument ID does not exist.")
    m = fake.markets[inst]
    cid = str(request.get("clOrdId") or "")
    if cid and not _CLORDID.match(cid):
        return _failed(request, "51000", "Parameter clOrdId error")
    if request.get("tdMode") not in ("cross", "isolated"):
        return _failed(request, "51000", "Parameter tdMode error")
    side = request.get("side")
    if side not in ("buy", "sell"):
        return _failed(request, "51000", "Parameter side error")
    if request.get("ordType") != "market":
        return _failed(request, "51000", "Parameter ordType error")
    try:
        sz = Decimal(str(request.get("sz")))
    except ArithmeticError:
        return _failed(request, "51000", "Parameter sz error")
    if sz <= 0:
        return _failed(request, "51000", "Parameter sz error")
    if sz % m["lot"] != 0:
        return _failed(request, "51121", f"Order quantity must be a multiple of the lot size {m['lot']}.")
    if sz < m["min_sz"]:
        return _failed(request, "51020", "Order amount should be greater than the min available amount.")
    if sz > m["max_mkt"]:
        return _failed(request, "51202", "Market order amount exceeds the maximum amount.")
    pos_side = request.get("posSide", "net")
    with fake.lock:
        if (fake.pos_mode == "net_mode") != (pos_side == "net") or pos_side not in ("net", "long", "short"):
            return _failed(request, "51000", "Parameter posSide error")
        if cid and cid in fake.orders:
            return _failed(request, "51016", "Duplicated clOrdId")
        reduce_only = request.get("reduceOnly") in (True, "true")
        held = fake.positions[inst]
        if reduce_only:
            if held == 0:
                return _failed(request, "51169", "Order placement failed because you don't have any positions in "
                                                 "this direction for this contract.")
            if (held > 0) == (side == "buy"):
                return _failed(request, "51170", "Failed to place order. A reduce-only order can't be the same "
                                                 "direction as your existing positions.")
        fake._next_id += 1
        oid = str(fake._next_id)
        cid = cid or f"auto{oid}"
        order = {"accFillSz": "0", "algoClOrdId": "", "algoId": "", "attachAlgoClOrdId": "", "attachAlgoOrds": [],
                 "avgPx": "", "cTime": _now_ms(), "cancelSource": "", "cancelSourceReason": "",
                 "category": "normal", "ccy": "", "clOrdId": cid, "fee": "0", "feeCcy": "USDT", "fillPx": "",
                 "fillSz": "0", "fillTime": "", "instId": inst, "instType": "SWAP", "isTpLimit": "false",
                 "lever": "10", "linkedAlgoOrd": {"algoId": ""}, "ordId": oid, "ordType": "market", "pnl": "0",
                 "posSide": pos_side, "px": "", "pxType": "", "pxUsd": "", "pxVol": "", "quickMgnType": "",
                 "rebate": "0", "rebateCcy": "USDT", "reduceOnly": "true" if reduce_only else "false",
                 "side": side, "slOrdPx": "", "slTriggerPx": "", "slTriggerPxType": "", "source": "",
                 "state": "live", "stpId": "", "stpMode": "cancel_maker", "sz": str(sz), "tag": "",
                 "tdMode": request.get("tdMode"), "tgtCcy": "", "tpOrdPx": "", "tpTriggerPx": "",
                 "tpTriggerPxType": "", "tradeId": "", "uTime": _now_ms(),
                 "_sz": sz, "_filled": Decimal(0), "_cost": Decimal(0)}
        fake.orders[cid] = order
        if fake.order_mode == "fill":
            _fill(fake, order, sz)
        elif fake.order_mode != "stay_open":
            raise ValueError(f"unknown order_mode {fake.order_mode!r}")
    return {"code": "0", "data": [{"clOrdId": cid, "ordId": oid, "sCode": "0", "sMsg": "Order placed", "tag": "",
                                   "ts": _now_ms()}], "inTime": _now_ms() + "000", "msg": "",
            "outTime": _now_ms() + "000"}


def _find(fake: FakeOkx, params: dict[str, Any]) -> dict[str, Any] | None:
    cid = params.get("clOrdId")
    order = fake.orders.get(str(cid)) if cid else None
    if order is None and params.get("ordId"):
        order = next((o for o in fake.orders.values() if o["ordId"] == str(params["ordId"])), None)
    if order is None or order["instId"] != params.get("instId"):
        return None
    return order


def _get_order(fake: FakeOkx, params: dict[str, Any]) -> tuple[int, Any]:
    if not params.get("clOrdId") and not params.get("ordId"):
        return 200, {"code": "51003", "msg": "Either client order ID or order ID is required.", "data": []}
    with fake.lock:
        order = _find(fake, params)
        if order is None:
            return 200, {"code": "51603", "msg": "Order does not exist", "data": []}
        return _ok([_order_view(order)])


def _cancel(fake: FakeOkx, params: dict[str, Any]) -> tuple[int, Any]:
    with fake.lock:
        order = _find(fake, params)
        if order is None or order["state"] not in ("live", "partially_filled"):
            return 200, _failed(params, "51400", "Order cancellation failed as the order has been filled, "
                                                 "canceled or does not exist.")
        order["state"] = "canceled"
        order["uTime"] = _now_ms()
        return _ok([{"clOrdId": order["clOrdId"], "ordId": order["ordId"], "sCode": "0", "sMsg": "",
                     "ts": _now_ms()}])


def _pending(fake: FakeOkx, params: dict[str, Any]) -> tuple[int, Any]:
    with fake.lock:
        rows = [_order_view(o) for o in fake.orders.values() if o["state"] in ("live", "partially_filled")
                and params.get("instId") in (None, o["instId"]) and params.get("instType") in (None, "SWAP")]
    return _ok(rows[:100])


# (method, path) -> (handler, signed)
ROUTES = {
    ("GET", API + "public/instruments"): (_instruments, False),
    ("GET", API + "public/mark-price"): (_mark_price, False),
    ("GET", API + "market/tickers"): (_tickers, False),
    ("GET", API + "public/time"): (_time, False),
    ("GET", API + "account/positions"): (_positions, True),
    ("GET", API + "account/balance"): (_balance, True),
    ("GET", API + "account/config"): (_config, True),
    ("GET", API + "asset/currencies"): (_currencies, True),
    ("POST", API + "trade/order"): (_place, True),
    ("POST", API + "trade/batch-orders"): (_place, True),
    ("GET", API + "trade/order"): (_get_order, True),
    ("POST", API + "trade/cancel-order"): (_cancel, True),
    ("GET", API + "trade/orders-pending"): (_pending, True),
}
