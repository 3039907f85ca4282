// The REST API as the page uses it (docs/api.md). Every call sends the session's key as a Bearer token and turns
// problem documents into ApiError, so pages can branch on the stable errorCode and show `detail`.

export type JobState = "waiting" | "queued" | "running" | "paused" | "completed" | "failed" | "cancelled";
export const JOB_STATES: JobState[] = ["waiting", "queued", "running", "paused", "completed", "failed", "cancelled"];
export const TERMINAL: ReadonlySet<string> = new Set(["completed", "failed", "cancelled"]);

export interface Job {
  id: string; assetId?: string; batchId?: string; parentId?: string; ownerId?: string; kind: string; queue: string;
  state: JobState; priority: number; runAt?: string; attempts: number; maxAttempts: number; stage?: string;
  progress: number; speed?: string | number; etaSeconds?: number; totalBytes?: number; params?: unknown; result?: unknown;
  errorCode?: string; errorMessage?: string; leaseOwner?: string; leaseExpiresAt?: string; lastProgressAt?: string;
  createdAt: string; startedAt?: string; finishedAt?: string;
  /** Only on GET /api/jobs/{id}: every attempt with its own outcome and error. */
  history?: JobAttempt[];
}
export interface JobAttempt {
  attempt: number; leaseId: string; worker?: string; startedAt: string; finishedAt?: string;
  outcome?: string; errorCode?: string; errorMessage?: string;
}
export interface Asset {
  id: string; ownerId: string; kind: string; contentType: string; originalName: string; size: number; sha256?: string;
  metadata?: Record<string, unknown>; category?: string; tags?: string[]; source?: string; sourceUrl?: string;
  createdAt: string; expiresAt?: string;
}
export interface Derivative {
  id: string; assetId: string; jobId?: string; type: string; variant?: string; contentType: string; size: number;
  width?: number; height?: number; duration?: number; createdAt: string;
}
export interface AssetDetails { asset: Asset; derivatives: Derivative[]; jobs: Job[] }
export interface Page<T> { items: T[]; total: number; page: number; pageSize: number }
export interface QueueStats {
  name: string; paused: boolean; concurrency: number; rateMax: number; ratePeriodMs: number; keepCompleted: number;
  keepFailed: number; waiting: number; active: number; completed: number; failed: number; delayed: number;
  pausedJobs: number; waitingChildren: number; cancelled: number;
}
export interface ApiKeyInfo { id: string; name: string; role: string; prefix: string; createdAt: string; lastUsedAt?: string; revokedAt?: string }
export interface CreatedKey { id: string; name: string; role: string; prefix: string; secret: string }
export interface WorkerToken { id: string; name: string; prefix: string; createdAt: string; lastUsedAt?: string; revokedAt?: string }
export interface CreatedWorkerToken { id: string; name: string; prefix: string; token: string; createdAt: string }
export interface WorkerInfo {
  id: string; name: string; version: string; node: string; tokenId: string; kinds: string[]; slots: number; address?: string;
  connectedAt: string; lastSeenAt: string; running: { jobId: string; kind: string; progress: number; stage?: string }[];
}

export class ApiError extends Error {
  constructor(public status: number, public code: string, message: string) { super(message); }
}

let currentKey: string | null = null;
export function setApiKey(key: string | null): void { currentKey = key; }
export function apiKey(): string | null { return currentKey; }

/** Called when the server says the key is no longer valid, so the app can return to sign-in. */
let onUnauthorized: () => void = () => {};
export function setUnauthorizedHandler(handler: () => void): void { onUnauthorized = handler; }

export async function api<T>(path: string, init: RequestInit & { json?: unknown } = {}): Promise<T> {
  const headers = new Headers(init.headers);
  if (currentKey) headers.set("Authorization", `Bearer ${currentKey}`);
  let body = init.body;
  if (init.json !== undefined) {
    headers.set("Content-Type", "application/json");
    body = JSON.stringify(init.json);
  }
  const res = await fetch(path, { ...init, headers, body });
  if (!res.ok) {
    let code = `http_${res.status}`;
    let detail = res.statusText || `HTTP ${res.status}`;
    try {
      const p = await res.json();
      if (p && typeof p === "object") {
        code = p.errorCode ?? code;
        detail = p.detail ?? p.title ?? detail;
      }
    } catch { /* not a problem document */ }
    if (res.status === 401 && (code === "auth.invalid_key" || code === "auth.required")) onUnauthorized();
    throw new ApiError(res.status, code, detail);
  }
  if (res.status === 204 || res.headers.get("Content-Length") === "0") return undefined as T;
  const type = res.headers.get("Content-Type") ?? "";
  return (type.includes("json") ? await res.json() : await res.text()) as T;
}

export function query(params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}

/** A short-lived URL an <img>, <video> or HLS player can load without a header. */
export async function signedUrl(fileId: string, seconds = 3600): Promise<string> {
  const r = await api<{ url: string }>(`/api/files/${fileId}/signed-url${query({ seconds })}`, { method: "POST" });
  return r.url;
}

/** Whether the key may use admin endpoints: a client key gets 403 from any admin-only route. */
export async function probeRole(): Promise<"admin" | "client"> {
  try {
    await api("/api/workers/tokens");
    return "admin";
  } catch (e) {
    if (e instanceof ApiError && e.status === 403) return "client";
    throw e;
  }
}

/** Whether an optional endpoint exists on this server (features built on other branches). */
export async function endpointExists(path: string, method = "OPTIONS"): Promise<boolean> {
  try {
    const res = await fetch(path, { method, headers: currentKey ? { Authorization: `Bearer ${currentKey}` } : {} });
    return res.status !== 404;
  } catch {
    return false;
  }
}

export function errorText(e: unknown): string {
  if (e instanceof ApiError) return `${e.message} (${e.code})`;
  return e instanceof Error ? e.message : String(e);
}
