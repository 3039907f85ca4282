// Sends one file: resumably over tus 1.0 (`/api/tus`) when the server has it, else as a plain multipart
// `POST /api/uploads`. Both report bytes sent and end with the new asset's id.
import type { Upload as TusUpload } from "tus-js-client";
import { apiKey, ApiError } from "./api";

export interface UploadCallbacks {
  onProgress(sent: number, total: number): void;
  onDone(assetId: string): void;
  onError(message: string): void;
}
export interface UploadFields { settings: string | null; category: string; tags: string }
export interface RunningUpload { pause(): void; resume(): void; cancel(): void; readonly resumable: boolean }

let tusAvailable: Promise<boolean> | null = null;
/** tus servers answer OPTIONS with Tus-Version (tus 1.0 discovery); anything else means multipart only. */
export function hasTus(): Promise<boolean> {
  tusAvailable ??= fetch("/api/tus", { method: "OPTIONS" })
    .then((r) => r.ok && !!r.headers.get("Tus-Version"))
    .catch(() => false);
  return tusAvailable;
}

export async function startUpload(file: File, fields: UploadFields, cb: UploadCallbacks): Promise<RunningUpload> {
  return (await hasTus()) ? startTus(file, fields, cb) : startMultipart(file, fields, cb);
}

async function startTus(file: File, fields: UploadFields, cb: UploadCallbacks): Promise<RunningUpload> {
  const tus = await import("tus-js-client");
  let assetId: string | null = null;
  const metadata: Record<string, string> = { filename: file.name };
  if (fields.category) metadata.category = fields.category;
  if (fields.tags) metadata.tags = fields.tags;
  if (fields.settings) metadata.settings = fields.settings;
  const upload: TusUpload = new tus.Upload(file, {
    endpoint: "/api/tus",
    headers: { Authorization: `Bearer ${apiKey() ?? ""}` },
    metadata,
    // Chunks bound what a dropped connection can lose and let progress resume from the last stored chunk.
    chunkSize: 8 * 1024 * 1024,
    retryDelays: [0, 1000, 3000, 5000, 10000],
    // The fingerprint (name, size, type, mtime) finds this file's unfinished upload after a reload or a closed tab.
    storeFingerprintForResuming: true,
    removeFingerprintOnSuccess: true,
    onProgress: (sent, total) => cb.onProgress(sent, total),
    onAfterResponse: (_req, res) => {
      const id = res.getHeader("Kiln-Asset-Id");
      if (id) assetId = id;
    },
    onSuccess: () => {
      if (assetId) cb.onDone(assetId);
      else cb.onError("The server finished the upload without naming its asset.");
    },
    onError: (err) => cb.onError(tusMessage(err)),
  });
  const previous = await upload.findPreviousUploads();
  if (previous.length) upload.resumeFromPreviousUpload(previous[0]);
  upload.start();
  return {
    resumable: true,
    pause: () => void upload.abort(),
    resume: () => upload.start(),
    cancel: () => void upload.abort(true),
  };
}

function tusMessage(err: Error): string {
  // tus-js-client wraps the response; surface the server's problem detail when there is one.
  const res = (err as { originalResponse?: { getBody(): string } }).originalResponse;
  try {
    const body = res ? JSON.parse(res.getBody()) : null;
    if (body?.detail) return `${body.detail} (${body.errorCode})`;
  } catch { /* not JSON */ }
  return err.message;
}

function startMultipart(file: File, fields: UploadFields, cb: UploadCallbacks): RunningUpload {
  const xhr = new XMLHttpRequest();
  const send = () => {
    const form = new FormData();
    if (fields.settings) form.append("settings", fields.settings);
    if (fields.category) form.append("category", fields.category);
    if (fields.tags) form.append("tags", fields.tags);
    form.append("file", file, file.name);
    xhr.open("POST", "/api/uploads");
    xhr.setRequestHeader("Authorization", `Bearer ${apiKey() ?? ""}`);
    xhr.upload.onprogress = (e) => cb.onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onload = () => {
      try {
        const body = JSON.parse(xhr.responseText);
        if (xhr.status === 202 && body.assets?.[0]?.id) cb.onDone(body.assets[0].id);
        else cb.onError(new ApiError(xhr.status, body.errorCode, body.detail ?? xhr.statusText).message + ` (${body.errorCode})`);
      } catch {
        cb.onError(`HTTP ${xhr.status}`);
      }
    };
    xhr.onerror = () => cb.onError("The connection failed.");
    xhr.send(form);
  };
  send();
  return {
    resumable: false,
    pause: () => xhr.abort(),
    resume: send, // a plain upload can only start again
    cancel: () => xhr.abort(),
  };
}
