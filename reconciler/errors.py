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
- ``VenueError``: anything else the exchange reported.

All derive from :class:`fastopt.errors.FastoptError` (exit code 1).
"""
from __future__ import annotations

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


def translate_ccxt_error(exc: BaseException, *, during_order: bool = False) -> VenueError:
    """Map a ccxt exception to this taxonomy.

    With ``during_order`` (the exception came out of ``create_order``) anything
    that is not a definitive refusal becomes :class:`OrderOutcomeUnknown`: a
    timeout, a 5xx, a rate-limit answer or an unexpected reply may all hide an
    applied order, so the caller must look it up before sending anything else.
    """
    import ccxt  # local: keeps `import reconciler` light for the paper path

    message = f"{type(exc).__name__}: {exc}"
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
