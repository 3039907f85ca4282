import { memo, useCallback, useEffect, useRef, useState, type FormEvent } from "react";
import { Link, useNavigate, useSearchParams } from "react-router-dom";
import { api, ApiError, errorText, JOB_STATES, query, TERMINAL, type Job, type Page } from "../api";
import { live, useJobEvents, usePolling } from "../live";
import { JobRowStore, useJobRow } from "../jobRows";
import { useRowWindow } from "../rowWindow";
import { duration, shortId, speed, when } from "../format";
import { ErrorLine, Field, Pager, ProgressBar, StateBadge } from "../components/ui";

const MAX_PAGE = 1000;
const SERVER_MAX_PAGE = 500;

/** One page of the table; a page larger than the API's 500 is read as consecutive API pages at once. */
async function loadPage(filters: Record<string, string>, page: number, pageSize: number): Promise<Page<Job>> {
  if (pageSize <= SERVER_MAX_PAGE) return api<Page<Job>>(`/api/jobs${query({ ...filters, page, pageSize })}`);
  const parts = Math.ceil(pageSize / SERVER_MAX_PAGE);
  const pages = await Promise.all(Array.from({ length: parts }, (_, i) =>
    api<Page<Job>>(`/api/jobs${query({ ...filters, page: (page - 1) * parts + i + 1, pageSize: SERVER_MAX_PAGE })}`)));
  return { items: pages.flatMap((p) => p.items), total: pages[0].total, page, pageSize: parts * SERVER_MAX_PAGE };
}

export function JobsPage() {
  const [params, setParams] = useSearchParams();
  const navigate = useNavigate();
  const page = Math.max(1, Number(params.get("page")) || 1);
  const pageSize = Math.min(MAX_PAGE, Math.max(1, Number(params.get("pageSize")) || 50));
  const filters = { state: params.get("state") ?? "", kind: params.get("kind") ?? "", queue: params.get("queue") ?? "", assetId: params.get("assetId") ?? "" };
  const [data, setData] = useState<{ ids: string[]; total: number } | null>(null);
  const [store] = useState(() => new JobRowStore());
  const [error, setError] = useState<string | null>(null);
  const [search, setSearch] = useState("");
  const [newJobs, setNewJobs] = useState(0);
  const key = params.toString();

  const load = useCallback(async () => {
    try {
      const d = await loadPage(filters, page, pageSize);
      store.reset(d.items);
      setData({ ids: d.items.map((j) => j.id), total: d.total });
      setNewJobs(0);
      setError(null);
    } catch (e) {
      setError(errorText(e));
    }
  }, [key]); // eslint-style: the key holds every filter
  useEffect(() => { void load(); }, [load]);
  usePolling(load, 3000);
  // This page hears of new jobs and follows only the rows it shows (JobRows), not every job's progress.
  useEffect(() => live.narrow(), []);

  // Events arrive up to hundreds a second: the row store applies them per frame and wakes only the changed rows.
  useEffect(() => {
    store.onUnknown = (n) => setNewJobs((c) => c + n);
    return () => store.dispose();
  }, [store]);
  useJobEvents((e) => store.push(e));

  function set(name: string, value: string) {
    const next = new URLSearchParams(params);
    if (value) next.set(name, value); else next.delete(name);
    if (name !== "page") next.delete("page");
    setParams(next);
  }

  async function find(e: FormEvent) {
    e.preventDefault();
    const id = search.trim();
    if (!id) return;
    try {
      await api<Job>(`/api/jobs/${encodeURIComponent(id)}`);
      navigate(`/jobs/${id}`);
    } catch (err) {
      setError(err instanceof ApiError && (err.status === 404 || err.status === 400) ? `No job with id ${id}.` : errorText(err));
    }
  }


  return (
    <section>
      <h1>Jobs</h1>
      <form className="filters" onSubmit={find} aria-label="Find a job">
        <Field label="Job id"><input value={search} onChange={(e) => setSearch(e.target.value)} name="jobId" placeholder="full job id" /></Field>
        <button type="submit">Open</button>
      </form>
      <div className="filters" role="group" aria-label="Job filters">
        <Field label="State">
          <select value={filters.state} onChange={(e) => set("state", e.target.value)} name="state">
            <option value="">any</option>{JOB_STATES.map((s) => <option key={s}>{s}</option>)}
          </select>
        </Field>
        <Field label="Kind"><input value={filters.kind} onChange={(e) => set("kind", e.target.value)} name="kind" placeholder="e.g. video.hls" /></Field>
        <Field label="Queue"><input value={filters.queue} onChange={(e) => set("queue", e.target.value)} name="queue" /></Field>
        <Field label="Asset id"><input value={filters.assetId} onChange={(e) => set("assetId", e.target.value)} name="assetId" /></Field>
        <Field label="Per page">
          <select value={pageSize} onChange={(e) => set("pageSize", e.target.value)} name="pageSize">
            {[25, 50, 100, 200, 500, 1000].map((n) => <option key={n}>{n}</option>)}
          </select>
        </Field>
      </div>
      <ErrorLine error={error} />
      {newJobs > 0 && <button type="button" className="notice" onClick={() => void load()}>{newJobs} new job{newJobs > 1 ? "s" : ""} — show</button>}
      {data && (
        <>
          <div className="table-wrap">
            <table className="table jobs-table" aria-rowcount={data.ids.length + 1}>
              <thead>
                <tr><th scope="col">Job</th><th scope="col">Kind</th><th scope="col">Queue</th><th scope="col">State</th><th scope="col">Progress</th>
                  <th scope="col">Stage</th><th scope="col">Speed</th><th scope="col">ETA</th><th scope="col">Created</th><th scope="col">Actions</th></tr>
              </thead>
              <JobRows ids={data.ids} store={store} onError={setError} />
            </table>
          </div>
          {data.ids.length === 0 && <p className="muted">No jobs match.</p>}
          <Pager page={page} pageSize={pageSize} total={data.total} count={data.ids.length} onPage={(p) => set("page", String(p))} />
        </>
      )}
    </section>
  );
}

/** The table body: every row of a short page, only the rows near the viewport of a long one (spacers keep the height). */
function JobRows({ ids, store, onError }: { ids: string[]; store: JobRowStore; onError(e: string): void }) {
  const body = useRef<HTMLTableSectionElement>(null);
  const { start, end, rowHeight } = useRowWindow(ids.length, body);
  // Follow the rows in the window (joining returns each job's state now, so a row scrolled back in is current).
  // A short pause first: a fast scroll passes hundreds of rows that need not be joined and left again.
  useEffect(() => {
    const t = window.setTimeout(() => live.follow(ids.slice(start, end)), 80);
    return () => window.clearTimeout(t);
  }, [ids, start, end]);
  return (
    <tbody ref={body}>
      {start > 0 && <Spacer height={start * rowHeight} />}
      {ids.slice(start, end).map((id, i) => <JobRow key={id} id={id} index={start + i} store={store} onError={onError} />)}
      {end < ids.length && <Spacer height={(ids.length - end) * rowHeight} />}
    </tbody>
  );
}

function Spacer({ height }: { height: number }) {
  return <tr aria-hidden="true" className="row-spacer"><td colSpan={10} style={{ height }} /></tr>;
}

const JobRow = memo(function JobRow({ id, index, store, onError }: { id: string; index: number; store: JobRowStore; onError(e: string): void }) {
  const j = useJobRow(store, id);
  if (!j) return null;
  return (
    <tr data-job={j.id} data-state={j.state} data-row={index} aria-rowindex={index + 2}>
      <td><Link to={`/jobs/${j.id}`} aria-label={`Job ${j.id}`}><code>{shortId(j.id)}</code></Link></td>
      <td>{j.kind}</td>
      <td>{j.queue}</td>
      <td><StateBadge state={j.state} /></td>
      <td><ProgressBar value={j.progress} label={`Progress of job ${shortId(j.id)}`} /></td>
      <td><span className="cell-live">{j.stage ?? ""}</span></td>
      <td><span className="cell-live">{j.state === "running" ? speed(j.speed) : ""}</span></td>
      <td><span className="cell-live">{j.state === "running" && j.etaSeconds !== undefined ? duration(j.etaSeconds) : ""}</span></td>
      <td>{when(j.createdAt)}</td>
      <td><RowActions job={j} onChanged={store.set} onError={onError} /></td>
    </tr>
  );
});

/** A row's buttons depend on its job's id and state only: progress events do not re-render them. */
const RowActions = memo(JobActions, (a, b) => a.job.id === b.job.id && a.job.state === b.job.state && a.onChanged === b.onChanged && a.onError === b.onError);

/** The commands a job's state allows (docs/api.md); the server answers 409 if it changed meanwhile. */
export function JobActions({ job, onChanged, onError }: { job: Job; onChanged(j: Job): void; onError(e: string): void }) {
  const [busy, setBusy] = useState(false);
  async function run(cmd: "cancel" | "pause" | "resume" | "retry") {
    setBusy(true);
    try {
      onChanged(await api<Job>(`/api/jobs/${job.id}/${cmd}`, { method: "POST" }));
    } catch (e) {
      onError(errorText(e));
    } finally {
      setBusy(false);
    }
  }
  const s = job.state;
  const b = (cmd: "cancel" | "pause" | "resume" | "retry", label: string) => (
    <button type="button" disabled={busy} onClick={() => void run(cmd)} aria-label={`${label} job ${shortId(job.id)}`}>{label}</button>
  );
  return (
    <span className="row-actions">
      {!TERMINAL.has(s) && b("cancel", "Cancel")}
      {(s === "queued" || s === "waiting" || s === "running") && b("pause", "Pause")}
      {s === "paused" && b("resume", "Resume")}
      {(s === "failed" || s === "cancelled") && b("retry", "Retry")}
    </span>
  );
}
