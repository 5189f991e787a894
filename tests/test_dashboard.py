"""`fastopt dashboard`: the data functions, the access rules, and the page in a real headless browser.

The browser test starts `fastopt dashboard` (a subprocess on a free 127.0.0.1 port) on a demo workspace
traded once on paper, loads the page in Debian's chromium (`--headless --dump-dom --screenshot`), and checks
that what the page shows (health, problems, target vs live per symbol, equity) equals `fastopt status --json`
for the same workspace. `.ci/run` installs chromium; without it the test fails and says so.
"""
from __future__ import annotations

import json
import math
import os
import queue
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest

from fastopt.cli import main
from fastopt.dashboard import app as dash
from fastopt.errors import InputError
from tests.fakes.workspace import make_workspace, write_json

pytestmark = pytest.mark.integration

BTC, ETH, SOL = "BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"
TOKEN = "test-token-0123456789abcdef"
STALE = "3600"  # dashboard and status alike: a slow CI machine never turns the demo stale mid-test
ENV = {**os.environ, "FASTOPT_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
ENV.pop("FASTOPT_DASHBOARD_TOKEN", None)


# -- helpers ----------------------------------------------------------------------------------------------
def fastopt(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fastopt", *args], capture_output=True, text=True,
                          timeout=timeout, env=ENV)


def demo_workspace(root: Path) -> Path:
    """Three strategies on three symbols, traded once on paper: positions, fills, a journal, a snapshot."""
    cfg = make_workspace(root, weights={"trend": 0.5, "meanrev": 0.3, "carry": 0.2},
                         states={"trend": {"symbol": BTC, "position": 1.0},
                                 "meanrev": {"symbol": ETH, "position": -0.5},
                                 "carry": {"positions": {SOL: 1.0, BTC: 0.2}}})
    done = fastopt("reconcile", "--once", "--exchange", "paper", "--config", str(cfg), "--strategies",
                   str(root / "strategies"), "--prices", str(root / "prices.json"), "--confirm-delay", "0")
    assert done.returncode == 0, done.stderr
    return cfg


class Dashboard:
    """`fastopt dashboard ... --port 0` as a subprocess; ``url`` from the line it prints once listening."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "fastopt", "dashboard", "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in self.proc.stdout], daemon=True).start()
        try:
            first = lines.get(timeout=60)
        except queue.Empty:
            self.stop()
            pytest.fail(f"the dashboard did not start within 60 s: {self.proc.stderr.read()}")
        match = re.search(r"http://(127\.0\.0\.1|0\.0\.0\.0):(\d+)/", first)
        assert match, first
        self.port = int(match.group(2))
        self.url = f"http://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self) -> Dashboard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def http(url: str, *, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium is not installed: the dashboard's browser test needs Debian's chromium; "
                    ".ci/run installs it (apt-get install -y chromium)")
    return path


def load_page(url: str, folder: Path) -> tuple[str, Path]:
    """The page's DOM after its scripts ran (``--dump-dom``) and a 1280x900 screenshot, in one browser run."""
    shot = folder / "dashboard.png"
    profile = folder / "chromium-profile"
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
           "--disable-extensions", "--hide-scrollbars", f"--user-data-dir={profile}",
           "--virtual-time-budget=4000", "--window-size=1280,900", f"--screenshot={shot}", "--dump-dom", url]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, shot


class PageParser(HTMLParser):
    """What the page shows: health banner, problems, per-symbol cells (text and data-value), facts."""

    def __init__(self) -> None:
        super().__init__()
        self.body: dict[str, str] = {}
        self.health: dict[str, str] = {}
        self.problems: list[str] = []
        self.rows: dict[str, dict[str, tuple[str, str]]] = {}
        self.facts: dict[str, str] = {}
        self.order_statuses: list[str] = []
        self.equity_chart: dict[str, str] = {}
        self._stack: list[tuple[str, dict[str, str]]] = []
        self._text: list[str] = []
        self._symbol: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "body":
            self.body = a
        if a.get("id") == "health":
            self.health = a
        if a.get("id") == "equity-chart":
            self.equity_chart = a
        if tag == "tr" and "data-symbol" in a:
            self._symbol = a["data-symbol"]
            self.rows[self._symbol] = {}
        if tag in ("li", "td", "dd"):
            self._stack.append((tag, a))
            self._text = []

    def handle_data(self, data: str) -> None:
        self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._symbol = None
        if not self._stack or self._stack[-1][0] != tag:
            return
        _, a = self._stack.pop()
        text = "".join(self._text).strip()
        if tag == "li" and a.get("class") == "problem":
            self.problems.append(text)
        elif tag == "td" and self._symbol is not None and "data-field" in a:
            self.rows[self._symbol][a["data-field"]] = (text, a.get("data-value", ""))
        elif tag == "td" and a.get("data-field") == "status":
            self.order_statuses.append(text)
        elif tag == "dd" and "data-fact" in a:
            self.facts[a["data-fact"]] = text


def shown_number(text: str) -> float:
    """``"+1,234.50"`` -> 1234.5 (the page's thousands separators and signs)."""
    return float(text.replace(",", "").replace("+", "").replace("\u2212", "-"))


# -- the real browser --------------------------------------------------------------------------------------
def check_page_matches_status(page: str, status: dict) -> PageParser:
    parsed = PageParser()
    parsed.feed(page)
    assert parsed.body.get("data-loaded") == "1", "the page never rendered its data"
    assert parsed.health.get("data-healthy") == ("true" if status["healthy"] else "false")
    assert parsed.problems == status["problems"]
    assert status["rows"], "the demo workspace has positions"
    assert set(parsed.rows) == {r["symbol"] for r in status["rows"]}
    for row in status["rows"]:
        cells = parsed.rows[row["symbol"]]
        assert cells["exchange"][0] == row["exchange"]
        for field in ("target_notional", "live_notional", "gap_notional"):  # money: 2 decimals
            text, value = cells[field]
            assert abs(shown_number(text) - row[field]) <= 0.005 + 1e-9, (row["symbol"], field, text, row[field])
            assert float(value) == row[field]
        for field in ("target_amount", "live_amount", "price"):  # amounts, prices: 8+ significant digits
            text, value = cells[field]
            assert math.isclose(shown_number(text), row[field], rel_tol=1e-7, abs_tol=1e-12), (field, text, row)
            assert float(value) == row[field]
    equity = status["equity"]["total"]
    assert equity is not None
    assert shown_number(parsed.facts["equity"]) == pytest.approx(round(equity, 2), abs=1e-9)
    assert parsed.facts["unresolved"] == str(len(status["unresolved_intents"]))
    return parsed


def test_the_page_in_a_real_browser_shows_what_status_says(tmp_path):
    cfg = demo_workspace(tmp_path / "ws")
    with Dashboard("--config", str(cfg), "--stale-after", STALE, "--refresh", "2") as server:
        page, shot = load_page(server.url, tmp_path)
        done = fastopt("status", "--json", "--config", str(cfg), "--stale-after", STALE)
        assert done.returncode == 0, done.stdout + done.stderr  # healthy right after the cycle
        status = json.loads(done.stdout)
        parsed = check_page_matches_status(page, status)
        assert status["healthy"] and parsed.health["data-healthy"] == "true"
        assert re.search(r'<p id="positions-empty" class="muted" hidden', page)
        # the demo's three fills are the recent orders, and the equity curve is the paper book's
        assert parsed.order_statuses == ["filled", "filled", "filled"]
        assert parsed.equity_chart.get("data-source") == "paper"
        assert int(parsed.equity_chart.get("data-points", "0")) >= 4  # creation, 3 fills, end of the cycle
        # the screenshot exists and is a real rendering (a blank 1280x900 PNG is a few KB)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert shot.stat().st_size > 30_000, shot.stat().st_size
        print(f"dashboard screenshot: {shot}")

        # the kill switch: the page turns unhealthy and names it, exactly as status does
        (cfg.parent / "STOP").write_text("")
        page, _ = load_page(server.url, tmp_path / "stop")
        done = fastopt("status", "--json", "--config", str(cfg), "--stale-after", STALE)
        assert done.returncode == 4, done.stdout + done.stderr
        status = json.loads(done.stdout)
        parsed = check_page_matches_status(page, status)
        assert any("kill switch" in p for p in parsed.problems)
        assert parsed.facts["stop"].startswith("PRESENT")


def test_the_page_on_a_workspace_that_never_ran_says_why(tmp_path):
    from reconciler.health import collect_status

    cfg = make_workspace(tmp_path / "ws", weights={"a": 1.0}, states={"a": {"symbol": BTC, "position": 1.0}})
    with Dashboard("--config", str(cfg)) as server:
        page, _ = load_page(server.url, tmp_path)
    status = collect_status(cfg)
    parsed = PageParser()
    parsed.feed(page)
    assert parsed.body.get("data-loaded") == "1" and parsed.health.get("data-healthy") == "false"
    assert parsed.problems == status["problems"] and any("no heartbeat" in p for p in parsed.problems)
    assert parsed.rows == {} and re.search(r'<p id="positions-empty" class="muted">no snapshot yet', page)
    assert parsed.equity_chart.get("data-points") == "0"


def test_token_on_every_request_when_serving_every_address(tmp_path):
    cfg = demo_workspace(tmp_path / "ws")
    with Dashboard("--config", str(cfg), "--host", "0.0.0.0", "--token", TOKEN) as server:
        for path in ("", "api/dashboard", "api/status"):
            assert http(server.url + path)[0] == 401
            assert http(server.url + path + "?token=wrong-token-0123456789")[0] == 401
            assert http(server.url + path, headers={"Authorization": "Bearer nope"})[0] == 401
            assert http(server.url + path + f"?token={TOKEN}")[0] == 200
            assert http(server.url + path, headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200
        code, body = http(server.url + "api/status", headers={"Authorization": f"Bearer {TOKEN}"})
        assert json.loads(body)["rows"]
        # the page's script sends the token from its own URL as a Bearer header
        assert "Authorization" in http(server.url + f"?token={TOKEN}")[1].decode()


def test_loopback_without_token_answers_only_to_loopback_names_and_only_reads(tmp_path):
    cfg = demo_workspace(tmp_path / "ws")
    with Dashboard("--config", str(cfg)) as server:
        code, body = http(server.url)
        assert code == 200 and b"fastopt" in body
        assert http(server.url, headers={"Host": f"localhost:{server.port}"})[0] == 200
        assert http(server.url, headers={"Host": f"[::1]:{server.port}"})[0] == 200
        assert http(server.url, headers={"Host": f"127.0.0.2:{server.port}"})[0] == 200
        # DNS rebinding: a page of another site resolving its name to 127.0.0.1 gets nothing
        assert http(server.url + "api/dashboard", headers={"Host": "attacker.example"})[0] == 421
        assert http(server.url + "api/dashboard", headers={"Host": f"attacker.example:{server.port}"})[0] == 421
        assert http(server.url + "api/dashboard", headers={"Host": "localhost.attacker.example"})[0] == 421
        for method in ("POST", "PUT", "DELETE"):
            assert http(server.url + "api/dashboard", method=method)[0] == 405
        code, body = http(server.url + "api/dashboard")
        data = json.loads(body)
        assert set(data) >= {"status", "weights", "equity_curve", "orders", "alerts"}


def test_refuses_other_addresses_without_token(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("FASTOPT_DASHBOARD_TOKEN", raising=False)
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": BTC, "position": 1.0}})
    for host in ("0.0.0.0", "::", "192.0.2.10"):
        assert main(["dashboard", "--config", str(cfg), "--host", host, "--port", "0"]) == 2
        err = capsys.readouterr().err
        assert f"refusing to serve the dashboard on {host}" in err and "--token" in err
    # a short token is refused too
    assert main(["dashboard", "--config", str(cfg), "--host", "0.0.0.0", "--token", "short"]) == 2
    assert "at least 16" in capsys.readouterr().err


def test_check_bind_rules():
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        dash.check_bind(host, None)
    for host in ("0.0.0.0", "::", "10.1.2.3", "192.0.2.10"):
        with pytest.raises(InputError, match="--token"):
            dash.check_bind(host, None)
        dash.check_bind(host, TOKEN)
    with pytest.raises(InputError, match="at least 16"):
        dash.check_bind("0.0.0.0", "a b c d e f g h i j")
    assert dash.token_matches(TOKEN, TOKEN)
    assert not dash.token_matches(TOKEN, None)
    assert not dash.token_matches(TOKEN, TOKEN[:-1])
    assert not dash.token_matches(TOKEN, TOKEN + "x")


def test_missing_extra_is_one_line_naming_the_install(monkeypatch, capsys, tmp_path):
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": BTC, "position": 1.0}})
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # `import uvicorn` raises ModuleNotFoundError
    assert main(["dashboard", "--config", str(cfg), "--port", "0"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "pip install 'fastopt[dashboard]'" in err


# -- the page itself -----------------------------------------------------------------------------------------
def test_page_ships_everything_inline_and_its_csp_allows_exactly_that():
    html, csp = dash.render_page(5.0)
    # nothing is loaded from elsewhere: no src/href to any URL (the SVG namespace is a name, not a request)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html and "url(" not in html
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", html)
    assert "/*STYLE*/" not in html and "/*SCRIPT*/" not in html
    import base64
    import hashlib

    script = re.search(r"<script>(.*)</script>", html, re.S).group(1)
    style = re.search(r"<style>(.*)</style>", html, re.S).group(1)
    for block, key in ((script, "script-src"), (style, "style-src")):
        digest = base64.b64encode(hashlib.sha256(block.encode()).digest()).decode()
        assert f"{key} 'sha256-{digest}'" in csp
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert '"refresh_ms": 5000' in script
    # every value goes in as text, never as markup
    assert "innerHTML" not in script and "outerHTML" not in script and "insertAdjacentHTML" not in script


# -- data functions ------------------------------------------------------------------------------------------
def test_recent_orders_newest_first_with_outcomes(tmp_path):
    lines = [
        {"event": "intent", "ts": "2026-01-01T00:00:00Z", "client_order_id": "fo1", "venue": "paper",
         "symbol": BTC, "side": "buy", "amount": "0.01", "reduce_only": False, "leg": "open", "cycle": "c1"},
        {"event": "outcome", "ts": "2026-01-01T00:00:01Z", "client_order_id": "fo1", "status": "filled",
         "filled": 0.01, "average": 95010.0, "error": None},
        {"event": "intent", "ts": "2026-01-01T00:01:00Z", "client_order_id": "fo2", "venue": "paper",
         "symbol": ETH, "side": "sell", "amount": "0.5", "reduce_only": True, "leg": "close", "cycle": "c2"},
        {"event": "outcome", "ts": "2026-01-01T00:01:01Z", "client_order_id": "fo2", "status": "rejected",
         "filled": 0, "average": None, "error": "paper: reduce-only refused"},
        {"event": "intent", "ts": "2026-01-01T00:02:00Z", "client_order_id": "fo3", "venue": "paper",
         "symbol": SOL, "side": "buy", "amount": "3", "reduce_only": False, "leg": "open", "cycle": "c3"},
        {"event": "outcome", "ts": "2026-01-01T00:02:01Z", "client_order_id": "unknown", "status": "filled"},
    ]
    text = "".join(json.dumps(x) + "\n" for x in lines[:4]) + "{torn\n" + "".join(json.dumps(x) + "\n" for x in lines[4:])
    (tmp_path / "orders.jsonl").write_text(text)
    orders = dash.recent_orders(tmp_path)
    assert [o["client_order_id"] for o in orders] == ["fo3", "fo2", "fo1"]
    assert [o["status"] for o in orders] == ["unresolved", "rejected", "filled"]
    assert orders[1]["error"] == "paper: reduce-only refused" and orders[1]["reduce_only"] is True
    assert orders[2]["average"] == 95010.0 and orders[2]["filled"] == 0.01
    assert [o["client_order_id"] for o in dash.recent_orders(tmp_path, limit=2)] == ["fo3", "fo2"]
    assert dash.recent_orders(tmp_path / "nowhere") == []


def test_recent_alerts_from_alerts_file_else_last_cycle(tmp_path):
    write_json(tmp_path / "last_cycle.json", {
        "ts": "2026-01-01T00:00:05Z", "status": "degraded", "problems": ["order rejected: margin"],
        "events": [{"ts": "2026-01-01T00:00:04Z", "kind": "rejection", "level": "error", "message": "rejected"}]})
    got = dash.recent_alerts(tmp_path)
    assert got["source"] == "last_cycle.json"
    assert [(a["kind"], a["message"]) for a in got["items"]] == [("problem", "order rejected: margin"),
                                                                 ("rejection", "rejected")]
    (tmp_path / "alerts.jsonl").write_text("".join(
        json.dumps({"ts": f"2026-01-01T00:0{i}:00Z", "kind": "halt", "level": "error", "message": f"m{i}"}) + "\n"
        for i in range(5)))
    got = dash.recent_alerts(tmp_path, limit=3)
    assert got["source"] == "alerts.jsonl"
    assert [a["message"] for a in got["items"]] == ["m4", "m3", "m2"]
    assert dash.recent_alerts(tmp_path / "nowhere") == {"source": None, "items": []}


def test_paper_curve_rebuilds_equity_after_each_fill(tmp_path):
    from reconciler.venues.paper import PaperExchange

    prices = {BTC: 100_000.0, ETH: 4_000.0}
    ex = PaperExchange(tmp_path / "paper_exchange.sqlite", price_source=lambda s: {k: prices[k] for k in s},
                       initial_cash=10_000.0, fee_bps=10, slippage_bps=0)
    ex.create_order(symbol=BTC, side="buy", amount=Decimal("0.05"), reduce_only=False, client_order_id="fo1")
    prices[ETH] = 4_000.0
    ex.create_order(symbol=ETH, side="sell", amount=Decimal("1"), reduce_only=False, client_order_id="fo2")
    prices[BTC] = 110_000.0
    ex._last_prices.clear()
    ex.create_order(symbol=BTC, side="sell", amount=Decimal("0.02"), reduce_only=True, client_order_id="fo3")
    ex.close()
    points = dash.paper_curve(tmp_path / "paper_exchange.sqlite")
    values = [v for _, v in points]
    assert values[0] == pytest.approx(10_000.0)
    assert values[1] == pytest.approx(10_000.0 - 5.0)  # fee 10 bps of 5,000
    assert values[2] == pytest.approx(10_000.0 - 5.0 - 4.0)
    # BTC marked at 110k after the third fill: +0.05 x 10k gain, minus fee 0.02 x 110k x 10 bps
    assert values[3] == pytest.approx(10_000.0 - 9.0 + 500.0 - 2.2)
    assert len(points) == 4 and all(isinstance(t, str) and t.endswith("Z") for t, _ in points)


def test_equity_curve_ends_on_the_status_equity_and_falls_back_to_walkforward(tmp_path):
    from reconciler.health import collect_status

    cfg = demo_workspace(tmp_path / "ws")
    status = collect_status(cfg)
    curve = dash.equity_curve(cfg.parent, status)
    assert curve["source"] == "paper" and len(curve["points"]) == 5
    assert curve["points"][0][1] == pytest.approx(status["equity"]["by_venue"]["paper"]["start"])
    assert curve["points"][-1][1] == status["equity"]["by_venue"]["paper"]["equity"]

    # a new cycle with new fills: the next request sees them (the parsed book is cached per file change)
    write_json(cfg.parent / "strategies" / "trend" / "state.json", {"symbol": BTC, "position": 0.5})
    done = fastopt("reconcile", "--once", "--exchange", "paper", "--config", str(cfg), "--strategies",
                   str(cfg.parent / "strategies"), "--prices", str(cfg.parent / "prices.json"), "--confirm-delay", "0")
    assert done.returncode == 0, done.stderr
    status = collect_status(cfg)
    curve = dash.equity_curve(cfg.parent, status)
    assert len(curve["points"]) == 6 and curve["points"][-1][1] == status["equity"]["by_venue"]["paper"]["equity"]

    # no paper book: the walk-forward's curve from the config's account value
    other = tmp_path / "wf"
    cfg2 = make_workspace(other, weights={"a": 1.0}, states={"a": None}, account_value=2_000.0)
    write_json(other / "walkforward" / "stats.json",
               {"daily_dates": ["2024-01-01", "2024-01-02", "2024-01-03"], "managed_returns": [0.1, -0.5, 0.0]})
    curve = dash.equity_curve(other, collect_status(cfg2))
    assert curve["source"] == "walkforward" and "not live" in curve["label"]
    assert [p[0] for p in curve["points"]] == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert [p[1] for p in curve["points"]] == pytest.approx([2200.0, 1100.0, 1100.0])
    # neither: nothing to draw (the page says why)
    (other / "walkforward" / "stats.json").unlink()
    assert dash.equity_curve(other, collect_status(cfg2))["points"] == []


def test_dashboard_data_is_the_status_plus_weights_and_strict_json(tmp_path):
    from reconciler.health import collect_status

    cfg = demo_workspace(tmp_path / "ws")
    data = dash.dashboard_data(cfg, stale_after_s=3600)
    status = collect_status(cfg, stale_after_s=3600)
    assert data["status"]["rows"] == status["rows"] and data["status"]["problems"] == status["problems"]
    assert data["status"]["healthy"] is True
    assert [(w["strategy"], w["weight"]) for w in data["weights"]["weights"]] == [
        ("trend", 0.5), ("meanrev", 0.3), ("carry", 0.2)]
    assert len(data["orders"]) == 3 and {o["status"] for o in data["orders"]} == {"filled"}
    json.dumps(data, allow_nan=False)
    assert dash._finite({"a": [float("nan"), 1.0, float("inf")], 2: {"b": -float("inf")}}) == {
        "a": [None, 1.0, None], "2": {"b": None}}


def test_paper_curve_reads_without_writing(tmp_path):
    cfg = demo_workspace(tmp_path / "ws")
    db = cfg.parent / "paper_exchange.sqlite"
    before = db.read_bytes()
    dash.paper_curve(db)
    assert db.read_bytes() == before
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT COUNT(*) FROM fills").fetchone()[0] == 3
