// Unit test of web/src/framePacer.ts (no browser, no server): the Jobs table's DOM passes are paced, none is lost.
// The module is plain TypeScript with no imports; the compiler the build already uses turns it into JavaScript here.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import ts from "typescript";

const source = readFileSync(new URL("../src/framePacer.ts", import.meta.url), "utf8");
const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
const { FramePacer } = await import(`data:text/javascript;base64,${Buffer.from(js).toString("base64")}`);

/** A clock with animation frames every 16.7 ms (60 Hz) and timers, advanced by hand 0.1 ms at a time. */
class FakeFrames {
  t = 0;
  nextFrame = 1000 / 60;
  id = 0;
  frames = new Map();
  timers = new Map();
  now = () => this.t;
  requestFrame = (run) => { this.frames.set(++this.id, run); return this.id; };
  cancelFrame = (h) => { this.frames.delete(h); };
  setTimer = (run, ms) => { this.timers.set(++this.id, { at: this.t + ms, run }); return this.id; };
  clearTimer = (h) => { this.timers.delete(h); };
  advance(ms, every) {
    const end = this.t + ms;
    while (this.t < end - 1e-9) {
      this.t = Math.round((this.t + 0.1) * 10) / 10;
      every?.(this.t);
      for (const [h, timer] of [...this.timers]) if (timer.at <= this.t) { this.timers.delete(h); timer.run(); }
      if (this.t >= this.nextFrame) {
        this.nextFrame += 1000 / 60;
        const due = [...this.frames.values()];
        this.frames.clear();
        for (const run of due) run();
      }
    }
  }
}

test("framePacer: a stream of events runs at most every other frame, and the last event is never left behind", () => {
  const host = new FakeFrames();
  const runs = [];
  const pacer = new FramePacer(() => runs.push(host.t), 33, host);
  // An event every 5 ms for a second (200 a second, as the Jobs page may hear).
  host.advance(1000, (t) => { if (Math.abs(t % 5) < 1e-6) pacer.schedule(); });
  host.advance(100);
  const gaps = runs.slice(1).map((t, i) => t - runs[i]);
  // Unpaced, one run per frame: 60. Paced at 33 ms on 16.7 ms frames: every other frame, 30.
  assert.ok(runs.length >= 28 && runs.length <= 31, `runs: ${runs.length}`);
  assert.ok(Math.min(...gaps) >= 33 - 4 - 1e-6, `shortest gap ${Math.min(...gaps)} ms`);
  assert.ok(Math.max(...gaps) <= 3 * (1000 / 60) + 1e-6, `longest gap ${Math.max(...gaps)} ms`);
  // The last event (at 1,000 ms) is drawn within one interval and a frame.
  assert.ok(runs.at(-1) >= 1000 - 1e-6 && runs.at(-1) <= 1000 + 33 + 1000 / 60, `last run at ${runs.at(-1)}`);
});

test("framePacer: after a quiet spell the next event is drawn on the very next frame", () => {
  const host = new FakeFrames();
  const runs = [];
  const pacer = new FramePacer(() => runs.push(host.t), 33, host);
  pacer.schedule();
  host.advance(200);
  assert.equal(runs.length, 1);
  assert.ok(Math.abs(runs[0] - 1000 / 60) < 0.2, `first run at ${runs[0]}`);
  host.advance(2); // 202.0 ms: well past the interval
  pacer.schedule();
  host.advance(100);
  assert.equal(runs.length, 2);
  assert.ok(Math.abs(runs[1] - (13 * 1000) / 60) < 0.2, `second run at ${runs[1]} (the frame at 216.7 ms)`);
});

test("framePacer: schedule() twice before the frame runs once; dispose() drops what was pending", () => {
  const host = new FakeFrames();
  let runs = 0;
  const pacer = new FramePacer(() => runs++, 33, host);
  pacer.schedule();
  pacer.schedule();
  host.advance(20);
  assert.equal(runs, 1);
  pacer.schedule(); // within the interval: waits on a timer
  assert.equal(host.timers.size, 1);
  pacer.dispose();
  host.advance(200);
  assert.equal(runs, 1);
  assert.equal(host.timers.size + host.frames.size, 0);
});
