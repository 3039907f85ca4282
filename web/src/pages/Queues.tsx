import { useCallback, useState, type FormEvent } from "react";
import { Link } from "react-router-dom";
import { api, errorText, type QueueStats } from "../api";
import { useJobEvents, usePolling } from "../live";
import { ErrorLine, Field } from "../components/ui";

const COUNTS: { key: keyof QueueStats; label: string; state?: string }[] = [
  { key: "waiting", label: "Waiting", state: "queued" },
  { key: "active", label: "Active", state: "running" },
  { key: "delayed", label: "Delayed", state: "queued" },
  { key: "waitingChildren", label: "Waiting for parent", state: "waiting" },
  { key: "pausedJobs", label: "Paused jobs", state: "paused" },
  { key: "completed", label: "Completed", state: "completed" },
  { key: "failed", label: "Failed", state: "failed" },
  { key: "cancelled", label: "Cancelled", state: "cancelled" },
];

export function QueuesPage({ admin }: { admin: boolean }) {
  const [queues, setQueues] = useState<QueueStats[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [message, setMessage] = useState<string | null>(null);

  const load = useCallback(async () => {
    try { setQueues(await api<QueueStats[]>("/api/queues")); setError(null); } catch (e) { setError(errorText(e)); }
  }, []);
  // Counts change with every job event; rather than one request per event, refresh at most once a second.
  const [dirty, setDirty] = useState(false);
  useJobEvents((e) => { if (e.type !== "job-progress") setDirty(true); });
  usePolling(async () => { if (dirty) { setDirty(false); await load(); } }, 1000, true);
  usePolling(load, 5000, true);

  async function act(path: string, init: Parameters<typeof api>[1], done?: (r: unknown) => string) {
    try {
      const r = await api<unknown>(path, init);
      if (done) setMessage(done(r));
      await load();
    } catch (e) {
      setError(errorText(e));
    }
  }
  const all = (cmd: "pause" | "resume") => Promise.all(queues.map((q) => api(`/api/queues/${q.name}/${cmd}`, { method: "POST" }))).then(load, (e) => setError(errorText(e)));

  return (
    <section>
      <h1>Queues</h1>
      {admin && (
        <p className="row-actions">
          <button type="button" onClick={() => void all("pause")}>Pause all</button>
          <button type="button" onClick={() => void all("resume")}>Resume all</button>
        </p>
      )}
      <ErrorLine error={error} />
      {message && <p role="status">{message}</p>}
      <div className="queue-grid">
        {queues.map((q) => (
          <article key={q.name} className="queue-card" data-queue={q.name} data-paused={q.paused} aria-labelledby={`q-${q.name}`}>
            <header>
              <h2 id={`q-${q.name}`}>{q.name}</h2>
              <span className={`badge ${q.paused ? "state-paused" : "state-running"}`} data-testid="queue-status">{q.paused ? "paused" : "running"}</span>
            </header>
            <dl className="counts">
              {COUNTS.map((c) => (
                <div key={c.key}><dt>{c.label}</dt><dd>{c.state ? <Link to={`/jobs?queue=${q.name}&state=${c.state}`} aria-label={`${c.label} jobs in ${q.name}: ${q[c.key]}`}>{String(q[c.key])}</Link> : String(q[c.key])}</dd></div>
              ))}
            </dl>
            <p className="muted">Concurrency {q.concurrency || "∞"} · rate {q.rateMax ? `${q.rateMax}/${q.ratePeriodMs} ms` : "unlimited"} · keep {q.keepCompleted || "all"} completed, {q.keepFailed || "all"} failed</p>
            {admin && (
              <>
                <div className="row-actions">
                  {q.paused
                    ? <button type="button" onClick={() => void act(`/api/queues/${q.name}/resume`, { method: "POST" })} aria-label={`Resume queue ${q.name}`}>Resume</button>
                    : <button type="button" onClick={() => void act(`/api/queues/${q.name}/pause`, { method: "POST" })} aria-label={`Pause queue ${q.name}`}>Pause</button>}
                  <button type="button" disabled={!q.failed} onClick={() => void act(`/api/queues/${q.name}/retry-failed`, { method: "POST" }, (r) => `${(r as { count: number }).count} failed jobs of ${q.name} queued again.`)} aria-label={`Retry failed jobs of ${q.name}`}>Retry failed</button>
                  {(["completed", "failed", "cancelled"] as const).map((s) => (
                    <button key={s} type="button" onClick={() => { if (window.confirm(`Delete every ${s} job of ${q.name}?`)) void act(`/api/queues/${q.name}/clean?state=${s}&graceSeconds=0`, { method: "POST" }, (r) => `${(r as { count: number }).count} ${s} jobs of ${q.name} deleted.`); }}
                      aria-label={`Clean ${s} jobs of ${q.name}`}>Clean {s}</button>
                  ))}
                </div>
                <QueueSettings q={q} onSave={(body) => act(`/api/queues/${q.name}`, { method: "PATCH", json: body })} />
              </>
            )}
          </article>
        ))}
      </div>
    </section>
  );
}

function QueueSettings({ q, onSave }: { q: QueueStats; onSave(body: Record<string, number>): Promise<void> }) {
  const [v, setV] = useState({ concurrency: String(q.concurrency), rateMax: String(q.rateMax), ratePeriodMs: String(q.ratePeriodMs), keepCompleted: String(q.keepCompleted), keepFailed: String(q.keepFailed) });
  const bad = Object.entries(v).filter(([, x]) => !/^\d+$/.test(x.trim())).map(([k]) => k);
  function submit(e: FormEvent) {
    e.preventDefault();
    if (bad.length) return;
    void onSave(Object.fromEntries(Object.entries(v).map(([k, x]) => [k, Number(x)])));
  }
  const input = (k: keyof typeof v, label: string) => (
    <Field label={label}><input inputMode="numeric" value={v[k]} aria-invalid={bad.includes(k)} onChange={(e) => setV({ ...v, [k]: e.target.value })} /></Field>
  );
  return (
    <details>
      <summary>Limits and retention</summary>
      <form onSubmit={submit} className="filters" aria-label={`Settings of ${q.name}`}>
        {input("concurrency", "Concurrency (0 = no cap)")}
        {input("rateMax", "Rate: jobs (0 = off)")}
        {input("ratePeriodMs", "Rate: per ms")}
        {input("keepCompleted", "Keep completed (0 = all)")}
        {input("keepFailed", "Keep failed (0 = all)")}
        <button type="submit" disabled={bad.length > 0}>Save</button>
        {bad.length > 0 && <p className="error" role="alert">Whole numbers only: {bad.join(", ")}</p>}
      </form>
    </details>
  );
}
