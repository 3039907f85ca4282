import { useCallback, useEffect, useState, type FormEvent } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { api, errorText, query, type Asset, type AssetDetails } from "../api";
import { usePolling, useJobEvents } from "../live";
import { bytes, when } from "../format";
import { ErrorLine, Field, Pager } from "../components/ui";
import { Thumb } from "../components/Thumb";

const PAGE_SIZE = 24;

export function AssetsPage() {
  const [params, setParams] = useSearchParams();
  const page = Math.max(1, Number(params.get("page")) || 1);
  const filters = { kind: params.get("kind") ?? "", category: params.get("category") ?? "", tag: params.get("tag") ?? "", state: params.get("state") ?? "", q: params.get("q") ?? "" };
  const [assets, setAssets] = useState<Asset[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [search, setSearch] = useState(filters.q);
  const key = params.toString();

  const load = useCallback(async () => {
    try {
      setAssets(await api<Asset[]>(`/api/assets${query({ ...filters, page, pageSize: PAGE_SIZE })}`));
      setError(null);
    } catch (e) {
      setError(errorText(e));
    }
  }, [key]);
  useEffect(() => { void load(); }, [load]);
  usePolling(load, 5000);
  // A finished job may have added an asset's thumbnail or changed its state: reload, at most once a second.
  const [stale, setStale] = useState(false);
  useJobEvents((e) => { if (e.type === "job-completed" || e.type === "job-error") setStale(true); });
  useEffect(() => {
    if (!stale) return undefined;
    const t = window.setTimeout(() => { setStale(false); void load(); }, 1000);
    return () => window.clearTimeout(t);
  }, [stale, load]);

  function set(name: string, value: string) {
    const next = new URLSearchParams(params);
    if (value) next.set(name, value); else next.delete(name);
    if (name !== "page") next.delete("page");
    setParams(next);
  }
  function submit(e: FormEvent) { e.preventDefault(); set("q", search.trim()); }

  return (
    <section>
      <h1>Assets</h1>
      <form className="filters" onSubmit={submit} aria-label="Asset filters">
        <Field label="Search name or id"><input type="search" value={search} onChange={(e) => setSearch(e.target.value)} name="q" /></Field>
        <Field label="Kind">
          <select value={filters.kind} onChange={(e) => set("kind", e.target.value)} name="kind">
            <option value="">any</option>{["image", "video", "audio", "other"].map((k) => <option key={k}>{k}</option>)}
          </select>
        </Field>
        <Field label="State">
          <select value={filters.state} onChange={(e) => set("state", e.target.value)} name="state">
            <option value="">any</option>{["processing", "done", "failed"].map((k) => <option key={k}>{k}</option>)}
          </select>
        </Field>
        <Field label="Category"><input value={filters.category} onChange={(e) => set("category", e.target.value)} name="category" /></Field>
        <Field label="Tag"><input value={filters.tag} onChange={(e) => set("tag", e.target.value)} name="tag" /></Field>
        <button type="submit">Search</button>
      </form>
      <ErrorLine error={error} />
      {assets.length === 0 && !error ? <p className="muted">No assets match.</p> : (
        <ul className="asset-grid" aria-label="Assets">
          {assets.map((a) => <AssetCard key={a.id} asset={a} />)}
        </ul>
      )}
      <Pager page={page} pageSize={PAGE_SIZE} count={assets.length} onPage={(p) => set("page", String(p))} />
    </section>
  );
}

function AssetCard({ asset }: { asset: Asset }) {
  const [thumbId, setThumbId] = useState<string>();
  useEffect(() => {
    // The list carries no derivatives: read the asset's once to find a picture for the card.
    let alive = true;
    api<AssetDetails>(`/api/assets/${asset.id}`).then((d) => {
      const t = d.derivatives.find((x) => x.type === "THUMBNAIL") ?? d.derivatives.find((x) => x.type === "WAVEFORM" && x.variant === "svg");
      if (alive) setThumbId(t?.id ?? (asset.kind === "image" ? asset.id : undefined));
    }, () => undefined);
    return () => { alive = false; };
  }, [asset.id, asset.kind]);
  return (
    <li className="asset-card" data-asset={asset.id}>
      <Link to={`/library/${asset.id}`} aria-label={`Open ${asset.originalName}`}>
        {thumbId ? <Thumb fileId={thumbId} alt="" className="card-thumb" /> : <div className="card-thumb placeholder">{asset.kind}</div>}
        <span className="card-name">{asset.originalName}</span>
      </Link>
      <small>{asset.kind} · {bytes(asset.size)} · {when(asset.createdAt)}</small>
      {asset.tags?.length ? <small className="muted">{asset.category ? `${asset.category} · ` : ""}{asset.tags.join(", ")}</small> : null}
    </li>
  );
}
