// A minimal headless-Chromium driver for the explorer tests (tests/browser/*.mjs), with
// no dependencies: Chromium is started with --remote-debugging-pipe and spoken to over
// its DevTools protocol on file descriptors 3 (commands) and 4 (replies), messages
// separated by NUL bytes. Every JavaScript exception, console error, browser error and
// request that leaves the file (anything but file:, data: and about:blank) is recorded
// as a problem; `drive` fails the test when there is one.
//
//   import { drive } from "./devtools.mjs";
//   drive(chromiumPath, pageFile, async (page) => { ...; page.check(cond, "what"); });

import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

export function fail(msg) {
  throw new Error(msg);
}

export const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

// Opens `file` in a fresh headless Chromium, runs `body(page)` and exits the process
// (status 1 on a failed check, a problem, or after `limitMs`). `page` has:
//   ev(expr)               evaluate in the page (awaits promises), the value back
//   send(method, params)   a raw DevTools command in the page's session
//   check(cond, msg)       fail with msg, or print "ok: msg"
//   click(x, y)            a left click at viewport coordinates
//   clickElement(expr)     scroll the element (a JS expression) into view and click its centre
//   shoot(file, selector)  a PNG screenshot of the element
//   loadMs                 how long the page took to load
export function drive(chromium, file, body, { limitMs = 100000, width = 1280, height = 1000 } = {}) {
  const profile = mkdtempSync(join(tmpdir(), "clockwork-chromium-"));
  const browser = spawn(chromium, [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--disable-default-apps", "--mute-audio",
    "--remote-debugging-pipe", "--user-data-dir=" + profile, "about:blank",
  ], { stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"] });
  let stderr = "";
  browser.stderr.on("data", (d) => (stderr += d));
  const toBrowser = browser.stdio[3], fromBrowser = browser.stdio[4];
  let nextId = 1, buffer = "";
  const pending = new Map(), listeners = [];
  fromBrowser.on("data", (chunk) => {
    buffer += chunk.toString("utf8");
    let end;
    while ((end = buffer.indexOf("\0")) >= 0) {
      const msg = JSON.parse(buffer.slice(0, end));
      buffer = buffer.slice(end + 1);
      if (msg.id && pending.has(msg.id)) {
        const { ok, bad, method } = pending.get(msg.id);
        pending.delete(msg.id);
        msg.error ? bad(new Error(method + ": " + JSON.stringify(msg.error))) : ok(msg.result);
      } else if (msg.method) {
        for (const l of listeners) l(msg);
      }
    }
  });
  function send(method, params = {}, sessionId) {
    const id = nextId++;
    toBrowser.write(JSON.stringify({ id, method, params, sessionId }) + "\0");
    return new Promise((ok, bad) => pending.set(id, { ok, bad, method }));
  }
  const waitFor = (pred, what, ms = 30000) => new Promise((ok, bad) => {
    const t = setTimeout(() => bad(new Error("timed out waiting for " + what)), ms);
    listeners.push((m) => { if (pred(m)) { clearTimeout(t); ok(m); } });
  });

  const problems = [];
  async function main() {
    const { targetId } = await send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true });
    const S = (method, params) => send(method, params, sessionId);
    listeners.push((m) => {
      if (m.sessionId !== sessionId) return;
      if (m.method === "Runtime.exceptionThrown") problems.push("JavaScript exception: " + JSON.stringify(m.params.exceptionDetails.exception?.description ?? m.params.exceptionDetails.text));
      if (m.method === "Runtime.consoleAPICalled" && (m.params.type === "error" || m.params.type === "assert")) problems.push("console error: " + m.params.args.map((a) => a.value ?? a.description).join(" "));
      if (m.method === "Log.entryAdded" && m.params.entry.level === "error") problems.push("browser error: " + m.params.entry.text);
      if (m.method === "Network.requestWillBeSent") {
        const url = m.params.request.url;
        if (!url.startsWith("file:") && !url.startsWith("data:") && url !== "about:blank") problems.push("network request: " + url);
      }
    });
    await S("Runtime.enable");
    await S("Page.enable");
    await S("Log.enable");
    await S("Network.enable");
    await S("Emulation.setDeviceMetricsOverride", { width, height, deviceScaleFactor: 1, mobile: false });
    const loaded = waitFor((m) => m.method === "Page.loadEventFired" && m.sessionId === sessionId, "the page to load", 60000);
    const t0 = Date.now();
    await S("Page.navigate", { url: pathToFileURL(file).href });
    await loaded;
    const ev = async (expr) => {
      const r = await S("Runtime.evaluate", { expression: expr, returnByValue: true, awaitPromise: true });
      if (r.exceptionDetails) fail("evaluating " + expr + ": " + JSON.stringify(r.exceptionDetails.exception?.description));
      return r.result.value;
    };
    const click = async (x, y) => {
      for (const type of ["mousePressed", "mouseReleased"]) await S("Input.dispatchMouseEvent", { type, x, y, button: "left", clickCount: 1 });
    };
    const page = {
      send: S,
      ev,
      loadMs: Date.now() - t0,
      check(cond, msg) { if (!cond) fail(msg); console.log("ok: " + msg); },
      click,
      async clickElement(expr) {
        const at = await ev(`(() => { const e = ${expr}; e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect(); return { x: r.left + r.width / 2, y: r.top + r.height / 2 }; })()`);
        await click(at.x, at.y);
      },
      async shoot(path, sel) {
        const r = await ev(`(() => { const r = document.querySelector('${sel}').getBoundingClientRect(); return { x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height }; })()`);
        const clip = { x: Math.max(0, r.x - 2), y: Math.max(0, r.y - 2), width: r.width + 4, height: r.height + 4, scale: 1 };
        const { data } = await S("Page.captureScreenshot", { format: "png", clip, captureBeyondViewport: true });
        mkdirSync(join(path, ".."), { recursive: true });
        writeFileSync(path, Buffer.from(data, "base64"));
        console.log("screenshot: " + path);
      },
    };
    await body(page);
    if (problems.length) fail(problems.length + " JavaScript, console or network problem(s):");
    console.log("browser test passed: " + file);
  }

  const limit = setTimeout(() => { problems.push("timed out after " + limitMs / 1000 + " s"); process.exitCode = 1; console.error("browser test FAILED: timed out\n" + problems.join("\n")); browser.kill("SIGTERM"); process.exit(1); }, limitMs);
  return main()
    .catch((e) => {
      process.exitCode = 1;
      const extra = problems.length ? "\n" + problems.join("\n") : "";
      console.error("browser test FAILED: " + e.message + extra + (stderr ? "\nchromium stderr (tail):\n" + stderr.slice(-1500) : ""));
    })
    .finally(() => {
      clearTimeout(limit);
      browser.kill("SIGTERM");
      setTimeout(() => { try { rmSync(profile, { recursive: true, force: true }); } catch {} process.exit(); }, 300);
    });
}
