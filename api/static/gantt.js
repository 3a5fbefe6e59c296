// A run's step attempts as a Gantt chart: one lane per step (parallel branches side by side in time),
// one bar per attempt, the wait before a retry drawn as a dashed line.
import { el, formatNumber } from "./charts.js";

const LANE = 30;
const LABEL_W = 190;
const TOP = 22;

const ms = (iso) => (iso ? Date.parse(iso) : null);

function span(attempt, now) {
  const started = ms(attempt.started_at) ?? ms(attempt.scheduled_at);
  let ended = ms(attempt.ended_at);
  if (ended == null && attempt.duration_ms != null && started != null) ended = started + attempt.duration_ms;
  if (ended == null) ended = attempt.status === "retry_scheduled" ? ms(attempt.due_at) ?? now : now;
  return [started, Math.max(ended, started)];
}

export function drawGantt(container, run, now = Date.now()) {
  const steps = run.steps || [];
  const spans = steps.flatMap((s) => (s.attempts_timeline || []).map((a) => span(a, now)));
  const t0 = Math.min(ms(run.started_at), ...spans.map((s) => s[0]));
  const t1 = Math.max(ms(run.ended_at) ?? now, ...spans.map((s) => s[1]), t0 + 1);
  const width = Math.max(container.getBoundingClientRect().width || 900, 480);
  const height = TOP + steps.length * LANE + 8;
  const svg = el("svg", { class: "gantt", "data-testid": "run-timeline", viewBox: `0 0 ${width} ${height}`, height });
  const plotW = width - LABEL_W - 16;
  const x = (t) => LABEL_W + ((t - t0) / (t1 - t0)) * plotW;

  for (let i = 0; i <= 5; i++) {
    const t = t0 + ((t1 - t0) * i) / 5;
    el("line", { class: "tick", x1: x(t), x2: x(t), y1: TOP - 4, y2: height - 4 }, svg);
    const label = el("text", { class: "tick-label", x: x(t), y: 12, "text-anchor": i === 5 ? "end" : i ? "middle" : "start" }, svg);
    label.textContent = `+${formatNumber((t - t0) / 1000, 2)} s`;
  }
  steps.forEach((step, lane) => {
    const top = TOP + lane * LANE;
    el("rect", { class: "lane", x: 0, y: top + 2, width, height: LANE - 4, rx: 3 }, svg);
    el("text", { class: "lane-label", x: 8, y: top + 14 }, svg).textContent = step.step_id;
    el("text", { class: "lane-sub", x: 8, y: top + 25 }, svg).textContent = `${step.service}.${step.action}`;
    let previousEnd = null;
    for (const attempt of step.attempts_timeline || []) {
      const [a, b] = span(attempt, now);
      if (previousEnd != null && a > previousEnd) {
        el("line", { class: "wait", x1: x(previousEnd), x2: x(a), y1: top + LANE / 2, y2: top + LANE / 2 }, svg);
      }
      previousEnd = b;
      if (attempt.status === "retry_scheduled") continue;
      const w = Math.max(x(b) - x(a), 3);
      const bar = el("rect", {
        class: `bar-${attempt.status}`, "data-testid": "gantt-bar", "data-step-id": step.step_id,
        "data-attempt": attempt.attempt, "data-status": attempt.status,
        x: x(a), y: top + 6, width: w, height: LANE - 12, rx: 3,
      }, svg);
      const title = el("title", {}, bar);
      const took = attempt.duration_ms != null ? `${formatNumber(attempt.duration_ms, 1)} ms` : attempt.status;
      title.textContent = `${step.step_id} · attempt ${attempt.attempt} · ${attempt.status} · ${took}` +
        (attempt.service !== step.service ? ` · ${attempt.service}` : "") + (attempt.error ? `\n${attempt.error}` : "");
      if (w > 26) {
        el("text", { class: "bar-label", x: x(a) + 5, y: top + LANE / 2 + 3 }, svg).textContent = `#${attempt.attempt}`;
      }
    }
  });
  container.replaceChildren(svg);
}
