import { useCallback, useEffect, useState, type FormEvent } from "react";
import { Link } from "react-router-dom";
import { api, errorText, type ApiKeyInfo, type CreatedWorkerToken, type WorkerInfo } from "../api";
import { usePolling } from "../live";
import { shortId, when } from "../format";
import { ErrorLine, Field, ProgressBar } from "../components/ui";
import { KeyTable, SecretOnce } from "./Keys";

export function WorkersPage() {
  const [workers, setWorkers] = useState<WorkerInfo[]>([]);
  const [tokens, setTokens] = useState<ApiKeyInfo[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [name, setName] = useState("");
  const [created, setCreated] = useState<CreatedWorkerToken | null>(null);

  const loadWorkers = useCallback(async () => {
    try { setWorkers(await api<WorkerInfo[]>("/api/workers")); } catch (e) { setError(errorText(e)); }
  }, []);
  const loadTokens = useCallback(async () => {
    try { setTokens(await api<ApiKeyInfo[]>("/api/workers/tokens")); } catch (e) { setError(errorText(e)); }
  }, []);
  // Workers connect and report through their own socket, not the hub: read the list every few seconds.
  usePolling(loadWorkers, 3000, true);
  useEffect(() => { void loadTokens(); }, [loadTokens]);

  async function create(e: FormEvent) {
    e.preventDefault();
    try {
      setCreated(await api<CreatedWorkerToken>("/api/workers/tokens", { method: "POST", json: { name: name.trim() } }));
      setName("");
      await loadTokens();
    } catch (err) { setError(errorText(err)); }
  }
  async function revoke(k: ApiKeyInfo) {
    if (!window.confirm(`Revoke worker token ${k.name}? Its workers are disconnected.`)) return;
    try { await api(`/api/workers/tokens/${k.id}`, { method: "DELETE" }); await loadTokens(); } catch (err) { setError(errorText(err)); }
  }

  return (
    <section>
      <h1>Workers</h1>
      <ErrorLine error={error} />
      <h2>Connected</h2>
      {workers.length === 0 ? <p className="muted">No remote worker is connected.</p> : (
        <div className="table-wrap">
          <table className="table">
            <thead><tr><th scope="col">Name</th><th scope="col">Node</th><th scope="col">Kinds</th><th scope="col">Slots</th><th scope="col">Running</th><th scope="col">Connected</th><th scope="col">Last seen</th></tr></thead>
            <tbody>
              {workers.map((w) => (
                <tr key={w.id}>
                  <td>{w.name} <small className="muted">{w.version}{w.address ? ` · ${w.address}` : ""}</small></td>
                  <td>{w.node}</td>
                  <td>{w.kinds.join(", ")}</td>
                  <td>{w.running.length} / {w.slots}</td>
                  <td>{w.running.map((r) => (
                    <div key={r.jobId}><Link to={`/jobs/${r.jobId}`}>{r.kind} {shortId(r.jobId)}</Link> <ProgressBar value={r.progress} label={`Progress of ${r.kind}`} /></div>
                  ))}</td>
                  <td>{when(w.connectedAt)}</td>
                  <td>{when(w.lastSeenAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <h2>Worker tokens</h2>
      <form className="filters" onSubmit={create} aria-label="Create a worker token">
        <Field label="Name"><input required value={name} onChange={(e) => setName(e.target.value)} name="name" maxLength={100} /></Field>
        <button type="submit" disabled={!name.trim()}>Create token</button>
      </form>
      {created && <SecretOnce label={`Worker token ${created.name}`} secret={created.token} onClose={() => setCreated(null)} />}
      <KeyTable rows={tokens} onRevoke={revoke} />
    </section>
  );
}
