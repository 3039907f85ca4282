import { useState } from "react";
import { useSignedUrl } from "./Thumb";

/** Before/after: the original under, the derivative on top clipped at the slider's position. */
export function CompareSlider({ beforeId, afterId, label }: { beforeId: string; afterId: string; label: string }) {
  const before = useSignedUrl(beforeId);
  const after = useSignedUrl(afterId);
  const [pos, setPos] = useState(50);
  if (!before || !after) return <div className="compare placeholder" aria-hidden="true" />;
  return (
    <figure className="compare" data-testid="compare">
      <div className="compare-frame">
        <img src={`${before}&disposition=inline`} alt={`${label}: original`} />
        <img src={`${after}&disposition=inline`} alt={`${label}: processed`} className="compare-after" style={{ clipPath: `inset(0 0 0 ${pos}%)` }} />
        <div className="compare-line" style={{ left: `${pos}%` }} aria-hidden="true" />
      </div>
      <label className="compare-range">
        <span>Original ← → processed</span>
        <input type="range" min={0} max={100} value={pos} onChange={(e) => setPos(Number(e.target.value))} aria-label="Comparison position" />
      </label>
    </figure>
  );
}
