// Hand-written SVG time-series charts: lines per series, an expected band, anomaly markers.
const NS = "http://www.w3.org/2000/svg";
export const PALETTE = ["#5b9cf6", "#3fb950", "#d29922", "#a371f7", "#39c5cf", "#f778ba", "#ff9b50", "#9aa5b8"];
const PAD = { left: 44, right: 10, top: 10, bottom: 22 };

export function el(name, attrs = {}, parent = null) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function niceMax(value) {
  if (!(value > 0)) return 1;
  const exp = Math.pow(10, Math.floor(Math.log10(value)));
  for (const m of [1, 2, 2.5, 5, 10]) if (value <= m * exp) return m * exp;
  return 10 * exp;
}

export function formatNumber(v, digits = 2) {
  if (v == null || Number.isNaN(v)) return "–";
  if (Math.abs(v) >= 1000) return `${(v / 1000).toFixed(v >= 10000 ? 0 : 1)}k`;
  if (Math.abs(v) >= 100) return v.toFixed(0);
  return Number(v.toFixed(digits)).toString();
}

const clock = (t) => new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });

/**
 * Draw into ``svg``: {start, end (ms), series: [{name, color, points: [{t, v}], open: {t, v}|null}],
 * band: [{t0, t1, lo, hi}], markers: [{t, v, title}], format: v => text, gapMs: a longer gap breaks a line}.
 */
export function drawChart(svg, { start, end, series, band = [], markers = [], format = formatNumber, gapMs = Infinity }) {
  const box = svg.getBoundingClientRect();
  const width = Math.max(Math.round(box.width) || 480, 200);
  const height = Math.max(Math.round(box.height) || 180, 120);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.replaceChildren();
  const values = [];
  for (const s of series) {
    for (const p of s.points) if (p.v != null) values.push(p.v);
    if (s.open && s.open.v != null) values.push(s.open.v);
  }
  for (const b of band) values.push(b.hi);
  for (const m of markers) values.push(m.v);
  const top = niceMax(Math.max(0, ...values) * 1.1);
  const plotW = width - PAD.left - PAD.right;
  const plotH = height - PAD.top - PAD.bottom;
  const x = (t) => PAD.left + ((t - start) / Math.max(end - start, 1)) * plotW;
  const y = (v) => PAD.top + plotH - (Math.min(v, top) / top) * plotH;

  for (let i = 0; i <= 4; i++) {
    const v = (top * i) / 4;
    el("line", { class: "gridline", x1: PAD.left, x2: width - PAD.right, y1: y(v), y2: y(v) }, svg);
    el("text", { class: "axis", x: PAD.left - 6, y: y(v) + 3, "text-anchor": "end" }, svg).textContent = format(v);
  }
  const ticks = width >= 420 ? 4 : 3;
  for (let i = 0; i <= ticks; i++) {
    const t = start + ((end - start) * i) / ticks;
    const anchor = i === 0 ? "start" : i === ticks ? "end" : "middle";
    el("text", { class: "axis", x: x(t), y: height - 6, "text-anchor": anchor }, svg).textContent = clock(t);
  }

  if (band.length) {
    const g = el("g", { "data-testid": "expected-band", class: "band" }, svg);
    for (const b of band) {
      const x0 = Math.max(x(b.t0), PAD.left);
      const x1 = Math.min(x(b.t1), width - PAD.right);
      if (x1 <= x0) continue;
      el("rect", { x: x0, y: y(b.hi), width: x1 - x0, height: Math.max(y(b.lo) - y(b.hi), 1) }, g)
        .appendChild(titleOf(`expected ${format(b.lo)} – ${format(b.hi)}`));
    }
  }

  const hasData = series.some((s) => s.points.length || s.open);
  if (!hasData) {
    el("text", { class: "nodata", x: PAD.left + plotW / 2, y: PAD.top + plotH / 2, "text-anchor": "middle" }, svg)
      .textContent = "no windows in this period yet";
  }
  for (const s of series) {
    for (const pts of segments(s.points.filter((p) => p.v != null && p.t >= start && p.t <= end), gapMs)) {
      if (pts.length === 1) {
        el("circle", { cx: x(pts[0].t), cy: y(pts[0].v), r: 2.5, fill: s.color }, svg).appendChild(titleOf(`${s.name}: ${format(pts[0].v)}`));
        continue;
      }
      const d = pts.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join("");
      if (series.length === 1) {
        const area = `${d}L${x(pts[pts.length - 1].t).toFixed(1)},${y(0)}L${x(pts[0].t).toFixed(1)},${y(0)}Z`;
        el("path", { class: "area", d: area, fill: s.color }, svg);
      }
      el("path", { class: "line", d, stroke: s.color }, svg).appendChild(titleOf(s.name));
    }
    if (s.open && s.open.v != null) {
      el("circle", { class: "open-point", cx: x(s.open.t), cy: y(s.open.v), r: 4, stroke: s.color }, svg)
        .appendChild(titleOf(`${s.name}: ${format(s.open.v)} (open window)`));
    }
  }
  for (const m of markers) {
    if (m.t < start || m.t > end) continue;
    el("circle", { class: "marker", "data-testid": "anomaly-marker", cx: x(m.t), cy: y(m.v), r: 5 }, svg)
      .appendChild(titleOf(m.title));
  }
}

/** Runs of points with no gap longer than ``gapMs`` (no window closed there: the line is not drawn across). */
function segments(points, gapMs) {
  const runs = [];
  for (const p of points) {
    const last = runs[runs.length - 1];
    if (last && p.t - last[last.length - 1].t <= gapMs) last.push(p);
    else runs.push([p]);
  }
  return runs;
}

function titleOf(text) {
  const t = el("title");
  t.textContent = text;
  return t;
}
