import { useEffect, useState } from "react";
import { signedUrl } from "../api";

// Signed URLs per file id, shared by every image on the page so a grid signs each file once.
const cache = new Map<string, Promise<string>>();
export function useSignedUrl(fileId: string | undefined): string | undefined {
  const [url, setUrl] = useState<string>();
  useEffect(() => {
    if (!fileId) return undefined;
    let alive = true;
    let p = cache.get(fileId);
    if (!p) {
      p = signedUrl(fileId);
      cache.set(fileId, p);
      p.catch(() => cache.delete(fileId));
    }
    p.then((u) => alive && setUrl(u), () => undefined);
    return () => { alive = false; };
  }, [fileId]);
  return url;
}

export function Thumb({ fileId, alt, className = "thumb" }: { fileId: string; alt: string; className?: string }) {
  const url = useSignedUrl(fileId);
  return url ? <img className={className} src={`${url}&disposition=inline`} alt={alt} loading="lazy" /> : <div className={`${className} placeholder`} aria-hidden="true" />;
}
