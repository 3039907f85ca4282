import { lazy, Suspense, useCallback, useEffect, useRef, useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { api, ApiError, errorText, TERMINAL, type AssetDetails, type Derivative } from "../api";
import { applyEvent, live, useJobEvents, usePolling } from "../live";
import { bytes, duration, when } from "../format";
import { ErrorLine, ProgressBar, StateBadge } from "../components/ui";
import { Thumb, useSignedUrl } from "../components/Thumb";
import { CompareSlider } from "../components/CompareSlider";
import { Transcripts } from "../components/Transcripts";

// Only an asset page that shows a video or a waveform pays for hls.js or the drawing code.
const HlsPlayer = lazy(() => import("../components/HlsPlayer"));
const Waveform = lazy(() => import("../components/Waveform"));

export function AssetDetailPage() {
  const { id = "" } = useParams();
  const navigate = useNavigate();
  const [details, setDetails] = useState<AssetDetails | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notFound, setNotFound] = useState(false);

  const load = useCallback(async () => {
    try {
      const d = await api<AssetDetails>(`/api/assets/${id}`);
      for (const j of d.jobs) if (!TERMINAL.has(j.state)) live.watch(j.id);
      setDetails(d);
      setError(null);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) setNotFound(true);
      else setError(errorText(e));
    }
  }, [id]);
  useEffect(() => { void load(); }, [load]);
  usePolling(load, 3000);
  useJobEvents((e) => {
    if (!details?.jobs.some((j) => j.id === e.jobId)) return;
    setDetails((d) => (d ? { ...d, jobs: d.jobs.map((j) => (j.id === e.jobId ? applyEvent(j, e) : j)) } : d));
    if (e.type === "job-completed" || e.type === "job-error") void load();
  });

  async function remove() {
    if (!window.confirm("Delete this asset, its jobs and every file?")) return;
    try {
      await api(`/api/assets/${id}`, { method: "DELETE" });
      navigate("/library");
    } catch (e) {
      setError(errorText(e));
    }
  }

  if (notFound) return <section><h1>Asset not found</h1><p>No asset with this id is visible to your key.</p><Link to="/library">All assets</Link></section>;
  if (!details) return <section><ErrorLine error={error} /><p role="status">Loading…</p></section>;
  const { asset, derivatives, jobs } = details;
  const find = (type: string, variant?: string) => derivatives.find((d) => d.type === type && (variant === undefined || d.variant === variant));
  const optimized = find("OPTIMIZED");

  return (
    <section className="asset-detail">
      <h1>{asset.originalName}</h1>
      <ErrorLine error={error} />
      <div className="detail-grid">
        <dl className="meta" aria-label="Metadata">
          <dt>Id</dt><dd><code>{asset.id}</code></dd>
          <dt>Kind</dt><dd>{asset.kind} ({asset.contentType})</dd>
          <dt>Size</dt><dd>{bytes(asset.size)}</dd>
          {asset.sha256 && <><dt>SHA-256</dt><dd><code className="wrap">{asset.sha256}</code></dd></>}
          {asset.category && <><dt>Category</dt><dd>{asset.category}</dd></>}
          {asset.tags?.length ? <><dt>Tags</dt><dd>{asset.tags.join(", ")}</dd></> : null}
          <dt>Created</dt><dd>{when(asset.createdAt)}</dd>
          {asset.expiresAt && <><dt>Expires</dt><dd>{when(asset.expiresAt)}</dd></>}
        </dl>
        <div>
          <button type="button" className="danger" onClick={remove}>Delete asset</button>
          <DownloadLink fileId={asset.id} label={`Download original (${bytes(asset.size)})`} />
        </div>
      </div>

      <MediaMetadata metadata={asset.metadata} />

      {asset.kind === "image" && optimized && (
        <>
          <h2>Before / after</h2>
          <Savings original={asset.size} processed={optimized.size} />
          <CompareSlider beforeId={asset.id} afterId={optimized.id} label={asset.originalName} />
        </>
      )}
      {asset.kind === "video" && <VideoSection hls={find("HLS")} preview={find("PREVIEW")} frame={find("THUMBNAIL")} name={asset.originalName} />}
      {(asset.kind === "audio" || (asset.kind === "video" && find("WAVEFORM"))) && (
        <AudioSection sourceId={asset.kind === "audio" ? (optimized?.id ?? asset.id) : null} peaks={find("WAVEFORM", "json")} name={asset.originalName} />
      )}
      {asset.kind !== "image" && optimized && <Savings original={asset.size} processed={optimized.size} />}
      {(asset.kind === "audio" || asset.kind === "video") && <Transcripts assetId={asset.id} />}

      <h2>Derivatives</h2>
      {derivatives.length === 0 ? <p className="muted">None yet.</p> : (
        <ul className="derivatives" aria-label="Derivatives">
          {derivatives.map((d) => <DerivativeRow key={d.id} d={d} />)}
        </ul>
      )}

      <h2>Jobs</h2>
      <table className="table">
        <thead><tr><th scope="col">Kind</th><th scope="col">State</th><th scope="col">Progress</th><th scope="col">Error</th></tr></thead>
        <tbody>
          {jobs.map((j) => (
            <tr key={j.id} data-kind={j.kind}>
              <td><Link to={`/jobs/${j.id}`}>{j.kind}</Link></td>
              <td><StateBadge state={j.state} /></td>
              <td><ProgressBar value={j.progress} label={`${j.kind} progress`} /></td>
              <td>{j.errorCode ? `${j.errorCode}: ${j.errorMessage ?? ""}` : ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

// What the probe found, less what the summary above already shows.
const SHOWN = new Set(["kind", "size", "sha256", "contentType"]);
function MediaMetadata({ metadata }: { metadata?: Record<string, unknown> }) {
  const rows = Object.entries(metadata ?? {}).filter(([k, v]) => !SHOWN.has(k) && v !== null && typeof v !== "object");
  if (!rows.length) return null;
  return (
    <details className="media-meta">
      <summary>Media metadata ({rows.length})</summary>
      <dl className="counts wide">
        {rows.map(([k, v]) => <div key={k}><dt>{k}</dt><dd>{k === "duration" && typeof v === "number" ? duration(v) : String(v)}</dd></div>)}
      </dl>
    </details>
  );
}

function Savings({ original, processed }: { original: number; processed: number }) {
  const saved = original - processed;
  const ratio = original ? processed / original : 1;
  return (
    <p className="savings" data-testid="savings">
      {bytes(original)} → {bytes(processed)} · <strong>{saved >= 0 ? `${bytes(saved)} saved` : `${bytes(-saved)} larger`}</strong> · ratio {ratio.toFixed(2)} ({((1 - ratio) * 100).toFixed(1)}% smaller)
    </p>
  );
}

function DownloadLink({ fileId, label }: { fileId: string; label: string }) {
  const url = useSignedUrl(fileId);
  return url ? <a className="button" href={url} download>{label}</a> : null;
}

function DerivativeRow({ d }: { d: Derivative }) {
  const isImage = d.contentType.startsWith("image/");
  return (
    <li className="derivative" data-type={d.type}>
      {isImage ? <Thumb fileId={d.id} alt={`${d.type} ${d.variant ?? ""}`} className="deriv-thumb" /> : <div className="deriv-thumb placeholder" aria-hidden="true">{d.type}</div>}
      <div>
        <strong>{d.type}</strong>{d.variant ? ` · ${d.variant}` : ""}
        <br /><small>{d.contentType} · {bytes(d.size)}{d.width ? ` · ${d.width}×${d.height}` : ""}{d.duration ? ` · ${duration(d.duration)}` : ""}</small>
        <br /><DownloadLink fileId={d.id} label="Download" />
      </div>
    </li>
  );
}

function VideoSection({ hls, preview, frame, name }: { hls?: Derivative; preview?: Derivative; frame?: Derivative; name: string }) {
  const hlsUrl = useSignedUrl(hls?.id);
  const previewUrl = useSignedUrl(preview?.id);
  return (
    <>
      <h2>Video</h2>
      {hls ? (hlsUrl ? <Suspense fallback={<p role="status">Loading player…</p>}><HlsPlayer src={hlsUrl} label={`${name} (HLS)`} /></Suspense> : null)
        : <p className="muted">No HLS renditions yet.</p>}
      <div className="media-row">
        {previewUrl && (
          <figure><video src={`${previewUrl}&disposition=inline`} controls muted playsInline aria-label={`${name} preview clip`} /><figcaption>Preview clip</figcaption></figure>
        )}
        {frame && <figure><Thumb fileId={frame.id} alt={`${name} frame`} className="frame" /><figcaption>Frame</figcaption></figure>}
      </div>
    </>
  );
}

function AudioSection({ sourceId, peaks, name }: { sourceId: string | null; peaks?: Derivative; name: string }) {
  const audio = useRef<HTMLAudioElement>(null);
  const src = useSignedUrl(sourceId ?? undefined);
  const peaksUrl = useSignedUrl(peaks?.id);
  return (
    <>
      <h2>Audio</h2>
      {src && <audio ref={audio} src={`${src}&disposition=inline`} controls aria-label={`${name} audio`} preload="metadata" />}
      {peaksUrl ? <Suspense fallback={<p role="status">Loading waveform…</p>}><Waveform peaksUrl={peaksUrl} audio={audio} /></Suspense>
        : <p className="muted">No waveform yet.</p>}
    </>
  );
}
