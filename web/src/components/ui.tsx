// Small shared pieces: progress bar, state badge, pager, error line.
import type { ReactNode } from "react";

export function ProgressBar({ value, label }: { value: number; label: string }) {
  const v = Math.max(0, Math.min(100, value || 0));
  return (
    <div className="progress" role="progressbar" aria-label={label} aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(v)}>
      {/* scaleX, not width: a moving bar repaints its own box and lays out nothing. The figure sits beside the bar,
          not blended over it (mix-blend-mode made each move repaint a blended group). */}
      <div className="progress-track"><div className="progress-fill" data-value={v} style={{ transform: `scaleX(${v / 100})` }} /></div>
      <span className="progress-text">{v.toFixed(0)}%</span>
    </div>
  );
}

export function StateBadge({ state }: { state: string }) {
  return <span className={`badge state-${state}`} data-state={state}>{state}</span>;
}

export function Pager({ page, pageSize, total, count, onPage }: { page: number; pageSize: number; total?: number; count: number; onPage(p: number): void }) {
  const pages = total !== undefined ? Math.max(1, Math.ceil(total / pageSize)) : undefined;
  const hasNext = pages !== undefined ? page < pages : count >= pageSize;
  return (
    <nav className="pager" aria-label="Pages">
      <button type="button" disabled={page <= 1} onClick={() => onPage(page - 1)}>Previous</button>
      <span>Page {page}{pages !== undefined ? ` of ${pages}` : ""}{total !== undefined ? ` · ${total} total` : ""}</span>
      <button type="button" disabled={!hasNext} onClick={() => onPage(page + 1)}>Next</button>
    </nav>
  );
}

export function ErrorLine({ error }: { error: string | null | undefined }) {
  return error ? <p className="error" role="alert">{error}</p> : null;
}

export function Field({ label, children, hint }: { label: string; children: ReactNode; hint?: string }) {
  return (
    <label className="field">
      <span>{label}</span>
      {children}
      {hint && <small>{hint}</small>}
    </label>
  );
}

export function Json({ value, label }: { value: unknown; label: string }) {
  if (value === undefined || value === null) return <p className="muted">{label}: none</p>;
  return (
    <details open>
      <summary>{label}</summary>
      <pre className="json">{JSON.stringify(value, null, 2)}</pre>
    </details>
  );
}
