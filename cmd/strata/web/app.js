// Live view of a strata swarm: polls /api/state once a second and draws
// the mesh, the figures and the rates; the routing panel calls /api/route.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const CX = 300, CY = 300, R = 250;

let state = null;       // last /api/state
let lastRoute = null;   // last /api/route answer
let updates = 0;

function el(id) { return document.getElementById(id); }

function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  return e;
}

// position places an address on the ring: its top 32 bits are the angle,
// clockwise from the top, so members near in XOR space are near here.
function position(addrHex) {
  const top = parseInt(addrHex.slice(0, 8), 16) / 4294967296;
  const a = top * 2 * Math.PI - Math.PI / 2;
  return [CX + R * Math.cos(a), CY + R * Math.sin(a)];
}

function clamp01(x) { return Math.max(0, Math.min(1, x)); }

// colour maps a member's figure to a hue from red (bad) to green (good).
function colour(n, by) {
  let good;
  if (by === "latency") {
    if (n.publisher) return "hsl(210, 70%, 60%)";
    if (!n.p99_ms) return "hsl(220, 10%, 55%)";
    good = 1 - clamp01((n.p99_ms - 200) / 1300);
  } else {
    good = clamp01((n.delivery - 0.9) / 0.1);
  }
  return "hsl(" + Math.round(good * 130) + ", 70%, 50%)";
}

function legend(by) {
  const items = by === "latency"
    ? [["≤ 200 ms", 1], ["850 ms", 0.5], ["≥ 1.5 s", 0]]
    : [["100 %", 1], ["95 %", 0.5], ["≤ 90 %", 0]];
  el("legend").innerHTML = items.map(([t, g]) =>
    '<span><span class="swatch" style="background:hsl(' + Math.round(g * 130) + ',70%,50%)"></span>' + t + "</span>").join("") +
    (by === "latency" ? '<span><span class="swatch" style="background:hsl(220,10%,55%)"></span>no data</span>' : "");
}

function pct(x) { return (x * 100).toFixed(x >= 0.9995 && x < 1 ? 3 : 2) + " %"; }

function bytes(n) {
  if (n >= 1e6) return (n / 1e6).toFixed(2) + " MB";
  if (n >= 1e3) return (n / 1e3).toFixed(1) + " kB";
  return n + " B";
}

function drawGraph() {
  const by = el("colour-by").value;
  const nodes = state.nodes;
  const gEdges = el("edges"), gNodes = el("nodes");
  gEdges.replaceChildren();
  for (const [a, b] of state.edges) {
    const [x1, y1] = position(nodes[a].addr), [x2, y2] = position(nodes[b].addr);
    gEdges.appendChild(svg("line", { class: "edge", x1, y1, x2, y2, "data-a": a, "data-b": b }));
  }
  if (gNodes.childElementCount !== nodes.length) {
    gNodes.replaceChildren();
    // The publisher last, so no member hides it.
    for (const n of [...nodes.slice(1), nodes[0]]) {
      const [x, y] = position(n.addr);
      const g = svg("g", {});
      const c = svg("circle", { class: "node" + (n.publisher ? " publisher" : ""), cx: x, cy: y, r: n.publisher ? 11 : 8, "data-i": n.i });
      c.appendChild(svg("title", {}));
      c.addEventListener("click", () => { el("route-from").value = String(n.i); });
      g.appendChild(c);
      const label = svg("text", { class: "node-label", x: x, y: y + 3.5 });
      label.textContent = n.publisher ? "P" : "";
      g.appendChild(label);
      gNodes.appendChild(g);
    }
  }
  const onPath = new Set(lastRoute && lastRoute.path ? lastRoute.path : []);
  gNodes.querySelectorAll("circle.node").forEach((c) => {
    const n = nodes[+c.dataset.i];
    c.setAttribute("fill", colour(n, by));
    c.dataset.delivery = n.delivery.toFixed(4);
    c.classList.toggle("on-path", onPath.has(n.i));
    c.firstChild.textContent = "member " + n.i + (n.publisher ? " (publisher)" : "") +
      "\npeer " + n.peer + "…\naddress " + n.addr.slice(0, 16) + "…" +
      "\nneighbours " + n.neighbours +
      (n.publisher ? "\nsent " + bytes(n.sent_bytes) :
        "\ndelivered " + pct(n.delivery) + " (" + bytes(n.out_bytes) + ")" +
        "\nlatency p50 " + n.p50_ms.toFixed(0) + " ms, p99 " + n.p99_ms.toFixed(0) + " ms" +
        "\nreceived per useful byte " + (n.overhead ? n.overhead.toFixed(3) : "–"));
  });
  drawRoute();
}

function drawRoute() {
  const gPath = el("route-path"), gTarget = el("target");
  gPath.replaceChildren();
  gTarget.replaceChildren();
  if (!lastRoute || !state) return;
  const [tx, ty] = position(lastRoute.target);
  gTarget.appendChild(svg("circle", { class: "target-mark", cx: tx, cy: ty, r: 15 }));
  const lbl = svg("text", { class: "target-label", x: CX + (tx - CX) * 1.12, y: CY + (ty - CY) * 1.12 + 4 });
  lbl.textContent = "target";
  gTarget.appendChild(lbl);
  if (!lastRoute.path) return;
  const pts = lastRoute.path.filter((i) => i >= 0 && i < state.nodes.length).map((i) => position(state.nodes[i].addr).join(","));
  gPath.appendChild(svg("polyline", { class: "hop", points: pts.join(" ") }));
}

function drawStats() {
  const t = state.totals, c = state.config;
  const phase = el("phase");
  phase.textContent = state.phase;
  phase.className = "phase " + state.phase;
  el("config").textContent = c.nodes + " members · " +
    (c.network === "memnet" ? "in-memory network, " + c.delay_ms + " ms ± " + c.jitter_ms + " ms, " + c.loss_percent + " % loss" : "UDP on 127.0.0.1") +
    " · " + (c.rate_bytes_per_second * 8 / 1e6).toFixed(2) + " Mbit/s for " + c.duration_seconds + " s";
  el("linked").textContent = t.linked + " / " + t.members;
  el("delivered").textContent = pct(t.delivery);
  el("delivered").dataset.value = t.delivery;
  el("latency").textContent = t.p50_ms.toFixed(0) + " / " + t.p99_ms.toFixed(0) + " ms";
  el("overhead").textContent = t.overhead ? t.overhead.toFixed(3) : "–";
  el("upload").textContent = t.upload ? t.upload.toFixed(2) + " ×" : "–";
  el("published").textContent = bytes(t.published_bytes);
  el("published").dataset.value = t.published_bytes;
  el("elapsed").textContent = state.elapsed.toFixed(1) + " s";
  document.body.dataset.elapsed = state.elapsed.toFixed(3);
}

const SERIES = [
  ["stream", "stream (published)", "#ffffff"],
  ["output", "output per member", "#6fe08f"],
  ["inbound", "received per member", "#5aa9ff"],
  ["upload", "publisher upload", "#ffb347"],
];

function drawChart() {
  const cv = el("chart"), ctx = cv.getContext("2d");
  const W = cv.width, H = cv.height, L = 52, B = 22, T = 8, Rm = 8;
  ctx.clearRect(0, 0, W, H);
  const h = state.history || [];
  let ymax = 1;
  for (const p of h) for (const [k] of SERIES) ymax = Math.max(ymax, p[k] * 8 / 1000);
  // A round step (1, 2 or 5 × a power of ten) and four or five lines.
  const mag = Math.pow(10, Math.floor(Math.log10(ymax / 4)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((st) => ymax / st <= 5);
  const lines = Math.ceil(ymax * 1.05 / step);
  ymax = lines * step;
  const t0 = h.length ? h[0].t : 0, t1 = h.length ? Math.max(h[h.length - 1].t, t0 + 1) : 1;
  const x = (t) => L + (t - t0) / (t1 - t0) * (W - L - Rm);
  const y = (v) => H - B - v / ymax * (H - B - T);
  ctx.strokeStyle = "#2a3348"; ctx.fillStyle = "#8a96ad"; ctx.font = "11px system-ui, sans-serif";
  ctx.lineWidth = 1;
  for (let i = 0; i <= lines; i++) {
    const v = step * i, yy = y(v);
    ctx.beginPath(); ctx.moveTo(L, yy); ctx.lineTo(W - Rm, yy); ctx.stroke();
    ctx.fillText(v >= 1000 ? +(v / 1000).toFixed(2) + "M" : +v.toFixed(1) + "k", 4, yy + 4);
  }
  ctx.fillText("kbit/s", 4, H - 6);
  ctx.fillText(t0.toFixed(0) + " s", L, H - 6);
  ctx.fillText(t1.toFixed(0) + " s", W - Rm - 28, H - 6);
  for (const [k, , col] of SERIES) {
    ctx.strokeStyle = col; ctx.lineWidth = 1.8;
    ctx.beginPath();
    h.forEach((p, i) => { const xx = x(p.t), yy = y(p[k] * 8 / 1000); if (i) ctx.lineTo(xx, yy); else ctx.moveTo(xx, yy); });
    ctx.stroke();
  }
  el("chart").dataset.points = h.length;
}

function chartLegend() {
  el("chart-legend").innerHTML = SERIES.map(([, name, col]) =>
    '<span><span class="swatch" style="background:' + col + '"></span>' + name + "</span>").join("");
}

function fillFrom() {
  const sel = el("route-from");
  if (sel.options.length === state.nodes.length + 1) return;
  const keep = sel.value;
  sel.replaceChildren(new Option("random member", "random"));
  for (const n of state.nodes) sel.appendChild(new Option("member " + n.i + (n.publisher ? " (publisher)" : ""), String(n.i)));
  sel.value = keep;
}

async function poll() {
  try {
    const r = await fetch("api/state", { cache: "no-store" });
    if (!r.ok) throw new Error("HTTP " + r.status);
    state = await r.json();
    drawStats();
    drawGraph();
    drawChart();
    fillFrom();
    updates++;
    document.body.dataset.updates = updates;
  } catch (e) {
    el("phase").textContent = "disconnected";
    el("phase").className = "phase";
  }
}

function randomAddress() {
  const b = new Uint8Array(32);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function showRoute(res) {
  const box = el("route-result");
  if (res.error) {
    box.innerHTML = '<span class="bad">' + res.error + "</span>";
    box.dataset.status = "error";
    return;
  }
  const path = res.path.map((i) => "member " + i).join(" → ");
  box.innerHTML =
    "<div>" + path + "</div>" +
    "<div>" + res.hops + " hop" + (res.hops === 1 ? "" : "s") + " in " + res.ms.toFixed(1) + " ms; delivered at member " + res.to +
    (res.correct ? ' <span class="ok">= the member nearest the address</span>'
      : ' <span class="bad">but the nearest member is ' + res.nearest + "</span>") + "</div>" +
    "<div><code>target " + res.target + "</code></div>" +
    "<div><code>XOR distance " + res.distance + "</code></div>";
  box.dataset.status = res.correct ? "ok" : "wrong";
}

async function route(ev) {
  if (ev) ev.preventDefault();
  const body = new URLSearchParams();
  const to = el("route-to").value.trim();
  body.set("to", to || "random");
  body.set("from", el("route-from").value);
  el("route-go").disabled = true;
  try {
    const r = await fetch("api/route", { method: "POST", body });
    const res = await r.json();
    if (!res.error) {
      lastRoute = res;
      el("route-to").value = res.target;
    }
    showRoute(res);
    if (state) drawGraph();
  } catch (e) {
    showRoute({ error: String(e) });
  } finally {
    el("route-go").disabled = false;
  }
}

// ?route=HEX (or ?route=random) routes once after the first update, and
// ?colour=latency picks the colouring: for links and screenshots.
const params = new URLSearchParams(location.search);
let autoRoute = params.get("route");
if (params.get("colour") === "latency") el("colour-by").value = "latency";

async function start() {
  await poll();
  if (autoRoute !== null && state) {
    if (autoRoute !== "random" && autoRoute !== "") el("route-to").value = autoRoute;
    autoRoute = null;
    await route();
  }
}

el("route-form").addEventListener("submit", route);
el("route-random").addEventListener("click", () => { el("route-to").value = randomAddress(); });
el("colour-by").addEventListener("change", () => { legend(el("colour-by").value); if (state) drawGraph(); });
legend(el("colour-by").value);
chartLegend();
start();
setInterval(poll, 1000);
