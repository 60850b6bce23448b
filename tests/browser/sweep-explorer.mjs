// Drives SWEEP/explore.html (`sweep ... --explore`) in headless Chromium and checks what
// the page shows against the sweep's own table, results.csv (scripts/browser-test.sh
// runs it).
//
//   node tests/browser/sweep-explorer.mjs SWEEP [--chromium PATH] [--shots DIR]
//
// Fails (exit 1) on any JavaScript or console error, any request that leaves the file,
// or a shown value that disagrees with results.csv:
//   - every cell of every diagram's heat map, for several metrics picked in the page's
//     menu: its models are the rows of results.csv with that cell's two settings, and
//     its mean and count are the mean and count of their values of the metric;
//   - every cell of the categorical map: one stripe per model, of its category;
//   - clicking each cell (on the heat map, then on the categorical map) lists exactly
//     that cell's models under the maps, and the last point of each model's curves
//     (train/test loss and accuracy, margin) equals its final values in results.csv;
//   - a sweep without a diagram (fewer than two swept keys besides the seed) lists every
//     model, checked the same way.
// With --shots DIR it saves a screenshot of the page there, the cell with the most
// generalizing models selected.

import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { drive, fail } from "./devtools.mjs";

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const dir = resolve(args[0] ?? "");
const chromium = opt("--chromium", "/usr/bin/chromium");
const shots = opt("--shots", null);
const page = join(dir, "explore.html");

// ---- results.csv (quoted fields allowed) ----
function parseCsv(text) {
  const rows = [];
  let row = [], field = "", quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") { row.push(field); field = ""; }
    else if (ch === "\n") { row.push(field); rows.push(row); row = []; field = ""; }
    else if (ch !== "\r") field += ch;
  }
  if (field !== "" || row.length) { row.push(field); rows.push(row); }
  const [head, ...body] = rows;
  return body.map((r) => Object.fromEntries(head.map((h, j) => [h, r[j]])));
}
const table = parseCsv(readFileSync(join(dir, "results.csv"), "utf8"));
if (!table.length) fail("results.csv has no rows");
const num = (s) => (s === "" || s === undefined ? null : +s);
const close = (a, b, rel) => (a === null || b === null ? a === b : Math.abs(a - b) <= rel * Math.max(1, Math.abs(b)));
const sameSet = (a, b) => a.length === b.length && [...a].sort((x, y) => x - y).every((v, i) => v === [...b].sort((x, y) => x - y)[i]);

drive(chromium, page, async ({ ev, check, loadMs, clickElement, shoot }) => {
  check(await ev("!!(window.sweepExplorer && window.sweepExplorer.ready) && document.getElementById('error').hidden"),
    "the page loads and draws without errors (" + loadMs + " ms to load)");
  const diagrams = await ev("JSON.parse(document.getElementById('data').textContent).diagrams.map((d) => ({ x: d.x, y: d.y }))");
  console.log(`the page has ${diagrams.length} diagram(s): ${diagrams.map((d) => d.x + " × " + d.y).join("; ")}`);
  // The models listed under the maps against results.csv: exactly `rows`, the last point
  // of each one's curves at its final values.
  const checkListed = async (rows, what) => {
    const shown = await ev(`Array.from(document.querySelectorAll('#cell-models tbody tr')).map((tr) => ({ ...tr.dataset }))`);
    if (!sameSet(shown.map((s) => +s.model), rows.map((r) => +r.model))) fail(`${what} shows models ${shown.map((s) => s.model)}, results.csv has ${rows.map((r) => r.model)}`);
    for (const s of shown) {
      const r = rows.find((row) => +row.model === +s.model);
      if (s.category !== r.category) fail(`model ${s.model}: category shown ${s.category}, results.csv ${r.category}`);
      for (const [key, column] of [["train_loss", "final_train_loss"], ["test_loss", "final_test_loss"], ["train_acc", "final_train_acc"], ["test_acc", "final_test_acc"], ["margin", "margin"]]) {
        // The curves are f32: equal to the table's f64 within f32 rounding.
        if (!close(num(s["final_" + key]), num(r[column]), 1e-6)) fail(`model ${s.model}: last point of its ${key} curve ${s["final_" + key]}, results.csv ${column} ${r[column]}`);
      }
    }
    check(true, `${what} shows its ${rows.length} models, their curves ending at results.csv's final losses, accuracies and margins`);
  };
  if (!diagrams.length) {
    // No diagram (fewer than two swept keys besides the seed): every model is listed.
    check(await ev("document.getElementById('maps').hidden"), "without a diagram the maps are hidden");
    await checkListed(table, "the page without a diagram");
  }
  const cellsOf = (sel) => ev(`Array.from(document.querySelectorAll('${sel} td')).map((td) => ({ i: +td.dataset.i, j: +td.dataset.j, x: td.dataset.x, y: td.dataset.y, models: td.dataset.models ? td.dataset.models.split(' ').map(Number) : [], mean: td.dataset.mean, n: td.dataset.n, stripes: Array.from(td.querySelectorAll('.stripes span')).map((s) => [+s.dataset.model, s.dataset.category]) }))`);

  for (let k = 0; k < diagrams.length; k++) {
    const { x, y } = diagrams[k];
    await ev(`(() => { const s = document.getElementById('diagram'); s.value = '${k}'; s.dispatchEvent(new Event('change')); })()`);
    const rowsOf = (cell) => table.filter((r) => r[x] === cell.x && r[y] === cell.y);
    // Heat map cells against the table, for several metrics.
    for (const metric of ["final_test_acc", "final_train_loss", "grok_step", "margin", "memorization_step", "sinusoidal_share"]) {
      if (!(metric in table[0])) fail("results.csv has no column " + metric);
      await ev(`(() => { const s = document.getElementById('metric'); s.value = '${metric}'; s.dispatchEvent(new Event('change')); })()`);
      const cells = await cellsOf("#heat");
      let covered = 0;
      for (const c of cells) {
        const rows = rowsOf(c);
        covered += rows.length;
        if (!sameSet(c.models, rows.map((r) => +r.model))) fail(`heat map cell ${x} = ${c.x}, ${y} = ${c.y}: models ${c.models} but results.csv has ${rows.map((r) => r.model)}`);
        const vals = rows.map((r) => num(r[metric])).filter((v) => v !== null && isFinite(v));
        const mean = vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : null;
        if (+c.n !== vals.length || !close(num(c.mean), mean, 1e-12)) fail(`heat map cell ${x} = ${c.x}, ${y} = ${c.y}, ${metric}: page mean ${c.mean} of ${c.n}, results.csv ${mean} of ${vals.length}`);
      }
      check(covered === table.length && cells.length > 1, `${x} × ${y}, ${metric}: all ${cells.length} cells' means and counts equal results.csv (${covered} models)`);
    }
    // Categorical map.
    const cats = await cellsOf("#cats");
    for (const c of cats) {
      const rows = rowsOf(c);
      const want = new Map(rows.map((r) => [+r.model, r.category]));
      if (c.stripes.length !== rows.length || !c.stripes.every(([m, cat]) => want.get(m) === cat)) fail(`categorical cell ${x} = ${c.x}, ${y} = ${c.y}: stripes ${JSON.stringify(c.stripes)}, results.csv ${JSON.stringify([...want])}`);
    }
    check(true, `${x} × ${y}: every categorical cell has one stripe per model, of its category in results.csv`);

    // Click each cell: the listed models and their curves' last points.
    for (const map of ["#heat", "#cats"]) {
      for (const c of cats) {
        await clickElement(`document.querySelector('${map} td[data-i="${c.i}"][data-j="${c.j}"]')`);
        const selected = await ev(`Array.from(document.querySelectorAll('${map} td.selected')).map((td) => td.dataset.i + ',' + td.dataset.j)`);
        if (selected.length !== 1 || selected[0] !== c.i + "," + c.j) fail(`clicking ${map} cell (${c.i}, ${c.j}) selects ${selected}`);
        await checkListed(rowsOf(c), `clicking ${map} cell ${x} = ${c.x}, ${y} = ${c.y}`);
      }
    }
  }

  if (shots && diagrams.length) {
    await ev(`(() => { const s = document.getElementById('diagram'); s.value = '0'; s.dispatchEvent(new Event('change')); const m = document.getElementById('metric'); m.value = m.options[0].value; m.dispatchEvent(new Event('change')); })()`);
    // The cell with the most generalizing models, so the curves show a transition.
    const cats = await cellsOf("#cats");
    const best = cats.reduce((a, c) => (c.stripes.filter(([, k]) => k === "generalizes").length > a.stripes.filter(([, k]) => k === "generalizes").length ? c : a), cats[0]);
    await clickElement(`document.querySelector('#heat td[data-i="${best.i}"][data-j="${best.j}"]')`);
    await ev("window.scrollTo(0, 0)");
    await shoot(join(shots, "sweep-explorer-page.png"), "body");
  }
});
