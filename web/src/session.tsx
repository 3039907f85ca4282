// The signed-in key, kept for the tab's session only (sessionStorage), and the role the server grants it.
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { probeRole, setApiKey, setUnauthorizedHandler } from "./api";
import { live } from "./live";

const STORAGE = "kiln.apiKey";
export interface Session { key: string; role: "admin" | "client" }
interface SessionApi { session: Session | null; restoring: boolean; signIn(key: string): Promise<void>; signOut(): void }
const Ctx = createContext<SessionApi | null>(null);

export function SessionProvider({ children }: { children: ReactNode }) {
  const [session, setSession] = useState<Session | null>(null);
  const [restoring, setRestoring] = useState(true);

  const signOut = useCallback(() => {
    sessionStorage.removeItem(STORAGE);
    setApiKey(null);
    live.stop();
    setSession(null);
  }, []);

  const signIn = useCallback(async (key: string) => {
    setApiKey(key);
    try {
      const role = await probeRole();
      sessionStorage.setItem(STORAGE, key);
      live.start(key, role === "admin");
      setSession({ key, role });
    } catch (e) {
      setApiKey(null);
      throw e;
    }
  }, []);

  useEffect(() => {
    setUnauthorizedHandler(signOut);
    const saved = sessionStorage.getItem(STORAGE);
    if (!saved) { setRestoring(false); return; }
    signIn(saved).catch(() => sessionStorage.removeItem(STORAGE)).finally(() => setRestoring(false));
  }, [signIn, signOut]);

  const value = useMemo(() => ({ session, restoring, signIn, signOut }), [session, restoring, signIn, signOut]);
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}

export function useSession(): SessionApi {
  const v = useContext(Ctx);
  if (!v) throw new Error("useSession outside SessionProvider");
  return v;
}
