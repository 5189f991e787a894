"""Exchange error taxonomy of the reconciler, mapped from ccxt exceptions.

The classes say what the caller may do next, not which exchange said what:

- ``TemporaryError``: the request did not (or may not) reach the book; a *read*
  may be retried with backoff (network error, timeout, 5xx, maintenance).
- ``DDosProtection``: rate limited (HTTP 429/418); back off longer.
- ``OrderOutcomeUnknown``: an order was sent and we do not know whether the
  exchange applied it. Never retried blindly: look it up by client order id.
- ``InvalidOrder`` / ``InsufficientFunds``: the exchange definitively refused
  the order; it was not applied.
- ``OrderNotFound``: a lookup found no such order.
- ``AuthenticationError``: keys missing, wrong or without permission (permanent).
- ``VenueConfigError``: the account is set up in a way fastopt cannot trade
  safely (Binance hedge mode, ...): permanent, never retried; the message names
  the venue, the problem and the fix.
- ``VenueError``: anything else the exchange reported.

All derive from :class:`fastopt.errors.FastoptError` (exit code 1).

Every message made here goes through :func:`scrub` first: ccxt puts the full
request URL (with a signed query string: ``timestamp``, ``signature``) into
network-error messages, and such a message ends up in logs, the journal and
alerts.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

from fastopt.errors import FastoptError


class VenueError(FastoptError):
    """An exchange (or the paper exchange) reported a failure."""


class TemporaryError(VenueError):
    """Transient failure (network, timeout, 5xx, maintenance): reads may retry."""


class DDosProtection(TemporaryError):
    """Rate limited or banned for a while (HTTP 429/418): back off longer."""


class OrderOutcomeUnknown(VenueError):
    """An order was sent but its outcome is unknown: look it up, never resend blindly."""


class InvalidOrder(VenueError):
    """The exchange refused the order (bad amount, reduce-only violation, ...): not applied."""


class InsufficientFunds(InvalidOrder):
    """The exchange refused the order for lack of margin/balance: not applied."""


class OrderNotFound(VenueError):
    """A lookup by id or client order id found no such order."""


class AuthenticationError(VenueError):
    """API keys missing, invalid, expired or without the needed permission."""


class VenueConfigError(VenueError):
    """The venue or account is set up in a way fastopt cannot trade safely (hedge mode, an unsupported
    account mode): permanent, not retried; fix the account setting named in the message."""


# -- scrubbing ------------------------------------------------------------------
#: env var suffixes whose values are secrets (``<ID>_API_KEY`` etc., see venue_ccxt.credentials_from_env)
SECRET_ENV_SUFFIXES = ("_API_KEY", "_SECRET", "_PASSWORD")
#: shorter secret values are not replaced literally (they would mangle ordinary words)
_MIN_LITERAL = 4
_URL_QUERY = re.compile(r"((?:https?|wss?)://[^\s?#'\"<>]+)\?[^\s'\"<>]*", re.IGNORECASE)
_SIGNATURE = re.compile(r"(signature=)[^&\s'\"<>]+", re.IGNORECASE)
_KEYED = re.compile(
    r"((?:X-MBX-APIKEY|api[-_]?key|apiSecret|secret|password|passphrase|OK-ACCESS-KEY|ACCESS-KEY|X-BAPI-API-KEY)"
    r"['\"]?\s*[:=]\s*['\"]?)[^'\"\s,;&}]+",
    re.IGNORECASE,
)


def _literal_secrets(env: Mapping[str, str] | None, extra: Iterable[str | None]) -> list[str]:
    env = os.environ if env is None else env
    values: set[str] = set()
    for name, value in env.items():
        if name.upper().endswith(SECRET_ENV_SUFFIXES) and isinstance(value, str):
            values.update({value, value.strip()})
    values.update(v for v in extra if isinstance(v, str))
    values |= {v.strip() for v in values}
    return sorted((v for v in values if len(v) >= _MIN_LITERAL), key=len, reverse=True)


def scrub(text: str, *, secrets: Iterable[str | None] = (), env: Mapping[str, str] | None = None) -> str:
    """``text`` without secrets.

    Removes: the query string of every URL (scheme, host and path kept,
    ``?...`` becomes ``?<redacted>``: signed requests carry ``timestamp`` and
    ``signature`` there), any ``signature=...`` (also in request bodies), the
    value after ``X-MBX-APIKEY`` / ``apiKey`` / ``secret`` / ``password`` (as
    ``key: value``, ``key=value`` or quoted), and the literal values of
    ``<ID>_API_KEY`` / ``<ID>_SECRET`` / ``<ID>_PASSWORD`` environment variables
    (``env``, default ``os.environ``) and of ``secrets`` (values shorter than 4
    characters are not replaced literally).
    """
    out = str(text)
    out = _URL_QUERY.sub(r"\1?<redacted>", out)
    out = _SIGNATURE.sub(r"\1<redacted>", out)
    out = _KEYED.sub(r"\1<redacted>", out)
    for value in _literal_secrets(env, secrets):
        out = out.replace(value, "<redacted>")
    return out


# -- ccxt -> taxonomy -------------------------------------------------------------
_BINANCE_CODE = re.compile(r'"code"\s*:\s*(-?\d+)')

#: Binance USD-M futures codes that are definitive refusals, whatever ccxt's tables say (checked against
#: ccxt 4.5.90; ccxt picks the table by URL, and its generic table maps some of these to classes that are
#: not refusals, which would turn a refused order into an "outcome unknown" and block trading):
#:
#: - -4061 position side does not match (hedge mode): ccxt generic table -> OperationRejected (not a refusal)
#: - -2027 max position at current leverage, -4131 PERCENT_PRICE counterparty price: OperationRejected
#: - -2028 leverage too small / insufficient margin balance: OperationRejected -> InsufficientFunds
#: - -2019 margin is insufficient: portfolio-margin table -> OperationFailed (a *temporary* error class)
#: - -4005 quantity greater than max quantity: spot table -> RateLimitExceeded (the code means something
#:   else on spot); generic table -> BadRequest
#: - -2022 reduce-only rejected, -4164 notional under the minimum: correct in the linear table, pinned here
#:   so they stay refusals whichever table a rebased URL selects.
BINANCE_FUTURES_REFUSALS: dict[str, tuple[type[InvalidOrder], str]] = {
    "-4061": (InvalidOrder, "the order's position side does not match the account: the account is in hedge "
                            "mode; switch to one-way mode in the Binance futures settings"),
    "-2019": (InsufficientFunds, "margin is insufficient"),
    "-2028": (InsufficientFunds, "leverage too small for the margin balance"),
    "-2027": (InvalidOrder, "position would exceed the maximum allowed at the current leverage"),
    "-4005": (InvalidOrder, "quantity greater than the market's max quantity"),
    "-2022": (InvalidOrder, "reduce-only order rejected (it would not reduce the position)"),
    "-4164": (InvalidOrder, "order notional under the market minimum"),
    "-4131": (InvalidOrder, "counterparty's best price outside the PERCENT_PRICE filter"),
}
#: ccxt ids whose error codes are Binance futures codes
BINANCE_FUTURES_IDS = frozenset({"binanceusdm", "binancecoinm"})


def _binance_futures_refusal(exc: BaseException, message: str) -> VenueError | None:
    """A refusal for a Binance futures error code in ``exc``'s message (``{"code":-4061,...}``), else None."""
    import ccxt

    if not isinstance(exc, ccxt.BaseError):
        return None
    # ccxt raises these with the answer's body ("binanceusdm {"code":-4061,...}"); a timeout or a
    # connection failure carries no body, so no code, and is never turned into a refusal
    match = _BINANCE_CODE.search(str(exc))
    if match is None or match.group(1) not in BINANCE_FUTURES_REFUSALS:
        return None
    cls, meaning = BINANCE_FUTURES_REFUSALS[match.group(1)]
    return cls(f"{message} ({meaning})")


def translate_ccxt_error(exc: BaseException, *, during_order: bool = False, exchange_id: str | None = None,
                         secrets: Iterable[str | None] = (), env: Mapping[str, str] | None = None) -> VenueError:
    """Map a ccxt exception to this taxonomy; the message is :func:`scrub`-bed (``secrets``, ``env``).

    With ``during_order`` (the exception came out of ``create_order``) anything
    that is not a definitive refusal becomes :class:`OrderOutcomeUnknown`: a
    timeout, a 5xx, a rate-limit answer or an unexpected reply may all hide an
    applied order, so the caller must look it up before sending anything else.

    ``exchange_id`` enables the per-venue code table (:data:`BINANCE_FUTURES_REFUSALS`
    for Binance futures) that overrides ccxt where its class is not a refusal.
    """
    import ccxt  # local: keeps `import reconciler` light for the paper path

    message = scrub(f"{type(exc).__name__}: {exc}", secrets=secrets, env=env)
    if exchange_id in BINANCE_FUTURES_IDS:
        refusal = _binance_futures_refusal(exc, message)
        if refusal is not None:
            return refusal
    if isinstance(exc, ccxt.OrderNotFound):  # subclass of InvalidOrder in ccxt: test first
        return OrderNotFound(message)
    if isinstance(exc, ccxt.InsufficientFunds):
        return InsufficientFunds(message)
    if isinstance(exc, (ccxt.InvalidOrder, ccxt.BadSymbol, ccxt.BadRequest, ccxt.ArgumentsRequired)):
        return InvalidOrder(message)
    if isinstance(exc, (ccxt.AuthenticationError, ccxt.PermissionDenied, ccxt.AccountSuspended)):
        return AuthenticationError(message)
    if during_order:
        return OrderOutcomeUnknown(message)
    if isinstance(exc, (ccxt.DDoSProtection, ccxt.RateLimitExceeded)):
        return DDosProtection(message)
    if isinstance(exc, ccxt.OperationFailed):  # NetworkError, RequestTimeout, ExchangeNotAvailable, OnMaintenance
        return TemporaryError(message)
    if isinstance(exc, ccxt.BaseError):
        return VenueError(message)
    if isinstance(exc, (TimeoutError, ConnectionError, OSError)):
        return TemporaryError(message)
    return VenueError(message)
