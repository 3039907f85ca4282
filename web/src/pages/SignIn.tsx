import { useState, type FormEvent } from "react";
import { useSession } from "../session";
import { errorText } from "../api";
import { ErrorLine } from "../components/ui";

export function SignIn() {
  const { signIn } = useSession();
  const [key, setKey] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(key.trim());
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="signin">
      <h1>Kiln</h1>
      <form onSubmit={submit} aria-label="Sign in">
        <label htmlFor="api-key">API key</label>
        <input id="api-key" name="api-key" type="password" autoComplete="off" required value={key}
          onChange={(e) => setKey(e.target.value)} placeholder="kiln_…" />
        <p className="muted">Kept for this tab only; closing it signs you out.</p>
        <button type="submit" disabled={busy || !key.trim()}>{busy ? "Signing in…" : "Sign in"}</button>
        <ErrorLine error={error} />
      </form>
    </main>
  );
}
