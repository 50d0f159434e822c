// tagpipe dashboard: fetches /api/* and draws everything as DOM + inline SVG. No dependencies, no CDN.
// All text goes in through textContent (never innerHTML), so nothing from the store can inject markup.
"use strict";
(function () {
  const COLORS = { delivered: "var(--delivered)", filtered: "var(--filtered)", rejected: "var(--rejected)",
    dead_lettered: "var(--dead_lettered)", hits: "var(--hits)", events: "var(--events)" };
  const KIND_LABEL = { delivered: "delivered", filtered: "filtered", rejected: "rejected", dead_lettered: "dead-lettered" };
  const WINDOWS = ["15m", "1h", "6h", "24h", "7d"];
  const SVGNS = "http://www.w3.org/2000/svg";
  let windowKey = localStorage.getItem("tp_window") || "1h";
  let last = null;

  // ------------------------------------------------------------------ helpers
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "style" && typeof v === "object") Object.assign(node.style, v);
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined && c !== false)
      node.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    return node;
  }
  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) node.setAttribute(k, v);
    for (const c of children.flat()) if (c) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    return node;
  }
  const fmt = (n) => Math.round(n).toLocaleString("en-US");
  function pct(share) {
    if (share === null || share === undefined) return "–";
    const v = share * 100;
    if (v === 0) return "0%";
    if (v < 10) { const t = v.toFixed(1).replace(/\.0$/, ""); return t === "0" ? "<0.1%" : t + "%"; }
    return Math.round(v) + "%";
  }
  function ago(seconds) {
    if (seconds < 90) return Math.round(seconds) + " s";
    if (seconds < 5400) return Math.round(seconds / 60) + " min";
    if (seconds < 172800) return Math.round(seconds / 3600) + " h";
    return Math.round(seconds / 86400) + " d";
  }
  const hhmm = (t) => new Date(t * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const stamp = (t) => new Date(t * 1000).toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  function niceMax(v) {
    if (v <= 0) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }
  const short = (n) => n >= 1e6 ? (n / 1e6).toFixed(1).replace(/\.0$/, "") + "M" : n >= 1e4 ? Math.round(n / 1e3) + "k"
    : n >= 1000 ? (n / 1e3).toFixed(1).replace(/\.0$/, "") + "k" : (Math.round(n * 10) / 10).toString();
  async function api(path) {
    const r = await fetch(path, { credentials: "same-origin", headers: { accept: "application/json" } });
    if (r.status === 401) { location.href = "/"; throw new Error("unauthorized"); }
    if (!r.ok) throw new Error(path + ": HTTP " + r.status);
    return r.json();
  }

  // ------------------------------------------------------------------ charts
  function frame(box, t, maxV) {
    const W = Math.max(320, box.clientWidth), H = box.clientHeight || 220;
    const m = { l: 40, r: 10, t: 10, b: 24 };
    const iw = W - m.l - m.r, ih = H - m.t - m.b;
    const root = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img" });
    const top = niceMax(maxV);
    for (let i = 0; i <= 4; i++) {
      const y = m.t + ih - (ih * i) / 4;
      root.appendChild(svg("line", { x1: m.l, x2: W - m.r, y1: y, y2: y, stroke: "#e4e8f0", "stroke-width": 1 }));
      root.appendChild(svg("text", { x: m.l - 6, y: y + 4, "text-anchor": "end", "font-size": 11, fill: "#8a93a8" }, short((top * i) / 4)));
    }
    const n = t.length, step = Math.max(1, Math.ceil(n / Math.max(2, Math.floor(iw / 70))));
    for (let i = 0; i < n; i += step) {
      const x = m.l + (iw * (i + 0.5)) / n;
      root.appendChild(svg("text", { x, y: H - 6, "text-anchor": "middle", "font-size": 11, fill: "#8a93a8" }, hhmm(t[i])));
    }
    return { root, W, H, m, iw, ih, top, n, x: (i) => m.l + (iw * (i + 0.5)) / n, y: (v) => m.t + ih - (ih * v) / top };
  }

  function hover(box, f, t, lines) {
    const tip = el("div", { class: "tip" });
    const rule = svg("line", { y1: f.m.t, y2: f.m.t + f.ih, stroke: "#161c2d", "stroke-opacity": 0.25, visibility: "hidden" });
    f.root.appendChild(rule);
    f.root.addEventListener("mousemove", (ev) => {
      const r = f.root.getBoundingClientRect();
      const i = Math.min(f.n - 1, Math.max(0, Math.floor(((ev.clientX - r.left - f.m.l) / f.iw) * f.n)));
      rule.setAttribute("x1", f.x(i)); rule.setAttribute("x2", f.x(i)); rule.setAttribute("visibility", "visible");
      tip.replaceChildren(el("b", {}, hhmm(t[i])), ...lines(i).map((l) => el("div", {}, l)));
      tip.style.display = "block";
      tip.style.left = Math.min(f.W - 160, f.x(i) + 10) + "px"; tip.style.top = "8px";
    });
    f.root.addEventListener("mouseleave", () => { tip.style.display = "none"; rule.setAttribute("visibility", "hidden"); });
    box.appendChild(tip);
  }

  function lineChart(box, t, series, unit, partial) {
    box.replaceChildren();
    const maxV = Math.max(1, ...series.flatMap((s) => s.values));
    const f = frame(box, t, maxV);
    for (const s of series) {
      // the current bucket is still filling: leave it out of the line rather than draw a false drop
      const vals = partial && s.values.length > 2 ? s.values.slice(0, -1) : s.values;
      const pts = vals.map((v, i) => [f.x(i), f.y(v)]);
      const line = pts.map((p, i) => (i ? "L" : "M") + p[0].toFixed(1) + "," + p[1].toFixed(1)).join("");
      const area = line + `L${pts[pts.length - 1][0].toFixed(1)},${f.y(0)}L${pts[0][0].toFixed(1)},${f.y(0)}Z`;
      f.root.appendChild(svg("path", { d: area, fill: s.color, "fill-opacity": 0.12, "data-series": s.key }));
      f.root.appendChild(svg("path", { d: line, fill: "none", stroke: s.color, "stroke-width": 2, "stroke-linejoin": "round" }));
    }
    box.appendChild(f.root);
    hover(box, f, t, (i) => series.map((s) => `${s.label}: ${short(s.values[i])}${unit}`));
  }

  function stackedBars(box, t, series, unit, partial) {
    box.replaceChildren();
    const totals = t.map((_, i) => series.reduce((a, s) => a + s.values[i], 0));
    const f = frame(box, t, Math.max(1, ...totals));
    const bw = Math.max(1, (f.iw / f.n) * 0.72);
    for (let i = 0; i < f.n; i++) {
      let acc = 0;
      for (const s of series) {
        const v = s.values[i];
        if (!v) continue;
        const y0 = f.y(acc), y1 = f.y(acc + v);
        f.root.appendChild(svg("rect", { x: (f.x(i) - bw / 2).toFixed(1), y: y1.toFixed(1), width: bw.toFixed(1),
          height: Math.max(0.5, y0 - y1).toFixed(1), fill: s.color, rx: 1, "data-series": s.key,
          "fill-opacity": partial && i === f.n - 1 ? 0.45 : null }));
        acc += v;
      }
    }
    box.appendChild(f.root);
    hover(box, f, t, (i) => series.filter((s) => s.values[i]).map((s) => `${s.label}: ${short(s.values[i])}${unit}`));
  }

  function legend(node, items) {
    node.replaceChildren(...items.map((it) => el("span", {}, el("i", { style: { background: it.color } }), it.label)));
  }

  // ------------------------------------------------------------------ overview
  function kpi(key, label, value, sub, color) {
    return el("div", { class: "kpi", "data-kpi": key, style: { "--c": color } },
      el("div", { class: "label" }, label), el("div", { class: "value" }, value), el("div", { class: "sub" }, sub || ""));
  }

  // the summary without the title it starts with: "… — the access token expired" -> "The access token expired"
  function rest(summary, title) {
    let r = summary.startsWith(title) ? summary.slice(title.length).replace(/^[\s.—:-]+/, "") : summary;
    return r ? r[0].toUpperCase() + r.slice(1) : "";
  }

  function renderOverview(d) {
    const T = d.totals, B = d.baseline, W = d.window;
    const alerts = document.getElementById("alerts");
    alerts.replaceChildren(...d.alerts.map((a) => el("div", { class: "alert " + a.severity, "data-alert": a.rule_id },
      el("div", {}, a.severity === "critical" ? "●" : "▲"),
      el("div", {}, el("b", {}, a.title), el("span", {}, rest(a.summary, a.title)), el("small", {}, "since " + stamp(a.since))))));

    let hitsSub = "no data last week";
    if (B.hits_usual > 0) {
      const ratio = T.hits / B.hits_usual, change = ratio - 1;
      const text = ratio >= 2 ? "▲ " + (Math.round(ratio * 10) / 10) + "×" : (change >= 0 ? "▲ " : "▼ ") + pct(Math.abs(change));
      hitsSub = el("span", {}, el("span", { class: change >= 0 ? "up" : "down" }, text), " vs usual " + fmt(B.hits_usual));
    }
    const final = T.delivered + T.rejected + T.dead_lettered;
    const oldest = Math.max(0, ...d.backlog.map((b) => b.oldest_age));
    const waiting = d.backlog.reduce((a, b) => a + b.messages, 0);
    document.getElementById("kpis").replaceChildren(
      kpi("hits", "Hits", fmt(T.hits), hitsSub, "var(--hits)"),
      kpi("events", "Events", fmt(T.events), `${fmt(T.collect_rejected)} hits rejected at collect`, "var(--events)"),
      kpi("delivered", "Delivered", fmt(T.delivered), final ? pct(T.delivered / final) + " of sends" : "nothing sent yet", "var(--delivered)"),
      kpi("failed", "Failed", fmt(T.failed), `${pct(T.failure_rate)} · usual ${pct(B.failure_rate)}`, "var(--dead_lettered)"),
      kpi("filtered", "Filtered", fmt(T.filtered), `${fmt(T.consent)} consent · ${fmt(T.duplicate)} duplicates`, "var(--filtered)"),
      kpi("backlog", "Queued", fmt(waiting), waiting ? "oldest " + ago(oldest) : "all caught up", "var(--rejected)"));

    const t = d.series.t, pm = d.series.per_minute, unit = "/min";
    const rate = (k) => d.series[k].map((v) => v * pm);
    const traffic = [{ key: "hits", label: "hits", color: COLORS.hits, values: rate("hits") },
      { key: "events", label: "events", color: COLORS.events, values: rate("events") }];
    lineChart(document.getElementById("chart-traffic"), t, traffic, unit, d.series.partial_last);
    legend(document.getElementById("legend-traffic"), traffic);
    const outs = ["delivered", "filtered", "rejected", "dead_lettered"].map((k) => ({ key: k, label: KIND_LABEL[k], color: COLORS[k], values: rate(k) }));
    stackedBars(document.getElementById("chart-outcomes"), t, outs, unit, d.series.partial_last);
    legend(document.getElementById("legend-outcomes"), outs);

    document.getElementById("dests").replaceChildren(...(d.destinations.length ? d.destinations.map(destCard)
      : [el("div", { class: "card empty" }, "No destination has received events in this window.")]));

    const reasons = d.reasons.slice(0, 8);
    barList(document.getElementById("reasons"), reasons, (r) => [el("b", {}, r.label + " · "), r.text + " ", el("code", {}, r.reason)],
      (r) => COLORS[r.outcome], "No failures in " + W.label + ".", "reason");
    barList(document.getElementById("filtered"), d.filtered.slice(0, 8), (r) => [el("b", {}, r.label + " · "), r.reason === "duplicate" ? "duplicates (dedup)" : r.reason === "consent" ? "consent denied" : r.text],
      () => COLORS.filtered, "Nothing filtered in " + W.label + ".", "filtered");
    barList(document.getElementById("collect"), d.collect_rejections.slice(0, 8), (r) => [r.text + " ", el("code", {}, r.reason)],
      () => COLORS.rejected, "No hit rejected in " + W.label + ".", "collect");
    const bl = document.getElementById("backlog");
    bl.replaceChildren(d.backlog.length ? el("table", { class: "small" },
      el("tr", {}, el("th", {}, "queue"), el("th", { class: "num" }, "waiting"), el("th", { class: "num" }, "oldest")),
      d.backlog.map((b) => el("tr", { "data-queue": b.subscription }, el("td", {}, b.subscription), el("td", { class: "num" }, fmt(b.messages)),
        el("td", { class: "num " + (b.oldest_age > 900 ? "down" : "") }, b.messages ? ago(b.oldest_age) : "–"))))
      : el("div", { class: "empty" }, "No queue information."));
  }

  function barList(node, rows, text, color, empty, kind) {
    if (!rows.length) { node.replaceChildren(el("div", { class: "empty" }, empty)); return; }
    const max = Math.max(...rows.map((r) => r.count));
    node.replaceChildren(...rows.map((r) => el("div", { class: "row", "data-kind": kind, "data-reason": r.reason, "data-destination": r.destination || "" },
      el("div", {}, el("div", { class: "t", title: r.text }, ...text(r)),
        el("div", { class: "track" }, el("div", { class: "fill", style: { width: (100 * r.count / max).toFixed(1) + "%", background: color(r) } }))),
      el("div", { class: "num", "data-field": "count" }, fmt(r.count)))));
  }

  function destCard(x) {
    const final = x.delivered + x.rejected + x.dead_lettered, total = final + x.filtered;
    const seg = (k) => total ? el("span", { style: { width: (100 * x[k] / total) + "%", background: COLORS[k] }, title: KIND_LABEL[k] + ": " + fmt(x[k]) }) : null;
    const was = x.baseline_failure_rate === null ? "" : ` · usual ${pct(x.baseline_failure_rate)}`;
    const mq = x.match_quality.filter((q) => q.share !== null || q.baseline !== null);
    return el("div", { class: "card dest", "data-dest": x.id },
      el("div", { class: "top" }, el("div", { class: "name" }, x.label),
        el("div", { class: "rate" + (final && x.failure_rate > 0.01 && x.failure_rate > 2 * (x.baseline_failure_rate || 0) ? " bad" : ""),
          "data-field": "failure_rate" }, final ? `${pct(x.failure_rate)} failed${was}` : "no sends")),
      el("div", { class: "stack" }, ["delivered", "filtered", "rejected", "dead_lettered"].map(seg)),
      el("div", { class: "counts" }, ["delivered", "filtered", "rejected", "dead_lettered"].map((k) =>
        el("div", { "data-field": k }, el("b", { style: { color: x[k] && k !== "delivered" && k !== "filtered" ? COLORS[k] : null } }, fmt(x[k])), KIND_LABEL[k]))),
      el("div", { class: "mq" }, el("h3", { title: "share of delivered events carrying each match key; the tick is the 7-day baseline" }, "Match keys · % of delivered"),
        mq.length ? mq.map((q) => el("div", { class: "mqrow", "data-key": q.key },
          el("div", { title: q.key }, q.label),
          el("div", { class: "track", title: q.baseline === null ? "" : "7-day baseline " + pct(q.baseline) },
            el("div", { class: "fill", style: { width: (100 * (q.share || 0)) + "%", background: q.baseline !== null && q.share !== null && q.share < q.baseline * 0.75 ? COLORS.dead_lettered : "var(--accent)" } }),
            q.baseline === null ? null : el("div", { class: "tick", style: { left: `calc(${100 * q.baseline}% - 1px)` } })),
          el("div", { class: "num", "data-field": "share" }, pct(q.share))))
          : el("div", { class: "empty" }, "No delivered events yet.")),
      (x.match_quality_estimate || []).length ? el("div", { class: "mq", "data-field": "emq" },
        el("h3", { title: "tagpipe's estimate from the match keys sent, weighted in the order the vendor documents them; not the vendor's own score" },
          "Estimated match quality · 0–10"),
        el("table", { class: "small" }, el("tr", {}, el("th", {}, "event"), el("th", { class: "num" }, "now"), el("th", { class: "num" }, "7 days")),
          x.match_quality_estimate.map((e) => el("tr", { "data-event": e.event_name },
            el("td", {}, e.event_name),
            el("td", { class: "num" + (e.baseline !== null && e.score < e.baseline - 1 ? " down" : ""), "data-field": "score" }, e.score.toFixed(1)),
            el("td", { class: "num", "data-field": "baseline" }, e.baseline === null ? "–" : e.baseline.toFixed(1)))))) : null);
  }

  // ------------------------------------------------------------------ debug view
  async function renderTokens(selected) {
    const d = await api("/api/debug/tokens");
    const box = document.getElementById("tokens");
    box.replaceChildren(...(d.tokens.length ? d.tokens.map((t) => el("button", {
      class: t.token === selected ? "active" : "", "data-token": t.token,
      onclick: () => { location.hash = "#debug/" + encodeURIComponent(t.token); } },
    el("b", {}, t.token), el("small", {}, `${t.hits} hit${t.hits === 1 ? "" : "s"} · last ${stamp(t.last_at)}`)))
      : [el("div", { class: "empty" }, "No traced hits yet.")]));
  }

  // for reading: drop empty values, and show [key, value] pairs (query strings) as an object
  function prune(v) {
    if (Array.isArray(v)) {
      if (v.length && v.every((p) => Array.isArray(p) && p.length === 2 && typeof p[0] === "string")) {
        const o = {};
        for (const [k, x] of v) o[k] = k in o ? [].concat(o[k], x) : x;
        return o;
      }
      return v.map(prune);
    }
    if (v && typeof v === "object") {
      const o = {};
      for (const [k, x] of Object.entries(v)) {
        const p = prune(x);
        if (p === null || p === undefined || p === "" || (typeof p === "object" && !Object.keys(p).length)) continue;
        o[k] = p;
      }
      return o;
    }
    return v;
  }
  // over BigQuery: what the request's queries scanned (and cost), under what they found
  const scanLine = (d) => d.scanned ? [el("div", { class: "empty", "data-field": "scanned" }, d.scanned.text)] : [];
  const pre = (obj) => el("pre", {}, typeof obj === "string" ? obj : JSON.stringify(prune(obj), null, 2));
  const fold = (label, obj, open) => el("details", open ? { open: "" } : {}, el("summary", {}, label), pre(obj));

  function destRow(dst, deliveries, traced) {
    const sent = deliveries.filter((x) => x.destination === dst.destination);
    const o = dst.outcome;
    const badge = o ? el("span", { class: "badge " + o.outcome }, KIND_LABEL[o.outcome] || o.outcome) : el("span", { class: "badge pending" }, "in progress");
    return el("tr", { "data-destination": dst.destination },
      el("td", {}, el("b", {}, dst.label)),
      el("td", {}, dst.task ? [el("div", {}, dst.task.event_name), fold("payload", dst.task.payload)] : el("span", { class: "empty" }, "not sent")),
      el("td", {}, dst.task && dst.task.identifiers.length ? dst.task.identifiers.map((k) => el("code", {}, k)).reduce((a, c) => a.concat([c, " "]), []) : "–"),
      el("td", {}, sent.length ? sent.map((s) => el("div", { "data-attempt": s.attempt },
        el("div", { class: "empty" }, `attempt ${s.attempt} · ${stamp(s.at)}`),
        el("div", {}, el("code", {}, s.request.method), " ", s.request.url),
        fold("request body", s.request.body),
        el("div", {}, "→ ", el("b", {}, s.response.status === null || s.response.status === undefined ? "no HTTP" : "HTTP " + s.response.status),
          s.response.elapsed_ms ? ` in ${s.response.elapsed_ms} ms` : "", " · verdict ", el("code", {}, s.verdict || "?")),
        fold("response", s.response.body))) : el("span", { class: "empty" }, traced ? "–" : "kept only for hits with a debug token")),
      el("td", {}, badge, o ? el("div", { style: { marginTop: "4px", fontSize: "12px" } },
        o.outcome === "delivered" ? (o.detail ? o.detail + " " : "") : o.text + " ",
        o.reason && o.outcome !== "delivered" ? el("code", {}, o.reason) : "",
        el("div", { class: "empty" }, stamp(o.at))) : ""));
  }

  function hitCard(h) {
    const raw = h.raw || {};
    const outcomes = h.events.flatMap((e) => e.destinations.map((d) => d.outcome).filter(Boolean));
    const bad = outcomes.some((o) => o.outcome === "rejected" || o.outcome === "dead_lettered") || (h.hit_outcomes || []).length;
    return el("div", { class: "hit", "data-hit": h.hit_id },
      el("div", { class: "head" }, el("b", {}, h.received_at ? stamp(h.received_at) : "received"),
        el("span", { class: "badge" }, raw.source || "?"), el("code", {}, `${raw.method || ""} ${raw.path || ""}`),
        el("span", { class: "empty" }, "hit " + h.hit_id.slice(0, 12)), el("span", { class: "spacer" }),
        Object.entries(outcomes.reduce((a, o) => ((a[o.outcome] = (a[o.outcome] || 0) + 1), a), {}))
          .map(([k, n]) => el("span", { class: "badge " + k }, `${n} ${KIND_LABEL[k] || k}`))),
      el("div", { class: "steps" },
        el("div", { class: "step" }, el("h4", {}, "1 · Received by collect"), fold("raw hit (PII scrubbed)", raw)),
        el("div", { class: "step" }, el("h4", {}, `2 · Parsed into ${h.events.length} event${h.events.length === 1 ? "" : "s"}`),
          h.events.map((e) => fold(`${e.name} · event_id ${e.event_id}`, e.event))),
        el("div", { class: "step " + (bad ? "bad" : "ok") }, el("h4", {}, "3 · Sent to destinations"),
          h.events.map((e) => el("div", { "data-event": e.event_uid }, el("div", { style: { margin: "6px 0 2px", fontWeight: 600 } }, e.name),
            e.destinations.length ? el("table", { class: "dl" },
              el("tr", {}, ["Destination", "Mapped as", "Match keys", "Request → response", "Outcome"].map((x) => el("th", {}, x))),
              e.destinations.map((dst) => destRow(dst, h.deliveries, h.traced)))
              : el("div", { class: "empty" }, "No destination took this event."))),
          (h.hit_outcomes || []).map((o) => el("div", { "data-hit-outcome": o.destination }, el("b", {}, o.label), " ",
            el("span", { class: "badge " + o.outcome }, KIND_LABEL[o.outcome] || o.outcome), " ", o.text, " ",
            el("code", {}, o.reason), " ", el("span", { class: "empty" }, stamp(o.at))))),
        (h.failures || []).length ? el("div", { class: "step bad" }, el("h4", {}, "Failures on record"),
          h.failures.map((f) => el("div", { "data-failure": f.reason }, el("code", {}, f.stage), " ", f.text, " ",
            el("code", {}, f.reason), " ", el("span", { class: "empty" }, stamp(f.at))))) : null));
  }

  async function setUpTester() {
    const d = await api("/api/destinations");
    if (!d.test_send || !d.destinations.length) return;
    document.getElementById("tester").hidden = false;
    document.getElementById("test-dest").replaceChildren(...d.destinations.map((x) => el("option", { value: x.id }, x.label)));
    async function send(dest, live) {
      const box = document.getElementById("trace");
      box.replaceChildren(el("div", { class: "card empty" }, "Sending a test event to " + dest + "…"));
      const r = await fetch("/api/test-send/" + encodeURIComponent(dest), { method: "POST", credentials: "same-origin",
        headers: { "content-type": "application/json", "x-tagpipe-action": "test-send" },
        body: JSON.stringify({ test_event_code: document.getElementById("test-code").value.trim() || null, live }) });
      const rep = await r.json();
      // a vendor without a test mode: sent only when the user asks again, knowing it records a real conversion
      const liveButton = rep.needs_live ? el("button", { id: "test-send-live", type: "button",
        style: { font: "inherit", padding: "6px 12px", background: "#c0392b", color: "#fff", border: "0", borderRadius: "6px" } },
        "Send live (records a real conversion)") : null;
      if (liveButton) liveButton.addEventListener("click", () => send(dest, true));
      box.replaceChildren(el("div", { class: "card", id: "test-result", "data-ok": rep.ok ? "1" : "0" },
        el("h2", {}, "Test send · ", rep.label || dest, " ", el("span", { class: "badge " + (rep.ok ? "delivered" : "dead_lettered") }, rep.ok ? "accepted" : "failed")),
        el("div", {}, rep.mode || rep.reason || ""),
        el("div", { style: { margin: "6px 0" } }, el("b", {}, rep.text || rep.reason || ""), " ", rep.reason && !rep.needs_live ? el("code", {}, rep.reason) : ""),
        liveButton,
        rep.request ? fold("request (secrets masked)", rep.request, false) : null,
        rep.response ? fold("vendor answer · HTTP " + rep.response.status, rep.response.body, true) : null));
    }
    document.getElementById("test-send").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      await send(document.getElementById("test-dest").value, false);
    });
  }

  async function renderLookup(q) {
    const box = document.getElementById("trace");
    document.getElementById("lookup-q").value = q;
    const d = await api("/api/lookup?q=" + encodeURIComponent(q));
    box.replaceChildren(el("h2", { style: { margin: "0 0 10px", fontSize: "16px" } }, "Hits for ", el("code", {}, d.query)),
      ...(d.hits.length ? d.hits.map(hitCard) : [el("div", { class: "card empty" }, "Nothing on record for this id.")]), ...scanLine(d));
  }

  async function renderTrace(token) {
    const box = document.getElementById("trace");
    if (!token) { box.replaceChildren(el("div", { class: "card empty" }, "Pick a debug token on the left.")); return; }
    const d = await api("/api/debug/" + encodeURIComponent(token));
    box.replaceChildren(el("h2", { style: { margin: "0 0 10px", fontSize: "16px" } }, "Debug token ", el("code", {}, d.token)),
      ...(d.hits.length ? d.hits.map(hitCard) : [el("div", { class: "card empty" }, "No hits traced for this token.")]), ...scanLine(d));
  }

  // ------------------------------------------------------------------ wiring
  function route() {
    const h = location.hash || "#overview";
    const debug = h.startsWith("#debug") || h.startsWith("#lookup/");
    document.getElementById("overview").hidden = debug;
    document.getElementById("debug").hidden = !debug;
    document.getElementById("tab-overview").className = debug ? "" : "active";
    document.getElementById("tab-debug").className = debug ? "active" : "";
    document.getElementById("windows").style.visibility = debug ? "hidden" : "visible";
    if (h.startsWith("#lookup/")) return { lookup: decodeURIComponent(h.slice("#lookup/".length)) };
    return debug ? decodeURIComponent(h.slice("#debug/".length)) || null : undefined;
  }

  async function refresh() {
    const token = route();
    try {
      if (token === undefined) {
        last = await api("/api/summary?window=" + windowKey);
        renderOverview(last);
        const scanned = document.getElementById("scanned");
        scanned.hidden = !last.scanned;
        scanned.textContent = last.scanned ? last.scanned.text : "";
      } else if (token && token.lookup !== undefined) {
        await renderTokens(null);
        await renderLookup(token.lookup);
      } else {
        await renderTokens(token);
        await renderTrace(token);
      }
      document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
      document.body.setAttribute("data-ready", "1");
    } catch (e) {
      document.getElementById("updated").textContent = "update failed: " + e.message;
    }
  }

  document.getElementById("windows").replaceChildren(...WINDOWS.map((w) => el("button", {
    class: w === windowKey ? "active" : "", "data-window": w,
    onclick: (ev) => { windowKey = w; localStorage.setItem("tp_window", w);
      for (const b of document.querySelectorAll("#windows button")) b.className = b === ev.target ? "active" : "";
      refresh(); } }, w)));
  document.getElementById("lookup").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = document.getElementById("lookup-q").value.trim();
    if (q) location.hash = "#lookup/" + encodeURIComponent(q);
  });
  setUpTester().catch(() => {});
  window.addEventListener("hashchange", refresh);
  let resizeTimer = null;
  window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(() => last && route() === undefined && renderOverview(last), 150); });
  setInterval(() => { if (route() === undefined) refresh(); }, 15000);
  refresh();
})();
