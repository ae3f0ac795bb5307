// dashboard.js: awaitd's dashboard, served by the daemon itself (daemon/web/).
// It polls the JSON of /api/ (the documents `awaitctl --json` prints) once a
// second and redraws the view: "#" the jobs (by state, filtered, paged),
// "#job/ID" one job with its trace drawn to scale in SVG, its progress and the
// actions (cancel, retry, signal: POSTs that carry the token typed in the
// header as "Authorization: Bearer"), "#scripts".
// Every value from the daemon goes into the page as text (textContent), never
// as markup, so a job's args cannot inject anything.
"use strict";

const STATES = ["queued", "running", "waiting", "blocked", "succeeded", "failed", "dead",
                "cancelled"];
const PAGE = 50;
const COLORS = { done: "#12b76a", ok: "#12b76a", failed: "#f04438", cancelled: "#98a2b3",
                 waiting: "#7a5af8", running: "#2e90fa" };
let filter = { state: "", name: "" };
let pages = [];       // the `before` ids of the pages behind the current one
let before = 0;       // the current page: jobs older than this id (0: the newest)
let polling = null;
let prevStats = null;  // the last /api/stats, for the lag and fsync time per interval
let actionBox = null;  // the job page's actions, kept across redraws (their inputs)

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "onclick") e.onclick = v; else if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

async function api(path, init) {
  const r = await fetch(path, Object.assign({ cache: "no-store" }, init || {}));
  const body = await r.json();
  if (!r.ok) throw new Error((body.error && body.error.message) || r.statusText);
  return body;
}

// an action on a job: POST with the token of the header (sessionStorage keeps it)
function act(id, what, body) {
  const token = document.getElementById("token").value;
  return api("/api/jobs/" + id + "/" + what, { method: "POST",
    headers: { "Authorization": "Bearer " + token, "Content-Type": "application/json" },
    body: body === undefined ? "" : JSON.stringify(body) });
}

function progressBar(p) {
  const pct = Math.floor(Math.min(1, Math.max(0, p.fraction)) * 100);
  const bar = el("span", { class: "bar" }, el("i", {}));
  bar.firstChild.style.width = pct + "%";
  return el("span", { class: "progress", "data-pct": pct }, " " + pct + "%", bar,
            p.message ? " " + p.message : "");
}

function duration(ms) {
  if (ms < 1000) return Math.round(ms) + "ms";
  if (ms < 60000) return (ms / 1000).toFixed(1) + "s";
  if (ms < 3600000) return Math.floor(ms / 60000) + "m" + Math.round(ms % 60000 / 1000) + "s";
  return (ms / 3600000).toFixed(1) + "h";
}

function when(t) {
  return t ? new Date(t).toLocaleString() : "-";
}

function text(v) {
  if (v === null || v === undefined) return "-";
  return typeof v === "string" ? v : JSON.stringify(v);
}

function waitText(j) {
  const w = j.wait;
  if (!w) return "";
  const until = w.until ? " until " + when(w.until) : "";
  return (w.cancelling ? "cancelling: " : "") + (w.signal ? 'signal "' + w.signal + '"' : "sleep") + until;
}

// what a job that may not start waits behind (show's "held")
function heldText(h) {
  const until = h.until ? " until " + when(h.until) : "";
  if (h.kind === "after") return "after jobs " + h.jobs.join(", ") + " (not succeeded yet)";
  if (h.kind === "pause") return "paused" + (h.key ? " for key " + h.key : "") + (until || " until resumed");
  if (h.kind === "limit") return "limit by " + h.by + " = " + h.key + ": " + h.running + " of " + h.of + " running";
  if (h.kind === "rate") return "rate limit by " + h.by + " = " + h.key + ": " + h.starts + " of " + h.of +
    " starts in " + duration(h.per);
  return h.kind;
}

function header(st) {
  document.getElementById("version").textContent = st.version;
  document.getElementById("uptime").textContent = duration(st.uptime_s * 1000);
  document.getElementById("tasks").textContent = st.tasks_running;
  document.getElementById("workers").textContent =
    st.workers === undefined ? "-" : st.workers_busy + "/" + st.workers + " busy";
  document.getElementById("scripts").textContent =
    st.scripts + (st.scripts_failed ? " (" + st.scripts_failed + " failed)" : "");
}

// the loop's lag (ms of lag per second) and the mean fsync since the last poll
function loopStats(stats) {
  const lag = stats.loop && stats.loop.lag, fs = stats.store && stats.store.fsync_s;
  const p = prevStats;
  if (lag && p && p.t < stats.t) {
    const ms = (lag.sum - p.lag.sum) * 1000 / ((stats.t - p.t) / 1000);
    document.getElementById("lag").textContent = ms.toFixed(2) + " ms/s";
  }
  if (fs && p && fs.count > p.fs.count)
    document.getElementById("fsync").textContent =
      ((fs.sum - p.fs.sum) * 1000 / (fs.count - p.fs.count)).toFixed(2) + " ms";
  if (lag && fs) prevStats = { t: stats.t, lag: { sum: lag.sum }, fs: { sum: fs.sum, count: fs.count } };
}

async function status() {
  const [st, stats] = await Promise.all([api("/api/status"), api("/api/stats")]);
  stats.t = performance.now();
  header(st);
  loopStats(stats);
  return st;
}

function counts(st) {
  const box = el("div", { class: "counts", id: "counts" });
  for (const s of STATES) {
    const n = st.jobs ? st.jobs[s] : 0;
    box.append(el("div", {
      class: "count" + (filter.state === s ? " on" : ""), "data-state": s,
      onclick: () => { filter.state = filter.state === s ? "" : s; pages = []; before = 0; draw(); },
    }, el("span", { class: "n" }, n === undefined ? "-" : n), el("span", { class: "s" }, s)));
  }
  return box;
}

function filters() {
  const name = el("input", { placeholder: "script name", id: "name", value: filter.name });
  name.onchange = () => { filter.name = name.value.trim(); pages = []; before = 0; draw(); };
  return el("div", { class: "filters" }, name,
    el("button", { onclick: () => { location.hash = "#scripts"; } }, "scripts"));
}

function jobRow(j, now) {
  const dur = j.started_at && j.finished_at ? duration(j.finished_at - j.started_at) : "-";
  const res = j.wait ? waitText(j) : j.error ? j.error.code + ": " + j.error.message : text(j.result);
  return el("tr", { class: "job", "data-id": j.id, onclick: () => { location.hash = "#job/" + j.id; } },
    el("td", {}, j.id), el("td", {}, j.name),
    el("td", { class: "state " + j.state }, j.state,
       j.state === "running" && j.progress ? progressBar(j.progress) : ""),
    el("td", {}, j.attempt + "/" + j.max_attempts), el("td", {}, when(j.created_at)),
    el("td", {}, dur), el("td", { class: "mono" }, res.length > 120 ? res.slice(0, 119) + "…" : res));
}

async function listView(view) {
  const q = new URLSearchParams({ limit: PAGE });
  if (filter.state) q.set("state", filter.state);
  if (filter.name) q.set("name", filter.name);
  if (before) q.set("before", before);
  const [st, list] = await Promise.all([status(), api("/api/jobs?" + q)]);
  const rows = el("tbody", { id: "jobs" });
  for (const j of list.jobs) rows.append(jobRow(j));
  // the ids of the first list drawn: what was there before any live update
  if (document.body.dataset.firstJobs === undefined)
    document.body.dataset.firstJobs = list.jobs.map((j) => j.id).join(" ");
  const older = el("button", { id: "older", onclick: () => {
    pages.push(before); before = list.jobs[list.jobs.length - 1].id; draw(); } }, "older");
  older.disabled = list.jobs.length < PAGE;
  const newer = el("button", { onclick: () => { before = pages.pop() || 0; draw(); } }, "newer");
  newer.disabled = pages.length === 0;
  view.replaceChildren(counts(st), filters(),
    el("table", {}, el("thead", {}, el("tr", {}, ...["id", "script", "state", "attempt", "created",
      "took", "result"].map((h) => el("th", {}, h)))), rows),
    el("div", { class: "pager" }, newer, older));
}

// the waterfall: one bar per span, at its start, as long as it took, under its parent
function waterfall(trace) {
  const spans = trace.spans || [];
  const end = Math.max(1, ...spans.map((s) => s.start + (s.ms || 0)));
  const byKey = new Map(spans.map((s) => [s.attempt + ":" + s.task, s]));
  const depth = (s) => {
    let d = 0, p = s;
    while (p && p.parent && (p = byKey.get(p.attempt + ":" + p.parent)) && d < 30) d++;
    return d;
  };
  const W = 900, L = 300, H = 20, scale = (W - L - 80) / end;
  const g = svg("svg", { width: W, height: spans.length * H + 24, id: "waterfall",
                         viewBox: "0 0 " + W + " " + (spans.length * H + 24) });
  g.append(svg("text", { x: L, y: 12 }, "0"), svg("text", { x: W - 80, y: 12 }, duration(end)));
  spans.forEach((s, i) => {
    const y = 20 + i * H, x = L + s.start * scale, w = Math.max(2, (s.ms || 0) * scale);
    g.append(svg("text", { x: 4 + depth(s) * 12, y: y + 12 }, s.name + (s.where ? " " + s.where : "")));
    g.append(svg("rect", { x, y: y + 3, width: w, height: H - 8, rx: 2, class: "bar",
                           fill: COLORS[s.outcome] || "#98a2b3" }));
    g.append(svg("text", { x: Math.min(x + w + 4, W - 76), y: y + 12 },
                 (s.ms === undefined ? "" : duration(s.ms) + " ") + (s.outcome || "")));
  });
  return g;
}

// cancel, retry and signal for job id: built once per job, so what is typed stays
function actions(id) {
  if (actionBox && actionBox.dataset.id === String(id)) return actionBox;
  const msg = el("span", { class: "msg", id: "actionmsg" });
  const run = (what, body) => act(id, what, body).then(
    (j) => { msg.textContent = what + ": job " + j.id + " is " + j.state; draw(); },
    (e) => { msg.textContent = what + " refused: " + e.message; });
  const name = el("input", { id: "signame", placeholder: "signal name", size: 12 });
  const payload = el("input", { id: "sigpayload", placeholder: "payload JSON (optional)", size: 22 });
  const signal = () => {
    let body = { name: name.value };
    try { if (payload.value.trim()) body.payload = JSON.parse(payload.value); }
    catch (e) { msg.textContent = "the payload is not JSON: " + e.message; return; }
    run("signal", body);
  };
  actionBox = el("div", { class: "actions", "data-id": id },
    el("button", { id: "cancel", onclick: () => run("cancel") }, "cancel"),
    el("button", { id: "retry", onclick: () => run("retry") }, "retry"),
    name, payload, el("button", { id: "signal", onclick: signal }, "signal"), msg);
  return actionBox;
}

async function jobView(view, id) {
  const [st, j, tr] = await Promise.all([status(), api("/api/jobs/" + id),
                                         api("/api/jobs/" + id + "/trace")]);
  const dl = el("dl", { id: "job" });
  const add = (k, v, cls) => dl.append(el("dt", {}, k), el("dd", cls ? { class: cls } : {}, v));
  add("id", j.id); add("script", j.name); add("state", j.state, "state " + j.state);
  if (j.progress) add("progress", progressBar(j.progress));
  add("attempt", j.attempt + "/" + j.max_attempts); add("key", text(j.key));
  if (j.wait) add("waits", waitText(j));
  if (j.held) add("held", heldText(j.held));
  add("created", when(j.created_at)); add("started", when(j.started_at));
  add("finished", when(j.finished_at)); add("args", text(j.args), "mono");
  if (j.error) add("error", j.error.code + ": " + j.error.message, "mono");
  else add("result", text(j.result), "mono");
  const steps = el("tbody", {});
  for (const s of j.steps || [])
    steps.append(el("tr", {}, el("td", {}, s.seq), el("td", {}, s.kind), el("td", {}, s.name),
                    el("td", {}, when(s.at)), el("td", { class: "mono" }, text(s.result))));
  view.replaceChildren(el("p", {}, el("a", { href: "#" }, "← jobs")), dl, actions(j.id),
    el("h2", {}, "steps"), el("table", {}, el("thead", {}, el("tr", {},
      ...["seq", "kind", "name", "at", "result"].map((h) => el("th", {}, h)))), steps),
    el("h2", {}, "trace"), waterfall(tr));
}

async function scriptsView(view) {
  const [st, list] = await Promise.all([status(), api("/api/scripts")]);
  const rows = el("tbody", { id: "scriptlist" });
  for (const s of list)
    rows.append(el("tr", {}, el("td", {}, s.name), el("td", {}, text(s.description)),
      el("td", {}, s.concurrency), el("td", {}, duration(s.timeout)), el("td", {}, text(s.schedule)),
      el("td", { class: "mono" }, s.error ? s.error : "loaded")));
  view.replaceChildren(el("p", {}, el("a", { href: "#" }, "← jobs")), el("table", {},
    el("thead", {}, el("tr", {}, ...["script", "description", "concurrency", "timeout",
      "schedule", "state"].map((h) => el("th", {}, h)))), rows));
}

async function draw() {
  const view = document.getElementById("view");
  const m = location.hash.match(/^#job\/(\d+)$/);
  try {
    if (m) await jobView(view, m[1]);
    else if (location.hash === "#scripts") await scriptsView(view);
    else await listView(view);
    document.getElementById("error").textContent = "";
    document.body.dataset.drawn = String((+document.body.dataset.drawn || 0) + 1);
  } catch (e) {
    document.getElementById("error").textContent = "cannot reach the daemon: " + e.message;
  }
}

const tokenInput = document.getElementById("token");
tokenInput.value = sessionStorage.getItem("awaitd-token") || "";
tokenInput.onchange = () => sessionStorage.setItem("awaitd-token", tokenInput.value);
window.addEventListener("hashchange", draw);
draw();
polling = setInterval(draw, 1000);
