import { useCallback, useEffect, useState } from "react";
import { api, ApiError, errorText } from "../api";
import { when } from "../format";
import { ErrorLine } from "./ui";

interface TranscriptVersion {
  version: number; source: "AUTO" | "MANUAL"; isActive: boolean; language?: string; provider?: string; model?: string; createdAt: string;
}
interface ActiveTranscript { version: TranscriptVersion; text: string }

/** The asset's transcript: the active text, every version with who made it, and a button to make another active. */
export function Transcripts({ assetId }: { assetId: string }) {
  const [versions, setVersions] = useState<TranscriptVersion[]>([]);
  const [active, setActive] = useState<ActiveTranscript | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      setVersions(await api<TranscriptVersion[]>(`/api/assets/${assetId}/transcripts`));
      try {
        setActive(await api<ActiveTranscript>(`/api/assets/${assetId}/transcripts/active`));
      } catch (e) {
        if (e instanceof ApiError && e.status === 404) setActive(null);
        else throw e;
      }
      setError(null);
    } catch (e) {
      setError(errorText(e));
    }
  }, [assetId]);
  useEffect(() => { void load(); }, [load]);

  const activate = async (version: number) => {
    try {
      await api(`/api/assets/${assetId}/transcripts/${version}/activate`, { method: "POST" });
      await load();
    } catch (e) {
      setError(errorText(e));
    }
  };

  return (
    <>
      <h2>Transcript</h2>
      <ErrorLine error={error} />
      {active ? <p className="transcript">{active.text}</p> : <p className="muted">No transcript yet.</p>}
      {versions.length > 0 && (
        <ul aria-label="Transcript versions">
          {versions.map((v) => (
            <li key={v.version}>
              v{v.version} {v.source} {v.provider ?? ""} {v.model ?? ""} · {when(v.createdAt)}
              {v.isActive ? <strong> (active)</strong>
                : <button type="button" onClick={() => void activate(v.version)} aria-label={`Make version ${v.version} active`}>Make active</button>}
            </li>
          ))}
        </ul>
      )}
    </>
  );
}
