"""Alerts: a local webhook receiver and a local fake of the Telegram Bot API on 127.0.0.1.

A halt gives exactly one webhook POST and one Telegram message within 5 s; a notifier that hangs
never delays a cycle by more than 100 ms; events are deduplicated and rate limited; the bot token
never reaches a log line.
"""
from __future__ import annotations

import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fakes.workspace import make_workspace, parse_args
from fastopt.cli import main
from reconciler.cli import build_reconciler
from reconciler.errors import TemporaryError
from reconciler.notify import Notifier, NotifySettings, event_payload, parse_notify
from reconciler.report import Reporter

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
TOKEN = "123456:SECRET-bot-token"


class Receiver:
    """A webhook receiver and a Telegram Bot API fake in one server; ``status`` is the HTTP answer."""

    def __init__(self, status: int = 200) -> None:
        self.webhook: list[dict] = []
        self.telegram: list[dict] = []
        self.paths: list[str] = []
        self.status = status
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.paths.append(self.path)
                if self.path.startswith("/bot") and self.path.endswith("/sendMessage"):
                    ok = self.path == f"/bot{TOKEN}/sendMessage"
                    if ok:
                        outer.telegram.append(body)
                    reply = {"ok": ok, "result": {"message_id": len(outer.telegram)}}
                    code = outer.status if ok else 401
                else:
                    outer.webhook.append(body)
                    reply, code = {"ok": True}, outer.status
                data = json.dumps(reply).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def wait(self, predicate, timeout_s: float = 5.0) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout_s:
            if predicate():
                return time.monotonic() - start
            time.sleep(0.01)
        raise AssertionError(f"not delivered within {timeout_s} s: webhook {self.webhook}, telegram {self.telegram}")


@pytest.fixture
def hanging():
    """A TCP server that accepts connections and never answers (a notifier stuck on it)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    accepted = []
    stop = threading.Event()

    def accept():
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", accepted
    stop.set()
    thread.join(1)
    for conn in accepted:
        conn.close()
    sock.close()


@pytest.fixture(autouse=True)
def env(monkeypatch):
    monkeypatch.setenv("FASTOPT_OFFLINE", "1")
    monkeypatch.setenv("FASTOPT_TELEGRAM_TOKEN", TOKEN)


def failing_reads(rec):
    paper = rec.venue("paper")

    def fail():
        raise TemporaryError("paper database: disk I/O error")

    paper.fetch_positions = fail


def test_halt_gives_one_webhook_post_and_one_telegram_message(tmp_path, monkeypatch):
    with Receiver() as rx:
        monkeypatch.setenv("FASTOPT_TELEGRAM_API", rx.url)
        cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": BTC, "position": 1.0}},
                             notify={"webhook_url": f"{rx.url}/hook", "telegram_chat_id": "4242"})
        rec = build_reconciler(parse_args(cfg, "--halt-after", "1"))
        assert rec.report.notifier is not None
        failing_reads(rec)
        report = rec.run_cycle()
        assert report.status == "halted"
        rx.wait(lambda: rx.webhook and rx.telegram, timeout_s=5.0)
        time.sleep(0.3)  # nothing else follows
        assert len(rx.webhook) == 1 and len(rx.telegram) == 1, (rx.webhook, rx.telegram)
        hook = rx.webhook[0]
        assert hook["kind"] == "halt" and "halting trading" in hook["message"] and hook["venue"] == "paper"
        assert hook["folder"] == str(tmp_path) and hook["level"] == "error" and hook["ts"].endswith("Z")
        assert rx.telegram[0]["chat_id"] == "4242" and rx.telegram[0]["text"].startswith("fastopt HALT on ")
        assert "ALERT: halting trading" in "\n".join(rec.report.messages("ERROR"))
        # the same halt again within the dedup window is not sent twice
        rec.report.event("halt", "halting trading after 1 consecutive read failures: again", venue="paper",
                         key="paper")
        rec.report.event("halt", "halting trading after 1 consecutive read failures: again", venue="paper",
                         key="paper")
        rx.wait(lambda: len(rx.webhook) == 2)
        time.sleep(0.3)
        assert len(rx.webhook) == 2 and rec.report.notifier.deduplicated == 1
        rec.report.close(1.0)


def test_a_hanging_notifier_never_delays_the_cycle(tmp_path, monkeypatch, hanging):
    url, accepted = hanging
    monkeypatch.setenv("FASTOPT_TELEGRAM_API", url)
    states = {"a": {"symbol": BTC, "position": 1.0}}

    def timed(notify):
        root = tmp_path / ("with" if notify else "without")
        cfg = make_workspace(root, weights={"a": 1.0}, states=states,
                             **({"notify": notify} if notify else {}))
        rec = build_reconciler(parse_args(cfg, "--halt-after", "1"))
        failing_reads(rec)
        # warm-up: imports and the first read are not what is measured
        rec.report.event("start", "warm-up")
        start = time.perf_counter()
        for _ in range(3):
            report = rec.run_cycle()  # halt, then read failures: each an event for the notifier
        elapsed = time.perf_counter() - start
        assert report.status == "halted"
        return rec, elapsed

    _, baseline = timed(None)
    rec, elapsed = timed({"webhook_url": f"{url}/hook", "telegram_chat_id": "1", "timeout_s": 3,
                          "dedup_minutes": 0})
    assert rec.report.notifier.pending() >= 1  # stuck on the hanging server
    assert elapsed - baseline < 0.1, (elapsed, baseline)
    # a burst of events on a stuck notifier: every send returns at once, the oldest are dropped
    notifier = rec.report.notifier
    start = time.perf_counter()
    for i in range(1000):
        notifier.send(event_payload("rejection", f"order {i} rejected"))
    assert time.perf_counter() - start < 0.1
    assert notifier.rate_limited >= 1000 - notifier.settings.max_per_minute
    start = time.perf_counter()
    rec.report.close(0.05)  # shutdown waits at most what it is given
    assert time.perf_counter() - start < 0.5
    # without the rate limit, the bounded queue drops its oldest events, counted
    burst = Notifier(NotifySettings(webhook_url=f"{url}/hook", max_per_minute=100_000, queue_size=10, dedup_s=0,
                                    timeout_s=3))
    start = time.perf_counter()
    for i in range(1000):
        burst.send(event_payload("rejection", f"order {i} rejected"))
    assert time.perf_counter() - start < 0.1
    assert burst.dropped >= 1000 - 10 - 1 and burst.pending() <= 11
    burst.close(0.05)


def test_rate_limit_and_dedup_are_counted():
    with Receiver() as rx:
        notifier = Notifier(NotifySettings(webhook_url=f"{rx.url}/h", max_per_minute=3, dedup_s=60.0))
        for i in range(5):
            assert notifier.send(event_payload("rejection", f"distinct {i}")) == (i < 3)
        assert not notifier.send(event_payload("rejection", "distinct 0"))  # same key: deduplicated first
        rx.wait(lambda: len(rx.webhook) == 3)
        notifier.close(2.0)
        assert notifier.sent == 3 and notifier.rate_limited == 2 and notifier.deduplicated == 1
        assert [w["message"] for w in rx.webhook] == ["distinct 0", "distinct 1", "distinct 2"]


def test_a_failing_endpoint_is_one_warning_without_the_token(monkeypatch):
    with Receiver(status=500) as rx:
        lines = []
        notifier = Notifier(NotifySettings(webhook_url=f"{rx.url}/h", telegram_chat_id="7"), token=TOKEN,
                            telegram_api=rx.url, warn=lines.append)
        notifier.send(event_payload("halt", "halting"))
        notifier.close(3.0)
        assert notifier.failed == 2 and notifier.sent == 0 and len(lines) == 2
        assert all("HTTP 500" in line for line in lines)
        assert not any(TOKEN in line or "SECRET" in line for line in lines)


def test_events_are_in_the_log_file_as_json_lines(tmp_path):
    reporter = Reporter(quiet=True, log_file=tmp_path / "r.log", log_json=True, context={"folder": "/x"})
    reporter.info("plain line")
    reporter.event("rejection", "order buy 1 BTC rejected", symbol=BTC)
    reporter.close()
    records = [json.loads(line) for line in (tmp_path / "r.log").read_text().splitlines()]
    assert records[0]["level"] == "info" and records[0]["message"] == "plain line"
    assert records[1] == {**records[1], "level": "error", "event": "rejection", "symbol": BTC,
                          "message": "ALERT: order buy 1 BTC rejected"}
    assert reporter.events_since(0)[0]["folder"] == "/x"


@pytest.mark.parametrize("section,reason", [
    ("hook", "must be an object"),
    ({"webhook_url": "ftp://x"}, "http(s) URL"),
    ({"webhook_url": "http://127.0.0.1:1/h", "bogus": 1}, "unknown key"),
    ({"telegram_chat_id": ""}, "chat id"),
    ({"webhook_url": "http://127.0.0.1:1/h", "dedup_minutes": -1}, "dedup_minutes"),
])
def test_invalid_notify_section_is_refused_at_start(tmp_path, capsys, section, reason):
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": BTC, "position": 1.0}},
                         notify=section)
    with pytest.raises(Exception, match=re.escape(reason)):
        parse_notify(section)
    assert main(["reconcile", "--once", "--quiet", "--config", str(cfg), "--strategies",
                 str(tmp_path / "strategies"), "--prices", str(tmp_path / "prices.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert reason in err and len(err.splitlines()) == 1
    assert not (tmp_path / "orders.jsonl").exists()


def test_telegram_without_token_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("FASTOPT_TELEGRAM_TOKEN")
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": BTC, "position": 1.0}},
                         notify={"telegram_chat_id": 99})
    assert main(["reconcile", "--once", "--quiet", "--config", str(cfg), "--strategies",
                 str(tmp_path / "strategies"), "--prices", str(tmp_path / "prices.json")]) == 2
    assert "FASTOPT_TELEGRAM_TOKEN" in capsys.readouterr().err


def test_loop_sends_start_stop_and_a_daily_summary(tmp_path, monkeypatch):
    from reconciler.loop import PollingLoop

    with Receiver() as rx:
        cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": BTC, "position": 1.0}},
                             notify={"webhook_url": f"{rx.url}/hook"})
        rec = build_reconciler(parse_args(cfg))
        clock = [0.0]

        def sleep(seconds):
            clock[0] += 43_200.0  # half a day per poll

        loop = PollingLoop(rec, interval_s=1, full_every_s=1, max_cycles=3, clock=lambda: clock[0], sleep=sleep,
                           config_stale_after_s=0.001)
        assert loop.run() == 0
        rx.wait(lambda: len(rx.webhook) >= 4)
        rec.report.close(2.0)
        kinds = [w["kind"] for w in rx.webhook]
        assert kinds[0] == "start" and kinds[-1] == "stop" and kinds.count("daily_summary") == 1
        assert kinds.count("stale_config") == 1
        summary = next(w for w in rx.webhook if w["kind"] == "daily_summary")
        assert summary["cycles"] == {"ok": 3} and summary["orders"] == {"filled": 1} and summary["equity"] > 0
        assert "max-cycles 3 reached" in rx.webhook[-1]["message"]


def test_engine_events_reach_the_reporter_with_their_kind(tmp_path):
    """stale state, price refused, kill switch and resume are events (kept in last_cycle.json), not plain lines."""
    cfg = make_workspace(tmp_path, weights={"a": 0.5, "b": 0.5},
                         states={"a": {"symbol": BTC, "position": 1.0, "updated_at": "2020-01-01T00:00:00Z"},
                                 "b": {"symbol": ETH, "position": -1.0}})
    rec = build_reconciler(parse_args(cfg, "--halt-after", "1"))
    rec.run_cycle()
    (tmp_path / "STOP").write_text("")
    (tmp_path / "prices.json").write_text(json.dumps({BTC: 40_000.0, ETH: 3500.0}))  # a jump to refuse
    (tmp_path / "strategies" / "b" / "state.json").write_text(json.dumps({"symbol": ETH, "position": 1.0}))
    rec.run_cycle()
    kinds = [e["kind"] for e in rec.report.events_since(0)]
    assert kinds.count("stale_state") == 1 and "price_refused" in kinds and "kill_switch" in kinds
    cycle = json.loads((tmp_path / "last_cycle.json").read_text())
    assert {"price_refused", "kill_switch"} <= {e["kind"] for e in cycle["events"]}
    assert cycle["status"] == "stopped"
    (tmp_path / "STOP").unlink()
    working = rec.venue("paper").fetch_positions
    failing_reads(rec)
    before = rec.report.event_count
    assert rec.run_cycle().status == "halted"
    assert [e["kind"] for e in rec.report.events_since(before)] == ["halt"]
    rec.venue("paper").fetch_positions = working
    before = rec.report.event_count
    rec.run_cycle()
    kinds = [e["kind"] for e in rec.report.events_since(before)]
    assert "resume" in kinds and "halt" not in kinds  # (the BTC crash also holds the config back: equity fell)
