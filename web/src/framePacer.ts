// Paces DOM writes: at most one run per animation frame, and no two runs closer than `minIntervalMs`. Jobs report
// progress about 4 times a second each; redrawing the Jobs table on every frame (60 Hz) only made Chromium restyle,
// lay out and paint a few rows at a time, 60 times a second, on a main thread it shares with everything else
// (docs/benchmarks.md). Gathering a few frames' worth of events into one pass costs the eye nothing at that rate.

/** The clock and frame source, the browser's by default (a test passes its own). */
export interface FrameHost {
  now(): number;
  requestFrame(run: () => void): number;
  cancelFrame(handle: number): void;
  setTimer(run: () => void, ms: number): number;
  clearTimer(handle: number): void;
}

const browserHost: FrameHost = {
  now: () => performance.now(),
  requestFrame: (run) => requestAnimationFrame(() => run()),
  cancelFrame: (h) => cancelAnimationFrame(h),
  setTimer: (run, ms) => window.setTimeout(run, ms),
  clearTimer: (h) => window.clearTimeout(h),
};

/**
 * Frames arrive every ~16.7 ms, so a run due at `minIntervalMs` is taken on the frame within this much of it
 * (otherwise a 33 ms interval would wait for the third frame whenever a frame came a little early).
 */
const FRAME_SLACK_MS = 4;

export class FramePacer {
  private last = -Infinity;
  private frame = 0;
  private timer = 0;

  constructor(private readonly run: () => void, private readonly minIntervalMs: number, private readonly host: FrameHost = browserHost) {}

  /** Asks for a run: on the next animation frame, or the first one `minIntervalMs` after the previous run. */
  schedule(): void {
    if (this.frame || this.timer) return;
    const wait = this.last + this.minIntervalMs - FRAME_SLACK_MS - this.host.now();
    // Waiting on a timer rather than frame after frame: a frame requested and left unused still wakes the page.
    if (wait > 0) this.timer = this.host.setTimer(() => { this.timer = 0; this.requestFrame(); }, wait);
    else this.requestFrame();
  }

  dispose(): void {
    if (this.frame) this.host.cancelFrame(this.frame);
    if (this.timer) this.host.clearTimer(this.timer);
    this.frame = this.timer = 0;
  }

  private requestFrame(): void {
    this.frame = this.host.requestFrame(() => {
      this.frame = 0;
      this.last = this.host.now();
      this.run();
    });
  }
}
