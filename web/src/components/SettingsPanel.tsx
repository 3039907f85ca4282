import { DERIVATIVES, type ImageFormat, type UploadSettings } from "../uploadSettings";
import { Field } from "./ui";

export function SettingsPanel({ value, onChange, errors }: { value: UploadSettings; onChange(v: UploadSettings): void; errors: Record<string, string> }) {
  const set = <K extends keyof UploadSettings>(k: K, v: UploadSettings[K]) => onChange({ ...value, [k]: v });
  const text = (k: "quality" | "maxWidth" | "maxHeight" | "category" | "tags" | "priority", label: string, hint?: string, inputMode?: "numeric") => (
    <Field label={label} hint={errors[k] ?? hint}>
      <input value={value[k]} inputMode={inputMode} aria-invalid={!!errors[k]} onChange={(e) => set(k, e.target.value)} name={k} />
    </Field>
  );
  return (
    <form className="settings" aria-label="Upload settings" onSubmit={(e) => e.preventDefault()}>
      <h2>Settings</h2>
      <fieldset>
        <legend>Derivatives (none ticked = the default pipeline)</legend>
        {DERIVATIVES.map((d) => (
          <label key={d.kind} className="check">
            <input type="checkbox" checked={!!value.derivatives[d.kind]}
              onChange={(e) => set("derivatives", { ...value.derivatives, [d.kind]: e.target.checked })} />
            {d.label}
          </label>
        ))}
      </fieldset>
      <Field label="Image format">
        <select value={value.format} onChange={(e) => set("format", e.target.value as ImageFormat)} name="format">
          {["auto", "jpeg", "webp", "avif", "png"].map((f) => <option key={f} value={f}>{f}</option>)}
        </select>
      </Field>
      {text("quality", "Quality", "1–100, default 80", "numeric")}
      {text("maxWidth", "Max width (px)", undefined, "numeric")}
      {text("maxHeight", "Max height (px)", undefined, "numeric")}
      {text("category", "Category", "e.g. DISP")}
      {text("tags", "Tags", "comma-separated")}
      {text("priority", "Priority", "0 runs first; 0–1000", "numeric")}
    </form>
  );
}
