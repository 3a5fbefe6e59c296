// The dashboard: paints at once, loads every panel from the API, then follows /api/stream.
import { api, ApiError, saveKey, savedKey, savedTenant } from "./api.js";
import { drawChart, formatNumber, PALETTE } from "./charts.js";
import { drawGantt } from "./gantt.js";
import { follow } from "./stream.js";

const $ = (selector, root = document) => root.querySelector(selector);

const view = {
  health: null, workflowHealth: [], metrics: null, anomalies: [], alerts: [], silences: [], runs: new Map(),
  selectedRun: null, selectedSession: null, stream: null, chartWorkflow: "", rangeMs: 15 * 60 * 1000,
};

// ---------- small helpers ----------
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const pill = (text, kind = text) => h("span", { class: `pill ${kind}` }, text);

function ago(iso) {
  if (!iso) return "";
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(iso).toLocaleString();
}

function duration(ms) {
  if (ms == null) return "–";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  return `${Math.floor(ms / 60000)} m ${Math.round((ms % 60000) / 1000)} s`;
}

/** Run ``fn`` at most once per ``wait`` ms, trailing. */
function throttle(fn, wait) {
  let timer = null;
  let pending = false;
  return () => {
    if (timer) {
      pending = true;
      return;
    }
    fn();
    timer = setTimeout(() => {
      timer = null;
      if (pending) {
        pending = false;
        fn();
      }
    }, wait);
  };
}

// ---------- errors and the key ----------
const errors = new Map();

function showError(where, err) {
  if (err instanceof ApiError && err.status === 401) {
    askForKey("The API refused this key (401). Paste a valid key.");
    return;
  }
  if (err instanceof ApiError && err.status === 400 && /operator key/.test(err.message)) {
    askForKey("This is an operator key: name the tenant to show.", true);
    return;
  }
  const status = err instanceof ApiError && err.status ? ` (${err.status})` : "";
  errors.set(where, `${where}${status}: ${err.message}`);
  renderErrors();
}

function clearError(where) {
  if (errors.delete(where)) renderErrors();
}

function renderErrors() {
  const banner = $("[data-testid=error-banner]");
  $(".banner-text", banner).textContent = [...errors.values()].join("\n");
  banner.hidden = errors.size === 0;
}

/** A panel whose data could not be read says so (the banner says why). */
function unavailable(container) {
  const target = container.tagName === "TBODY" ? h("tr", { class: "placeholder" }, h("td", { colspan: 5 }, "Unavailable: see the error above."))
    : h("p", { class: "empty bad-text" }, "Unavailable: see the error above.");
  container.replaceChildren(target);
}

/** Call the API for one panel: errors go to the banner under the panel's name, never silently. */
async function load(where, fn) {
  try {
    const result = await fn();
    clearError(where);
    return result;
  } catch (err) {
    showError(where, err);
    return undefined;
  }
}

function askForKey(hint, tenant = false) {
  const form = $("#key-form");
  if (hint) $("#key-hint").textContent = hint;
  $(".tenant-pick", form).hidden = !tenant && !savedTenant();
  $("#tenant-input").value = savedTenant();
  $("[data-testid=api-key]").value = savedKey();
  form.hidden = false;
  $("[data-testid=api-key]").focus();
  if (view.stream) view.stream.stop();
  view.stream = null;
  setLive("offline");
}

function setupKeyForm() {
  $("#key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("[data-testid=api-key]").value.trim();
    if (!key) return;
    saveKey(key, $("#tenant-input").value.trim());
    $("#key-form").hidden = true;
    errors.clear();
    renderErrors();
    start();
  });
  $("#change-key").addEventListener("click", () => askForKey("Paste an API key; it stays in this browser.", true));
  $(".banner button").addEventListener("click", () => {
    errors.clear();
    renderErrors();
  });
}

// ---------- health ----------
async function loadHealth() {
  const [system, workflows] = await Promise.all([
    load("Health", () => api("/api/workflows/monitoring/health", { tenantParam: true })),
    load("Workflow health", () => api("/api/workflows/monitoring/health", { params: { scope: "workflow" }, tenantParam: true })),
  ]);
  if (system) renderSystemHealth(system);
  if (workflows) {
    view.workflowHealth = workflows.subjects;
    renderWorkflowHealth(workflows);
    updateWorkflowChoices();
  } else if (!view.workflowHealth.length) {
    unavailable($("#health-rows"));
  }
}

function renderSystemHealth(health) {
  const subject = health.subjects[0];
  const score = subject && subject.score != null ? Math.round(subject.score) : null;
  const el = $("[data-testid=health-system]");
  el.textContent = score == null ? "–" : String(score);
  el.dataset.score = score == null ? "" : String(score);
  const gauge = el.closest(".gauge");
  gauge.dataset.status = subject ? subject.status : "unknown";
  $(".arc", gauge).style.strokeDasharray = `${((score || 0) / 100) * 314.16} 314.16`;
  $("#health-reason").textContent = subject && subject.reason ? subject.reason : "last hour against the 24 hours before";
}

function renderWorkflowHealth(health) {
  $("#health-period").textContent = `${new Date(health.start).toLocaleTimeString()} – ${new Date(health.end).toLocaleTimeString()}`;
  const rows = health.subjects.map((s) => {
    const score = s.score == null ? null : Math.round(s.score);
    const color = s.status === "healthy" ? "var(--ok)" : s.status === "degraded" ? "var(--warn)" : "var(--bad)";
    const worst = [...s.components].sort((a, b) => b.points_lost - a.points_lost)[0];
    return h("tr", { "data-testid": "health-workflow", "data-workflow-id": s.key, "data-score": score ?? "" },
      h("td", { class: "mono" }, s.key),
      h("td", {}, h("span", { class: "bar" }, h("i", { style: `width:${score ?? 0}%;background:${color}` })), score ?? "–"),
      h("td", {}, pill(s.status)),
      h("td", { class: "muted" }, s.reason || (worst && worst.points_lost > 0 ? worst.explanation : "")),
      h("td", {}, s.firing_alerts.length ? pill(`${s.firing_alerts.length} firing`, "firing") : h("span", { class: "muted" }, "none")));
  });
  $("#health-rows").replaceChildren(...(rows.length ? rows : [h("tr", { class: "placeholder" }, h("td", { colspan: 5 }, "No workflow ran in the last hour."))]));
}

// ---------- metrics ----------
async function loadMetrics() {
  const end = new Date();
  const start = new Date(end.getTime() - view.rangeMs);
  const [metrics, anomalies] = await Promise.all([
    load("Metrics", () => api("/api/workflows/monitoring/metrics", {
      params: { scope: "workflow", start: start.toISOString(), end: end.toISOString() }, tenantParam: true,
    })),
    load("Anomalies", () => api("/api/workflows/monitoring/anomalies", {
      params: { scope: "workflow", start: start.toISOString(), limit: 500 }, tenantParam: true,
    })),
  ]);
  if (metrics) view.metrics = metrics;
  if (anomalies) view.anomalies = anomalies.anomalies;
  updateWorkflowChoices();
  renderCharts();
}

function updateWorkflowChoices() {
  const select = $("#chart-workflow");
  const keys = new Set([...(view.metrics ? view.metrics.series.map((s) => s.key) : []), ...view.workflowHealth.map((s) => s.key)]);
  const current = select.value;
  const options = [h("option", { value: "" }, "all workflows"), ...[...keys].sort().map((k) => h("option", { value: k }, k))];
  select.replaceChildren(...options);
  select.value = keys.has(current) ? current : "";
}

const METRIC_CHART = { throughput_per_s: "throughput", count: "throughput", error_rate: "error-rate", failures: "error-rate" };
const chartOf = (metric) => METRIC_CHART[metric] || (metric && metric.startsWith("latency") ? "latency" : null);

function renderCharts() {
  if (!view.metrics) return;
  const end = Date.now();
  const start = end - view.rangeMs;
  const wanted = view.chartWorkflow;
  const series = view.metrics.series.filter((s) => !wanted || s.key === wanted);
  const color = new Map(view.metrics.series.map((s, i) => [s.key, PALETTE[i % PALETTE.length]]));
  const windowMs = view.metrics.window_s * 1000;
  const lines = (field, scale = 1) => series.map((s) => ({
    name: s.key, color: color.get(s.key),
    points: s.windows.map((w) => ({ t: Date.parse(w.window_start) + windowMs / 2, v: w[field] == null ? null : w[field] * scale })),
    open: s.open_window && s.open_window[field] != null ? { t: Date.now(), v: s.open_window[field] * scale } : null,
  }));
  const anomalies = view.anomalies.filter((a) => a.scope === "workflow" && (!wanted || a.key === wanted));
  const markers = (chart, scale = 1) => anomalies.filter((a) => chartOf(a.metric) === chart).map((a) => ({
    t: Date.parse(a.window_start || a.detected_at) + windowMs / 2, v: a.value * scale,
    title: `${a.key} · ${a.metric} = ${formatNumber(a.value)} (score ${a.score.toFixed(2)})\n${a.explanation}`,
  }));
  const band = anomalies.filter((a) => chartOf(a.metric) === "latency" && a.expected_low != null && a.expected_high != null)
    .map((a) => ({ t0: Date.parse(a.window_start || a.detected_at), t1: Date.parse(a.window_start || a.detected_at) + windowMs,
      lo: a.expected_low, hi: a.expected_high }));
  const gapMs = windowMs * 1.5;
  drawChart($("[data-testid=chart-throughput]"), { start, end, gapMs, series: lines("throughput_per_s"), markers: markers("throughput") });
  drawChart($("[data-testid=chart-error-rate]"), { start, end, gapMs, series: lines("error_rate", 100), markers: markers("error-rate", 100),
    format: (v) => formatNumber(v, 1) });
  drawChart($("[data-testid=chart-latency]"), { start, end, gapMs, series: lines("latency_p95_ms"), markers: markers("latency"), band });
  $("#series-legend").replaceChildren(...series.map((s) => h("span", { class: "series" }, h("i", { style: `background:${color.get(s.key)}` }), s.key)));
  const latest = (field, scale = 1) => {
    const values = series.map((s) => (s.open_window || s.windows[s.windows.length - 1] || {})[field]).filter((v) => v != null);
    if (!values.length) return "";
    return formatNumber((field === "latency_p95_ms" ? Math.max(...values) : values.reduce((a, b) => a + b, 0) / (field === "error_rate" ? values.length : 1)) * scale);
  };
  $("#now-throughput").textContent = latest("throughput_per_s");
  $("#now-error-rate").textContent = latest("error_rate", 100);
  $("#now-latency").textContent = latest("latency_p95_ms");
  $("#chart-window").textContent = `${view.metrics.window_s} s windows`;
}

function applyWindow(summary) {
  if (!view.metrics || summary.scope !== "workflow") return;
  let series = view.metrics.series.find((s) => s.key === summary.key);
  if (!series) {
    series = { key: summary.key, service: null, windows: [], open_window: null };
    view.metrics.series.push(series);
    updateWorkflowChoices();
  }
  const at = Date.parse(summary.window_start);
  series.windows = series.windows.filter((w) => Date.parse(w.window_start) !== at);
  series.windows.push(summary);
  series.windows.sort((a, b) => Date.parse(a.window_start) - Date.parse(b.window_start));
  if (series.open_window && Date.parse(series.open_window.window_start) <= at) series.open_window = null;
}

// ---------- alerts ----------
async function loadAlerts() {
  const [alerts, silences] = await Promise.all([
    load("Alerts", () => api("/api/workflows/monitoring/alerts", { params: { status: "firing", limit: 100 } })),
    load("Silences", () => api("/api/workflows/monitoring/silences")),
  ]);
  if (silences) view.silences = silences.silences;
  if (alerts) {
    view.alerts = alerts.alerts;
    renderAlerts();
  } else {
    unavailable($("[data-testid=alerts]"));
  }
}

function globMatch(pattern, value) {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`);
  return re.test(value ?? "");
}

function silencesOf(alert) {
  const labels = { ...alert.labels, rule: alert.rule };
  const now = Date.now();
  return view.silences.filter((s) => Date.parse(s.starts_at) <= now && now < Date.parse(s.ends_at) &&
    Object.entries(s.matchers).every(([k, v]) => globMatch(v, labels[k])));
}

const silenced = (alert) => silencesOf(alert).length > 0;

function renderAlerts() {
  const container = $("[data-testid=alerts]");
  $("#alerts-count").textContent = view.alerts.length ? `${view.alerts.length} firing` : "";
  if (!view.alerts.length) {
    container.replaceChildren(h("p", { class: "empty" }, "Nothing is firing."));
    return;
  }
  container.replaceChildren(...view.alerts.map((a) => {
    const labels = Object.entries(a.labels).map(([k, v]) => `${k}=${v}`).join(" ");
    const row = h("div", {
      class: "row alert-row", "data-testid": "alert-row", "data-alert-id": a.alert_id, "data-state": a.state,
      "data-silenced": silenced(a) ? "true" : null, "data-acked": a.acknowledged_at ? "true" : null,
    },
    pill(a.severity),
    h("div", {}, h("div", { class: "title" }, a.rule),
      h("div", { class: "sub" }, `${labels || a.alert_id} · since ${ago(a.fired_at || a.last_seen)}` +
        (a.value != null ? ` · value ${formatNumber(a.value)}` : "") +
        (a.acknowledged_by ? ` · acked by ${a.acknowledged_by}` : "")),
      a.muted ? h("div", { class: "sub", "data-testid": "alert-muted" }, mutedReason(a.muted)) : null,
      a.notify_after ? h("div", { class: "sub", "data-testid": "alert-waiting" }, waitingFor(a.notify_after)) : null),
    h("div", { class: "alert-actions" },
      h("button", { type: "button", class: "ghost small", "data-testid": "alert-silence", title: "Mute its notifications for 1 hour", onclick: () => (row.dataset.silenced === "true" ? unsilence(a, row) : silence(a, row)) }, "Silence 1h"),
      h("button", { type: "button", class: "ghost small", "data-testid": "alert-ack", title: "Say someone is on it", onclick: () => acknowledge(a, row) }, "Acknowledge")));
    markDone(row);
    return row;
  }));
}

/** Why an alert is not notified, in words: the silence's comment, or the alert that inhibits it. */
function mutedReason(muted) {
  const [kind, id] = [muted.slice(0, muted.indexOf(":")), muted.slice(muted.indexOf(":") + 1)];
  if (kind === "silenced") {
    const s = view.silences.find((x) => x.silence_id === id);
    return `not notified: silenced${s && s.comment ? ` (${s.comment})` : ""}`;
  }
  if (kind === "inhibited") {
    const source = view.alerts.find((x) => x.alert_id === id);
    const what = source ? `${source.rule}${source.labels.service ? ` (${source.labels.service})` : ""}` : id;
    return `not notified: explained by ${what}, which is firing`;
  }
  return `not notified: ${muted}`;
}

/** When a waiting alert's group is told: its rule's group_wait_s lets alerts firing meanwhile join or inhibit it. */
function waitingFor(iso) {
  const s = Math.round((Date.parse(iso) - Date.now()) / 1000);
  return s > 0 ? `not notified yet: its group is told in ${s} s` : "not notified yet: its group is being told";
}

function markDone(row) {
  const silenceButton = $("[data-testid=alert-silence]", row);
  const ackButton = $("[data-testid=alert-ack]", row);
  const muted = row.dataset.silenced === "true";
  silenceButton.textContent = muted ? "Unsilence" : "Silence 1h";
  silenceButton.title = muted ? "End the silences that mute it: it is notified again" : "Mute its notifications for 1 hour";
  if (row.dataset.acked === "true") ackButton.textContent = "Acknowledged";
  ackButton.disabled = row.dataset.acked === "true";
}

async function silence(alert, row) {
  const button = $("[data-testid=alert-silence]", row);
  button.disabled = true;
  const made = await load("Silence", () => api("/api/workflows/monitoring/silences", {
    method: "POST", body: { matchers: { ...alert.labels, rule: alert.rule }, duration_s: 3600, comment: "from the dashboard", created_by: "dashboard" },
  }));
  button.disabled = false;
  if (made) {
    view.silences.push(made);
    row.dataset.silenced = "true";
  }
  markDone(row);
}

async function unsilence(alert, row) {
  const button = $("[data-testid=alert-silence]", row);
  button.disabled = true;
  for (const s of silencesOf(alert)) {
    const ended = await load("Unsilence", () => api(`/api/workflows/monitoring/silences/${encodeURIComponent(s.silence_id)}`, {
      method: "DELETE", params: { expired_by: "dashboard" },
    }));
    if (ended) view.silences = view.silences.filter((other) => other.silence_id !== s.silence_id);
  }
  button.disabled = false;
  row.dataset.silenced = silenced(alert) ? "true" : "false";
  markDone(row);
}

async function acknowledge(alert, row) {
  const button = $("[data-testid=alert-ack]", row);
  button.disabled = true;
  const done = await load("Acknowledge", () => api(`/api/workflows/monitoring/alerts/${encodeURIComponent(alert.alert_id)}/ack`, {
    method: "POST", body: { acknowledged_by: "dashboard" },
  }));
  button.disabled = false;
  if (done) {
    alert.acknowledged_at = done.acknowledged_at;
    alert.acknowledged_by = done.acknowledged_by;
    row.dataset.acked = "true";
  }
  markDone(row);
}

// ---------- runs and their timeline ----------
async function loadRuns() {
  const runs = await load("Runs", () => api("/api/runs", { params: { limit: 40 } }));
  if (!runs) {
    if (!view.runs.size) unavailable($("[data-testid=runs]"));
    return;
  }
  const now = Date.now();
  for (const run of runs) {
    const known = view.runs.get(run.run_id);
    view.runs.set(run.run_id, { ...run, seenAt: known ? known.seenAt : now });
  }
  renderRuns();
}

function runRow(run) {
  const row = h("div", {
    class: `row run-row clickable${view.selectedRun === run.run_id ? " selected" : ""}`, "data-testid": "run-row",
    "data-run-id": run.run_id, "data-workflow-id": run.workflow_id, "data-status": run.status, "data-seen-at": run.seenAt,
    onclick: () => selectRun(run.run_id),
  },
  pill(run.status),
  h("div", {}, h("div", { class: "title" }, run.workflow_id), h("div", { class: "sub mono" }, run.run_id)),
  h("div", { class: "num" }, duration(run.duration_ms)),
  h("div", { class: "num" }, ago(run.started_at)));
  if (run.error_message) row.title = run.error_message;
  return row;
}

function sortedRuns() {
  return [...view.runs.values()].sort((a, b) => Date.parse(b.started_at) - Date.parse(a.started_at) || (b.run_id > a.run_id ? 1 : -1));
}

function renderRuns() {
  const container = $("[data-testid=runs]");
  const runs = sortedRuns().slice(0, 60);
  $("#runs-count").textContent = runs.length ? `${runs.length} shown` : "";
  if (!runs.length) {
    container.replaceChildren(h("p", { class: "empty" }, "No run in the last 24 hours."));
    return;
  }
  // Keep rows that exist (their data-seen-at and animation), insert new ones in order.
  const existing = new Map([...container.querySelectorAll("[data-testid=run-row]")].map((r) => [r.dataset.runId, r]));
  container.querySelectorAll(".empty").forEach((n) => n.remove());
  let previous = null;
  for (const run of runs) {
    const fresh = runRow(run);
    const old = existing.get(run.run_id);
    if (old) {
      existing.delete(run.run_id);
      old.replaceWith(fresh);
    } else if (view.ready) {
      fresh.classList.add("fresh");
    }
    if (previous) previous.after(fresh);
    else container.prepend(fresh);
    previous = fresh;
  }
  for (const stale of existing.values()) stale.remove();
}

function onRunSummary(s) {
  const known = view.runs.get(s.run_id);
  if (s.kind === "run.started" && !known) {
    view.runs.set(s.run_id, { run_id: s.run_id, workflow_id: s.workflow_id, status: "running", started_at: s.at,
      ended_at: null, duration_ms: null, error_message: null, seenAt: Date.now() });
  } else if (s.kind === "run.finished") {
    const base = known || { run_id: s.run_id, workflow_id: s.workflow_id, started_at: s.at, seenAt: Date.now() };
    const took = s.duration_ms ?? Math.max(Date.parse(s.at) - Date.parse(base.started_at), 0);
    view.runs.set(s.run_id, { ...base, status: s.status, ended_at: s.at, duration_ms: took, error_message: s.error });
  } else {
    return;
  }
  renderRuns();
}

async function selectRun(runId) {
  view.selectedRun = runId;
  document.querySelectorAll("[data-testid=run-row]").forEach((r) => r.classList.toggle("selected", r.dataset.runId === runId));
  const panel = $("#timeline-panel");
  panel.hidden = false;
  await refreshTimeline();
  panel.scrollIntoView({ block: "nearest" });
}

async function refreshTimeline() {
  const runId = view.selectedRun;
  if (!runId) return;
  const run = await load("Run timeline", () => api(`/api/runs/${encodeURIComponent(runId)}`));
  if (!run || view.selectedRun !== runId) return;
  $("#timeline-title").textContent = `${run.workflow_id} · ${run.run_id}`;
  const retries = run.steps.reduce((n, s) => n + Math.max((s.attempts_timeline || []).filter((a) => a.status !== "retry_scheduled").length - 1, 0), 0);
  const meta = h("div", { class: "timeline-meta" },
    h("span", {}, "status ", pill(run.status)), h("span", {}, "duration ", h("b", {}, duration(run.duration_ms))),
    h("span", {}, "steps ", h("b", {}, run.steps.length)), h("span", {}, "retries ", h("b", {}, retries)),
    h("span", {}, "started ", h("b", {}, new Date(run.started_at).toLocaleTimeString())),
    run.error_message ? h("span", { class: "bad-text" }, run.error_message) : null);
  const chart = h("div", {});
  $("#timeline").replaceChildren(meta, chart);
  drawGantt(chart, run);
}

// ---------- troubleshooting ----------
async function loadSessions() {
  const data = await load("Troubleshooting", () => api("/api/workflows/troubleshooting/sessions", { params: { limit: 20 }, tenantParam: true }));
  const container = $("[data-testid=sessions]");
  if (!data) {
    unavailable(container);
    return;
  }
  if (!data.sessions.length) {
    container.replaceChildren(h("p", { class: "empty" }, "No troubleshooting session yet."));
    return;
  }
  container.replaceChildren(...data.sessions.map((s) => h("div", {
    class: `row session-row clickable${view.selectedSession === s.session_id ? " selected" : ""}`,
    "data-testid": "session-row", "data-session-id": s.session_id, onclick: () => selectSession(s.session_id),
  },
  pill(s.status),
  h("div", {}, h("div", { class: "title" }, s.summary || s.session_id),
    h("div", { class: "sub" }, `${s.workflow_id} · ${s.opened_by} · ${ago(s.opened_at)}` +
      (s.top_cause ? ` · cause: ${s.top_cause.cause} (${Math.round(s.top_cause.confidence * 100)}%)` : ""))),
  h("div", { class: "num" }, `${s.applied} applied`))));
}

async function selectSession(sessionId) {
  view.selectedSession = sessionId;
  document.querySelectorAll("[data-testid=session-row]").forEach((r) => r.classList.toggle("selected", r.dataset.sessionId === sessionId));
  const data = await load("Troubleshooting session", () => api(`/api/workflows/troubleshooting/sessions/${encodeURIComponent(sessionId)}`, { tenantParam: true }));
  if (!data || view.selectedSession !== sessionId) return;
  $("#session-detail-slot").replaceChildren(sessionDetail(data));
}

function describeDetail(detail) {
  return Object.entries(detail || {}).filter(([, v]) => v !== null && v !== "" && typeof v !== "object")
    .slice(0, 4).map(([k, v]) => `${k}: ${v}`).join(" · ");
}

function sessionDetail(data) {
  const evidence = [];
  const causes = [];
  const actions = [];
  for (const e of data.events) {
    const p = e.payload;
    if (e.type === "EvidenceAdded") {
      evidence.push(h("div", { class: "item" }, h("b", {}, p.kind), p.error_class ? ` · ${p.error_class}` : "",
        h("div", { class: "sub muted" }, describeDetail(p.detail))));
    } else if (e.type === "RootCauseRanked") {
      causes.splice(0, causes.length, ...p.candidates.map((c) => h("li", {}, h("b", {}, c.cause),
        h("span", { class: "conf" }, h("i", { style: `width:${Math.round(c.confidence * 100)}%` })), `${Math.round(c.confidence * 100)}%`)));
    } else if (e.type.startsWith("Resolution")) {
      const verb = e.type.replace("Resolution", "").toLowerCase();
      actions.push(h("div", { class: "item action" }, h("b", {}, p.action), ` · ${verb}`,
        h("div", { class: "sub muted" }, describeDetail(p.detail))));
    }
  }
  const opened = data.events.find((e) => e.type === "SessionOpened");
  return h("div", { class: "detail", "data-testid": "session-detail", "data-session-id": data.session_id },
    h("h3", {}, opened ? opened.payload.summary : data.session_id),
    h("h3", {}, "Evidence"), evidence.length ? h("div", { class: "evidence" }, evidence) : h("p", { class: "muted" }, "none recorded"),
    h("h3", {}, "Ranked causes"), causes.length ? h("ul", {}, causes) : h("p", { class: "muted" }, "not ranked yet"),
    h("h3", {}, "Actions"), actions.length ? h("div", { class: "evidence" }, actions) : h("p", { class: "muted" }, "none proposed"));
}

// ---------- optimization ----------
async function loadOptimizations() {
  const data = await load("Optimization", () => api("/api/workflows/optimization/results", { params: { limit: 8 }, tenantParam: true }));
  const container = $("[data-testid=optimizations]");
  if (!data) {
    unavailable(container);
    return;
  }
  if (!data.results.length) {
    container.replaceChildren(h("p", { class: "empty" }, "No analysis yet."));
    return;
  }
  container.replaceChildren(...data.results.map(optimizationItem));
}

function optimizationItem(r) {
  const p = r.prediction || {};
  const before = p.before;
  const after = p.after;
  const change = (b, a, lowerIsBetter = true) => {
    if (b == null || a == null || b === 0) return h("span", { class: "muted" }, "");
    const rel = (a - b) / Math.abs(b);
    const good = lowerIsBetter ? rel < 0 : rel > 0;
    return h("span", { class: Math.abs(rel) < 0.005 ? "muted" : good ? "gain" : "loss" }, `${rel > 0 ? "+" : ""}${(rel * 100).toFixed(0)}%`);
  };
  const line = (name, b, a, delta) => [h("span", { class: "h" }, name), h("span", {}, b), h("span", {}, a), delta];
  const table = before && after ? h("div", { class: "ba" },
    h("span", { class: "h" }, ""), h("span", { class: "h" }, "before"), h("span", { class: "h" }, "after"), h("span", { class: "h" }, ""),
    line("p50 duration", duration(before.p50_ms), duration(after.p50_ms), change(before.p50_ms, after.p50_ms)),
    line("p95 duration", duration(before.p95_ms), duration(after.p95_ms), change(before.p95_ms, after.p95_ms)),
    line("success rate", `${(before.success_rate * 100).toFixed(1)}%`, `${(after.success_rate * 100).toFixed(1)}%`,
      change(before.success_rate, after.success_rate, false)),
    line("cost per run", formatNumber(before.cost_per_run, 4), formatNumber(after.cost_per_run, 4), change(before.cost_per_run, after.cost_per_run)))
    : h("p", { class: "muted small" }, "No replayed comparison (nothing to apply or too few runs).");
  const recs = (r.recommendations || []).slice(0, 4).map((rec) => h("li", {}, h("b", {}, rec.kind),
    rec.step_ids && rec.step_ids.length ? ` (${rec.step_ids.join(", ")})` : "", ` — ${rec.rationale}`));
  return h("div", { class: "opt", "data-analysis-id": r.analysis_id },
    h("div", { class: "head" }, h("span", { class: "title mono" }, r.workflow_id || "draft"), pill(r.strategy, "low"),
      h("span", { class: "muted small" }, `${p.replayed_runs ?? 0} runs · ${r.history} · ${ago(r.analyzed_at)}`)),
    table, recs.length ? h("ul", { class: "recs" }, recs) : null);
}

// ---------- generate ----------
function setupGenerate() {
  $("#generate-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = $("[data-testid=generate-input]").value.trim();
    if (!text) return;
    const button = $("[data-testid=generate-submit]");
    button.disabled = true;
    const made = await load("Generate", () => api("/api/workflows/automation/generate", { method: "POST", body: { user_input: text } }));
    button.disabled = false;
    if (made) renderGenerated(made);
  });
}

function renderGenerated(made) {
  const steps = made.order.map((id) => made.workflow.steps.find((s) => s.id === id)).filter(Boolean);
  const chain = [h("div", { class: "gen-step" }, h("b", {}, "trigger"), `${made.workflow.trigger.service}.${made.workflow.trigger.event}`)];
  for (const s of steps) {
    chain.push(h("span", { class: "gen-arrow" }, "→"));
    chain.push(h("div", { class: "gen-step", "data-testid": "generated-step", "data-step-id": s.id },
      h("b", {}, s.id), `${s.service}.${s.action}`, s.needs && s.needs.length ? h("div", { class: "muted" }, `after ${s.needs.join(", ")}`) : null));
  }
  const idInput = h("input", { value: made.suggested_id, "aria-label": "workflow id", maxlength: 128 });
  const outcome = h("div", { "data-testid": "define-result" });
  const define = h("button", { type: "button", "data-testid": "generate-define", onclick: async () => {
    define.disabled = true;
    const body = { ...made.workflow, id: idInput.value.trim() };
    const result = await load("Define", () => api("/api/workflows", { method: "POST", body }));
    define.disabled = false;
    if (result) {
      outcome.dataset.workflowId = result.workflow_id;
      outcome.replaceChildren(h("span", { class: "ok-text" }, `Defined ${result.workflow_id}, version ${result.version}.`));
    } else {
      delete outcome.dataset.workflowId;
      outcome.replaceChildren(h("span", { class: "bad-text" }, "Not defined: see the message above."));
    }
  } }, "Define workflow");
  const missing = Object.entries(made.missing_params || {}).map(([step, names]) => `${step}: ${names.join(", ")}`);
  $("#generate-out").replaceChildren(h("div", { class: "gen-result", "data-testid": "generate-result" },
    h("div", { class: "muted small" }, `confidence ${Math.round(made.confidence * 100)}% · ${made.detector} detector · ${made.elapsed_ms} ms`),
    h("div", { class: "gen-steps" }, chain),
    made.explanation.length ? h("ul", { class: "recs" }, made.explanation.map((e) => h("li", {}, e))) : null,
    missing.length ? h("div", { class: "muted small" }, `Parameters to fill before running: ${missing.join(" · ")}`) : null,
    h("div", { class: "gen-define" }, idInput, define), outcome));
}

// ---------- live stream ----------
const refresh = {
  health: throttle(() => loadHealth(), 10000),
  alerts: throttle(() => loadAlerts(), 1500),
  sessions: throttle(() => { loadSessions(); if (view.selectedSession) selectSession(view.selectedSession); }, 1500),
  optimizations: throttle(() => loadOptimizations(), 3000),
  metrics: throttle(() => loadMetrics(), 10000),
  charts: throttle(() => renderCharts(), 1000),
  timeline: throttle(() => refreshTimeline(), 1000),
  runs: throttle(() => loadRuns(), 2000),
};

function onEvent(name, data) {
  if (name === "lagged") {
    refresh.runs();
    refresh.alerts();
    return;
  }
  if (typeof data !== "object" || !data.kind) return;
  if (savedTenant() && data.tenant_id !== savedTenant()) return; // an operator key watching one tenant
  if (name.startsWith("run.")) {
    onRunSummary(data);
    if (name === "run.finished") {
      refresh.health();
      refresh.metrics();
    }
  }
  if ((name.startsWith("run.") || name.startsWith("step.")) && data.run_id === view.selectedRun) refresh.timeline();
  if (name.startsWith("alert.")) refresh.alerts();
  if (name.startsWith("session.")) refresh.sessions();
  if (name === "optimization.analysed") refresh.optimizations();
  if (name === "metric.window") {
    applyWindow(data);
    refresh.charts();
  }
  if (name === "anomaly.detected") {
    if (data.scope === "workflow") {
      view.anomalies.unshift({ ...data, detected_at: data.at, explanation: `${data.metric} outside the expected range` });
      refresh.charts();
    }
  }
}

function setLive(state, detail) {
  const el = $("[data-testid=live-status]");
  const wasOffline = el.dataset.state === "offline";
  el.dataset.state = state;
  $("b", el).textContent = state;
  if (state === "live" && detail && detail.tenant) $("#tenant-label").textContent = `tenant ${savedTenant() || detail.tenant}`;
  if (state === "live" && wasOffline && view.ready) {
    // Back after a break: what happened meanwhile did not come through the stream.
    refresh.runs();
    refresh.alerts();
    refresh.sessions();
  }
}

function openStream() {
  if (view.stream) view.stream.stop();
  view.stream = follow({
    onState: setLive,
    onEvent,
    onFatal: (status, message) => {
      setLive("offline");
      if (status === 401) askForKey("The API refused this key (401). Paste a valid key.");
      else showError("Live stream", new ApiError(status, message, "/api/stream"));
    },
  });
}

// ---------- start ----------
async function start() {
  if (!savedKey()) {
    askForKey();
    return;
  }
  openStream();
  await Promise.all([loadHealth(), loadMetrics(), loadAlerts(), loadRuns(), loadSessions(), loadOptimizations()]);
  if (!$("#key-form").hidden) return; // the key was refused: nothing was drawn
  view.ready = true;
  document.body.dataset.ready = "true";
}

function init() {
  setupKeyForm();
  setupGenerate();
  $("#chart-workflow").addEventListener("change", (e) => {
    view.chartWorkflow = e.target.value;
    renderCharts();
  });
  $("#chart-range").addEventListener("change", (e) => {
    view.rangeMs = Number(e.target.value);
    loadMetrics();
  });
  $("#timeline-close").addEventListener("click", () => {
    view.selectedRun = null;
    $("#timeline-panel").hidden = true;
    document.querySelectorAll("[data-testid=run-row].selected").forEach((r) => r.classList.remove("selected"));
  });
  let resizeTimer = null;
  addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { renderCharts(); refresh.timeline(); }, 150);
  });
  setInterval(() => refresh.health(), 30000);
  setInterval(() => refresh.metrics(), 30000);
  start();
}

init();
