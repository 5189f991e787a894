"""Console output of the reconciler: one readable line per decision, to stderr.

Optionally also to a rotating log file (plain lines, or JSON lines with ``log_json``), and
*events* (:meth:`Reporter.event`: halts, rejections, kill switch, ...) to a
:class:`reconciler.notify.Notifier` (webhook, Telegram) without ever blocking.
"""
from __future__ import annotations

import json
import logging
import logging.handlers
import sys
import time
from collections import deque
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconciler.notify import Notifier

#: events whose log line is not an ALERT: logged as they are, at this level (every other kind: ``ALERT:``, ERROR)
_QUIET_EVENTS = {"start": "info", "stop": "info", "resume": "warn", "daily_summary": "info", "stale_state": "warn",
                 "stale_config": "warn", "kill_switch": "warn"}
_LOG_LEVELS = {"info": logging.INFO, "order": logging.INFO, "warn": logging.WARNING, "ERROR": logging.ERROR}


class _JsonFormatter(logging.Formatter):
    """One JSON object per line: ``{"ts", "level", "message"}`` plus ``event``/fields for events."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
               .replace("+00:00", "Z"), "level": getattr(record, "fo_level", record.levelname.lower()),
               "message": record.getMessage()}
        out.update(getattr(record, "fo_fields", None) or {})
        return json.dumps(out, default=str, ensure_ascii=False)


class Reporter:
    """Prints decisions/warnings to stderr (rich when available) and keeps the last lines.

    ``quiet`` suppresses printing (tests, bench) but still records ``lines`` (and still writes the log
    file). ``log_file``: also append every line to this file, rotated at ``log_max_bytes`` bytes keeping
    ``log_backups`` old files (``PATH.1`` ...); ``log_json``: one JSON object per line there.
    ``notifier``: where :meth:`event` forwards events; ``context``: fields added to every event
    (e.g. the config folder).
    """

    def __init__(self, *, quiet: bool = False, keep: int = 2000, notifier: Notifier | None = None,
                 log_file: str | Path | None = None, log_json: bool = False, log_max_bytes: int = 10 << 20,
                 log_backups: int = 5, context: dict[str, Any] | None = None) -> None:
        self.quiet = quiet
        self.keep = keep
        self.lines: list[tuple[str, str]] = []
        self.notifier = notifier
        self.context = dict(context or {})
        #: the last events, oldest first: (sequence number, payload); ``event_count`` numbers them
        self.events: deque[tuple[int, dict[str, Any]]] = deque(maxlen=200)
        self.event_count = 0
        self._console = None
        self._logger: logging.Logger | None = None
        if log_file is not None:
            self._logger = _file_logger(Path(log_file), json_lines=log_json, max_bytes=log_max_bytes,
                                        backups=log_backups)
        if not quiet:
            try:
                from rich.console import Console

                self._console = Console(stderr=True, highlight=False, soft_wrap=True)
            except ImportError:  # pragma: no cover - rich is a dependency
                self._console = None

    def _emit(self, level: str, message: str, style: str, fields: dict[str, Any] | None = None) -> None:
        self.lines.append((level, message))
        if len(self.lines) > self.keep:
            del self.lines[: len(self.lines) - self.keep]
        if self._logger is not None:
            try:
                self._logger.log(_LOG_LEVELS.get(level, logging.INFO), "%s", message,
                                 extra={"fo_level": level.lower(), "fo_fields": fields})
            except Exception:  # pragma: no cover - logging reports its own errors; trading goes on
                pass
        if self.quiet:
            return
        stamp = datetime.now(timezone.utc).strftime("%H:%M:%S")
        try:
            if self._console is not None:
                self._console.print(f"[dim]{stamp}[/dim] [{style}]{level:<5}[/{style}] {_escape(message)}",
                                    markup=True, emoji=False)
            else:  # pragma: no cover
                print(f"{stamp} {level:<5} {message}", file=sys.stderr)
        except OSError:  # stderr on a full disk or a closed pipe: the line is kept in ``lines``, trading goes on
            pass

    def info(self, message: str) -> None:
        self._emit("info", message, "cyan")

    def order(self, message: str) -> None:
        self._emit("order", message, "bold green")

    def warn(self, message: str) -> None:
        self._emit("warn", message, "yellow")

    def error(self, message: str) -> None:
        self._emit("ERROR", message, "bold red")

    def event(self, kind: str, message: str, *, key: str | None = None, **fields: Any) -> None:
        """Log one line for an event and forward it to the notifier (never blocks).

        ``kind``: one of :data:`reconciler.notify.EVENT_KINDS`; ``key``: what deduplicates it (default
        kind + message: give a stable key when the message carries a changing count); ``fields``:
        JSON-able details (symbol, venue, ...). Start, stop, resume, the daily summary, stale inputs and
        the kill switch are logged as they are (info or warn); every other event is an ``ALERT:`` line at
        ERROR level.
        """
        from reconciler.notify import event_payload

        level = _QUIET_EVENTS.get(kind, "ERROR")
        payload = event_payload(kind, message, level=level.lower(), fields={**self.context, **fields})
        self.event_count += 1
        self.events.append((self.event_count, payload))
        line = message if kind in _QUIET_EVENTS else f"ALERT: {message}"
        log_fields = {"event": kind, **fields}
        if level == "info":
            self._emit("info", line, "cyan", log_fields)
        elif level == "warn":
            self._emit("warn", line, "yellow", log_fields)
        else:
            self._emit("ERROR", line, "bold red", log_fields)
        if self.notifier is not None:
            self.notifier.send(payload, key=f"{kind}|{key}" if key is not None else None)

    def events_since(self, number: int) -> list[dict[str, Any]]:
        """Payloads of the events numbered above ``number`` (see ``event_count``) still kept."""
        return [payload for n, payload in self.events if n > number]

    def close(self, timeout_s: float = 2.0) -> None:
        """Flush the notifier (at most ``timeout_s`` seconds) and close the log file."""
        if self.notifier is not None:
            self.notifier.close(timeout_s)
        if self._logger is not None:
            for handler in list(self._logger.handlers):
                handler.close()
                self._logger.removeHandler(handler)

    def messages(self, level: str | None = None) -> list[str]:
        return [m for lvl, m in self.lines if level is None or lvl == level]


class _QuietRotatingHandler(logging.handlers.RotatingFileHandler):
    """A log file that fails quietly (disk full): the console line and trading go on; ``failures`` counts."""

    failures = 0

    def handleError(self, record: logging.LogRecord) -> None:
        self.failures += 1


def _file_logger(path: Path, *, json_lines: bool, max_bytes: int, backups: int) -> logging.Logger:
    """A private logger (not propagated to the root) writing to a rotating file."""
    logger = logging.getLogger(f"fastopt.reconciler.{id(path)}.{path}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        handler.close()
        logger.removeHandler(handler)
    handler = _QuietRotatingHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
    if json_lines:
        handler.setFormatter(_JsonFormatter())
    else:
        plain = logging.Formatter("%(asctime)s %(fo_level)-5s %(message)s", "%Y-%m-%dT%H:%M:%SZ")
        plain.converter = time.gmtime
        handler.setFormatter(plain)
    logger.addHandler(handler)
    return logger


def _escape(text: str) -> str:
    return text.replace("[", r"\[")
