import { useCallback, useEffect, useState, type FormEvent } from "react";
import { api, errorText, type ApiKeyInfo, type CreatedKey } from "../api";
import { when } from "../format";
import { ErrorLine, Field } from "../components/ui";

export function KeysPage() {
  const [keys, setKeys] = useState<ApiKeyInfo[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [name, setName] = useState("");
  const [role, setRole] = useState("client");
  const [created, setCreated] = useState<CreatedKey | null>(null);

  const load = useCallback(async () => {
    try { setKeys(await api<ApiKeyInfo[]>("/api/keys")); setError(null); } catch (e) { setError(errorText(e)); }
  }, []);
  useEffect(() => { void load(); }, [load]);

  async function create(e: FormEvent) {
    e.preventDefault();
    try {
      setCreated(await api<CreatedKey>("/api/keys", { method: "POST", json: { name: name.trim(), role } }));
      setName("");
      await load();
    } catch (err) { setError(errorText(err)); }
  }
  async function revoke(k: ApiKeyInfo) {
    if (!window.confirm(`Revoke key ${k.name} (${k.prefix}…)? It stops working within seconds.`)) return;
    try { await api(`/api/keys/${k.id}`, { method: "DELETE" }); await load(); } catch (err) { setError(errorText(err)); }
  }

  return (
    <section>
      <h1>API keys</h1>
      <form className="filters" onSubmit={create} aria-label="Create a key">
        <Field label="Name"><input required value={name} onChange={(e) => setName(e.target.value)} name="name" maxLength={100} /></Field>
        <Field label="Role">
          <select value={role} onChange={(e) => setRole(e.target.value)} name="role"><option>client</option><option>admin</option></select>
        </Field>
        <button type="submit" disabled={!name.trim()}>Create key</button>
      </form>
      {created && <SecretOnce label={`Key ${created.name} (${created.role})`} secret={created.secret} onClose={() => setCreated(null)} />}
      <ErrorLine error={error} />
      <KeyTable rows={keys} onRevoke={revoke} />
    </section>
  );
}

export function SecretOnce({ label, secret, onClose }: { label: string; secret: string; onClose(): void }) {
  return (
    <div className="banner ok" role="status">
      <p><strong>{label}</strong> — copy it now, it is never shown again:</p>
      <p><code className="wrap" data-testid="secret">{secret}</code></p>
      <button type="button" onClick={() => void navigator.clipboard?.writeText(secret)}>Copy</button>{" "}
      <button type="button" onClick={onClose}>Done</button>
    </div>
  );
}

export function KeyTable({ rows, onRevoke }: { rows: ApiKeyInfo[]; onRevoke(k: ApiKeyInfo): void }) {
  return (
    <div className="table-wrap">
      <table className="table">
        <thead><tr><th scope="col">Name</th><th scope="col">Role</th><th scope="col">Prefix</th><th scope="col">Created</th><th scope="col">Last used</th><th scope="col">Status</th><th scope="col"><span className="sr-only">Actions</span></th></tr></thead>
        <tbody>
          {rows.map((k) => (
            <tr key={k.id} data-key={k.id}>
              <td>{k.name}</td><td>{k.role}</td><td><code>{k.prefix}</code></td><td>{when(k.createdAt)}</td><td>{when(k.lastUsedAt)}</td>
              <td>{k.revokedAt ? `revoked ${when(k.revokedAt)}` : "active"}</td>
              <td>{!k.revokedAt && <button type="button" className="danger" onClick={() => onRevoke(k)} aria-label={`Revoke ${k.name}`}>Revoke</button>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
