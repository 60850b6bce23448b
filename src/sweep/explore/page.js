// clockwork sweep explorer: the sweep's phase diagrams (a heat map of any per-model
// metric, the mean over each cell's models, and the categorical map); a click on a
// cell shows its models in a table and their curves from the sweep's histories, one
// colour per model. Hand-written, no libraries, no network; built after common.js
// (D, $, fmt, f32s, f64s, drawChart, ...) in one function scope (scaffold.html).
// The cell means come computed from src/sweep/diagram.rs (the PNG diagrams' numbers);
// this page only colours and places them.
const MODELS = new Map(D.models.map((m) => [m.model, m]));
const CATEGORY_COLOR = new Map(D.categories.map((c) => [c.name, c.color]));
const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#ff7f0e", "#7f7f7f"];
const phrase = (metric) => metric.replace(/_/g, " ");

// ---- the embedded histories, decoded on first use ----
const decoded = new Map();
function curvesOf(id) {
  if (!decoded.has(id)) {
    const c = MODELS.get(id).curves;
    const out = { step: f64s(c.step) };
    for (const k of ["train_loss", "test_loss", "train_acc", "test_acc", "margin"]) {
      out[k] = f32s(c[k]);
      if (out[k].length !== out.step.length) throw new Error("model " + id + ": " + k + " and its steps differ in length");
    }
    decoded.set(id, out);
  }
  return decoded.get(id);
}
const lastOf = (ys) => {
  for (let i = ys.length - 1; i >= 0; i--) if (ys[i] !== null) return ys[i];
  return null;
};

// ---- colours ----
function viridis(t) {
  const S = D.viridis, x = Math.max(0, Math.min(1, t)) * (S.length - 1);
  const i = Math.min(Math.floor(x), S.length - 2), f = x - i;
  const c = [0, 1, 2].map((k) => Math.round(S[i][k] + (S[i + 1][k] - S[i][k]) * f));
  return "rgb(" + c.join(",") + ")";
}

// ---- header ----
$("title").textContent = D.title;
{
  const counts = D.categories.map((c) => D.models.filter((m) => m.category === c.name).length + " " + c.name);
  $("info").textContent = D.models.length + " models: " + counts.join(", ") + " · swept: " + (D.keys.length ? D.keys.join(", ") : "nothing");
  const notes = [];
  if (D.models.some((m) => m.evaluations > D.points_kept)) notes.push("Curves keep " + D.points_kept + " evenly spaced evaluations per model (first and last kept) to keep this page small; the tables (results.csv, histories.jsonl) have every one.");
  if (!D.diagrams.length) notes.push("No phase diagram: it needs two swept keys besides the seed (or [[diagrams]] in the sweep file). The curves below show every model.");
  for (const n of notes) {
    const li = document.createElement("li");
    li.textContent = n;
    $("notes").appendChild(li);
  }
}

// ---- state and controls ----
const state = { diagram: 0, metric: "", cell: null };
D.diagrams.forEach((d, j) => {
  const o = document.createElement("option");
  o.value = String(j);
  o.textContent = d.x + " × " + d.y;
  $("diagram").appendChild(o);
});
$("diagram-box").hidden = D.diagrams.length < 2;
function fillMetrics() {
  const d = D.diagrams[state.diagram];
  const sel = $("metric");
  sel.textContent = "";
  const order = [...d.metrics, ...D.metrics.filter((m) => !d.metrics.includes(m))];
  for (const m of order) {
    const o = document.createElement("option");
    o.value = m;
    o.textContent = phrase(m);
    sel.appendChild(o);
  }
  if (!order.includes(state.metric)) state.metric = order[0];
  sel.value = state.metric;
}

// ---- the two maps ----
// Both are tables over the diagram's cells, the largest y at the top (as the PNGs).
function gridTable(table, d, fillCell) {
  table.textContent = "";
  const nx = d.xs.length, ny = d.ys.length;
  const head = table.insertRow();
  const corner = document.createElement("th");
  corner.className = "axis";
  corner.textContent = d.y;
  corner.colSpan = nx + 1;
  corner.style.textAlign = "left";
  head.appendChild(corner);
  for (let j = ny - 1; j >= 0; j--) {
    const tr = table.insertRow();
    const th = document.createElement("th");
    th.textContent = d.y_labels[j];
    th.style.textAlign = "right";
    tr.appendChild(th);
    for (let i = 0; i < nx; i++) {
      const td = tr.insertCell();
      td.dataset.i = String(i);
      td.dataset.j = String(j);
      td.dataset.x = d.xs[i];
      td.dataset.y = d.ys[j];
      td.dataset.models = d.cells[j][i].join(" ");
      fillCell(td, i, j);
      td.addEventListener("click", () => selectCell(i, j));
    }
  }
  const foot = table.insertRow();
  foot.appendChild(document.createElement("th"));
  for (let i = 0; i < nx; i++) {
    const th = document.createElement("th");
    th.textContent = d.x_labels[i];
    foot.appendChild(th);
  }
  const axis = table.insertRow();
  const th = document.createElement("th");
  th.className = "axis";
  th.colSpan = nx + 1;
  th.textContent = d.x;
  axis.appendChild(th);
}
function drawHeat() {
  const d = D.diagrams[state.diagram], st = d.stats[state.metric];
  let lo = Infinity, hi = -Infinity;
  for (const row of st.mean) for (const v of row) if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  const t = (v) => (hi > lo ? (v - lo) / (hi - lo) : 0.5);
  const perCell = Math.max(0, ...d.cells.flat().map((c) => c.length));
  $("heat-title").textContent = "Mean of " + phrase(state.metric) + " (" + perCell + " model" + (perCell === 1 ? "" : "s") + " per cell)";
  gridTable($("heat"), d, (td, i, j) => {
    const mean = st.mean[j][i], n = st.n[j][i], of = d.cells[j][i].length;
    td.dataset.mean = mean === null ? "" : String(mean);
    td.dataset.n = String(n);
    td.style.background = mean === null ? "#e1e1e1" : viridis(t(mean));
    td.style.color = mean !== null && t(mean) <= 0.6 ? "#fff" : "#000";
    td.textContent = mean === null ? "–" : fmt(mean);
    if (n < of) {
      const note = document.createElement("span");
      note.className = "note";
      note.textContent = n + " of " + of;
      td.appendChild(note);
    }
    td.title = mean === null ? "no model of this cell has " + phrase(state.metric) : "mean " + fmt(mean) + " ± " + fmt(st.sd[j][i]) + " (standard deviation over " + n + " of " + of + " models)";
  });
  // colour scale
  const box = $("scale");
  box.textContent = "";
  const cv = document.createElement("canvas");
  cv.width = 160;
  cv.height = 12;
  const ctx = cv.getContext("2d");
  for (let x = 0; x < cv.width; x++) {
    ctx.fillStyle = viridis(x / (cv.width - 1));
    ctx.fillRect(x, 0, 1, cv.height);
  }
  const label = (s) => {
    const e = document.createElement("span");
    e.textContent = s;
    return e;
  };
  if (isFinite(lo)) box.append(label(fmt(lo)), cv, label(fmt(hi)));
  markSelected();
}
function drawCategories() {
  const d = D.diagrams[state.diagram];
  const rank = (name) => D.categories.findIndex((c) => c.name === name);
  gridTable($("cats"), d, (td, i, j) => {
    const ids = [...d.cells[j][i]].sort((a, b) => rank(MODELS.get(a).category) - rank(MODELS.get(b).category) || a - b);
    const stripes = document.createElement("div");
    stripes.className = "stripes";
    for (const id of ids) {
      const s = document.createElement("span");
      const cat = MODELS.get(id).category;
      s.style.background = CATEGORY_COLOR.get(cat);
      s.dataset.model = String(id);
      s.dataset.category = cat;
      s.title = "model " + id + ": " + cat;
      stripes.appendChild(s);
    }
    if (!ids.length) td.style.background = "#ebebeb";
    td.appendChild(stripes);
  });
  const legend = $("legend");
  legend.textContent = "";
  for (const c of D.categories) {
    const li = document.createElement("li");
    const sw = document.createElement("span");
    sw.style.background = c.color;
    li.append(sw, c.name + " (" + D.models.filter((m) => m.category === c.name).length + ")");
    legend.appendChild(li);
  }
}
function markSelected() {
  for (const td of document.querySelectorAll("table.grid td")) {
    const on = state.cell && +td.dataset.i === state.cell[0] && +td.dataset.j === state.cell[1];
    td.classList.toggle("selected", !!on);
  }
}

// ---- a cell's models: table and curves ----
const COLUMNS = [
  ["final train loss", "train_loss"],
  ["final test loss", "test_loss"],
  ["final train acc", "train_acc"],
  ["final test acc", "test_acc"],
  ["final margin", "margin"],
];
function showModels(ids, heading) {
  const d = D.diagrams[state.diagram];
  $("cell-title").textContent = heading;
  const own = D.keys.map((k, j) => [k, j]).filter(([k]) => !d || (k !== d.x && k !== d.y));
  const shown = ids.map((id, n) => ({ id, m: MODELS.get(id), c: curvesOf(id), color: PALETTE[n % PALETTE.length] }));
  // table
  const thead = $("cell-models").tHead, tbody = $("cell-models").tBodies[0];
  thead.textContent = "";
  tbody.textContent = "";
  const hr = thead.insertRow();
  for (const h of ["model", ...own.map(([k]) => k), "category", ...COLUMNS.map((c) => c[0]), "evaluations"]) {
    const th = document.createElement("th");
    th.textContent = h;
    hr.appendChild(th);
  }
  for (const s of shown) {
    const tr = tbody.insertRow();
    tr.dataset.model = String(s.id);
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = s.color;
    const first = tr.insertCell();
    first.append(sw, String(s.id));
    for (const [, j] of own) tr.insertCell().textContent = s.m.settings[j];
    const cat = tr.insertCell();
    cat.textContent = s.m.category;
    cat.style.color = CATEGORY_COLOR.get(s.m.category);
    tr.dataset.category = s.m.category;
    // The final values of the curves drawn below (their last logged point).
    for (const [, key] of COLUMNS) {
      const v = lastOf(s.c[key]);
      tr.insertCell().textContent = fmt(v);
      tr.dataset["final_" + key] = v === null ? "" : String(v);
    }
    tr.insertCell().textContent = String(s.c.step.length) + (s.m.evaluations > s.c.step.length ? " of " + s.m.evaluations : "");
  }
  // curves
  const ratio = shown.length > 0 && shown.every((s) => s.m.gamma_star);
  $("margin-caption").textContent = ratio ? "normalized margin / γ* (train pairs; 1 = the theory's maximum)" : "normalized margin (train pairs)";
  const maxStep = Math.max(1, ...shown.map((s) => s.c.step[s.c.step.length - 1] || 0));
  const log10 = (ys) => ys.map((v) => (v > 0 ? Math.log10(v) : null));
  const lines = (f) => shown.flatMap((s) => [
    { x: s.c.step, y: f(s, "train"), color: s.color },
    { x: s.c.step, y: f(s, "test"), color: s.color, dash: true },
  ]);
  drawChart($("c-loss"), { lines: lines((s, w) => log10(s.c[w + "_loss"])), log: true }, maxStep);
  drawChart($("c-acc"), { lines: lines((s, w) => s.c[w + "_acc"]), fixed: [0, 1] }, maxStep);
  const margin = shown.map((s) => ({ x: s.c.step, y: ratio ? s.c.margin.map((v) => (v === null ? null : v / s.m.gamma_star)) : s.c.margin, color: s.color }));
  drawChart($("c-margin"), { lines: margin, ref: ratio ? 1 : null }, maxStep);
}
function selectCell(i, j) {
  const d = D.diagrams[state.diagram];
  state.cell = [i, j];
  markSelected();
  const ids = d.cells[j][i];
  showModels(ids, d.x + " = " + d.x_labels[i] + ", " + d.y + " = " + d.y_labels[j] + ": " + ids.length + " model" + (ids.length === 1 ? "" : "s"));
}

// ---- events and first draw ----
$("diagram").addEventListener("change", () => {
  state.diagram = +$("diagram").value;
  state.cell = null;
  fillMetrics();
  drawHeat();
  drawCategories();
  selectCell(0, 0);
});
$("metric").addEventListener("change", () => {
  state.metric = $("metric").value;
  drawHeat();
});
if (D.diagrams.length) {
  fillMetrics();
  drawHeat();
  drawCategories();
  // Start on the cell with the largest mean of the first metric (e.g. the best final test
  // accuracy), so the curves show something at once.
  const d = D.diagrams[0], mean = d.stats[state.metric].mean;
  let best = [0, 0];
  mean.forEach((row, j) => row.forEach((v, i) => { if (v !== null && (mean[best[1]][best[0]] === null || v > mean[best[1]][best[0]])) best = [i, j]; }));
  selectCell(best[0], best[1]);
} else {
  $("maps").hidden = true;
  $("controls").hidden = true;
  showModels(D.models.map((m) => m.model), "All " + D.models.length + " models");
}
window.sweepExplorer = { ready: true };
