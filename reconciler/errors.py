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
from collections.abc import Callable, Iterable, Mapping

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
#: env var suffixes whose values are secrets (``<ID>_API_KEY`` etc.;
#: see reconciler.venues.ccxt_venue.credentials_from_env)
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
def translate_ccxt_error(exc: BaseException, *, during_order: bool = False,
                         refusal: Callable[[BaseException, str], VenueError | None] | None = None,
                         secrets: Iterable[str | None] = (), env: Mapping[str, str] | None = None) -> VenueError:
    """Map a ccxt exception to this taxonomy; the message is :func:`scrub`-bed (``secrets``, ``env``).

    With ``during_order`` (the exception came out of ``create_order``) anything
    that is not a definitive refusal becomes :class:`OrderOutcomeUnknown`: a
    timeout, a 5xx, a rate-limit answer or an unexpected reply may all hide an
    applied order, so the caller must look it up before sending anything else.

    ``refusal`` (a venue profile's, see :mod:`reconciler.venues.profile`) returns the
    venue's definitive refusal for an error code or message, overriding ccxt where its
    class is not a refusal; None leaves the exception to ccxt's classes.
    """
    import ccxt  # local: keeps `import reconciler` light for the paper path

    message = scrub(f"{type(exc).__name__}: {exc}", secrets=secrets, env=env)
    if refusal is not None:
        refused = refusal(exc, message)
        if refused is not None:
            return refused
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
