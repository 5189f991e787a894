"""Alerts to a webhook and to Telegram, never in the way of an order.

Configured by the ``notify`` section of portfolio_config.json (read once, when the
reconciler starts; restart it to change)::

    "notify": {"webhook_url": "https://hooks.example.com/fastopt",
               "telegram_chat_id": "123456789",
               "dedup_minutes": 30, "max_per_minute": 20, "timeout_s": 5,
               "config_stale_after_days": 8}

``webhook_url`` receives one JSON POST per event (:func:`event_payload`); ``telegram_chat_id``
one ``sendMessage`` per event through the bot whose token is in the environment variable
``FASTOPT_TELEGRAM_TOKEN`` (never in the config); ``FASTOPT_TELEGRAM_API`` overrides the
Bot API base URL (default ``https://api.telegram.org``; the tests point it at 127.0.0.1).

Guarantees (:class:`Notifier`):

* **never blocking**: :meth:`Notifier.send` appends to a bounded in-memory queue and
  returns (microseconds); one background thread does the HTTP, each request with a
  short timeout (``timeout_s``). A full queue drops its *oldest* event (counted in
  ``dropped``): a notifier that hangs or fails never delays a cycle or an order;
* **deduplicated**: an event with the same ``key`` (default: its kind and message) as
  one accepted less than ``dedup_minutes`` ago is not sent again (``deduplicated``);
* **rate limited**: at most ``max_per_minute`` events are accepted per rolling
  minute; the rest are counted in ``rate_limited`` and not sent;
* a failed delivery is one line through ``warn`` (the URL's token and query are
  never shown) and counted in ``failed``; it is not retried (the next event goes on).
"""
from __future__ import annotations

import json
import math
import os
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from fastopt.errors import InputError

TOKEN_ENV = "FASTOPT_TELEGRAM_TOKEN"
API_ENV = "FASTOPT_TELEGRAM_API"
DEFAULT_TELEGRAM_API = "https://api.telegram.org"

#: every event kind the reconciler emits (docs/reconciler.md, "Alerts")
EVENT_KINDS = (
    "start", "stop", "halt", "resume", "kill_switch", "rejection", "unresolved_intent", "stale_state",
    "stale_config", "price_refused", "read_failed", "config_held_back", "daily_summary", "alert",
)
_KEYS = {"webhook_url", "telegram_chat_id", "dedup_minutes", "max_per_minute", "timeout_s", "queue_size",
         "config_stale_after_days"}


@dataclass(frozen=True)
class NotifySettings:
    """The validated ``notify`` section. Units: ``dedup_s``, ``timeout_s`` seconds; ``max_per_minute`` events;
    ``config_stale_after_s`` seconds (a config file not rewritten for longer raises ``stale_config``)."""

    webhook_url: str | None = None
    telegram_chat_id: str | None = None
    dedup_s: float = 1800.0
    max_per_minute: int = 20
    timeout_s: float = 5.0
    queue_size: int = 100
    config_stale_after_s: float = 8 * 86400.0

    @property
    def enabled(self) -> bool:
        return bool(self.webhook_url or self.telegram_chat_id)


def parse_notify(section: Any, *, path: Any = None) -> NotifySettings:
    """Validate the config's ``notify`` section (None or absent: nothing is sent); InputError naming the key."""
    if section is None:
        return NotifySettings()
    if not isinstance(section, dict):
        raise InputError("'notify' must be an object", path=path)
    unknown = sorted(set(section) - _KEYS)
    if unknown:
        raise InputError(f"'notify' has unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(_KEYS))})",
                         path=path)
    url = section.get("webhook_url")
    if url is not None:
        parsed = urllib.parse.urlsplit(url) if isinstance(url, str) else None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise InputError("'notify.webhook_url' must be an http(s) URL", path=path)
    chat = section.get("telegram_chat_id")
    if chat is not None:
        if isinstance(chat, bool) or not isinstance(chat, (str, int)) or not str(chat).strip():
            raise InputError("'notify.telegram_chat_id' must be a chat id (a number or @channel name)", path=path)
        chat = str(chat).strip()

    def number(key: str, default: float, *, low: float) -> float:
        value = section.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < low:
            raise InputError(f"'notify.{key}' must be a number >= {low:g}, got {value!r}", path=path)
        return float(value)

    return NotifySettings(
        webhook_url=url, telegram_chat_id=chat,
        dedup_s=60.0 * number("dedup_minutes", 30, low=0),
        max_per_minute=int(number("max_per_minute", 20, low=1)),
        timeout_s=number("timeout_s", 5, low=0.1),
        queue_size=int(number("queue_size", 100, low=1)),
        config_stale_after_s=86400.0 * number("config_stale_after_days", 8, low=0.01),
    )


def event_payload(kind: str, message: str, *, level: str = "error", fields: Mapping[str, Any] | None = None,
                  now: datetime | None = None) -> dict[str, Any]:
    """The JSON object POSTed to the webhook: ``{"kind", "level", "message", "ts", "host", ...fields}``."""
    ts = (now or datetime.now(timezone.utc)).isoformat(timespec="seconds").replace("+00:00", "Z")
    return {"kind": kind, "level": level, "message": message, "ts": ts, "host": socket.gethostname(),
            **dict(fields or {})}


def telegram_text(event: Mapping[str, Any]) -> str:
    """One short message: ``fastopt HALT on host (folder): message``."""
    where = event.get("folder") or ""
    head = f"fastopt {str(event.get('kind', 'alert')).replace('_', ' ').upper()} on {event.get('host', '?')}"
    return f"{head}{f' ({where})' if where else ''}: {event.get('message', '')}"[:4000]


class Notifier:
    """Background delivery of events (see the module docstring). Units: seconds of ``clock`` (monotonic).

    ``send`` never blocks; ``close(timeout_s)`` waits at most that long for the queue to drain (used
    once, at shutdown, so that the ``stop`` event goes out). Counters: ``sent``, ``failed``,
    ``dropped``, ``deduplicated``, ``rate_limited``.
    """

    def __init__(self, settings: NotifySettings, *, token: str | None = None, telegram_api: str | None = None,
                 warn: Callable[[str], None] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.token = token
        self.telegram_api = (telegram_api or DEFAULT_TELEGRAM_API).rstrip("/")
        self.warn = warn or (lambda line: None)
        self.clock = clock
        self.sent = self.failed = self.dropped = self.deduplicated = self.rate_limited = 0
        self._queue: deque[dict[str, Any]] = deque()
        self._recent: dict[str, float] = {}  # event key -> time accepted
        self._window: deque[float] = deque()  # acceptance times in the last minute
        self._cond = threading.Condition()
        self._busy = False
        self._closed = False
        self._thread = threading.Thread(target=self._worker, name="fastopt-notify", daemon=True)
        self._thread.start()

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, env: Mapping[str, str] | None = None, path: Any = None,
                    warn: Callable[[str], None] | None = None) -> Notifier | None:
        """A notifier for the config's ``notify`` section, or None when it names no destination.

        InputError when the section is invalid, or names a Telegram chat without ``FASTOPT_TELEGRAM_TOKEN``."""
        env = os.environ if env is None else env
        settings = parse_notify(config.get("notify"), path=path)
        if not settings.enabled:
            return None
        token = (env.get(TOKEN_ENV) or "").strip() or None
        if settings.telegram_chat_id and token is None:
            raise InputError(f"'notify.telegram_chat_id' is set but {TOKEN_ENV} is not in the environment",
                             path=path)
        return cls(settings, token=token, telegram_api=env.get(API_ENV), warn=warn)

    # -- producer side (any thread; never blocks) ---------------------------------------------
    def send(self, event: Mapping[str, Any], *, key: str | None = None) -> bool:
        """Queue ``event`` (a :func:`event_payload` dict) unless deduplicated or rate limited; True if queued."""
        now = self.clock()
        key = key or f"{event.get('kind')}|{event.get('message')}"
        with self._cond:
            if self._closed:
                return False
            last = self._recent.get(key)
            if last is not None and now - last < self.settings.dedup_s:
                self.deduplicated += 1
                return False
            while self._window and now - self._window[0] >= 60.0:
                self._window.popleft()
            if len(self._window) >= self.settings.max_per_minute:
                self.rate_limited += 1
                return False
            self._window.append(now)
            self._recent[key] = now
            if len(self._recent) > 4096:  # bounded memory: forget keys older than the dedup window
                self._recent = {k: t for k, t in self._recent.items() if now - t < self.settings.dedup_s}
            if len(self._queue) >= self.settings.queue_size:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(dict(event))
            self._cond.notify()
        return True

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop accepting events; wait up to ``timeout_s`` seconds for the queued ones to be delivered."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            while (self._queue or self._busy) and time.monotonic() < deadline:
                self._cond.wait(max(0.0, min(0.05, deadline - time.monotonic())))
        self._thread.join(max(0.0, deadline - time.monotonic()))

    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + (1 if self._busy else 0)

    # -- consumer side (the background thread) ------------------------------------------------
    def _worker(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                event = self._queue.popleft()
                self._busy = True
            try:
                self._deliver(event)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _deliver(self, event: dict[str, Any]) -> None:
        s = self.settings
        if s.webhook_url:
            self._post(s.webhook_url, event, "webhook")
        if s.telegram_chat_id and self.token:
            self._post(f"{self.telegram_api}/bot{self.token}/sendMessage",
                       {"chat_id": s.telegram_chat_id, "text": telegram_text(event),
                        "disable_web_page_preview": True}, "telegram")

    def _post(self, url: str, body: Mapping[str, Any], what: str) -> None:
        data = json.dumps(body, default=str).encode("utf-8")
        request = urllib.request.Request(url, data=data, method="POST",
                                         headers={"Content-Type": "application/json", "User-Agent": "fastopt"})
        try:
            with urllib.request.urlopen(request, timeout=self.settings.timeout_s) as response:
                response.read(65536)
            self.sent += 1
        except Exception as exc:  # any failure of a notification is a log line, never an error of the cycle
            self.failed += 1
            self.warn(f"{what} notification failed ({self._describe(exc)}); event {body.get('kind', '')} "
                      "not delivered")

    def _describe(self, exc: BaseException) -> str:
        if isinstance(exc, urllib.error.HTTPError):
            text = f"HTTP {exc.code}"
        elif isinstance(exc, urllib.error.URLError):
            text = f"{type(exc.reason).__name__}: {exc.reason}"
        else:
            text = f"{type(exc).__name__}: {exc}"
        return text.replace(self.token, "***") if self.token else text
