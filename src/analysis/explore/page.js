// clockwork explorer: one training-step slider driving the curves, the neuron x
// frequency heat map, a neuron inspector and a logit explorer. Hand-written, no
// libraries, no network: everything comes from the JSON in <script id="data">. Built
// after common.js (D, $, fmt, drawChart, ...) in one function scope (scaffold.html).
//
// Conventions follow src/analysis/fourier.rs, in the run's basis (src/analysis/basis.rs):
// over the group Z_n the vector is relabelled x'[j] = x[tokens[j]] (the identity for the
// additive basis, x[g^j] for the discrete-log one), X_k = sum_j x'[j] e^{-2 pi i k j / n},
// power P_k = 2|X_k|^2 / n (k and n-k combined; k = 0 and k = n/2 once), phase arg X_k,
// dominant frequency = the largest P_k over k >= 1 of the combined u+v+w power (ties
// to the lower k), its share counted against the total including k = 0.
// For a group's table the basis is its irreps (D.basis.irreps, src/analysis/irrep_spectra.rs):
// "frequency" k is irrep ρk, its power the squared norm of the vector's projection on ρk's
// matrix-element subspace (an orthonormal basis of which is embedded), and there are no
// phases.
const P = D.p, M = D.width, S = D.steps.length;
const IRREPS = D.basis.irreps;
const N = D.basis.size, NF = IRREPS ? IRREPS.length : (N >> 1) + 1, TOK = D.basis.tokens;
const UNIT = IRREPS ? "irrep" : "frequency";
const kName = (k) => (IRREPS ? "ρ" + k : String(k));

// ---- Fourier basis: the one place the page decides what "frequency" means ----
function basisTables(n) {
  const cos = new Float64Array(NF * n), sin = new Float64Array(NF * n);
  for (let k = 0; k < NF; k++) {
    for (let j = 0; j < n; j++) {
      const t = (2 * Math.PI * ((k * j) % n)) / n;
      cos[k * n + j] = Math.cos(t);
      sin[k * n + j] = Math.sin(t);
    }
  }
  return { cos, sin };
}
const BASIS = basisTables(N);

// ---- data ----
const decoded = new Map();
function modelData(j) {
  if (!decoded.has(j)) {
    const md = D.models[j];
    const qb = bytesOf(md.weights_i8);
    const sb = bytesOf(md.scales_f32);
    const q = new Int8Array(qb.buffer);
    const view = new DataView(sb.buffer);
    const scale = new Float32Array(sb.length / 4);
    for (let i = 0; i < scale.length; i++) scale[i] = view.getFloat32(4 * i, true);
    if (q.length !== S * 3 * M * P || scale.length !== S * 3 * M) {
      throw new Error("embedded weights of model " + md.model + " have the wrong size");
    }
    // Rows of the heat map: by final frequency, then by neuron index.
    const order = Array.from({ length: M }, (_, i) => i);
    order.sort((x, y) => md.final_freq[x] - md.final_freq[y] || x - y);
    const rowOf = new Int32Array(M);
    order.forEach((n, r) => (rowOf[n] = r));
    decoded.set(j, { md, q, scale, order, rowOf, spectra: new Map() });
  }
  return decoded.get(j);
}
// vector `part` (0 u, 1 v, 2 w) of neuron i at snapshot s, dequantized
function vec(m, s, part, i) {
  const base = (s * 3 + part) * M + i;
  const sc = m.scale[base], off = base * P, out = new Float64Array(P);
  for (let a = 0; a < P; a++) out[a] = m.q[off + a] * sc;
  return out;
}
function dominant(power, off) {
  let total = 0, best = Math.min(1, NF - 1);
  for (let k = 0; k < NF; k++) total += power[off + k];
  for (let k = 1; k < NF; k++) if (power[off + k] > power[off + best]) best = k;
  return [best, total > 0 ? power[off + best] / total : 0, total];
}
// Spectra of every neuron at snapshot s (cached, a few snapshots at a time).
const CACHE = 24;
function spectraAt(m, s) {
  if (m.spectra.has(s)) return m.spectra.get(s);
  const re = new Float32Array(3 * M * NF), im = new Float32Array(3 * M * NF);
  const power = new Float32Array(3 * M * NF), comb = new Float32Array(M * NF);
  const freq = new Int32Array(M), frac = new Float32Array(M), norm = new Float32Array(M);
  const { cos, sin } = BASIS;
  const x = new Float64Array(P);
  for (let part = 0; part < 3; part++) {
    for (let i = 0; i < M; i++) {
      const base = (s * 3 + part) * M + i, sc = m.scale[base], off = base * P;
      for (let j = 0; j < N; j++) x[j] = m.q[off + TOK[j]] * sc;
      const o = (part * M + i) * NF;
      if (IRREPS) {
        for (let k = 0; k < NF; k++) {
          const b = IRREPS[k].basis;
          let pw = 0;
          for (let v = 0; v < b.length; v += N) {
            let dot = 0;
            for (let j = 0; j < N; j++) dot += b[v + j] * x[j];
            pw += dot * dot;
          }
          power[o + k] = pw;
          comb[i * NF + k] += pw;
        }
        continue;
      }
      for (let k = 0; k < NF; k++) {
        let r = 0, q = 0;
        const t = k * N;
        for (let j = 0; j < N; j++) {
          r += x[j] * cos[t + j];
          q -= x[j] * sin[t + j];
        }
        re[o + k] = r;
        im[o + k] = q;
        const pair = k === 0 || 2 * k === N ? 1 : 2;
        const pw = (pair * (r * r + q * q)) / N;
        power[o + k] = pw;
        comb[i * NF + k] += pw;
      }
    }
  }
  for (let i = 0; i < M; i++) {
    const [k, f, total] = dominant(comb, i * NF);
    freq[i] = k;
    frac[i] = f;
    norm[i] = total;
  }
  const sp = { re, im, power, comb, freq, frac, norm };
  m.spectra.set(s, sp);
  if (m.spectra.size > CACHE) m.spectra.delete(m.spectra.keys().next().value);
  return sp;
}

// ---- formatting and drawing helpers ----
const groupColor = (k) => "hsl(" + ((k * 137.508) % 360).toFixed(1) + ",70%,42%)";
function wrap(t) {
  let y = t % (2 * Math.PI);
  if (y < 0) y += 2 * Math.PI;
  return y > Math.PI ? y - 2 * Math.PI : y;
}
// Bars of `vals` in the box (x, y, w, h) with a zero line; `color(i)` per bar; `mark`
// an index to outline; `title` top-left.
function bars(ctx, box, vals, opts) {
  const [x, y, w, h] = box;
  let lo = 0, hi = 0;
  for (const v of vals) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  if (hi === lo) hi = lo + 1;
  const top = y + 14, ht = h - 18;
  const yOf = (v) => top + ((hi - v) / (hi - lo)) * ht;
  const bw = w / vals.length;
  ctx.fillStyle = "#222";
  ctx.fillText(opts.title, x, y + 10);
  ctx.fillStyle = "#888";
  ctx.textAlign = "right";
  ctx.fillText(fmt(hi), x + w, y + 10);
  ctx.textAlign = "left";
  for (let i = 0; i < vals.length; i++) {
    ctx.fillStyle = opts.color ? opts.color(i) : "#4a6fa5";
    const y0 = yOf(Math.max(vals[i], 0)), y1 = yOf(Math.min(vals[i], 0));
    ctx.fillRect(x + i * bw, y0, Math.max(bw - (bw > 3 ? 1 : 0), 0.6), Math.max(y1 - y0, 0.5));
  }
  ctx.strokeStyle = "#999";
  ctx.beginPath();
  ctx.moveTo(x, yOf(0) + 0.5);
  ctx.lineTo(x + w, yOf(0) + 0.5);
  ctx.stroke();
  if (opts.mark !== undefined && opts.mark >= 0) {
    ctx.strokeStyle = "#d00";
    ctx.lineWidth = 2;
    ctx.strokeRect(x + opts.mark * bw - 1, top - 2, bw + 2, ht + 4);
    ctx.lineWidth = 1;
  }
  return { x, bw, yOf };
}

// ---- header ----
$("title").textContent = D.task + " — width " + M + ", " + (D.activation === "relu" ? "ReLU" : "σ(x) = x^" + D.power) + (D.tied ? ", tied" : "") + (D.embed_dim > 0 ? ", factored (dim " + D.embed_dim + ")" : "");
$("info").textContent = "run: " + D.run + " · p = " + P + " · " + S + " snapshot" + (S === 1 ? "" : "s") + " at steps " + D.steps[0] + " … " + D.steps[S - 1] + (D.gamma_star ? " · γ* = " + fmt(D.gamma_star) : "") + (IRREPS ? " · basis: the irreps of " + D.basis.group + " (" + IRREPS.map((r) => r.label).join(", ") + ")" : " · Fourier basis: " + D.basis.name + " over " + D.basis.group + (D.basis.generator ? " (generator " + D.basis.generator + ")" : ""));
if (IRREPS) {
  // The page's words for a group's table: irreps instead of frequencies, no phases.
  $("ipr-caption").textContent = "mean IPR of the neurons' power (1 = one irrep)";
  $("heat-title").textContent = "Power of each neuron per irrep";
  $("heat-help").textContent = "Rows: neurons, grouped by their final dominant irrep (labels on the left); columns: the irreps ρ0 … ρ" + (NF - 1) + " of " + D.basis.group + " (ρ0 = the mean). Colour: share of the neuron's power ‖u‖²+‖v‖²+‖w‖² in ρk's matrix-element subspace (square-root scale). Click a row to inspect that neuron.";
  $("insp-k-label").textContent = "dominant irrep now (u+v+w)";
  $("insp-final-label").textContent = "final irrep (group)";
  $("logit-help").textContent = "Below: the same logits split by irrep group (the neurons whose final irrep is ρk), the eight groups with the largest vote for the correct answer drawn in colour (the legend gives each vote, and the remaining groups' total). Where they agree is the answer.";
}
const notes = [];
if (S < D.checkpoints_total) notes.push("Showing " + S + " of the run's " + D.checkpoints_total + " checkpoints (evenly spaced, first and last kept) to keep this page under ~20 MB; the curves keep every logged step.");
if (S === 1 && D.checkpoints_total === 1) notes.push("The run kept one checkpoint (step " + D.steps[0] + "), so the heat map, the inspector and the logits show that step only; the curves cover every logged step. Train with train.checkpoint_every to scrub through training.");
if (D.models.length < D.models_total) notes.push("Models 0 … " + (D.models.length - 1) + " of the run's " + D.models_total + " are embedded (size limit).");
if (D.tied || D.embed_dim > 0) notes.push("The weights shown are the effective U, V, W the network computes with.");
notes.push("Weights are stored with 8 bits per value (one scale per neuron vector); spectra, phases and logits are computed in this page from them.");
for (const n of notes) {
  const li = document.createElement("li");
  li.textContent = n;
  $("notes").appendChild(li);
}

// ---- state ----
const state = { model: 0, snap: S - 1, neuron: -1, a: 0, b: 0 };
const slider = $("slider");
slider.max = String(S - 1);
slider.value = String(S - 1);
slider.disabled = S === 1;
$("play").disabled = S === 1;
if (D.models.length > 1) {
  $("model-box").hidden = false;
  D.models.forEach((md, j) => {
    const o = document.createElement("option");
    o.value = String(j);
    o.textContent = String(md.model);
    $("model").appendChild(o);
  });
}
for (const id of ["a", "b", "a-range", "b-range"]) $(id).max = String(P - 1);
// A pair the task has (a / b has no b = 0): start at the first one.
{
  const first = D.answer.findIndex((c) => c >= 0);
  state.a = Math.floor(first / P);
  state.b = first % P;
}

// ---- curves: drawn once per model into a backing canvas, then the step line ----
const curveIds = ["c-loss", "c-acc", "c-margin", "c-ipr"];
let curveCache = null;
function curveSeries(md) {
  const c = md.curves;
  const ratio = D.gamma_star ? c.margin.map((v) => (v === null ? null : v / D.gamma_star)) : c.margin;
  const hasTest = c.test_loss.some((v) => v !== null);
  const log10 = (ys) => ys.map((v) => (v > 0 ? Math.log10(v) : null));
  const train = (x, y) => ({ x, y, color: "#1f4e9c" });
  const test = (x, y) => hasTest && { x, y, color: "#c0504d", dash: true };
  return [
    { lines: [train(c.step, log10(c.train_loss)), test(c.step, log10(c.test_loss))], log: true },
    { lines: [train(c.step, c.train_acc), test(c.step, c.test_acc)], fixed: [0, 1] },
    { lines: [train(c.step, ratio)], ref: D.gamma_star ? 1 : null },
    { lines: [train(c.ipr_step, c.ipr)], fixed: [0, 1] },
  ];
}
function drawCurves() {
  const md = D.models[state.model];
  $("margin-caption").textContent = D.gamma_star ? "normalized margin / γ* (train pairs; 1 = the theory's maximum)" : "normalized margin (train pairs; no γ* for this setup)";
  const maxStep = Math.max(D.steps[S - 1], ...md.curves.step, ...md.curves.ipr_step, 1);
  curveCache = curveSeries(md).map((spec, j) => {
    const cv = document.createElement("canvas");
    cv.width = $(curveIds[j]).width;
    cv.height = $(curveIds[j]).height;
    return { cv, ...drawChart(cv, spec, maxStep) };
  });
}
function drawStepLines() {
  const step = D.steps[state.snap];
  curveCache.forEach((c, j) => {
    const ctx = $(curveIds[j]).getContext("2d");
    clear(ctx);
    ctx.drawImage(c.cv, 0, 0);
    ctx.strokeStyle = "#e08000";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(c.X(step), c.T);
    ctx.lineTo(c.X(step), c.T + c.h);
    ctx.stroke();
    ctx.lineWidth = 1;
  });
}

// ---- heat map ----
const HM = { L: 46, T: 18, W: 0, H: 0, cell: 0, rowH: 0 };
{
  const cv = $("heatmap");
  HM.cell = Math.max(3, Math.min(18, Math.floor(560 / NF)));
  HM.W = HM.cell * NF;
  HM.rowH = M <= 520 ? Math.max(1, Math.floor(520 / M)) : 520 / M;
  HM.H = HM.rowH * M;
  cv.width = HM.L + HM.W + 10;
  cv.height = HM.T + HM.H + 30;
  $("heat").style.maxWidth = Math.max(cv.width, 400) + "px";
}
const hmImage = document.createElement("canvas");
hmImage.width = NF;
hmImage.height = M;
function shade(v) {
  // white -> blue -> dark, on the square root of the share
  const t = Math.sqrt(Math.max(0, Math.min(1, v)));
  const r = Math.round(255 * (1 - t) * (1 - 0.3 * t)), g = Math.round(255 * (1 - 0.85 * t)), b = Math.round(255 * (1 - 0.45 * t));
  return [r, g, b];
}
function drawHeat(m, sp) {
  const ictx = hmImage.getContext("2d");
  const img = ictx.createImageData(NF, M);
  for (let r = 0; r < M; r++) {
    const i = m.order[r], tot = sp.norm[i] || 1;
    for (let k = 0; k < NF; k++) {
      const [R, G, B] = shade(sp.comb[i * NF + k] / tot);
      const o = 4 * (r * NF + k);
      img.data[o] = R; img.data[o + 1] = G; img.data[o + 2] = B; img.data[o + 3] = 255;
    }
  }
  ictx.putImageData(img, 0, 0);
  const ctx = $("heatmap").getContext("2d");
  clear(ctx);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(hmImage, HM.L, HM.T, HM.W, HM.H);
  // group boundaries and labels
  const ff = m.md.final_freq;
  ctx.textAlign = "right";
  let start = 0;
  for (let r = 1; r <= M; r++) {
    if (r === M || ff[m.order[r]] !== ff[m.order[start]]) {
      const k = ff[m.order[start]];
      const y0 = HM.T + start * HM.rowH, y1 = HM.T + r * HM.rowH;
      ctx.fillStyle = groupColor(k);
      ctx.fillRect(HM.L - 6, y0, 4, Math.max(y1 - y0, 1));
      if (y1 - y0 >= 9) ctx.fillText(kName(k), HM.L - 9, (y0 + y1) / 2 + 4);
      if (r < M) {
        ctx.strokeStyle = "rgba(0,0,0,0.25)";
        ctx.beginPath();
        ctx.moveTo(HM.L, y1 + 0.5);
        ctx.lineTo(HM.L + HM.W, y1 + 0.5);
        ctx.stroke();
      }
      start = r;
    }
  }
  ctx.textAlign = "center";
  ctx.fillStyle = "#555";
  const tick = NF > 30 ? 10 : 5;
  for (let k = 0; k < NF; k += tick) ctx.fillText(kName(k), HM.L + (k + 0.5) * HM.cell, HM.T + HM.H + 13);
  ctx.fillText(IRREPS ? "irrep ρk" : "frequency k", HM.L + HM.W / 2, HM.T + HM.H + 26);
  ctx.textAlign = "left";
  ctx.fillText("final k", 2, HM.T - 6);
  if (state.neuron >= 0) {
    const y = HM.T + m.rowOf[state.neuron] * HM.rowH;
    ctx.strokeStyle = "#e08000";
    ctx.lineWidth = 2;
    ctx.strokeRect(HM.L - 1, y - 1, HM.W + 2, Math.max(HM.rowH, 1) + 2);
    ctx.lineWidth = 1;
  }
}
function neuronAt(clientX, clientY) {
  const cv = $("heatmap"), rect = cv.getBoundingClientRect();
  const x = ((clientX - rect.left) * cv.width) / rect.width, y = ((clientY - rect.top) * cv.height) / rect.height;
  if (x < HM.L - 8 || x > HM.L + HM.W || y < HM.T || y >= HM.T + HM.H) return -1;
  const r = Math.floor((y - HM.T) / HM.rowH);
  return modelData(state.model).order[Math.min(M - 1, r)];
}

// ---- inspector ----
function drawInspector(m, sp) {
  const i = state.neuron;
  const set = (id, text, value) => {
    $(id).textContent = text;
    if (value !== undefined) $(id).dataset.value = String(value);
  };
  for (const id of ["insp-vectors", "insp-spectra", "insp-phase"]) clear($(id).getContext("2d"));
  if (i < 0) {
    set("insp-neuron", "– (click a row of the heat map)", "");
    return;
  }
  const k = sp.freq[i];
  set("insp-neuron", String(i), i);
  set("insp-k", kName(k), k);
  set("insp-frac", pct(sp.frac[i]));
  const partShare = [0, 1, 2].map((part) => {
    let tot = 0;
    const o = (part * M + i) * NF;
    for (let j = 0; j < NF; j++) tot += sp.power[o + j];
    return tot > 0 ? sp.power[o + k] / tot : 0;
  });
  set("insp-parts", partShare.map(pct).join(" / "));
  set("insp-final", kName(m.md.final_freq[i]) + " (share " + pct(m.md.final_fraction[i]) + " at the last checkpoint)");
  const th = [0, 1, 2].map((part) => {
    const o = (part * M + i) * NF + k;
    return Math.atan2(sp.im[o], sp.re[o]);
  });
  set("insp-phases", IRREPS ? "none in the irrep basis" : th.map((t) => t.toFixed(3)).join(", ") + " rad");
  if (D.basis.v_sign !== null) {
    $("insp-residual-label").textContent = D.basis.formula + " (wrapped)";
    set("insp-residual", wrap(th[0] + D.basis.v_sign * th[1] - th[2]).toFixed(4) + " rad");
  } else {
    $("insp-residual-label").textContent = "phase invariant";
    set("insp-residual", "none for this task");
  }
  set("insp-norm", fmt(sp.norm[i]));
  const names = ["u", "v", "w"], colors = ["#1f4e9c", "#2c8a3c", "#a0522d"];
  const cv = $("insp-vectors").getContext("2d");
  const W = $("insp-vectors").width, H3 = $("insp-vectors").height / 3;
  for (let part = 0; part < 3; part++) {
    const x = vec(m, state.snap, part, i);
    bars(cv, [30, part * H3, W - 34, H3 - 4], x, { title: names[part] + "_" + i + "[" + (part === 2 ? "c" : part === 0 ? "a" : "b") + "]", color: () => colors[part] });
  }
  const cs = $("insp-spectra").getContext("2d");
  for (let part = 0; part < 3; part++) {
    const o = (part * M + i) * NF;
    const pw = Array.from(sp.power.subarray(o, o + NF));
    bars(cs, [30, part * H3, W - 34, H3 - 4], pw, { title: "power of " + names[part] + " per " + UNIT + " (" + kName(k) + " outlined)", color: (j) => (j === k ? "#d35400" : "#888"), mark: k });
  }
  // phase circle
  const cp = $("insp-phase").getContext("2d");
  const cx = 120, cy = 122, R = 88;
  cp.strokeStyle = "#bbb";
  cp.beginPath();
  cp.arc(cx, cy, R, 0, 2 * Math.PI);
  cp.stroke();
  cp.fillStyle = "#222";
  if (IRREPS) {
    cp.fillStyle = "#222";
    cp.fillText("no phases in the irrep basis", 4, 12);
    return;
  }
  cp.fillText("phases at k = " + k, 4, 12);
  const arrow = (t, color, label, dash) => {
    const x = cx + R * Math.cos(t), y = cy - R * Math.sin(t);
    cp.strokeStyle = color;
    cp.setLineDash(dash ? [4, 3] : []);
    cp.lineWidth = 2;
    cp.beginPath();
    cp.moveTo(cx, cy);
    cp.lineTo(x, y);
    cp.stroke();
    cp.setLineDash([]);
    cp.lineWidth = 1;
    cp.fillStyle = color;
    const r = dash ? R - 30 : R + 12; // the sum's label inside, so it never covers θw's
    cp.fillText(label, cx + r * Math.cos(t) - 8, cy - r * Math.sin(t) + 4);
  };
  arrow(th[0], colors[0], "θu");
  arrow(th[1], colors[1], "θv");
  arrow(th[2], colors[2], "θw");
  if (D.basis.v_sign !== null) arrow(wrap(th[0] + D.basis.v_sign * th[1]), "#777", D.basis.v_sign > 0 ? "θu+θv" : "θu−θv", true);
}

// ---- logits ----
const sigma = D.activation === "relu" ? (x) => (x > 0 ? x : 0) : (x) => Math.pow(x, D.power);
function logitsAt(m, s, a, b) {
  const ff = m.md.final_freq;
  const logits = new Float64Array(P);
  const groups = new Map();
  for (let i = 0; i < M; i++) {
    const bu = (s * 3) * M + i, bv = (s * 3 + 1) * M + i, bw = (s * 3 + 2) * M + i;
    const h = sigma(m.q[bu * P + a] * m.scale[bu] + m.q[bv * P + b] * m.scale[bv]);
    if (h === 0) continue;
    let g = groups.get(ff[i]);
    if (!g) groups.set(ff[i], (g = new Float64Array(P)));
    const sw = m.scale[bw] * h, off = bw * P;
    for (let c = 0; c < P; c++) {
      const x = m.q[off + c] * sw;
      logits[c] += x;
      g[c] += x;
    }
  }
  return { logits, groups };
}
function drawLogits(m) {
  const { a, b } = state;
  const { logits, groups } = logitsAt(m, state.snap, a, b);
  const correct = D.answer[a * P + b];
  let arg = 0;
  for (let c = 1; c < P; c++) if (logits[c] > logits[arg]) arg = c;
  const res = $("logit-result");
  res.dataset.argmax = String(arg);
  res.dataset.correct = String(correct);
  res.className = arg === correct ? "" : "wrong";
  res.textContent = "argmax over c: " + arg + " · correct answer: " + (correct >= 0 ? correct : "none (pair not in the task)") + (correct >= 0 ? (arg === correct ? " ✓" : " ✗") : "");
  const ctx = $("logit-bars").getContext("2d");
  clear(ctx);
  const W = $("logit-bars").width, H = $("logit-bars").height;
  const g = bars(ctx, [40, 0, W - 50, H - 16], Array.from(logits), { title: "logits over c at step " + D.steps[state.snap] + " for (a, b) = (" + a + ", " + b + "); correct c outlined in red", color: (c) => (c === correct ? "#d00" : c === arg ? "#e08000" : "#4a6fa5"), mark: correct });
  ctx.fillStyle = "#555";
  ctx.textAlign = "center";
  const tick = P > 60 ? 10 : 5;
  for (let c = 0; c < P; c += tick) ctx.fillText(String(c), g.x + (c + 0.5) * g.bw, H - 3);
  ctx.textAlign = "left";
  // waves
  const wv = $("logit-waves").getContext("2d");
  clear(wv);
  const WW = $("logit-waves").width, WH = $("logit-waves").height;
  const ranked = Array.from(groups.entries()).sort((x, y) => (correct >= 0 ? y[1][correct] - x[1][correct] : 0));
  const shown = ranked.slice(0, 8), rest = new Float64Array(P);
  for (const [, v] of ranked.slice(8)) for (let c = 0; c < P; c++) rest[c] += v[c];
  let lo = 0, hi = 0;
  for (const [, v] of shown) for (const x of v) { lo = Math.min(lo, x); hi = Math.max(hi, x); }
  if (hi === lo) hi = lo + 1;
  const L = 40, T = 16, w = WW - 50 - 110, h = WH - 34;
  const X = (c) => L + ((c + 0.5) / P) * w, Y = (v) => T + ((hi - v) / (hi - lo)) * h;
  wv.strokeStyle = "#ccc";
  wv.strokeRect(L, T, w, h);
  wv.beginPath();
  wv.moveTo(L, Y(0));
  wv.lineTo(L + w, Y(0));
  wv.stroke();
  if (correct >= 0) {
    wv.strokeStyle = "#d00";
    wv.setLineDash([3, 3]);
    wv.beginPath();
    wv.moveTo(X(correct), T);
    wv.lineTo(X(correct), T + h);
    wv.stroke();
    wv.setLineDash([]);
  }
  const line = (v, color) => {
    wv.strokeStyle = color;
    wv.lineWidth = P > 60 ? 1 : 1.5;
    wv.beginPath();
    for (let c = 0; c < P; c++) (c ? wv.lineTo : wv.moveTo).call(wv, X(c), Y(v[c]));
    wv.stroke();
    wv.lineWidth = 1;
  };
  shown.forEach(([k, v], j) => {
    line(v, groupColor(k));
    wv.fillStyle = groupColor(k);
    wv.fillText((IRREPS ? kName(k) : "k = " + k) + ": " + fmt(correct >= 0 ? v[correct] : 0), L + w + 8, T + 12 + 14 * j);
  });
  if (ranked.length > 8) {
    wv.fillStyle = "#999";
    wv.fillText(ranked.length - 8 + " more groups: " + fmt(correct >= 0 ? rest[correct] : 0), L + w + 8, T + 12 + 14 * 8);
  }
  wv.fillStyle = "#555";
  wv.fillText("contribution to each logit by final-" + UNIT + " group (legend: vote for the correct c)", L, 11);
  wv.textAlign = "center";
  const tick2 = P > 60 ? 10 : 5;
  for (let c = 0; c < P; c += tick2) wv.fillText(String(c), X(c), T + h + 13);
  wv.textAlign = "left";
}

// ---- redraw ----
let lastMs = 0;
function redraw() {
  const t0 = performance.now();
  const m = modelData(state.model);
  const sp = spectraAt(m, state.snap);
  $("step-label").textContent = "step " + D.steps[state.snap] + " (snapshot " + (state.snap + 1) + " of " + S + ")";
  drawStepLines();
  drawHeat(m, sp);
  drawInspector(m, sp);
  drawLogits(m);
  lastMs = performance.now() - t0;
  $("timing").textContent = "redraw " + lastMs.toFixed(1) + " ms";
}

// ---- events ----
slider.addEventListener("input", () => {
  state.snap = +slider.value;
  redraw();
});
let timer = null;
function setPlaying(on) {
  if (timer) clearInterval(timer);
  timer = null;
  $("play").innerHTML = on ? "&#10074;&#10074; pause" : "&#9654; play";
  if (!on) return;
  if (state.snap === S - 1) state.snap = 0;
  timer = setInterval(() => {
    state.snap = Math.min(S - 1, state.snap + 1);
    slider.value = String(state.snap);
    redraw();
    if (state.snap === S - 1) setPlaying(false);
  }, 160);
}
$("play").addEventListener("click", () => setPlaying(!timer));
$("model").addEventListener("change", () => {
  state.model = +$("model").value;
  drawCurves();
  redraw();
});
$("heatmap").addEventListener("click", (e) => {
  const i = neuronAt(e.clientX, e.clientY);
  if (i >= 0) {
    state.neuron = i;
    redraw();
  }
});
function setPair(which, v) {
  v = Math.round(+v);
  if (!(v >= 0 && v < P)) return;
  state[which] = v;
  $(which).value = String(v);
  $(which + "-range").value = String(v);
  drawLogits(modelData(state.model));
}
for (const w of ["a", "b"]) {
  $(w).addEventListener("input", () => setPair(w, $(w).value));
  $(w + "-range").addEventListener("input", () => setPair(w, $(w + "-range").value));
}
document.addEventListener("keydown", (e) => {
  if (e.target.tagName === "INPUT" && e.target.type === "number") return;
  if (e.key === " ") { e.preventDefault(); setPlaying(!timer); }
});

// For scripted checks (scripts/browser-test.sh): where a neuron's row is on screen and
// the last redraw time. Everything else is read from what the page shows.
window.explorer = {
  // A whole-pixel point on neuron i's row (rows may be one pixel high).
  rowCenter(i) {
    const m = modelData(state.model), cv = $("heatmap"), rect = cv.getBoundingClientRect();
    const y = HM.T + (m.rowOf[i] + 0.5) * HM.rowH, x = HM.L + HM.W / 2;
    const px = Math.round(rect.left + (x * rect.width) / cv.width), py = rect.top + (y * rect.height) / cv.height;
    for (const d of [0, -1, 1, -2, 2]) {
      const yy = Math.round(py) + d;
      if (neuronAt(px, yy) === i) return { x: px, y: yy };
    }
    return null;
  },
  lastRedrawMs: () => lastMs,
  snapshots: S,
};

for (const w of ["a", "b"]) {
  $(w).value = String(state[w]);
  $(w + "-range").value = String(state[w]);
}
drawCurves();
redraw();
