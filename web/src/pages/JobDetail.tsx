import { useCallback, useEffect, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { api, ApiError, errorText, query, TERMINAL, type Job, type Page } from "../api";
import { applyEvent, live, useJobEvents, usePolling } from "../live";
import { duration, speed, when } from "../format";
import { ErrorLine, Json, ProgressBar, StateBadge } from "../components/ui";
import { JobActions } from "./Jobs";

export function JobDetailPage() {
  const { id = "" } = useParams();
  const [job, setJob] = useState<Job | null>(null);
  const [children, setChildren] = useState<Job[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [notFound, setNotFound] = useState(false);

  const load = useCallback(async () => {
    try {
      const j = await api<Job>(`/api/jobs/${id}`);
      if (!TERMINAL.has(j.state)) live.watch(j.id);
      setJob(j);
      if (j.assetId) {
        // Children share the asset; the list has no parent filter, so pick them out here.
        const siblings = await api<Page<Job>>(`/api/jobs${query({ assetId: j.assetId, pageSize: 500, sort: "createdAt" })}`);
        setChildren(siblings.items.filter((c) => c.parentId === j.id));
      }
      setError(null);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) setNotFound(true);
      else setError(errorText(e));
    }
  }, [id]);
  useEffect(() => { void load(); }, [load]);
  usePolling(load, 3000);
  useJobEvents((e) => {
    if (e.jobId === id) setJob((j) => (j ? applyEvent(j, e) : j));
    else if (children.some((c) => c.id === e.jobId)) setChildren((cs) => cs.map((c) => (c.id === e.jobId ? applyEvent(c, e) : c)));
    if (e.jobId === id && (e.type === "job-completed" || e.type === "job-error")) void load();
  });

  if (notFound) return <section><h1>Job not found</h1><p>No job with this id is visible to your key.</p><Link to="/jobs">All jobs</Link></section>;
  if (!job) return <section><ErrorLine error={error} /><p role="status">Loading…</p></section>;
  return (
    <section>
      <h1>Job <code>{job.kind}</code> <StateBadge state={job.state} /></h1>
      <ErrorLine error={error} />
      <ProgressBar value={job.progress} label="Job progress" />
      <p><JobActions job={job} onChanged={setJob} onError={setError} /></p>
      <dl className="meta">
        <dt>Id</dt><dd><code>{job.id}</code></dd>
        <dt>Queue</dt><dd><Link to={`/jobs?queue=${job.queue}`}>{job.queue}</Link></dd>
        <dt>Stage</dt><dd>{job.stage ?? "–"}</dd>
        {job.state === "running" && <><dt>Speed / ETA</dt><dd>{speed(job.speed)} · {duration(job.etaSeconds)}</dd></>}
        <dt>Priority</dt><dd>{job.priority}</dd>
        <dt>Attempts</dt><dd>{job.attempts} of {job.maxAttempts}</dd>
        {job.leaseOwner && <><dt>Running on</dt><dd>{job.leaseOwner} (lease until {when(job.leaseExpiresAt)})</dd></>}
        {job.assetId && <><dt>Asset</dt><dd><Link to={`/library/${job.assetId}`}><code>{job.assetId}</code></Link></dd></>}
        {job.batchId && <><dt>Batch</dt><dd><code>{job.batchId}</code></dd></>}
        <dt>Parent</dt><dd>{job.parentId ? <Link to={`/jobs/${job.parentId}`}><code>{job.parentId}</code></Link> : "–"}</dd>
        <dt>Created</dt><dd>{when(job.createdAt)}</dd>
        <dt>Run at</dt><dd>{when(job.runAt)}</dd>
        <dt>Started</dt><dd>{when(job.startedAt)}</dd>
        <dt>Finished</dt><dd>{when(job.finishedAt)}</dd>
        <dt>Last progress</dt><dd>{when(job.lastProgressAt)}</dd>
        {job.errorCode && <><dt>Error</dt><dd className="error"><code>{job.errorCode}</code> {job.errorMessage}</dd></>}
      </dl>
      <Json label="Params" value={job.params} />
      <Json label="Result" value={job.result} />
      <h2>Attempts</h2>
      {!job.history?.length ? <p className="muted">None yet.</p> : (
        <table className="history">
          <caption className="sr-only">Every attempt of this job</caption>
          <thead><tr><th scope="col">#</th><th scope="col">Worker</th><th scope="col">Started</th><th scope="col">Finished</th><th scope="col">Outcome</th><th scope="col">Error</th></tr></thead>
          <tbody>
            {job.history.map((a) => (
              <tr key={a.leaseId}>
                <td>{a.attempt}</td><td>{a.worker ?? "–"}</td><td>{when(a.startedAt)}</td><td>{when(a.finishedAt)}</td>
                <td>{a.outcome ?? "running"}</td>
                <td>{a.errorCode ? <><code>{a.errorCode}</code> {a.errorMessage}</> : "–"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>Children</h2>
      {children.length === 0 ? <p className="muted">None.</p> : (
        <ul>
          {children.map((c) => <li key={c.id}><Link to={`/jobs/${c.id}`}>{c.kind}</Link> <StateBadge state={c.state} /></li>)}
        </ul>
      )}
    </section>
  );
}
