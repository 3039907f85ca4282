// Loaded only on an audio asset's page. Draws audiowaveform v2 peaks (min/max pairs per channel) onto a canvas;
// a click seeks the player to that point.
import { useEffect, useRef, useState, type KeyboardEvent, type MouseEvent, type RefObject } from "react";

interface Peaks { version: number; channels: number; sample_rate: number; samples_per_pixel: number; bits: number; length: number; data: number[] }

export default function Waveform({ peaksUrl, audio }: { peaksUrl: string; audio: RefObject<HTMLAudioElement> }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const [peaks, setPeaks] = useState<Peaks | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [played, setPlayed] = useState(0);

  useEffect(() => {
    fetch(peaksUrl).then((r) => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`)))).then(setPeaks, (e: Error) => setError(e.message));
  }, [peaksUrl]);

  useEffect(() => {
    const el = audio.current;
    if (!el) return undefined;
    const tick = () => setPlayed(el.duration ? el.currentTime / el.duration : 0);
    el.addEventListener("timeupdate", tick);
    return () => el.removeEventListener("timeupdate", tick);
  }, [audio]);

  useEffect(() => {
    const c = canvas.current;
    if (!c || !peaks) return;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth, h = c.clientHeight;
    c.width = Math.round(w * dpr);
    c.height = Math.round(h * dpr);
    const g = c.getContext("2d")!;
    g.scale(dpr, dpr);
    g.clearRect(0, 0, w, h);
    // Scaled to the loudest peak (as the server's SVG is), so a quiet recording is still visible.
    const full = peaks.data.reduce((m, v) => Math.max(m, Math.abs(v)), peaks.bits === 8 ? 1.28 : 327.68);
    const stride = 2 * Math.max(1, peaks.channels);
    const n = Math.floor(peaks.data.length / stride);
    const style = getComputedStyle(c);
    for (let x = 0; x < w; x++) {
      const i = Math.floor((x / w) * n) * stride;
      const min = peaks.data[i] / full, max = peaks.data[i + 1] / full;
      g.fillStyle = x / w <= played ? style.getPropertyValue("--accent") || "#c2410c" : style.getPropertyValue("--muted") || "#888";
      const top = h / 2 - max * (h / 2), bottom = h / 2 - min * (h / 2);
      g.fillRect(x, top, 1, Math.max(1, bottom - top));
    }
    c.dataset.drawn = String(n);
  }, [peaks, played]);

  function seek(e: MouseEvent<HTMLCanvasElement>) {
    const el = audio.current;
    if (!el || !el.duration) return;
    const r = e.currentTarget.getBoundingClientRect();
    el.currentTime = ((e.clientX - r.left) / r.width) * el.duration;
  }

  function key(e: KeyboardEvent<HTMLCanvasElement>) {
    const el = audio.current;
    if (!el || !el.duration || (e.key !== "ArrowLeft" && e.key !== "ArrowRight")) return;
    e.preventDefault();
    el.currentTime = Math.min(el.duration, Math.max(0, el.currentTime + (e.key === "ArrowLeft" ? -5 : 5)));
  }

  if (error) return <p className="error" role="alert">Waveform: {error}</p>;
  return <canvas ref={canvas} className="waveform" onClick={seek} onKeyDown={key} tabIndex={0} role="slider"
    aria-label="Waveform: click, or arrow keys, to seek" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(played * 100)} data-testid="waveform" />;
}
