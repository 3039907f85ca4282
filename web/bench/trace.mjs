// Chromium tracing for the Jobs page bench (`--trace`): records the renderer's main thread with the DevTools timeline
// categories and says what each long task (>= 50 ms) was made of. The V8 profile (`--profile`) sees only script and
// lumps Chromium's own work into "(program)"; the trace names it (style, layout, paint, GC, a timer, a WebSocket
// message) and, through each task's thread time (`tdur`), tells a task that worked 50 ms from one that was
// descheduled by the OS for most of its wall time.

const CATEGORIES = ["devtools.timeline", "toplevel", "v8", "disabled-by-default-devtools.timeline"].join(",");
const LONG_MS = 50;

/** Starts tracing the page's CDP session; `stop()` returns the trace events. */
export async function startTrace(cdp) {
  await cdp.send("Tracing.start", { categories: CATEGORIES, transferMode: "ReturnAsStream" });
  return {
    async stop() {
      const done = new Promise((res) => cdp.once("Tracing.tracingComplete", res));
      await cdp.send("Tracing.end");
      const { stream } = await done;
      let text = "";
      for (;;) {
        const chunk = await cdp.send("IO.read", { handle: stream, size: 1 << 20 });
        text += chunk.base64Encoded ? Buffer.from(chunk.data, "base64").toString("utf8") : chunk.data;
        if (chunk.eof) break;
      }
      await cdp.send("IO.close", { handle: stream });
      const parsed = JSON.parse(text);
      return Array.isArray(parsed) ? parsed : parsed.traceEvents;
    },
  };
}

/** The renderer main thread's complete events ({name, ts, dur, tdur} in µs), B/E pairs folded into X. */
function mainThreadEvents(events) {
  const mains = events.filter((e) => e.ph === "M" && e.name === "thread_name" && e.args?.name === "CrRendererMain");
  const count = (m) => events.reduce((n, e) => n + (e.pid === m.pid && e.tid === m.tid ? 1 : 0), 0);
  const main = mains.sort((a, b) => count(b) - count(a))[0];
  if (!main) return [];
  const out = [];
  const open = [];
  for (const e of events) {
    if (e.pid !== main.pid || e.tid !== main.tid) continue;
    if (e.ph === "X" && e.dur !== undefined) out.push({ name: e.name, ts: e.ts, dur: e.dur, tdur: e.tdur, args: e.args });
    else if (e.ph === "B") open.push(e);
    else if (e.ph === "E") {
      const b = open.pop();
      if (b) out.push({ name: b.name, ts: b.ts, dur: e.ts - b.ts, tdur: b.tts !== undefined && e.tts !== undefined ? e.tts - b.tts : undefined, args: b.args });
    }
  }
  // Parents before children: by start, then longest first.
  return out.sort((a, b) => a.ts - b.ts || b.dur - a.dur);
}

/**
 * Self time by event name inside [task.ts, task.ts + task.dur): each event's duration minus its children's, as wall
 * time (`dur`) or as the thread's CPU time (`tdur`, where the event has it).
 */
function selfTimes(events, task, field = "dur") {
  const self = new Map();
  const stack = [];
  const end = task.ts + task.dur;
  let lo = 0, hi = events.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (events[mid].ts < task.ts) lo = mid + 1; else hi = mid; }
  for (let i = lo; i < events.length && events[i].ts < end; i++) {
    const e = events[i];
    if (e === task) continue;
    while (stack.length && e.ts >= stack.at(-1).ts + stack.at(-1).dur) stack.pop();
    const parent = stack.at(-1);
    const d = e[field] ?? e.dur;
    if (parent) self.set(parent.name, (self.get(parent.name) ?? 0) - Math.min(d, parent.ts + parent.dur - e.ts));
    self.set(e.name, (self.get(e.name) ?? 0) + d);
    stack.push(e);
  }
  // What no traced event covers is the task's own (scheduler, IPC) time.
  const covered = [...self.values()].reduce((a, b) => a + b, 0);
  self.set("(task, untraced)", (task[field] ?? task.dur) - covered);
  return self;
}

const ms = (us) => (us / 1000).toFixed(1);
const top = (m, n) => [...m].filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]).slice(0, n);

/** Prints the main thread's busy time by kind of work and every long task's make-up. */
export function summariseTrace(events, log = console.log) {
  const main = mainThreadEvents(events);
  // The scheduler's task event (category toplevel); DevTools' "RunTask" is the same task one level down.
  const name = main.some((e) => e.name === "ThreadControllerImpl::RunTask") ? "ThreadControllerImpl::RunTask" : "RunTask";
  const tasks = main.filter((e) => e.name === name);
  if (!tasks.length) { log("trace: no RunTask events on CrRendererMain"); return null; }
  const span = tasks.at(-1).ts + tasks.at(-1).dur - tasks[0].ts;
  const wall = tasks.reduce((n, t) => n + t.dur, 0);
  const cpu = tasks.reduce((n, t) => n + (t.tdur ?? t.dur), 0);
  log(`trace: main thread ${tasks.length} tasks in ${ms(span)} ms; busy ${ms(wall)} ms wall (${((100 * wall) / span).toFixed(0)} %), ` +
    `${ms(cpu)} ms on CPU (${((100 * cpu) / span).toFixed(0)} %)`);
  // Frames the main thread produced (one Commit each): a page that keeps up draws more of them in the same time, so
  // CPU per second alone would rank a faster page as a costlier one.
  const frames = main.filter((e) => e.name === "Commit").length;
  log(`trace: ${frames} frames committed (${((frames * 1e6) / span).toFixed(1)}/s), ${ms(cpu / Math.max(1, frames))} ms of main-thread CPU per frame`);
  const all = new Map();
  for (const t of tasks) for (const [k, v] of selfTimes(main, t, "tdur")) if (k !== "RunTask") all.set(k, (all.get(k) ?? 0) + v);
  log(`trace: main thread CPU by kind: ${top(all, 14).map(([k, v]) => `${k} ${ms(v)}`).join(", ")}`);
  // Wall time includes the time the OS ran something else; CPU time is the page's own work, whatever the load.
  const byCpu = tasks.map((t) => t.tdur ?? t.dur).sort((a, b) => a - b);
  const q = (p) => ms(byCpu[Math.min(byCpu.length - 1, Math.floor(p * byCpu.length))]);
  log(`trace: task CPU time p50 ${q(0.5)}, p99 ${q(0.99)}, max ${ms(byCpu.at(-1))} ms; ` +
    `${byCpu.filter((d) => d >= LONG_MS * 1000).length} tasks with >= ${LONG_MS} ms of CPU`);
  const long = tasks.filter((t) => t.dur >= LONG_MS * 1000);
  log(`trace: ${long.length} tasks >= ${LONG_MS} ms wall (the 15 longest, CPU by kind):`);
  for (const t of long.sort((a, b) => b.dur - a.dur).slice(0, 15)) {
    const parts = top(selfTimes(main, t, "tdur"), 6).filter(([k]) => k !== "RunTask").map(([k, v]) => `${k} ${ms(v)}`).join(", ");
    log(`  ${ms(t.dur).padStart(6)} ms wall, ${t.tdur === undefined ? "?" : ms(t.tdur)} ms on CPU: ${parts}`);
  }
  return { cpuMs: cpu / 1000, maxCpuMs: byCpu.at(-1) / 1000, longWall: long.length, frames };
}

// `node bench/trace.mjs FILE`: summarise a trace the bench saved.
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split("/").pop()) && process.argv[2]) {
  const { readFileSync } = await import("node:fs");
  const parsed = JSON.parse(readFileSync(process.argv[2], "utf8"));
  summariseTrace(Array.isArray(parsed) ? parsed : parsed.traceEvents);
}
