// Benchmark (not a test): the dashboard's first-load weight, and the Jobs page under load — 1,000 jobs listed, 200 of
// them reporting progress 4 times a second through the hub. Reports the longest main-thread task (PerformanceObserver
// "longtask") and the delay from a hub message reaching the page to the next frame after the DOM showed it.
//   KILN_TEST_PG="Host=...;Database=postgres" node bench/jobs-page.mjs [--seconds 20] [--profile] [--trace] [--pin]
//     [--variants name=DIR,name=DIR --rounds N]
// (after a Release build and `npm run build`; see docs/benchmarks.md).
import { readFileSync, readdirSync, mkdtempSync, rmSync, writeFileSync, cpSync, copyFileSync, renameSync } from "node:fs";
import { tmpdir } from "node:os";
import { chromium } from "playwright-core";
import { gzipSync } from "node:zlib";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { loadavg } from "node:os";
import { execFileSync } from "node:child_process";
import { CHROMIUM, CHROMIUM_ARGS, Kiln, signIn, waitFor } from "../e2e/kiln.mjs";
import { startTrace, summariseTrace } from "./trace.mjs";

/** The processes of this Chromium profile (every one has the profile directory on its command line). */
function chromiumPids(profile) {
  return readdirSync("/proc").filter((d) => /^\d+$/.test(d)).filter((pid) => {
    try { return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(profile); } catch { return false; }
  });
}

/** CPU seconds (user + system) of every Chromium process of this profile: the page's cost, whatever the load. */
function chromiumCpuSeconds(profile) {
  let ticks = 0;
  for (const pid of chromiumPids(profile)) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(f[11]) + Number(f[12]);
    } catch { /* process ended */ }
  }
  return ticks / 100; // USER_HZ
}

const seconds = Number(process.argv[process.argv.indexOf("--seconds") + 1]) || 20;
const REPORTING = 200, LISTED = 1000;
const root = join(dirname(fileURLToPath(import.meta.url)), "../../src/Kiln/wwwroot");

// 1. First load: the scripts index.html loads (entry + modulepreloads), gzip as served.
const html = readFileSync(join(root, "index.html"), "utf8");
const firstLoad = [...html.matchAll(/(?:src|href)="\/(assets\/[^"]+\.js)"/g)].map((m) => m[1]);
const gz = (f) => gzipSync(readFileSync(join(root, f)), { level: 9 }).length;
const allJs = readdirSync(join(root, "assets")).filter((f) => f.endsWith(".js"));
console.log("first-load scripts:", firstLoad.map((f) => `${f} ${(gz(f) / 1024).toFixed(1)} KB gz`).join(", "));
console.log(`first-load JS gzip: ${(firstLoad.reduce((n, f) => n + gz(f), 0) / 1024).toFixed(1)} KB; lazy chunks: ${allJs.filter((f) => !firstLoad.includes(`assets/${f}`)).map((f) => `${f} ${(gz(`assets/${f}`) / 1024).toFixed(1)} KB`).join(", ")}`);

// --variants a=DIR,b=DIR [--rounds N]: compare builds of the page (each `vite build --outDir DIR`) on one server. Their
// assets (hashed names) are served side by side and index.html is swapped before each variant's turn.
const arg = (name) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1] : undefined; };
const variants = (arg("--variants") ?? "").split(",").filter(Boolean).map((v) => { const [name, dir] = v.split("="); return { name, dir }; });
const rounds = variants.length ? Number(arg("--rounds")) || 1 : 0;
const servedRoot = variants.length ? mkdtempSync(join(tmpdir(), "kiln-bench-www-")) : null;
for (const v of variants) cpSync(join(v.dir, "assets"), join(servedRoot, "assets"), { recursive: true });
function useVariant(v) {
  copyFileSync(join(v.dir, "index.html"), join(servedRoot, "index.tmp"));
  renameSync(join(servedRoot, "index.tmp"), join(servedRoot, "index.html"));
}
if (variants.length) useVariant(variants[0]);

// 2. Jobs page under load.
const kiln = await Kiln.start({ Kiln__Workers__Slots__test: String(REPORTING + 10), Kiln__Realtime__MaxJobsPerConnection: "5000",
  ...(servedRoot ? { Kiln__Web__Root: servedRoot } : {}) });
const profile = mkdtempSync(join(tmpdir(), "kiln-bench-chromium-"));
const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, viewport: { width: 1280, height: 900 } });
// --pin: Chromium on CPU 0, the server (and this script) on CPU 1, so the page does not queue behind the server for a
// core. Pin the PostgreSQL behind KILN_TEST_PG to CPU 1 yourself (taskset -a -p -c 1 PID). A separate figure, never
// the headline: the issue's machine runs them together.
const pin = process.argv.includes("--pin");
const taskset = (cpu, pid) => execFileSync("taskset", ["-a", "-p", "-c", String(cpu), String(pid)], { stdio: "ignore" });
if (pin) { taskset(1, process.pid); taskset(1, kiln.proc.pid); }
try {
  const upload = async (name, settings) => kiln.upload(kiln.adminKey, name, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), settings);
  const inParallel = async (n, width, fn) => { let next = 0; await Promise.all(Array.from({ length: width }, async () => { while (next < n) await fn(next++); })); };
  // 800 jobs that finish at once, created first so that the newest-first table
  // shows the reporting jobs at its top (a long table renders only the rows near the viewport).
  await inParallel(LISTED - REPORTING, 8, (i) => upload(`short-${i}.bin`, { jobs: ["test.sleep"], params: { "test.sleep": { durationMs: 0, steps: 1 } } }));
  // 200 jobs that report 4 times a second for ten minutes.
  await inParallel(REPORTING, 8, (i) => upload(`long-${i}.bin`, { jobs: ["test.sleep"], params: { "test.sleep": { durationMs: 600000, steps: 2400 } } }));
  await waitFor("200 running", async () => (await kiln.api("/api/jobs?kind=test.sleep&state=running&pageSize=1", kiln.adminKey)).total >= REPORTING, 600_000, 1000);
  await waitFor("800 completed", async () => (await kiln.api("/api/jobs?kind=test.sleep&state=completed&pageSize=1", kiln.adminKey)).total >= LISTED - REPORTING, 600_000, 1000);

  await context.addInitScript(() => {
    const w = window;
    w.__bench = { received: new Map(), latencies: [], longest: 0, longtasks: 0, events: 0 };
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) { w.__bench.longtasks++; w.__bench.longest = Math.max(w.__bench.longest, e.duration); }
    }).observe({ type: "longtask", buffered: true });
    // Note when each progress message arrives on the hub's WebSocket, keyed by job and value.
    const Native = window.WebSocket;
    window.WebSocket = class extends Native {
      constructor(...a) {
        super(...a);
        this.addEventListener("message", (m) => {
          if (typeof m.data !== "string") return;
          const t = performance.now();
          for (const frame of m.data.split("\x1e")) {
            if (!frame.includes("job-progress")) continue;
            try {
              const msg = JSON.parse(frame);
              const e = msg.arguments?.[0];
              if (msg.target === "job-progress" && e) { w.__bench.events++; w.__bench.received.set(`${e.jobId}|${e.progress}`, t); }
            } catch { /* not JSON */ }
          }
        });
      }
    };
    // When a bar's value changes, the frame after it is the paint that shows it.
    new MutationObserver((records) => {
      for (const r of records) {
        const el = r.target;
        if (!(el instanceof HTMLElement) || !el.classList.contains("progress-fill")) continue;
        const row = el.closest("tr[data-job]");
        const key = `${row?.getAttribute("data-job")}|${el.getAttribute("data-value")}`;
        const t0 = w.__bench.received.get(key);
        if (t0 === undefined) continue;
        w.__bench.received.delete(key);
        requestAnimationFrame(() => { w.__bench.latencies.push(performance.now() - t0); });
      }
    }).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-value"] });
  });
  const page = context.pages()[0] ?? await context.newPage();
  await signIn(page, kiln.base, kiln.adminKey);
  // Pinned once every Chromium process (renderer included) has started.
  if (pin) for (const pid of chromiumPids(profile)) taskset(0, pid);
  if (!variants.length) await measure(page, "");
  // Variants alternate on the same server, jobs and load, so that their comparison holds on a busy machine.
  for (let round = 0; round < rounds; round++) {
    for (const v of variants) {
      useVariant(v);
      await measure(page, `[${v.name}] `);
    }
  }
} finally {
  await context.close();
  await kiln.stop();
  rmSync(profile, { recursive: true, force: true });
  if (servedRoot) rmSync(servedRoot, { recursive: true, force: true });
}

/** Opens the Jobs page afresh and measures it for `seconds`. */
async function measure(page, label) {
  await page.goto(`${kiln.base}/jobs?kind=test.sleep&pageSize=1000`);
  // The table lists 1,000 jobs; only the rows near the viewport are in the DOM (rowWindow.ts).
  await waitFor("1,000 rows", async () => Number(await page.locator("table.jobs-table").getAttribute("aria-rowcount")) - 1 >= LISTED, 300_000, 500);
  await waitFor("the hub to be live", async () => (await page.locator("[data-hub]").getAttribute("data-hub")) === "live");
  await new Promise((r) => setTimeout(r, 1000)); // the rows on screen joined (rowWindow waits 80 ms) and settled
  await page.evaluate(() => { const b = window.__bench; b.latencies = []; b.longest = 0; b.longtasks = 0; b.events = 0; });
  const load0 = loadavg()[0];
  const cpu0 = chromiumCpuSeconds(profile);
  // --profile: a V8 CPU profile of the page over the run, summarised by self time (where the main thread goes).
  const cdp = process.argv.includes("--profile") ? await context.newCDPSession(page) : null;
  if (cdp) { await cdp.send("Profiler.enable"); await cdp.send("Profiler.start"); }
  // --trace: Chromium's own timeline of the renderer's main thread, to say what each long task was (trace.mjs).
  const trace = process.argv.includes("--trace") ? await startTrace(await context.newCDPSession(page)) : null;
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const cpu = chromiumCpuSeconds(profile) - cpu0;
  const r = await page.evaluate(() => { const b = window.__bench; return { latencies: b.latencies, longest: b.longest, longtasks: b.longtasks, events: b.events }; });
  const load1 = loadavg()[0];
  if (trace) {
    const events = await trace.stop();
    const file = join(tmpdir(), `kiln-jobs-trace-${Date.now()}.json`);
    writeFileSync(file, JSON.stringify(events)); // for chrome://tracing, or `node bench/trace.mjs FILE`
    console.log(`${label}trace saved: ${file}`);
    const t = summariseTrace(events, (line) => console.log(label + line));
    if (t) console.log(`${label}main thread CPU: ${(t.cpuMs / seconds).toFixed(0)} ms/s, ${((t.cpuMs * 1000) / Math.max(1, r.events)).toFixed(0)} µs per progress event`);
  }
  if (cdp) {
    const { profile: prof } = await cdp.send("Profiler.stop");
    const self = new Map();
    const dt = new Map();
    prof.samples.forEach((id, i) => dt.set(id, (dt.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0)));
    for (const n of prof.nodes) {
      const f = n.callFrame;
      const key = `${f.functionName || "(anonymous)"} ${f.url.split("/").pop()}:${f.lineNumber}`;
      self.set(key, (self.get(key) ?? 0) + (dt.get(n.id) ?? 0));
    }
    const total = [...self.values()].reduce((a, b) => a + b, 0);
    console.log(`${label}self time (top 25):`);
    for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`  ${(v / 1000).toFixed(0).padStart(7)} ms ${((100 * v) / total).toFixed(1).padStart(5)} %  ${k}`);
  }
  const lat = r.latencies.sort((a, b) => a - b);
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN;
  console.log(`${label}jobs page: ${Number(await page.locator("table.jobs-table").getAttribute("aria-rowcount")) - 1} rows listed, ${await page.locator("tr[data-job]").count()} in the DOM, ${r.events} progress events in ${seconds} s (${(r.events / seconds).toFixed(0)}/s), ${lat.length} matched to a painted change`);
  console.log(`${label}event→paint ms: median ${q(0.5).toFixed(1)}, p95 ${q(0.95).toFixed(1)}, p99 ${q(0.99).toFixed(1)}, max ${lat.at(-1)?.toFixed(1)}`);
  console.log(`${label}Chromium CPU: ${cpu.toFixed(2)} s in ${seconds} s (${((cpu / seconds) * 100).toFixed(0)} % of one core), ${((cpu * 1e6) / Math.max(1, r.events)).toFixed(0)} µs per progress event`);
  console.log(`${label}longest task: ${r.longest.toFixed(0)} ms (${r.longtasks} long tasks ≥ 50 ms); load average ${load0.toFixed(1)} → ${load1.toFixed(1)}`);
}
