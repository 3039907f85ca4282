// Loaded only on an asset's page (dynamic import): hls.js is most of a video page's weight.
import { useEffect, useRef, useState } from "react";
import Hls from "hls.js";

export default function HlsPlayer({ src, label }: { src: string; label: string }) {
  const video = useRef<HTMLVideoElement>(null);
  const hlsRef = useRef<Hls | null>(null);
  const [levels, setLevels] = useState<{ index: number; name: string }[]>([]);
  const [level, setLevel] = useState(-1);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const el = video.current;
    if (!el) return undefined;
    if (Hls.isSupported()) {
      const hls = new Hls();
      hlsRef.current = hls;
      hls.on(Hls.Events.MANIFEST_PARSED, (_e, data) => setLevels(data.levels.map((l, index) => ({ index, name: l.height ? `${l.height}p` : `${Math.round(l.bitrate / 1000)} kb/s` }))));
      hls.on(Hls.Events.ERROR, (_e, data) => { if (data.fatal) setError(`Playback failed: ${data.details}`); });
      hls.loadSource(new URL(src, location.origin).toString());
      hls.attachMedia(el);
      return () => { hls.destroy(); hlsRef.current = null; };
    }
    el.src = src; // Safari plays HLS natively
    return undefined;
  }, [src]);

  function choose(i: number) {
    setLevel(i);
    if (hlsRef.current) hlsRef.current.currentLevel = i;
  }

  return (
    <div className="player">
      <video ref={video} controls playsInline muted aria-label={label} data-testid="hls-video" />
      {levels.length > 0 && (
        <label className="field inline">
          <span>Rendition</span>
          <select value={level} onChange={(e) => choose(Number(e.target.value))} aria-label="Rendition">
            <option value={-1}>Auto</option>
            {levels.map((l) => <option key={l.index} value={l.index}>{l.name}</option>)}
          </select>
        </label>
      )}
      {error && <p className="error" role="alert">{error}</p>}
    </div>
  );
}
