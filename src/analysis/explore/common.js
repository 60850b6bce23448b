// clockwork explorer pages, shared part: the run explorer (src/analysis/explore/page.js)
// and the sweep explorer (src/sweep/explore/page.js) are each built as this file followed
// by their own code, inside one function scope (see scaffold.html). It provides:
//   D                 the page's data (the JSON in <script id="data">)
//   $(id)             document.getElementById
//   showError(msg)    the red box at the top (every uncaught error lands there too)
//   fmt, stepText, pct  number formatting
//   bytesOf(b64), f32s(b64), f64s(b64)  base64 → bytes / little-endian typed arrays
//   clear(ctx)        reset a canvas context (transform, pixels, font)
//   drawChart(canvas, spec, maxStep)  one curve chart (axes, ticks, lines with gaps)
const errorBox = document.getElementById("error");
function showError(msg) {
  errorBox.hidden = false;
  errorBox.textContent += msg + "\n";
}
window.addEventListener("error", (e) => showError("error: " + e.message));

const D = JSON.parse(document.getElementById("data").textContent);
const $ = (id) => document.getElementById(id);

// ---- formatting ----
const fmt = (x) => (x === null || x === undefined || !isFinite(x) ? "–" : Math.abs(x) >= 1e4 || (Math.abs(x) < 1e-3 && x !== 0) ? x.toExponential(3) : (+x.toPrecision(4)).toString());
const stepText = (s) => (s >= 1e4 ? +(s / 1000).toPrecision(3) + "k" : String(Math.round(s)));
const pct = (x) => (100 * x).toFixed(2) + "%";

// ---- embedded arrays ----
function bytesOf(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
function typedOf(b64, size, get) {
  const b = bytesOf(b64);
  const view = new DataView(b.buffer);
  return Array.from({ length: b.length / size }, (_, i) => get(view, size * i));
}
// Little-endian f32 / f64 values (NaN stands for "not logged" and becomes null).
const orNull = (v) => (Number.isNaN(v) ? null : v);
const f32s = (b64) => typedOf(b64, 4, (v, o) => orNull(v.getFloat32(o, true)));
const f64s = (b64) => typedOf(b64, 8, (v, o) => orNull(v.getFloat64(o, true)));

// ---- drawing ----
function clear(ctx) {
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, ctx.canvas.width, ctx.canvas.height);
  ctx.font = "11px DejaVu Sans, Arial, sans-serif";
}
// A curve chart on `cv` over steps [0, maxStep]. spec.lines: { x, y, color, dash, width }
// (null values break the line; falsy entries are skipped); spec.log: y holds log10
// values (ticks show 10^y); spec.fixed: [lo, hi] the range always shown; spec.ref: a
// dotted reference level. Returns { X, T, h }: step → pixel, the plot's top and height.
function drawChart(cv, spec, maxStep) {
  const ctx = cv.getContext("2d");
  clear(ctx);
  const lines = spec.lines.filter((ln) => ln);
  let lo = Infinity, hi = -Infinity;
  for (const ln of lines) for (const v of ln.y) if (v !== null && isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  if (spec.fixed) [lo, hi] = [Math.min(spec.fixed[0], lo), Math.max(spec.fixed[1], hi)];
  if (spec.ref) hi = Math.max(hi, spec.ref);
  if (!isFinite(lo)) [lo, hi] = [0, 1];
  if (hi === lo) hi = lo + 1;
  const ticks = [lo, (lo + hi) / 2, hi].map((v) => [v, spec.log ? fmt(Math.pow(10, v)) : fmt(v)]);
  // The left margin fits the widest tick label.
  const L = Math.max(30, ...ticks.map(([, t]) => Math.ceil(ctx.measureText(t).width) + 7));
  const R = 18, T = 8, B = 22, w = cv.width - L - R, h = cv.height - T - B;
  const X = (s) => L + (s / maxStep) * w, Y = (v) => T + ((hi - v) / (hi - lo)) * h;
  ctx.strokeStyle = "#ccc";
  ctx.strokeRect(L, T, w, h);
  ctx.fillStyle = "#555";
  ctx.textAlign = "right";
  for (const [v, t] of ticks) ctx.fillText(t, L - 3, Y(v) + 4);
  [0, maxStep / 2, maxStep].forEach((s, j) => {
    ctx.textAlign = ["left", "center", "right"][j];
    ctx.fillText(stepText(s), X(s), T + h + 14);
  });
  ctx.textAlign = "left";
  if (spec.ref) {
    ctx.strokeStyle = "#aaa";
    ctx.setLineDash([2, 3]);
    ctx.beginPath();
    ctx.moveTo(L, Y(spec.ref));
    ctx.lineTo(L + w, Y(spec.ref));
    ctx.stroke();
  }
  for (const ln of lines) {
    ctx.setLineDash(ln.dash ? [5, 4] : []);
    ctx.strokeStyle = ln.color;
    ctx.lineWidth = ln.width || 1.5;
    ctx.beginPath();
    let pen = false;
    ln.x.forEach((s, i) => {
      const v = ln.y[i];
      if (v === null || !isFinite(v)) { pen = false; return; }
      if (pen) ctx.lineTo(X(s), Y(v)); else ctx.moveTo(X(s), Y(v));
      pen = true;
    });
    ctx.stroke();
  }
  ctx.setLineDash([]);
  ctx.lineWidth = 1;
  if (lines.every((ln) => ln.y.every((v) => v === null || !isFinite(v)))) {
    ctx.fillStyle = "#888";
    ctx.fillText("not logged", L + 8, T + 16);
  }
  return { X, T, h };
}
