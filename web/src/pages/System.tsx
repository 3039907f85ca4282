import { useCallback, useRef, useState } from "react";
import { api, apiKey, errorText, type QueueStats } from "../api";
import { usePolling } from "../live";
import { bytes } from "../format";
import { ErrorLine } from "../components/ui";

interface Check { status: string; description?: string; data?: Record<string, unknown> }
interface Ready { status: string; checks: Record<string, Check> }

/** Sums of a Prometheus text metric over all its label sets. */
function metricSum(text: string, name: string): number | undefined {
  let sum = 0, seen = false;
  for (const line of text.split("\n")) {
    if (line.startsWith(name + "{") || line.startsWith(name + " ")) {
      const v = Number(line.slice(line.lastIndexOf(" ") + 1));
      if (Number.isFinite(v)) { sum += v; seen = true; }
    }
  }
  return seen ? sum : undefined;
}

export function SystemPage() {
  const [ready, setReady] = useState<Ready | null>(null);
  const [queues, setQueues] = useState<QueueStats[]>([]);
  const [figures, setFigures] = useState<{ saved?: number; perMinute?: number; rss?: number }>({});
  const [error, setError] = useState<string | null>(null);
  const last = useRef<{ t: number; finished: number } | null>(null);

  const load = useCallback(async () => {
    try {
      const res = await fetch("/health/ready");
      setReady(await res.json());
      setQueues(await api<QueueStats[]>("/api/queues"));
      const m = await fetch("/metrics", { headers: { Authorization: `Bearer ${apiKey() ?? ""}` } });
      if (m.ok) {
        const text = await m.text();
        const finished = metricSum(text, "kiln_jobs_finished_total") ?? 0;
        const now = performance.now();
        const prev = last.current;
        last.current = { t: now, finished };
        setFigures({
          saved: metricSum(text, "kiln_bytes_saved_total"),
          rss: metricSum(text, "process_resident_memory_bytes"),
          perMinute: prev && now > prev.t ? ((finished - prev.finished) / (now - prev.t)) * 60000 : undefined,
        });
      }
      setError(null);
    } catch (e) {
      setError(errorText(e));
    }
  }, []);
  usePolling(load, 5000, true);

  const totals: Record<string, number> = {};
  for (const q of queues) for (const k of ["waiting", "active", "delayed", "waitingChildren", "pausedJobs", "completed", "failed", "cancelled"] as const) totals[k] = (totals[k] ?? 0) + q[k];

  return (
    <section>
      <h1>System</h1>
      <ErrorLine error={error} />
      {ready && (
        <>
          <h2>Readiness: <span className={`badge health-${ready.status.toLowerCase()}`}>{ready.status}</span></h2>
          <ul className="checks">
            {Object.entries(ready.checks ?? {}).map(([name, c]) => (
              <li key={name}><strong>{name}</strong> <span className={`badge health-${c.status.toLowerCase()}`}>{c.status}</span>
                {c.description && <> — {c.description}</>}
                {c.data && Object.keys(c.data).length > 0 && <small className="muted"> {Object.entries(c.data).map(([k, v]) => `${k}: ${k.toLowerCase().includes("bytes") && typeof v === "number" ? bytes(v) : String(v)}`).join(" · ")}</small>}
              </li>
            ))}
          </ul>
        </>
      )}
      <h2>Jobs by state</h2>
      <dl className="counts wide">
        {Object.entries(totals).map(([k, v]) => <div key={k}><dt>{k}</dt><dd>{v}</dd></div>)}
      </dl>
      <h2>This node</h2>
      <dl className="counts wide">
        <div><dt>Finished per minute</dt><dd>{figures.perMinute !== undefined ? figures.perMinute.toFixed(1) : "measuring…"}</dd></div>
        <div><dt>Bytes saved</dt><dd>{bytes(figures.saved)}</dd></div>
        <div><dt>Memory (RSS)</dt><dd>{bytes(figures.rss)}</dd></div>
      </dl>
    </section>
  );
}
