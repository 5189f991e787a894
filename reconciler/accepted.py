"""The last accepted config (``accepted_config.json``) and the operator's accept request.

The reconciler trades a new ``portfolio_config.json`` only when it is plausible
against the last one it accepted (see :func:`reconciler.guards.judge_config`).
It keeps a copy of every config it accepted, so that when a new one is held
back (a leverage jump from 0.5 to 5, an account_value typo) it keeps trading the
last accepted one, also across restarts.

Files next to the config (both written atomically):

- ``accepted_config.json``: ``{"accepted_at", "sha256", "account_value", "leverage",
  "gross_budget", "config"}``; ``config`` is the accepted config object as read;
  ``sha256`` identifies the trading content (account_value, leverage, weights,
  exchanges, exchange_settings) of a config, so a rewrite with the same content is
  the same config.
- ``accept_config.json``: written by ``fastopt reconcile --accept-config``: the
  sha256 of the config the operator accepts. A reconciler (the running daemon or
  the next run) honours it when it names the config on disk, then deletes it; a
  request for a config that has changed since is ignored with a warning.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from fastopt.files.atomic import atomic_write_json
from fastopt.errors import InputError

ACCEPTED_NAME = "accepted_config.json"
ACCEPT_REQUEST_NAME = "accept_config.json"
TRADING_KEYS = ("account_value", "leverage", "weights", "exchanges", "exchange_settings")


def config_sha256(raw: Mapping[str, Any]) -> str:
    """Hash of the trading content of a config (key order and other keys do not matter)."""
    content = {k: raw.get(k) for k in TRADING_KEYS}
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True)
class AcceptedConfig:
    """A config the reconciler accepted; ``gross_budget`` = account_value x leverage (account currency)."""

    sha256: str
    accepted_at: str
    account_value: float
    leverage: float
    config: dict[str, Any]

    @property
    def gross_budget(self) -> float:
        return self.account_value * self.leverage


def read_accepted(folder: Path) -> AcceptedConfig | None:
    """The last accepted config, None when there is none; InputError naming the file when it is unreadable."""
    path = folder / ACCEPTED_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise InputError(f"unreadable ({exc}); delete it to accept the current config as the new reference",
                         path=path) from None
    try:
        config = data["config"]
        if not isinstance(config, dict):
            raise TypeError("config is not an object")
        return AcceptedConfig(sha256=str(data["sha256"]), accepted_at=str(data["accepted_at"]),
                              account_value=float(data["account_value"]), leverage=float(data["leverage"]),
                              config=config)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"invalid ({exc}); delete it to accept the current config as the new reference",
                         path=path) from None


def write_accepted(folder: Path, raw: Mapping[str, Any], *, account_value: float, leverage: float) -> AcceptedConfig:
    """Record ``raw`` as the accepted config (atomic) and return it."""
    accepted = AcceptedConfig(sha256=config_sha256(raw),
                              accepted_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                              account_value=float(account_value), leverage=float(leverage), config=dict(raw))
    atomic_write_json(folder / ACCEPTED_NAME, {
        "accepted_at": accepted.accepted_at, "sha256": accepted.sha256, "account_value": accepted.account_value,
        "leverage": accepted.leverage, "gross_budget": accepted.gross_budget, "config": accepted.config})
    return accepted


def request_accept(folder: Path, raw: Mapping[str, Any]) -> str:
    """Write the operator's accept request for the config ``raw``; returns its sha256."""
    sha = config_sha256(raw)
    atomic_write_json(folder / ACCEPT_REQUEST_NAME,
                      {"sha256": sha, "requested_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    return sha


def pending_accept(folder: Path) -> str | None:
    """The sha256 named by a pending accept request, None when there is none (or it is unreadable)."""
    try:
        data = json.loads((folder / ACCEPT_REQUEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    sha = data.get("sha256") if isinstance(data, dict) else None
    return sha if isinstance(sha, str) else None


def clear_accept(folder: Path) -> None:
    try:
        os.unlink(folder / ACCEPT_REQUEST_NAME)
    except FileNotFoundError:
        pass
