// The one hub connection of the session (docs/realtime.md). Pages subscribe to job events; when the connection is
// down they are told (status "offline"/"reconnecting") and poll instead, and the connection keeps retrying.
import { useEffect, useRef, useState } from "react";
import { HubConnection, HubConnectionBuilder, HubConnectionState, LogLevel } from "@microsoft/signalr";

export type HubStatus = "connecting" | "live" | "reconnecting" | "offline";
export type JobEventType = "job-queued" | "job-update" | "job-progress" | "job-completed" | "job-error";
export interface JobEvent {
  type: JobEventType;
  jobId: string;
  status?: string; stage?: string; progress?: number; speed?: string | number; eta?: number; totalBytes?: number;
  position?: number; result?: unknown; errorCode?: string; message?: string;
}

type Listener = (e: JobEvent) => void;
/** What `join-job` answers: the job's state now (the hub's JobStatus). */
interface JobStatusDto { jobId: string; status: string; stage?: string | null; progress: number }
type Scope = "all" | "new" | null;
const EVENTS: JobEventType[] = ["job-queued", "job-update", "job-progress", "job-completed", "job-error"];

class LiveConnection {
  private hub: HubConnection | null = null;
  private listeners = new Set<Listener>();
  private statusListeners = new Set<(s: HubStatus) => void>();
  private watched = new Set<string>();
  /** The rows a listing page shows right now (`follow`): joined while shown, left when scrolled away. */
  private followed = new Set<string>();
  /** Listing pages mounted (`narrow`): while > 0 the connection hears new jobs, not every job's progress. */
  private narrowed = 0;
  private joinedScope: Scope = null;
  private admin = false;
  private stopped = true;
  private retryTimer: number | undefined;
  status: HubStatus = "offline";

  start(key: string, admin: boolean): void {
    this.stop();
    this.stopped = false;
    this.admin = admin;
    const hub = new HubConnectionBuilder()
      .withUrl("/hubs/jobs", { accessTokenFactory: () => key })
      // Keep retrying forever: a server restart must not leave the page dead.
      .withAutomaticReconnect({ nextRetryDelayInMilliseconds: (c) => Math.min(1000 * 2 ** c.previousRetryCount, 5000) })
      .configureLogging(LogLevel.None)
      .build();
    for (const type of EVENTS) hub.on(type, (payload: Omit<JobEvent, "type">) => this.emit({ ...payload, type }));
    hub.on("server-shutdown", () => this.setStatus("reconnecting"));
    hub.onreconnecting(() => this.setStatus("reconnecting"));
    // "live" only once the groups are joined again: an event sent before that would be missed.
    hub.onreconnected(() => void this.rejoin().then(() => this.setStatus("live")));
    hub.onclose(() => { if (!this.stopped) { this.setStatus("offline"); this.scheduleRetry(); } });
    this.hub = hub;
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    window.clearTimeout(this.retryTimer);
    const hub = this.hub;
    this.hub = null;
    this.watched.clear();
    this.followed.clear();
    this.joinedScope = null;
    if (hub) void hub.stop();
    this.setStatus("offline");
  }

  private async connect(): Promise<void> {
    const hub = this.hub;
    if (!hub || this.stopped) return;
    this.setStatus("connecting");
    try {
      await hub.start();
      await this.rejoin();
      this.setStatus("live");
    } catch {
      this.setStatus("offline");
      this.scheduleRetry();
    }
  }

  private scheduleRetry(): void {
    window.clearTimeout(this.retryTimer);
    this.retryTimer = window.setTimeout(() => {
      if (this.hub?.state === HubConnectionState.Disconnected) void this.connect();
    }, 3000);
  }

  private connected(): HubConnection | null {
    return this.hub?.state === HubConnectionState.Connected ? this.hub : null;
  }

  /** A new connection has no groups: join the scope, the watched jobs and the followed rows again. */
  private async rejoin(): Promise<void> {
    if (!this.connected()) return;
    this.joinedScope = null;
    try {
      await this.applyScope();
      if (this.joinsJobs()) for (const id of new Set([...this.watched, ...this.followed])) await this.joinJob(id);
    } catch { /* reconnect logic will try again */ }
  }

  /**
   * The broad subscription: an admin hears every job (`join-all`) unless a listing page is mounted, which hears only
   * new jobs (`join-new`) and follows the rows it shows. At 800 progress events a second over 1,000 jobs the page
   * would otherwise parse and drop events for rows nobody sees (docs/benchmarks.md, the Jobs page).
   */
  private async applyScope(): Promise<void> {
    const hub = this.connected();
    if (!hub) return;
    const want: Scope = this.narrowed > 0 ? "new" : this.admin ? "all" : null;
    const had = this.joinedScope;
    if (want === had) return;
    this.joinedScope = want;
    // Join the new scope before leaving the old one, so no announcement falls between them; jobs watched while
    // everything was heard must now be joined one by one.
    if (want) await hub.invoke(`join-${want}`);
    if (had === "all") await Promise.all([...new Set([...this.watched, ...this.followed])].map((id) => this.joinJob(id)));
    if (had) await hub.invoke(`leave-${had}`);
  }

  /** Whether single jobs must be joined to be heard (they are not while an admin hears everything). */
  private joinsJobs(): boolean { return this.joinedScope !== "all"; }

  /** Joins a job's group and applies its current state, which events may have changed while it was not followed. */
  private async joinJob(id: string): Promise<void> {
    const hub = this.connected();
    if (!hub) return;
    try {
      const s = await hub.invoke<JobStatusDto>("join-job", id);
      this.emit({ type: "job-update", jobId: id, status: s.status, stage: s.stage ?? undefined, progress: s.progress });
    } catch { /* not found or not ours: nothing to follow */ }
  }

  /** Follows one job (a client key only hears its jobs this way; admins hear everything via join-all). */
  watch(jobId: string): void {
    if (this.watched.has(jobId)) return;
    this.watched.add(jobId);
    if (this.joinsJobs() && !this.followed.has(jobId)) void this.joinJob(jobId);
  }

  /** While a listing page is mounted: hear new jobs, not every job (see applyScope). Returns the release. */
  narrow(): () => void {
    this.narrowed++;
    void this.applyScope().catch(() => undefined);
    return () => {
      this.narrowed--;
      this.follow([]);
      void this.applyScope().catch(() => undefined);
    };
  }

  /** The jobs a listing page shows now: joins the ones that appeared and leaves the ones that went. */
  follow(ids: Iterable<string>): void {
    const next = new Set(ids);
    const hub = this.connected();
    for (const id of this.followed) {
      if (!next.has(id) && !this.watched.has(id) && hub && this.joinsJobs()) void hub.invoke("leave-job", id).catch(() => undefined);
    }
    for (const id of next) if (!this.followed.has(id) && !this.watched.has(id) && this.joinsJobs()) void this.joinJob(id);
    this.followed = next;
  }

  subscribe(l: Listener): () => void { this.listeners.add(l); return () => { this.listeners.delete(l); }; }
  onStatus(l: (s: HubStatus) => void): () => void { this.statusListeners.add(l); return () => { this.statusListeners.delete(l); }; }

  private emit(e: JobEvent): void { for (const l of this.listeners) l(e); }
  private setStatus(s: HubStatus): void {
    if (this.status === s) return;
    this.status = s;
    for (const l of this.statusListeners) l(s);
  }
}

export const live = new LiveConnection();

export function useHubStatus(): HubStatus {
  const [s, set] = useState(live.status);
  useEffect(() => live.onStatus(set), []);
  return s;
}

/** Calls `listener` for every job event while mounted (the latest listener, without re-subscribing). */
export function useJobEvents(listener: Listener): void {
  const ref = useRef(listener);
  ref.current = listener;
  useEffect(() => live.subscribe((e) => ref.current(e)), []);
}

/**
 * Runs `load` once, then every `ms` while the hub is not live (the fallback when events cannot arrive),
 * and once more whenever the hub comes back (to catch up on what was missed).
 */
export function usePolling(load: () => void | Promise<void>, ms = 3000, always = false): void {
  const status = useHubStatus();
  const ref = useRef(load);
  ref.current = load;
  useEffect(() => {
    void ref.current();
    if (status === "live" && !always) return undefined;
    const t = window.setInterval(() => void ref.current(), ms);
    return () => window.clearInterval(t);
  }, [status, ms, always]);
}

/** Applies an event to a job-like object; returns the same object when nothing changed. */
export function applyEvent<T extends { state: string; progress: number; stage?: string; speed?: string | number; etaSeconds?: number; errorCode?: string; errorMessage?: string; result?: unknown }>(job: T, e: JobEvent): T {
  switch (e.type) {
    case "job-queued": return { ...job, state: "queued" };
    case "job-update": return { ...job, state: e.status ?? job.state, stage: e.stage ?? job.stage, progress: e.progress ?? job.progress };
    case "job-progress": return { ...job, state: TERMINAL_STATES.has(job.state) ? job.state : "running", stage: e.stage ?? job.stage, progress: e.progress ?? job.progress, speed: e.speed ?? job.speed, etaSeconds: e.eta ?? job.etaSeconds };
    case "job-completed": return { ...job, state: "completed", progress: 100, result: e.result, etaSeconds: undefined };
    case "job-error": return { ...job, state: e.errorCode === "cancelled" ? "cancelled" : "failed", errorCode: e.errorCode, errorMessage: e.message };
    default: return job;
  }
}
const TERMINAL_STATES = new Set(["completed", "failed", "cancelled"]);
