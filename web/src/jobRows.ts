// The live rows of the Jobs table, outside React state: hub events update one row and wake only that row's
// component, so 800 progress events a second over a 1,000-row table never re-render the table itself.
import { useSyncExternalStore } from "react";
import type { Job } from "./api";
import { applyEvent, type JobEvent } from "./live";
import { FramePacer, type FrameHost } from "./framePacer";

/**
 * The least time between two passes over the table: every other frame. Progress arrives ~4 times a second per job,
 * so a bar moving 30 times a second looks as smooth as one moving 60, in fewer and fuller frames of Chromium's
 * style/layout/paint work (66 ms was measured too: no cheaper frames, a later paint; docs/benchmarks.md).
 */
export const ROW_PACE_MS = 33;

export class JobRowStore {
  private rows = new Map<string, Job>();
  private listeners = new Map<string, Set<() => void>>();
  private pending: JobEvent[] = [];
  private readonly pacer: FramePacer;
  /** Called with how many jobs were queued that the table does not show. */
  onUnknown: (count: number) => void = () => {};

  constructor(paceMs = ROW_PACE_MS, host?: FrameHost) {
    this.pacer = new FramePacer(() => this.flush(), paceMs, host);
  }

  reset(items: Job[]): void {
    const old = this.rows;
    this.rows = new Map(items.map((j) => [j.id, j]));
    for (const id of this.rows.keys()) if (old.get(id) !== this.rows.get(id)) this.notify(id);
  }

  get = (id: string): Job | undefined => this.rows.get(id);

  set = (job: Job): void => {
    if (!this.rows.has(job.id)) return;
    this.rows.set(job.id, job);
    this.notify(job.id);
  };

  subscribe(id: string, listener: () => void): () => void {
    let set = this.listeners.get(id);
    if (!set) this.listeners.set(id, (set = new Set()));
    set.add(listener);
    return () => { set.delete(listener); if (!set.size) this.listeners.delete(id); };
  }

  /** Events are gathered and applied in one pass per paced frame: a job reporting twice meanwhile renders once. */
  push(e: JobEvent): void {
    this.pending.push(e);
    this.pacer.schedule();
  }

  dispose(): void { this.pacer.dispose(); }

  private flush(): void {
    const batch = this.pending;
    this.pending = [];
    const changed = new Set<string>();
    let unknown = 0;
    for (const e of batch) {
      const job = this.rows.get(e.jobId);
      if (!job) { if (e.type === "job-queued") unknown++; continue; }
      this.rows.set(e.jobId, applyEvent(job, e));
      changed.add(e.jobId);
    }
    for (const id of changed) this.notify(id);
    if (unknown) this.onUnknown(unknown);
  }

  private notify(id: string): void {
    for (const l of this.listeners.get(id) ?? []) l();
  }
}

export function useJobRow(store: JobRowStore, id: string): Job | undefined {
  return useSyncExternalStore((cb) => store.subscribe(id, cb), () => store.get(id));
}
