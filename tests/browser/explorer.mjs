// Drives RUN/analysis/explore.html in headless Chromium and checks what the page shows
// against the run's own numbers (scripts/browser-test.sh runs it).
//
//   node tests/browser/explorer.mjs RUN [--chromium PATH] [--shots DIR] [--sweep]
//
// No dependencies (the browser is driven by ./devtools.mjs over the DevTools protocol).
// Fails (exit 1) on any JavaScript error or console error, any request that leaves the
// file (the page must need no network), or a shown value that disagrees with the run:
//   - the slider moves the page to each checkpoint step it lists, play advances it;
//   - a clicked neuron's dominant frequency, power share and phases at the last step
//     equal neurons.csv (its final features);
//   - the argmax logit for a chosen pair is (a + b) mod p, for several pairs;
//   - for a group's table (analyzed in its irreps): the dominant irrep and its share
//     equal neurons.csv, the page says there are no phases, and the argmax logit is the
//     page's correct answer (the run must be trained to 100 %);
//   - both checks again for every other model of the run, picked in the model menu.
// With --shots DIR it saves a screenshot of each view there. With --sweep it moves the
// slider over every snapshot and reports the page's own redraw times.

import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { drive, fail } from "./devtools.mjs";

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const run = resolve(args[0] ?? "");
const chromium = opt("--chromium", "/usr/bin/chromium");
const shots = opt("--shots", null);
const sweep = args.includes("--sweep");
const page = join(run, "analysis", "explore.html");

// ---- the run's own numbers ----
const summary = JSON.parse(readFileSync(join(run, "analysis", "summary.json"), "utf8"));
const p = summary.p;
const irreps = summary.basis.unit === "irrep";
if (!irreps && !summary.task.startsWith("a+b")) fail("this check needs an a+b task or a group's table, got " + summary.task);
const csv = readFileSync(join(run, "analysis", "neurons.csv"), "utf8").trim().split("\n");
const head = csv[0].split(",");
const rows = csv.slice(1).map((line) => Object.fromEntries(line.split(",").map((v, j) => [head[j], v])));
const neuronsOf = (model) => rows.filter((r) => +r.model === model)
  .map((r) => ({ neuron: +r.neuron, freq: +r.freq, fraction: +r.fraction, theta: [+r.theta_u, +r.theta_v, +r.theta_w] }));

drive(chromium, page, async ({ ev, send: S, check, loadMs, shoot: shootTo }) => {
  const shown = await ev("!!window.explorer && document.getElementById('error').hidden");
  check(shown, "the page loads and draws without errors (" + loadMs + " ms to load)");

  // Steps the page lists = the run's checkpoints (all of them when few).
  const steps = await ev("JSON.parse(document.getElementById('data').textContent).steps");
  const ckpts = summary.checkpoints;
  check(steps.length >= Math.min(2, ckpts) && steps.length <= ckpts && steps[steps.length - 1] === summary.final_step,
    `the slider covers ${steps.length} snapshots of ${ckpts} checkpoints, ending at the final step ${summary.final_step}`);
  const setSlider = (j) => ev(`(() => { const s = document.getElementById('slider'); s.value = ${j}; s.dispatchEvent(new Event('input')); return document.getElementById('step-label').textContent; })()`);
  for (const j of [0, steps.length >> 1, steps.length - 1]) {
    const label = await setSlider(j);
    check(label.startsWith("step " + steps[j] + " "), `slider to snapshot ${j}: the page shows step ${steps[j]} ("${label}")`);
  }

  // Play from the first snapshot, then pause: the slider must have advanced.
  if (steps.length > 2) {
    await setSlider(0);
    const clickPlay = async () => {
      const b = await ev("(() => { window.scrollTo(0, 0); const r = document.getElementById('play').getBoundingClientRect(); return { x: r.left + r.width / 2, y: r.top + r.height / 2 }; })()");
      for (const type of ["mousePressed", "mouseReleased"]) await S("Input.dispatchMouseEvent", { type, x: b.x, y: b.y, button: "left", clickCount: 1 });
    };
    await clickPlay();
    await new Promise((ok) => setTimeout(ok, 700));
    await clickPlay();
    const at = await ev("+document.getElementById('slider').value");
    const label = await ev("document.getElementById('step-label').textContent");
    check(at > 0 && label.startsWith("step " + steps[at] + " "), `play advanced the slider to snapshot ${at} (step ${steps[at]})`);
    await new Promise((ok) => setTimeout(ok, 400));
    check(await ev("+document.getElementById('slider').value") === at, "pause stopped it there");
    await setSlider(steps.length - 1);
  }

  // Click neurons on the heat map at the last step: the strongest-sinusoid ones.
  const checkModel = async (model) => {
    const picks = [...neuronsOf(model)].sort((x, y) => y.fraction - x.fraction).slice(0, 3);
    for (const n of picks) {
      await ev("document.getElementById('heatmap').scrollIntoView({block: 'center'})");
      const at = await ev(`window.explorer.rowCenter(${n.neuron})`);
      if (!at) fail(`neuron ${n.neuron} has no row on the heat map`);
      for (const type of ["mousePressed", "mouseReleased"]) {
        await S("Input.dispatchMouseEvent", { type, x: at.x, y: at.y, button: "left", clickCount: 1 });
      }
      const got = await ev(`(() => { const g = (id) => document.getElementById(id); return { neuron: g('insp-neuron').dataset.value, k: g('insp-k').dataset.value, frac: g('insp-frac').textContent, phases: g('insp-phases').textContent }; })()`);
      check(+got.neuron === n.neuron, `clicking neuron ${n.neuron}'s row selects it (shown: ${got.neuron})`);
      check(+got.k === n.freq, `model ${model}, neuron ${n.neuron}: dominant frequency shown ${got.k} = neurons.csv ${n.freq}`);
      const frac = parseFloat(got.frac) / 100;
      check(Math.abs(frac - n.fraction) < 0.01, `neuron ${n.neuron}: power share shown ${got.frac} ≈ neurons.csv ${n.fraction}`);
      if (irreps) {
        check(got.phases === "none in the irrep basis", `neuron ${n.neuron}: no phases in the irrep basis (shown: ${got.phases})`);
        continue;
      }
      const th = got.phases.split(",").map(parseFloat);
      const dist = (x, y) => { const d = Math.abs(x - y) % (2 * Math.PI); return Math.min(d, 2 * Math.PI - d); };
      check(th.length === 3 && th.every((t, j) => dist(t, n.theta[j]) < 0.05), `neuron ${n.neuron}: phases shown ${got.phases} ≈ neurons.csv ${n.theta.map((t) => t.toFixed(3)).join(", ")}`);
    }

    // Choose pairs by typing into the a and b boxes.
    const typeInto = async (id, value) => {
      await ev(`(() => { const e = document.getElementById('${id}'); e.scrollIntoView({block: 'center'}); e.focus(); e.select(); })()`);
      await S("Input.insertText", { text: String(value) });
  };
  for (const [a, b] of [[3 % p, 5 % p], [p - 2, p - 1], [Math.floor(p / 2), p - 4]]) {
    await typeInto("a", a);
    await typeInto("b", b);
    const r = await ev(`(() => { const e = document.getElementById('logit-result'); return { arg: e.dataset.argmax, correct: e.dataset.correct, text: e.textContent }; })()`);
    if (irreps) {
      check(r.correct !== "" && +r.arg === +r.correct, `pair (${a}, ${b}): argmax logit shown ${r.arg} = the table's a·b = ${r.correct}`);
    } else {
      check(+r.correct === (a + b) % p && +r.arg === (a + b) % p, `pair (${a}, ${b}): argmax logit shown ${r.arg} = (a + b) mod p = ${(a + b) % p}`);
    }
  }
  };
  await checkModel(0);
  const models = await ev("document.getElementById('model').options.length");
  for (let k = 1; k < models; k++) {
    await ev(`(() => { const s = document.getElementById('model'); s.value = '${k}'; s.dispatchEvent(new Event('change')); })()`);
    await checkModel(k);
  }
  if (models > 1) await ev("(() => { const s = document.getElementById('model'); s.value = '0'; s.dispatchEvent(new Event('change')); })()");

  if (sweep) {
    const times = [];
    for (let j = 0; j < steps.length; j++) {
      await setSlider(j);
      times.push(await ev("window.explorer.lastRedrawMs()"));
    }
    const again = [];
    for (let j = 0; j < steps.length; j++) {
      await setSlider(j);
      again.push(await ev("window.explorer.lastRedrawMs()"));
    }
    const stat = (t) => { const s = [...t].sort((x, y) => x - y); return `median ${s[s.length >> 1].toFixed(1)} ms, max ${s[s.length - 1].toFixed(1)} ms`; };
    console.log(`redraw over ${steps.length} snapshots: first visit (computes the spectra) ${stat(times)}; second visit ${stat(again)}`);
    await setSlider(steps.length - 1);
  }

  if (shots) {
    const shoot = (name, sel) => shootTo(join(shots, name + ".png"), sel);
    await ev("window.scrollTo(0, 0)");
    for (const [name, sel] of [["explorer-page", "body"], ["explorer-curves", "#curves"], ["explorer-heatmap", "#heat"], ["explorer-inspector", "#inspector"], ["explorer-logits", "#logits"]]) {
      await shoot(name, sel);
    }
    // The heat map halfway through training, while the spectra sharpen.
    await setSlider(steps.length >> 1);
    await shoot("explorer-heatmap-mid", "#heat");
  }
});
