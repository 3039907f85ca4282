// The upload settings panel's model and its validation, mirroring the server's rules (docs/api.md, JobParams) so
// a bad value is caught before any byte is sent.
export type ImageFormat = "auto" | "jpeg" | "webp" | "avif" | "png";
export interface UploadSettings {
  derivatives: Record<string, boolean>; // job kind → wanted; all unticked for a kind of media = its default pipeline
  format: ImageFormat;
  quality: string;
  maxWidth: string;
  maxHeight: string;
  category: string;
  tags: string;
  priority: string;
}

export const DERIVATIVES: { kind: string; media: "image" | "video" | "audio"; label: string }[] = [
  { kind: "image.thumbnails", media: "image", label: "Image thumbnails (small, medium, large)" },
  { kind: "image.optimize", media: "image", label: "Optimized image" },
  { kind: "video.thumbnail", media: "video", label: "Video frame" },
  { kind: "video.preview", media: "video", label: "Preview clip" },
  { kind: "video.hls", media: "video", label: "HLS streaming renditions" },
  { kind: "video.optimize", media: "video", label: "Optimized video" },
  { kind: "audio.waveform", media: "audio", label: "Waveform" },
  { kind: "audio.optimize", media: "audio", label: "Optimized audio" },
];

export const DEFAULT_SETTINGS: UploadSettings = {
  derivatives: {}, format: "auto", quality: "", maxWidth: "", maxHeight: "", category: "", tags: "", priority: "",
};

const TOKEN = /^[A-Za-z0-9_.-]{1,64}$/;

function wholeNumber(v: string, min: number, max: number): boolean {
  if (!/^\d+$/.test(v.trim())) return false;
  const n = Number(v);
  return n >= min && n <= max;
}

/** Field name → message, empty when the settings can be sent. */
export function validate(s: UploadSettings): Record<string, string> {
  const errors: Record<string, string> = {};
  if (s.quality && !wholeNumber(s.quality, 1, 100)) errors.quality = "Quality must be a whole number from 1 to 100.";
  if (s.maxWidth && !wholeNumber(s.maxWidth, 1, 100000)) errors.maxWidth = "Max width must be a whole number from 1 to 100000.";
  if (s.maxHeight && !wholeNumber(s.maxHeight, 1, 100000)) errors.maxHeight = "Max height must be a whole number from 1 to 100000.";
  if (s.priority && !wholeNumber(s.priority, 0, 1000)) errors.priority = "Priority must be a whole number from 0 (first) to 1000.";
  if (s.category && !TOKEN.test(s.category)) errors.category = "Category: up to 64 letters, digits, - _ or .";
  const tags = splitTags(s.tags);
  if (tags.some((t) => !TOKEN.test(t))) errors.tags = "Tags: comma-separated, each up to 64 letters, digits, - _ or .";
  if (tags.length > 50) errors.tags = "At most 50 tags.";
  return errors;
}

export function splitTags(tags: string): string[] {
  return tags.split(",").map((t) => t.trim()).filter(Boolean);
}

/** What kind of media a browser thinks a file is; the server decides from the bytes, this only picks derivatives. */
export function guessMedia(file: File): "image" | "video" | "audio" | "other" {
  const t = file.type.split("/")[0];
  return t === "image" || t === "video" || t === "audio" ? t : "other";
}

/** The JSON `settings` field for one file (null when everything is left to the server's defaults). */
export function settingsJson(s: UploadSettings, media: string): string | null {
  const out: { jobs?: string[]; params?: Record<string, Record<string, unknown>>; priority?: number } = {};
  const chosen = DERIVATIVES.filter((d) => d.media === media && s.derivatives[d.kind]).map((d) => d.kind);
  if (chosen.length) out.jobs = chosen;
  if (media === "image") {
    const opt: Record<string, unknown> = {};
    if (s.format !== "auto") opt.format = s.format;
    if (s.quality) opt.quality = Number(s.quality);
    if (s.maxWidth) opt.maxWidth = Number(s.maxWidth);
    if (s.maxHeight) opt.maxHeight = Number(s.maxHeight);
    if (Object.keys(opt).length) out.params = { "image.optimize": opt };
  }
  if (s.priority) out.priority = Number(s.priority);
  return Object.keys(out).length ? JSON.stringify(out) : null;
}
