"""A fake Hyperliquid API (``POST /info``, ``POST /exchange``) for the reconciler's venue tests, driven by the
real ccxt ``hyperliquid`` class (4.5.90).

Threaded ``http.server`` on 127.0.0.1 (port 0), quiet, daemon threads. Serves only what ccxt's
``hyperliquid`` sends for the reconciler, with Hyperliquid's answer shapes:

- ``POST /info`` (public, JSON ``{"type": ...}``): ``metaAndAssetCtxs`` (perp universe + mark/mid/oracle
  prices), ``spotMeta`` (ccxt's ``fetch_currencies``, run by ``load_markets``), ``spotMetaAndAssetCtxs``
  and ``perpDexs`` (only plain ccxt's default market types ask for them: no spot market, no HIP-3 dex here),
  ``clearinghouseState`` (positions, ``marginSummary``), ``spotClearinghouseState``, ``userAbstraction``
  (``"default"``), ``orderStatus`` (by oid or cloid; ``{"status": "unknownOid"}`` when none; HTTP 422
  "Failed to deserialize the JSON body into the target type" for an oid that is neither an integer nor
  ``0x`` + 32 hex, as Hyperliquid answers), ``frontendOpenOrders`` / ``openOrders``.
- ``POST /exchange`` (signed actions ``{"action", "nonce", "signature": {"r", "s", "v"}, "vaultAddress"?}``):
  L1 actions (``order``, ``cancel``, ``cancelByCloid``, ``setReferrer``) are verified as Hyperliquid does:
  ``keccak(msgpack(action) + nonce (8 bytes) + vault flag)`` as the ``connectionId`` of an EIP-712
  ``Agent {source: "a", connectionId}`` message (domain ``Exchange``, version 1, chainId 1337, zero
  verifying contract); the user-signed ``approveBuilderFee`` as ``HyperliquidTransaction:ApproveBuilderFee``
  (domain ``HyperliquidSignTransaction``, chainId 421614). The signer is recovered from ``(r, s, v)``
  (ccxt's bundled ``ethabi``/``keccak`` and ``coincurve``); a signer that is not :attr:`wallet` (or an API
  wallet in :attr:`agents`) gets ``{"status": "err", "response": "User or API Wallet 0x... does not
  exist."}`` as on Hyperliquid (a wrong key and a bad signature both recover another address). A nonce
  used twice is refused ("Invalid nonce: duplicate nonce").

Orders: ``orders`` (list, ``grouping`` ``na``) of ``{a, b, p, s, r, t, c?}``; limit IOC (ccxt's market
orders) fill at once at the mark price when ``p`` crosses it, else are refused with "Order could not
immediately match against any resting orders." (``order_mode = "rest"``: GTC/IOC orders rest instead,
for cancel tests). Filters, each answered in the order's ``statuses`` entry as Hyperliquid does: size a
multiple of ``10**-szDecimals`` ("Order has invalid size."), non-zero ("Order has zero size."), price of
at most 5 significant digits and ``6 - szDecimals`` decimals ("Order has invalid price."), within 80 % of
the mark, value >= $10 unless reduce-only ("Order must have minimum value of $10."), at most
:attr:`max_size` coins per order (the fake's own cap, "Order has invalid size."), margin
(``|positions| x mark / leverage`` <= account value, "Insufficient margin to place order."),
reduce-only never increases the position ("Reduce only order would increase position.", a larger one
is cut to the position), a cloid used before is refused ("Duplicate cloid." (message assumed)). Amounts
are coins (``contractSize`` 1: contracts = base units).

Knobs: ``inject(kind)`` (``tests/fakes/venue_matrix.py`` FAULTS, on the next ``order`` action),
``add_canned(kind, status, payload)`` (the next ``/info`` of that ``type`` or ``/exchange`` of that
action type gets this raw answer, after the signature check), ``set_price``, ``set_balance``,
``slow_s``. Logs: ``requests_full`` (``{"method", "path", "params"}``, params = the JSON body),
``fills`` (``client_order_id`` (cloid), ``symbol``, ``side``, ``qty`` in coins), ``actions`` (action types
of ``/exchange`` in order).
"""
from __future__ import annotations

import json
import re
import threading
import time
from collections import defaultdict, deque
from decimal import Decimal
from typing import Any

from fakes.http_fake import JsonHandler, LoopbackServer

from ccxt.base.exchange import Exchange
from ccxt.static_dependencies import keccak

#: a throwaway key made for these tests (never a real account's)
PRIVATE_KEY = "0x" + "4b" * 32
WALLET = Exchange.eth_get_address_from_private_key(PRIVATE_KEY).lower()
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
_CLOID = re.compile(r"^0x[0-9a-f]{32}$")
DESERIALIZE = "Failed to deserialize the JSON body into the target type"

#: (coin, szDecimals, price, maxLeverage): asset index = position in this list
DEFAULT_MARKETS = [("BTC", 5, 95000.0, 40), ("ETH", 4, 3500.0, 25), ("SOL", 2, 190.0, 20)]

_FAULTS = ("timeout_applied", "error_applied", "rate_limited", "insufficient_margin", "statusless",
           "reduce_only_refusal")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _fmt(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text if "." in text else text + ".0"


def recover_signer(digest: bytes, signature: dict[str, Any]) -> str:
    """The address (lowercase ``0x`` hex) that signed the 32-byte ``digest`` with ``{r, s, v}``."""
    import coincurve

    r = bytes.fromhex(str(signature["r"])[2:].rjust(64, "0"))
    s = bytes.fromhex(str(signature["s"])[2:].rjust(64, "0"))
    v = int(signature["v"])
    v = v - 27 if v >= 27 else v
    public = coincurve.PublicKey.from_signature_and_message(r + s + bytes([v]), digest, hasher=None)
    return "0x" + keccak.SHA3(public.format(compressed=False)[1:])[-20:].hex()


def l1_digest(action: dict[str, Any], nonce: int, vault: str | None, *, mainnet: bool = True) -> bytes:
    """EIP-712 digest of an L1 action as Hyperliquid computes it (phantom agent, chainId 1337)."""
    data = Exchange.packb(action) + int(nonce).to_bytes(8, "big")
    data += b"\x00" if vault is None else b"\x01" + bytes.fromhex(vault.removeprefix("0x"))
    connection_id = bytes(keccak.SHA3(data))
    domain = {"chainId": 1337, "name": "Exchange", "verifyingContract": ZERO_ADDRESS, "version": "1"}
    types = {"Agent": [{"name": "source", "type": "string"}, {"name": "connectionId", "type": "bytes32"}]}
    message = {"source": "a" if mainnet else "b", "connectionId": connection_id}
    return bytes(keccak.SHA3(Exchange.eth_encode_structured_data(domain, types, message)))


def approve_builder_fee_digest(action: dict[str, Any]) -> bytes:
    domain = {"chainId": int(action["signatureChainId"], 16), "name": "HyperliquidSignTransaction",
              "verifyingContract": ZERO_ADDRESS, "version": "1"}
    types = {"HyperliquidTransaction:ApproveBuilderFee": [
        {"name": "hyperliquidChain", "type": "string"}, {"name": "maxFeeRate", "type": "string"},
        {"name": "builder", "type": "address"}, {"name": "nonce", "type": "uint64"}]}
    message = {k: action[k] for k in ("hyperliquidChain", "maxFeeRate", "builder", "nonce")}
    return bytes(keccak.SHA3(Exchange.eth_encode_structured_data(domain, types, message)))


class FakeHyperliquid(LoopbackServer):
    """State + server; a context manager. ``base_url`` is http://127.0.0.1:<port>."""

    exchange_id = "hyperliquid"

    def __init__(self, markets: list[tuple[str, int, float, int]] | None = None, *, slow_s: float = 2.0) -> None:
        self.universe = [{"name": c, "szDecimals": d, "price": Decimal(str(p)), "maxLeverage": lev}
                         for c, d, p, lev in (markets or DEFAULT_MARKETS)]
        self.by_coin = {m["name"]: i for i, m in enumerate(self.universe)}
        self.wallet = WALLET
        self.agents: set[str] = set()
        self.env = {"HYPERLIQUID_WALLET_ADDRESS": WALLET, "HYPERLIQUID_PRIVATE_KEY": PRIVATE_KEY}
        self.symbols = {m["name"]: f"{m['name']}/USDC:USDC" for m in self.universe}
        self.prices = {m["name"]: float(m["price"]) for m in self.universe}
        self.steps = {m["name"]: float(Decimal(1).scaleb(-m["szDecimals"])) for m in self.universe}
        self.leverage = Decimal(10)
        self.max_size = Decimal("1000000")
        self.account_value = Decimal("100000")
        self.unrealized_pnl = Decimal("0")
        self.positions: dict[str, Decimal] = defaultdict(Decimal)
        self.entry: dict[str, Decimal] = {}
        self.orders: dict[int, dict[str, Any]] = {}
        self.by_cloid: dict[str, int] = {}
        self.fills: list[dict[str, Any]] = []
        self.requests_full: list[dict[str, Any]] = []
        self.actions: list[str] = []
        self.nonces: set[int] = set()
        self.faults: deque[str] = deque()
        self.canned: dict[str, deque[tuple[int, Any]]] = defaultdict(deque)
        self.order_mode = "fill"
        self.slow_s = slow_s
        self.lock = threading.RLock()
        self._next_oid = 9_000_000_000
        self.serve(self._handler())

    # -- protocol -------------------------------------------------------------
    def position(self, base: str) -> float:
        """Signed position of ``base`` in coins (= base units)."""
        with self.lock:
            return float(self.positions[base])

    def inject(self, kind: str) -> None:
        """Queue a venue-matrix fault on the next ``order`` action (see the module docstring)."""
        if kind not in _FAULTS:
            raise ValueError(f"unknown fault {kind!r}")
        with self.lock:
            self.faults.append(kind)

    def add_canned(self, kind: str, status: int, payload: Any) -> None:
        """The next ``/info`` request of type ``kind`` (or ``/exchange`` action of type ``kind``) is answered
        ``status`` + JSON ``payload`` (consumed once)."""
        with self.lock:
            self.canned[kind].append((status, payload))

    def set_price(self, base: str, price: float, *, mid: float | None = None, oracle: float | None = None) -> None:
        """Mark price of ``base`` (USDC; fills happen there), and its mid / oracle price (default: the mark)."""
        with self.lock:
            m = self.universe[self.by_coin[base]]
            m["price"] = Decimal(str(price))
            m["mid"] = None if mid is None else Decimal(str(mid))
            m["oracle"] = None if oracle is None else Decimal(str(oracle))
            self.prices[base] = float(price)

    def set_balance(self, account_value: float | str, unrealized_pnl: float | str = 0) -> None:
        """USDC account value (wallet + unrealized PnL) and its unrealized PnL part."""
        with self.lock:
            self.account_value = Decimal(str(account_value))
            self.unrealized_pnl = Decimal(str(unrealized_pnl))

    def exchange_requests(self, action_type: str | None = None) -> list[dict[str, Any]]:
        """Bodies of ``POST /exchange`` requests (of ``action_type`` when given), oldest first."""
        with self.lock:
            return [r["params"] for r in self.requests_full if r["path"] == "/exchange"
                    and (action_type is None or (r["params"].get("action") or {}).get("type") == action_type)]

    # -- http -------------------------------------------------------------------
    def _handler(self):
        fake = self

        class Handler(JsonHandler):
            def _send(self, status: int, payload: Any, *, raw: bytes | None = None) -> None:
                body = raw if raw is not None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if raw is None else "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._send(405, None, raw=b"Method Not Allowed")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                text = self.rfile.read(length).decode() if length else ""
                try:
                    body = json.loads(text)
                except ValueError:
                    body = None
                with fake.lock:
                    fake.requests_full.append({"method": "POST", "path": self.path,
                                               "params": body if isinstance(body, dict) else {"_raw": text}})
                if not isinstance(body, dict):
                    return self._send(422, None, raw=DESERIALIZE.encode())
                if self.path == "/info":
                    return self._send(*fake._info(body))
                if self.path == "/exchange":
                    return fake._exchange(body, self._send)
                return self._send(404, None, raw=b"Not Found")

        return Handler

    # -- /info --------------------------------------------------------------------
    def _info(self, body: dict[str, Any]) -> tuple[int, Any]:
        kind = body.get("type")
        with self.lock:
            queue = self.canned.get(str(kind))
            if queue:
                return queue.popleft()
            if kind == "metaAndAssetCtxs":
                if body.get("dex"):
                    return 422, DESERIALIZE
                return 200, self._meta()
            if kind == "spotMeta":
                return 200, {"tokens": [_USDC_TOKEN], "universe": []}
            if kind == "spotMetaAndAssetCtxs":
                return 200, [{"tokens": [_USDC_TOKEN], "universe": []}, []]
            if kind == "perpDexs":
                return 200, [None]
            if kind in ("clearinghouseState", "spotClearinghouseState", "userAbstraction", "orderStatus",
                        "frontendOpenOrders", "openOrders"):
                user = str(body.get("user") or "")
                if not re.fullmatch(r"0x[0-9a-fA-F]{40}", user):
                    return 422, DESERIALIZE
                if kind == "clearinghouseState":
                    return 200, self._clearinghouse(user.lower())
                if kind == "spotClearinghouseState":
                    total = self.account_value if user.lower() == self.wallet else Decimal(0)
                    return 200, {"balances": [{"coin": "USDC", "token": 0, "hold": "0.0", "total": _fmt(total),
                                               "entryNtl": "0.0"}]}
                if kind == "userAbstraction":
                    return 200, "default"
                if kind == "orderStatus":
                    return self._order_status(user.lower(), body.get("oid"))
                return 200, [self._open_view(o) for o in self.orders.values()
                             if o["status"] == "open" and user.lower() == self.wallet]
            return 422, DESERIALIZE

    def _meta(self) -> list[Any]:
        universe, ctxs = [], []
        for m in self.universe:
            universe.append({"szDecimals": m["szDecimals"], "name": m["name"], "maxLeverage": m["maxLeverage"],
                             "marginTableId": m["maxLeverage"]})
            px = _fmt(m["price"])
            mid = _fmt(m.get("mid") or m["price"])
            ctxs.append({"funding": "0.0000125", "openInterest": "1000.0", "prevDayPx": px, "dayNtlVlm": "1000000.0",
                         "premium": "0.0", "oraclePx": _fmt(m.get("oracle") or m["price"]), "markPx": px,
                         "midPx": mid, "impactPxs": [mid, mid], "dayBaseVlm": "100.0"})
        return [{"universe": universe, "marginTables": []}, ctxs]

    def _clearinghouse(self, user: str) -> dict[str, Any]:
        rows = []
        ntl = Decimal(0)
        if user == self.wallet:
            for coin, szi in self.positions.items():
                if szi == 0:
                    continue
                px = self.universe[self.by_coin[coin]]["price"]
                value = abs(szi) * px
                ntl += value
                rows.append({"type": "oneWay", "position": {
                    "coin": coin, "szi": _fmt(szi), "leverage": {"type": "cross", "value": int(self.leverage)},
                    "entryPx": _fmt(self.entry.get(coin, px)), "positionValue": _fmt(value),
                    "unrealizedPnl": "0.0", "returnOnEquity": "0.0", "liquidationPx": None,
                    "marginUsed": _fmt(value / self.leverage), "maxLeverage": self.universe[self.by_coin[coin]]
                    ["maxLeverage"], "cumFunding": {"allTime": "0.0", "sinceOpen": "0.0", "sinceChange": "0.0"}}})
        value = self.account_value if user == self.wallet else Decimal(0)
        summary = {"accountValue": _fmt(value), "totalNtlPos": _fmt(ntl), "totalRawUsd": _fmt(value),
                   "totalMarginUsed": _fmt(ntl / self.leverage)}
        return {"marginSummary": summary, "crossMarginSummary": dict(summary), "crossMaintenanceMarginUsed": "0.0",
                "withdrawable": _fmt(value), "assetPositions": rows, "time": _now_ms()}

    def _order_status(self, user: str, oid: Any) -> tuple[int, Any]:
        if isinstance(oid, int) and not isinstance(oid, bool):
            order = self.orders.get(oid)
        elif isinstance(oid, str) and _CLOID.match(oid):
            found = self.by_cloid.get(oid)
            order = None if found is None else self.orders.get(found)
        else:
            return 422, DESERIALIZE
        if order is None or user != self.wallet:
            return 200, {"status": "unknownOid"}
        return 200, {"status": "order", "order": {"order": self._detail_view(order), "status": order["status"],
                                                  "statusTimestamp": order["statusTimestamp"]}}

    def _open_view(self, o: dict[str, Any]) -> dict[str, Any]:
        return {"coin": o["coin"], "side": o["side"], "limitPx": o["limitPx"], "sz": _fmt(o["sz"]), "oid": o["oid"],
                "timestamp": o["timestamp"], "origSz": _fmt(o["origSz"]), "cloid": o["cloid"],
                "reduceOnly": o["reduceOnly"], "orderType": "Limit", "tif": o["tif"], "isTrigger": False,
                "triggerPx": "0.0", "triggerCondition": "N/A", "isPositionTpsl": False, "children": []}

    def _detail_view(self, o: dict[str, Any]) -> dict[str, Any]:
        return self._open_view(o)

    # -- /exchange ------------------------------------------------------------------
    def _exchange(self, body: dict[str, Any], send) -> None:
        action, nonce, signature = body.get("action"), body.get("nonce"), body.get("signature")
        if not isinstance(action, dict) or not isinstance(nonce, int) or not isinstance(signature, dict) \
                or not {"r", "s", "v"} <= set(signature):
            return send(422, None, raw=DESERIALIZE.encode())
        kind = str(action.get("type"))
        with self.lock:
            self.actions.append(kind)
        try:
            if kind == "approveBuilderFee":
                digest = approve_builder_fee_digest(action)
            else:
                digest = l1_digest(action, nonce, body.get("vaultAddress"))
            signer = recover_signer(digest, signature)
        except Exception:  # malformed fields: Hyperliquid cannot deserialize them
            return send(422, None, raw=DESERIALIZE.encode())
        with self.lock:
            if signer != self.wallet and signer not in self.agents:
                return send(200, {"status": "err", "response": f"User or API Wallet {signer} does not exist."})
            if nonce in self.nonces:
                return send(200, {"status": "err", "response": f"Invalid nonce: duplicate nonce {nonce}"})
            self.nonces.add(nonce)
            queue = self.canned.get(kind)
            if queue:
                return send(*queue.popleft())
            fault = self.faults.popleft() if kind == "order" and self.faults else None
        if kind in ("approveBuilderFee", "setReferrer"):
            return send(200, {"status": "ok", "response": {"type": "default"}})
        if kind in ("cancel", "cancelByCloid"):
            return send(200, self._cancel(kind, action))
        if kind != "order":
            return send(422, None, raw=DESERIALIZE.encode())
        if fault == "rate_limited":
            return send(429, None, raw=b"null")
        orders = action.get("orders")
        if not isinstance(orders, list) or any(not isinstance(o, dict) for o in orders):
            return send(422, None, raw=DESERIALIZE.encode())
        if any("c" in o and not (isinstance(o["c"], str) and _CLOID.match(o["c"])) for o in orders):
            return send(422, None, raw=DESERIALIZE.encode())
        if fault == "insufficient_margin":
            asset = orders[0].get("a")
            return send(200, _statuses([{"error": f"Insufficient margin to place order. asset={asset}"}]))
        statuses = []
        for o in orders:
            if fault == "reduce_only_refusal" and o.get("r") is True:
                statuses.append({"error": f"Reduce only order would increase position. asset={o.get('a')}"})
                fault = None
                continue
            statuses.append(self._place(o))
        if fault == "reduce_only_refusal":  # not consumed: wait for the next reduce-only order
            with self.lock:
                self.faults.appendleft(fault)
        if fault == "timeout_applied":
            time.sleep(self.slow_s)
        elif fault == "error_applied":
            return send(500, None, raw=b"Internal Server Error")
        elif fault == "statusless":
            statuses = ["waitingForFill" for _ in statuses]
        return send(200, _statuses(statuses))

    def _place(self, o: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            a = o.get("a")
            if not isinstance(a, int) or not 0 <= a < len(self.universe):
                return {"error": f"Invalid asset. asset={a}"}
            m = self.universe[a]
            coin, dec, mark = m["name"], m["szDecimals"], m["price"]
            try:
                sz, px = Decimal(str(o["s"])), Decimal(str(o["p"]))
            except Exception:
                return {"error": f"Order has invalid size. asset={a}"}
            buy, reduce_only = o.get("b") is True, o.get("r") is True
            tif = ((o.get("t") or {}).get("limit") or {}).get("tif")
            if tif not in ("Ioc", "Gtc", "Alo"):
                return {"error": f"Invalid order type. asset={a}"}
            if sz == 0:
                return {"error": f"Order has zero size. asset={a}"}
            if sz < 0 or sz != sz.quantize(Decimal(1).scaleb(-dec)) or sz > self.max_size:
                return {"error": f"Order has invalid size. asset={a}"}
            digits = px.normalize().as_tuple()
            if px <= 0 or (len(digits.digits) > 5 and px != px.to_integral_value()) or -digits.exponent > 6 - dec:
                return {"error": f"Order has invalid price. asset={a}"}
            if abs(px - mark) > mark * Decimal("0.8"):
                return {"error": f"Order price cannot be more than 80% away from the reference price. asset={a}"}
            cloid = o.get("c")
            if cloid is not None and cloid in self.by_cloid:
                return {"error": f"Duplicate cloid. asset={a}"}  # message assumed (not in ccxt's table)
            held = self.positions[coin]
            sign = 1 if buy else -1
            if reduce_only:
                if held == 0 or (held > 0) == buy:
                    return {"error": f"Reduce only order would increase position. asset={a}"}
                sz = min(sz, abs(held))
            elif sz * mark < 10:
                return {"error": f"Order must have minimum value of $10. asset={a}"}
            after = dict(self.positions)
            after[coin] = held + sign * sz
            margin = sum(abs(q) * self.universe[self.by_coin[c]]["price"] for c, q in after.items()) / self.leverage
            if not reduce_only and margin > self.account_value:
                return {"error": f"Insufficient margin to place order. asset={a}"}
            crosses = px >= mark if buy else px <= mark
            if tif == "Ioc" and not crosses and self.order_mode != "rest":
                return {"error": "Order could not immediately match against any resting orders. "
                                 f"asset={a}"}
            self._next_oid += 1
            now = _now_ms()
            order = {"oid": self._next_oid, "coin": coin, "side": "B" if buy else "A", "limitPx": _fmt(px),
                     "sz": sz, "origSz": sz, "cloid": cloid, "reduceOnly": reduce_only, "tif": tif,
                     "timestamp": now, "statusTimestamp": now, "status": "open", "asset": a}
            self.orders[order["oid"]] = order
            if cloid is not None:
                self.by_cloid[cloid] = order["oid"]
            if self.order_mode == "rest" or not crosses:
                return {"resting": {"oid": order["oid"], **({"cloid": cloid} if cloid else {})}}
            self._fill(order, mark)
            return {"filled": {"totalSz": _fmt(order["origSz"] - order["sz"]), "avgPx": _fmt(mark),
                               "oid": order["oid"], **({"cloid": cloid} if cloid else {})}}

    def _fill(self, order: dict[str, Any], price: Decimal) -> None:
        coin, qty = order["coin"], order["sz"]
        sign = 1 if order["side"] == "B" else -1
        self.positions[coin] += sign * qty
        self.entry[coin] = price
        order["sz"] = Decimal(0)
        order["status"] = "filled"
        order["statusTimestamp"] = _now_ms()
        self.fills.append({"client_order_id": order["cloid"], "symbol": f"{coin}/USDC:USDC",
                           "side": "buy" if sign > 0 else "sell", "qty": qty})

    def fill_open(self) -> int:
        """Fill every resting order at the mark price; returns how many."""
        with self.lock:
            open_orders = [o for o in self.orders.values() if o["status"] == "open"]
            for o in open_orders:
                self._fill(o, self.universe[o["asset"]]["price"])
            return len(open_orders)

    def _cancel(self, kind: str, action: dict[str, Any]) -> dict[str, Any]:
        statuses: list[Any] = []
        with self.lock:
            for c in action.get("cancels") or []:
                asset = c.get("asset", c.get("a"))
                if kind == "cancelByCloid":
                    oid = self.by_cloid.get(str(c.get("cloid")))
                else:
                    oid = c.get("o")
                order = self.orders.get(oid) if oid is not None else None
                if order is None or order["status"] != "open" or order["asset"] != asset:
                    statuses.append({"error": f"Order was never placed, already canceled, or filled. asset={asset}"})
                    continue
                order["status"] = "canceled"
                order["statusTimestamp"] = _now_ms()
                statuses.append("success")
        return {"status": "ok", "response": {"type": "cancel", "data": {"statuses": statuses}}}


_USDC_TOKEN = {"name": "USDC", "szDecimals": 8, "weiDecimals": 8, "index": 0,
               "tokenId": "0x6d1e7cde53ba9467b783cb7c530ce054", "isCanonical": True, "evmContract": None,
               "fullName": None}


def _statuses(statuses: list[Any]) -> dict[str, Any]:
    return {"status": "ok", "response": {"type": "order", "data": {"statuses": statuses}}}
