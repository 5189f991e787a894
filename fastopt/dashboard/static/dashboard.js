// fastopt dashboard: fetches api/dashboard every few seconds and renders it. Plain DOM, no library.
// Every value is set with textContent (never as HTML): messages come from files and exchanges.
"use strict";

(function () {
  const REFRESH_MS = (typeof FASTOPT_DASHBOARD === "object" && FASTOPT_DASHBOARD.refresh_ms) || 5000;
  const TOKEN = new URLSearchParams(window.location.search).get("token");
  const SVG = "http://www.w3.org/2000/svg";
  let lastOk = null;

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined) continue;
      if (k === "class") node.className = v;
      else if (k.startsWith("data-")) node.setAttribute(k, String(v));
      else node[k] = v;
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function isNum(v) { return typeof v === "number" && Number.isFinite(v); }

  // money: 2 decimals with thousands separators; amounts: up to 10 significant digits
  function money(v) {
    return isNum(v) ? v.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 }) : "-";
  }
  function signedMoney(v) { return isNum(v) ? (v > 0 ? "+" : "") + money(v) : "-"; }
  function amount(v) {
    if (typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v))) v = Number(v);
    return isNum(v) ? Number(v.toPrecision(10)).toLocaleString("en-US", { maximumFractionDigits: 10 }) : "-";
  }
  function price(v) {
    return isNum(v) ? Number(v.toPrecision(8)).toLocaleString("en-US", { maximumFractionDigits: 8 }) : "-";
  }
  function age(seconds) {
    if (!isNum(seconds)) return "never";
    if (seconds < 0) return "in the future";
    if (seconds < 90) return seconds.toFixed(0) + " s ago";
    if (seconds < 5400) return (seconds / 60).toFixed(1) + " min ago";
    if (seconds < 172800) return (seconds / 3600).toFixed(1) + " h ago";
    return (seconds / 86400).toFixed(1) + " d ago";
  }
  function shortTs(ts) { return ts ? String(ts).replace("T", " ").replace(/\.\d+/, "").replace(/(Z|\+00:00)$/, "") : "-"; }

  function numCell(field, value, text, extraClass) {
    return el("td", { class: "num" + (extraClass ? " " + extraClass : ""), "data-field": field,
                      "data-value": value === null || value === undefined ? "" : value }, text);
  }

  function renderHealth(status) {
    const box = $("health");
    const healthy = status.healthy === true;
    box.className = "banner " + (healthy ? "healthy" : "unhealthy");
    box.setAttribute("data-healthy", healthy ? "true" : "false");
    const problems = status.problems || [];
    $("health-title").textContent = healthy ? "HEALTHY" : "UNHEALTHY: " + problems.length + " problem(s)";
    $("problems").replaceChildren(...problems.map((p) => el("li", { class: "problem" }, p)));
    $("warnings").replaceChildren(...(status.warnings || []).map((w) => el("li", { class: "warning" }, w)));
  }

  function fact(label, value, key, cls) {
    return [el("dt", {}, label), el("dd", { "data-fact": key, class: cls || null }, value)];
  }

  function renderFacts(status) {
    const lock = status.lock || {};
    const halted = status.halted || {};
    const cycle = status.last_cycle;
    const eq = status.equity || {};
    const stale = status.stale_after_s;
    const hbAge = (status.heartbeat || {}).age_s;
    const intents = status.unresolved_intents || [];
    const paper = (eq.by_venue || {}).paper || {};
    const pnl = isNum(paper.pnl) ? paper.pnl : eq.pnl_vs_account_value;
    const pnlPct = isNum(paper.pnl_pct) ? paper.pnl_pct
      : (isNum(eq.pnl_vs_account_value) && isNum(eq.account_value) && eq.account_value > 0
        ? 100 * eq.pnl_vs_account_value / eq.account_value : null);
    const rows = [
      fact("heartbeat", age(hbAge), "heartbeat", !isNum(hbAge) || hbAge > stale ? "bad" : "good"),
      fact("run lock", lock.held === true ? "held by pid " + (lock.pid ?? "?") : lock.held === false ? "not held" : "unknown",
           "lock"),
      fact("kill switch STOP", status.stop ? "PRESENT: no order is sent" : "absent", "stop", status.stop ? "bad" : "good"),
      fact("HALTED", halted.present ? "PRESENT: trading halted" : "no", "halted", halted.present ? "bad" : "good"),
      fact("unresolved intents", String(intents.length), "unresolved", intents.length ? "bad" : "good"),
      fact("last cycle", cycle ? (cycle.status + ", " + age(cycle.age_s) + ": " + (cycle.sent ?? 0) + " of "
           + (cycle.planned ?? 0) + " order(s) sent" + (cycle.message ? " (" + cycle.message + ")" : "")) : "none yet",
           "last_cycle", cycle && cycle.status === "ok" ? "good" : "bad"),
      fact("equity", money(eq.total), "equity"),
      fact("PnL", isNum(pnl) ? signedMoney(pnl) + (isNum(pnlPct) ? " (" + (pnlPct >= 0 ? "+" : "")
           + pnlPct.toFixed(2) + " %)" : "") : "-", "pnl", isNum(pnl) ? (pnl >= 0 ? "good" : "bad") : null),
      fact("account value (config)", money((status.config || {}).account_value), "account_value"),
      fact("config written", age((status.config || {}).age_s), "config_age"),
    ];
    $("facts").replaceChildren(...rows.flat());
  }

  function renderPositions(status) {
    const rows = status.rows || [];
    const snap = status.snapshot;
    $("snapshot-age").textContent = snap ? "(snapshot " + shortTs(snap.ts) + ", " + age(snap.age_s) + ")" : "";
    $("positions-empty").hidden = rows.length > 0;
    $("positions").querySelector("tbody").replaceChildren(...rows.map((r) => el("tr", { "data-symbol": r.symbol },
      el("td", { "data-field": "symbol" }, r.symbol),
      el("td", { "data-field": "exchange" }, r.exchange ?? "-"),
      numCell("price", r.price, price(r.price)),
      numCell("target_amount", r.target_amount, amount(r.target_amount)),
      numCell("live_amount", r.live_amount, amount(r.live_amount)),
      numCell("target_notional", r.target_notional, money(r.target_notional)),
      numCell("live_notional", r.live_notional, money(r.live_notional)),
      numCell("gap_notional", r.gap_notional, signedMoney(r.gap_notional),
              isNum(r.gap_notional) && Math.abs(r.gap_notional) >= 0.005 ? (r.gap_notional > 0 ? "pos" : "neg") : ""))));
  }

  function renderWeights(data, status) {
    const w = data.weights || {};
    const ages = {};
    for (const s of status.states || []) ages[s.strategy] = s;
    $("weights-meta").textContent = w.error ? "(" + w.error + ")"
      : "(account value " + money(w.account_value) + ", leverage " + (w.leverage ?? "-") + ")";
    const max = Math.max(1e-12, ...(w.weights || []).map((r) => r.weight));
    $("weights").querySelector("tbody").replaceChildren(...(w.weights || []).map((r) => {
      const bar = svg("svg", { width: 120, height: 10, viewBox: "0 0 120 10", "aria-hidden": "true" });
      bar.append(svg("rect", { class: "bar", x: 0, y: 0, height: 10, width: (120 * r.weight / max).toFixed(1) }));
      const st = ages[r.strategy];
      return el("tr", { "data-strategy": r.strategy },
        el("td", {}, r.strategy),
        numCell("weight", r.weight, (100 * r.weight).toFixed(2) + " %"),
        el("td", {}, bar),
        el("td", {}, r.exchange ?? "default"),
        el("td", { class: "num" + (st && st.error ? " neg" : "") }, st ? (st.exists ? age(st.age_s) : "no state.json") : "-"));
    }));
  }

  function renderEquity(curve) {
    const box = $("equity-chart");
    const points = (curve.points || []).filter((p) => isNum(p[1]));
    $("equity-label").textContent = curve.label ? "(" + curve.label + ")" : "";
    box.setAttribute("data-source", curve.source || "");
    box.setAttribute("data-points", String(points.length));
    if (points.length < 2) {
      box.replaceChildren(el("p", { class: "muted" }, curve.error || "no equity data yet: no paper fills and no "
        + "walkforward/stats.json next to the config"));
      return;
    }
    const W = 640, H = 220, L = 70, R = 10, T = 10, B = 28;
    const values = points.map((p) => p[1]);
    let lo = Math.min(...values), hi = Math.max(...values);
    if (hi - lo < 1e-9 * Math.max(1, Math.abs(hi))) { lo -= 1; hi += 1; }
    // x by time when every point has a parseable time (else evenly spaced)
    const times = points.map((p) => Date.parse(p[0]));
    const byTime = times.every(Number.isFinite) && times[times.length - 1] > times[0];
    const x = (i) => L + (W - L - R) * (byTime ? (times[i] - times[0]) / (times[times.length - 1] - times[0])
      : i / (points.length - 1));
    const y = (v) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
    const chart = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": "equity curve" });
    chart.append(svg("line", { class: "chart-axis", x1: L, y1: H - B, x2: W - R, y2: H - B }));
    chart.append(svg("line", { class: "chart-axis", x1: L, y1: T, x2: L, y2: H - B }));
    const coords = points.map((p, i) => x(i).toFixed(1) + "," + y(p[1]).toFixed(1));
    chart.append(svg("polygon", { class: "chart-area",
      points: L + "," + (H - B) + " " + coords.join(" ") + " " + x(points.length - 1).toFixed(1) + "," + (H - B) }));
    chart.append(svg("polyline", { class: "chart-line", points: coords.join(" ") }));
    chart.append(svg("text", { class: "chart-text", x: L - 6, y: T + 10, "text-anchor": "end" }, money(hi)));
    chart.append(svg("text", { class: "chart-text", x: L - 6, y: H - B, "text-anchor": "end" }, money(lo)));
    chart.append(svg("text", { class: "chart-text", x: L, y: H - 8 }, shortTs(points[0][0])));
    chart.append(svg("text", { class: "chart-text", x: W - R, y: H - 8, "text-anchor": "end" },
                     shortTs(points[points.length - 1][0])));
    const last = values[values.length - 1];
    chart.append(svg("text", { class: "chart-text", x: W - R, y: T + 10, "text-anchor": "end", "data-last": last },
                     "last " + money(last)));
    box.replaceChildren(chart);
  }

  function renderOrders(orders) {
    $("orders").querySelector("tbody").replaceChildren(...orders.map((o) => el("tr", { "data-cid": o.client_order_id },
      el("td", {}, shortTs(o.ts)),
      el("td", {}, o.symbol ?? "-"),
      el("td", {}, o.venue ?? "-"),
      el("td", { class: o.side === "buy" ? "pos" : "neg" }, (o.side || "-") + (o.reduce_only ? " (reduce-only)" : "")),
      numCell("amount", o.amount, amount(o.amount)),
      el("td", {}, o.leg ?? "-"),
      el("td", { "data-field": "status", class: o.status === "filled" ? "pos" : (o.status === "unresolved"
        || o.status === "rejected" ? "neg" : "") }, o.status ?? "-"),
      numCell("filled", o.filled, amount(o.filled)),
      numCell("average", o.average, price(o.average)),
      el("td", { class: o.error ? "err" : "" }, o.error ?? ""))));
  }

  function renderAlerts(alerts) {
    $("alerts-source").textContent = alerts.source ? "(" + alerts.source + ")" : "";
    const items = alerts.items || [];
    $("alerts").replaceChildren(...(items.length ? items.map((a) => el("li", { class: a.level || "" },
      shortTs(a.ts) + "  " + (a.kind || "") + ": " + (a.message || ""))) : [el("li", { class: "muted" }, "none")]));
  }

  function render(data) {
    const status = data.status || {};
    $("where").textContent = status.folder || "";
    renderHealth(status);
    renderFacts(status);
    renderPositions(status);
    renderWeights(data, status);
    renderEquity(data.equity_curve || {});
    renderOrders(data.orders || []);
    renderAlerts(data.alerts || {});
  }

  async function refresh() {
    try {
      const response = await fetch("api/dashboard", { cache: "no-store",
        headers: TOKEN ? { Authorization: "Bearer " + TOKEN } : {} });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const data = await response.json();
      render(data);
      lastOk = new Date();
      $("updated").className = "muted";
      $("updated").textContent = "updated " + lastOk.toISOString().slice(11, 19) + " UTC, every "
        + (REFRESH_MS / 1000) + " s";
      document.body.setAttribute("data-loaded", "1");
    } catch (err) {
      $("updated").className = "stale";
      $("updated").textContent = "cannot reach the dashboard (" + err.message + ")"
        + (lastOk ? "; data from " + lastOk.toISOString().slice(11, 19) + " UTC" : "");
    } finally {
      setTimeout(refresh, REFRESH_MS);
    }
  }

  refresh();
})();
