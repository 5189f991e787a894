"""Console output of the reconciler: one readable line per decision, to stderr."""
from __future__ import annotations

import sys
from datetime import datetime, timezone


class Reporter:
    """Prints decisions/warnings to stderr (rich when available) and keeps the last lines.

    ``quiet`` suppresses printing (tests, bench) but still records ``lines``.
    """

    def __init__(self, *, quiet: bool = False, keep: int = 2000) -> None:
        self.quiet = quiet
        self.keep = keep
        self.lines: list[tuple[str, str]] = []
        self._console = None
        if not quiet:
            try:
                from rich.console import Console

                self._console = Console(stderr=True, highlight=False, soft_wrap=True)
            except ImportError:  # pragma: no cover - rich is a dependency
                self._console = None

    def _emit(self, level: str, message: str, style: str) -> None:
        self.lines.append((level, message))
        if len(self.lines) > self.keep:
            del self.lines[: len(self.lines) - self.keep]
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

    def messages(self, level: str | None = None) -> list[str]:
        return [m for lvl, m in self.lines if level is None or lvl == level]


def _escape(text: str) -> str:
    return text.replace("[", r"\[")
