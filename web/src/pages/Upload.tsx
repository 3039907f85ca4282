import { useCallback, useEffect, useRef, useState, type ChangeEvent, type DragEvent, type FormEvent } from "react";
import { Link } from "react-router-dom";
import { api, endpointExists, errorText, TERMINAL, type AssetDetails, type Job } from "../api";
import { applyEvent, live, useJobEvents, usePolling } from "../live";
import { bytes, duration } from "../format";
import { ErrorLine, ProgressBar, StateBadge } from "../components/ui";
import { Thumb } from "../components/Thumb";
import { SettingsPanel } from "../components/SettingsPanel";
import { DEFAULT_SETTINGS, guessMedia, settingsJson, validate, type UploadSettings } from "../uploadSettings";
import { startUpload, type RunningUpload } from "../uploader";
import { filesFromDrop } from "../dropFiles";

type ItemState = "waiting" | "uploading" | "paused" | "processing" | "done" | "error";
interface Item {
  key: string; file: File; state: ItemState; sent: number; total: number; speed: number; eta?: number;
  error?: string; assetId?: string; jobs: Job[]; thumbId?: string; resumable?: boolean;
}

const PARALLEL = 3;
let nextKey = 1;

export function UploadPage() {
  const [items, setItems] = useState<Item[]>([]);
  const [settings, setSettings] = useState<UploadSettings>(DEFAULT_SETTINGS);
  const [dragging, setDragging] = useState(false);
  const [formError, setFormError] = useState<string | null>(null);
  const running = useRef(new Map<string, RunningUpload>());
  const samples = useRef(new Map<string, { t: number; sent: number }>());
  const errors = validate(settings);
  const valid = Object.keys(errors).length === 0;

  const patch = useCallback((key: string, p: Partial<Item> | ((i: Item) => Partial<Item>)) => {
    setItems((list) => list.map((i) => (i.key === key ? { ...i, ...(typeof p === "function" ? p(i) : p) } : i)));
  }, []);

  const refreshAsset = useCallback(async (key: string, assetId: string) => {
    try {
      const d = await api<AssetDetails>(`/api/assets/${assetId}`);
      for (const j of d.jobs) if (!TERMINAL.has(j.state)) live.watch(j.id);
      const thumb = d.derivatives.find((x) => x.type === "THUMBNAIL") ?? d.derivatives.find((x) => x.type === "MEDIUM");
      const finished = d.jobs.length > 0 && d.jobs.every((j) => TERMINAL.has(j.state));
      patch(key, { jobs: d.jobs, thumbId: thumb?.id, state: finished ? "done" : "processing" });
    } catch (e) {
      patch(key, { error: errorText(e) });
    }
  }, [patch]);

  const begin = useCallback(async (item: Item) => {
    const media = guessMedia(item.file);
    samples.current.set(item.key, { t: performance.now(), sent: 0 });
    patch(item.key, { state: "uploading", error: undefined });
    try {
      const handle = await startUpload(item.file, { settings: settingsJson(settings, media), category: settings.category, tags: settings.tags }, {
        onProgress: (sent, total) => {
          const now = performance.now();
          const s = samples.current.get(item.key) ?? { t: now, sent };
          const dt = (now - s.t) / 1000;
          if (dt >= 0.5 || sent === total) {
            samples.current.set(item.key, { t: now, sent });
            patch(item.key, (i) => {
              const rate = dt > 0 ? Math.max(0, (sent - s.sent) / dt) : i.speed;
              const speed = i.speed ? i.speed * 0.6 + rate * 0.4 : rate; // smoothed so the ETA does not jump
              return { sent, total, speed, eta: speed > 0 ? (total - sent) / speed : undefined };
            });
          } else {
            patch(item.key, { sent, total });
          }
        },
        onDone: (assetId) => {
          running.current.delete(item.key);
          patch(item.key, { state: "processing", assetId, sent: item.file.size, eta: 0 });
          void refreshAsset(item.key, assetId);
        },
        onError: (message) => {
          running.current.delete(item.key);
          patch(item.key, { state: "error", error: message });
        },
      });
      running.current.set(item.key, handle);
      patch(item.key, { resumable: handle.resumable });
    } catch (e) {
      patch(item.key, { state: "error", error: errorText(e) });
    }
  }, [patch, refreshAsset, settings]);

  // Start waiting files while fewer than PARALLEL are sending.
  useEffect(() => {
    const active = items.filter((i) => i.state === "uploading").length;
    const next = items.filter((i) => i.state === "waiting").slice(0, Math.max(0, PARALLEL - active));
    for (const i of next) void begin(i);
  }, [items, begin]);

  const itemsRef = useRef(items);
  itemsRef.current = items;
  useJobEvents((e) => {
    const hit = itemsRef.current.find((i) => i.jobs.some((j) => j.id === e.jobId));
    if (!hit) return;
    setItems((list) => list.map((i) => (i.key !== hit.key ? i : { ...i, jobs: i.jobs.map((j) => (j.id === e.jobId ? applyEvent(j, e) : j)) })));
    // A finished job may have published derivatives (the thumbnails): read the asset again.
    if ((e.type === "job-completed" || e.type === "job-error") && hit.assetId) void refreshAsset(hit.key, hit.assetId);
  });

  // Without the hub, re-read every unfinished asset.
  usePolling(() => {
    for (const i of items) if (i.state === "processing" && i.assetId) void refreshAsset(i.key, i.assetId);
  });

  function add(files: File[]) {
    if (!files.length) return;
    if (!valid) { setFormError("Fix the settings before uploading."); return; }
    setFormError(null);
    setItems((list) => [...list, ...files.map((file) => ({ key: String(nextKey++), file, state: "waiting" as const, sent: 0, total: file.size, speed: 0, jobs: [] }))]);
  }

  async function onDrop(e: DragEvent) {
    e.preventDefault();
    setDragging(false);
    add(await filesFromDrop(e.dataTransfer));
  }

  function onPick(e: ChangeEvent<HTMLInputElement>) {
    add(Array.from(e.target.files ?? []));
    e.target.value = "";
  }

  function pause(i: Item) { running.current.get(i.key)?.pause(); patch(i.key, { state: "paused", speed: 0, eta: undefined }); }
  function resume(i: Item) {
    const h = running.current.get(i.key);
    samples.current.set(i.key, { t: performance.now(), sent: i.sent });
    if (h) { h.resume(); patch(i.key, { state: "uploading" }); } else void begin(i);
  }
  function remove(i: Item) { running.current.get(i.key)?.cancel(); running.current.delete(i.key); setItems((l) => l.filter((x) => x.key !== i.key)); }

  return (
    <section>
      <h1>Upload</h1>
      <div className="upload-grid">
        <div>
          <div className={`dropzone${dragging ? " dragging" : ""}`} onDragOver={(e) => { e.preventDefault(); setDragging(true); }}
            onDragLeave={() => setDragging(false)} onDrop={onDrop} aria-label="Drop files or folders here">
            <p>Drop files or folders here</p>
            <label className="button">Choose files<input type="file" multiple onChange={onPick} className="visually-hidden-input" aria-label="Choose files" /></label>
            <label className="button">Choose a folder<input type="file" multiple onChange={onPick} className="visually-hidden-input" aria-label="Choose a folder"
              ref={(el) => { if (el) el.setAttribute("webkitdirectory", ""); }} /></label>
          </div>
          <UrlImport settings={settings} valid={valid} />
          <ErrorLine error={formError} />
          {items.length > 0 && (
            <ul className="upload-list" aria-label="Uploads">
              {items.map((i) => <UploadRow key={i.key} item={i} onPause={() => pause(i)} onResume={() => resume(i)} onRemove={() => remove(i)} />)}
            </ul>
          )}
        </div>
        <SettingsPanel value={settings} onChange={setSettings} errors={errors} />
      </div>
    </section>
  );
}

function UploadRow({ item: i, onPause, onResume, onRemove }: { item: Item; onPause(): void; onResume(): void; onRemove(): void }) {
  const percent = i.total ? (i.sent / i.total) * 100 : 0;
  return (
    <li className="upload-item" data-file={i.file.name} data-state={i.state}>
      <div className="upload-head">
        {i.thumbId ? <Thumb fileId={i.thumbId} alt={`Thumbnail of ${i.file.name}`} /> : <div className="thumb placeholder" aria-hidden="true" />}
        <div className="grow">
          <strong>{i.file.name}</strong> <StateBadge state={i.state} />
          <ProgressBar value={percent} label={`Upload of ${i.file.name}`} />
          <small className="upload-figures">
            {bytes(i.sent)} of {bytes(i.total)}
            {i.state === "uploading" && <> · {bytes(i.speed)}/s · {i.eta !== undefined ? `${duration(i.eta)} left` : "estimating…"}</>}
            {i.resumable && i.state !== "done" && " · resumable"}
          </small>
        </div>
        <div className="row-actions">
          {i.state === "uploading" && <button type="button" onClick={onPause} aria-label={`Pause upload of ${i.file.name}`}>Pause</button>}
          {(i.state === "paused" || i.state === "error") && !i.assetId && <button type="button" onClick={onResume} aria-label={`Resume upload of ${i.file.name}`}>Resume</button>}
          {i.assetId && <Link to={`/library/${i.assetId}`}>Open asset</Link>}
          <button type="button" onClick={onRemove} aria-label={`Remove ${i.file.name} from the list`}>✕</button>
        </div>
      </div>
      <ErrorLine error={i.error} />
      {i.jobs.length > 0 && (
        <ul className="job-chips" aria-label={`Jobs of ${i.file.name}`}>
          {i.jobs.map((j) => (
            <li key={j.id} data-kind={j.kind} data-state={j.state}>
              <Link to={`/jobs/${j.id}`}>{j.kind}</Link> <StateBadge state={j.state} />
              {j.state === "running" && <ProgressBar value={j.progress} label={`${j.kind} progress`} />}
              {j.errorMessage && <small className="error">{j.errorMessage}</small>}
            </li>
          ))}
        </ul>
      )}
    </li>
  );
}

/** A URL box beside the drop zone, shown only when this server has URL import (`POST /api/downloads`). */
function UrlImport({ settings, valid }: { settings: UploadSettings; valid: boolean }) {
  const [available, setAvailable] = useState(false);
  const [url, setUrl] = useState("");
  const [message, setMessage] = useState<string | null>(null);
  useEffect(() => { void endpointExists("/api/downloads", "GET").then(setAvailable); }, []);
  if (!available) return null;
  async function submit(e: FormEvent) {
    e.preventDefault();
    try {
      const body: Record<string, unknown> = { url };
      if (settings.category) body.category = settings.category;
      const s = settingsJson(settings, "other");
      if (s) body.settings = JSON.parse(s);
      await api("/api/downloads", { method: "POST", json: body });
      setMessage("Import queued: follow it on the Jobs page.");
      setUrl("");
    } catch (err) {
      setMessage(errorText(err));
    }
  }
  return (
    <form className="url-import" onSubmit={submit}>
      <label htmlFor="import-url">Import from a URL</label>
      <input id="import-url" type="url" required value={url} onChange={(e) => setUrl(e.target.value)} placeholder="https://…" />
      <button type="submit" disabled={!valid}>Import</button>
      {message && <p role="status">{message}</p>}
    </form>
  );
}
