"""What every fake venue server shares: a threaded HTTP server on 127.0.0.1 (a free port), its lifecycle,
and a quiet request handler that answers JSON.

A fake subclasses :class:`LoopbackServer` and calls :meth:`LoopbackServer.serve` with its handler class
(a :class:`JsonHandler` subclass defining ``_dispatch(method)``); then ``with Fake() as fake:`` serves
until the block ends, at ``fake.base_url``.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LoopbackServer:
    """Lifecycle of a fake's server: ``serve(handler)`` in ``__init__``, ``with fake:`` to run it.

    A fake records every request in ``requests_full`` (``{"method", "path", "params"}``) under ``lock``."""

    server: ThreadingHTTPServer
    thread: threading.Thread
    lock: Any
    requests_full: list[dict[str, Any]]

    def requests_to(self, method: str, path: str) -> list[dict[str, Any]]:
        """Parameters of every request to (method, path), oldest first."""
        with self.lock:
            return [r["params"] for r in self.requests_full if (r["method"], r["path"]) == (method, path)]

    def serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        """Bind ``handler`` to 127.0.0.1 on a free port (started by ``__enter__``)."""
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # the client gave up (timeout faults)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


class JsonHandler(BaseHTTPRequestHandler):
    """HTTP/1.1, no access log, ``_send(status, payload)`` as JSON; GET/POST/DELETE go to ``_dispatch``."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _dispatch(self, method: str) -> None:  # pragma: no cover - every fake defines it
        raise NotImplementedError

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")
