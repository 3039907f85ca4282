import { useState } from "react";
import { Navigate, NavLink, Route, Routes } from "react-router-dom";
import { useSession } from "./session";
import { useHubStatus } from "./live";
import { SignIn } from "./pages/SignIn";
import { UploadPage } from "./pages/Upload";
import { AssetsPage } from "./pages/Assets";
import { AssetDetailPage } from "./pages/AssetDetail";
import { JobsPage } from "./pages/Jobs";
import { JobDetailPage } from "./pages/JobDetail";
import { QueuesPage } from "./pages/Queues";
import { WorkersPage } from "./pages/Workers";
import { KeysPage } from "./pages/Keys";
import { SystemPage } from "./pages/System";

const LINKS: { to: string; label: string; admin?: boolean }[] = [
  { to: "/upload", label: "Upload" },
  { to: "/library", label: "Assets" },
  { to: "/jobs", label: "Jobs" },
  { to: "/queues", label: "Queues" },
  { to: "/workers", label: "Workers", admin: true },
  { to: "/keys", label: "Keys", admin: true },
  { to: "/system", label: "System" },
];

export function App() {
  const { session, restoring, signOut } = useSession();
  const [menuOpen, setMenuOpen] = useState(false);
  if (restoring) return <p className="centered" role="status">Loading…</p>;
  if (!session) return <SignIn />;
  const admin = session.role === "admin";
  return (
    <div className="shell">
      <header className="topbar">
        <a className="brand" href="/upload">Kiln</a>
        <button type="button" className="menu-toggle" aria-expanded={menuOpen} aria-controls="main-nav" onClick={() => setMenuOpen(!menuOpen)}>Menu</button>
        <nav id="main-nav" aria-label="Main" className={menuOpen ? "open" : ""}>
          {LINKS.filter((l) => admin || !l.admin).map((l) => (
            <NavLink key={l.to} to={l.to} onClick={() => setMenuOpen(false)}>{l.label}</NavLink>
          ))}
        </nav>
        <span className="role" aria-label="Signed-in role">{session.role}</span>
        <button type="button" onClick={signOut}>Sign out</button>
      </header>
      <HubBanner />
      <main>
        <Routes>
          <Route path="/" element={<Navigate to="/upload" replace />} />
          <Route path="/upload" element={<UploadPage />} />
          <Route path="/library" element={<AssetsPage />} />
          <Route path="/library/:id" element={<AssetDetailPage />} />
          <Route path="/jobs" element={<JobsPage />} />
          <Route path="/jobs/:id" element={<JobDetailPage />} />
          <Route path="/queues" element={<QueuesPage admin={admin} />} />
          {admin && <Route path="/workers" element={<WorkersPage />} />}
          {admin && <Route path="/keys" element={<KeysPage />} />}
          <Route path="/system" element={<SystemPage />} />
          <Route path="*" element={<NotFound />} />
        </Routes>
      </main>
    </div>
  );
}

function HubBanner() {
  const status = useHubStatus();
  if (status === "live") return <div className="hub-ok" data-hub="live" aria-live="polite"><span className="sr-only">Live updates connected</span></div>;
  return (
    <div className="banner warn" role="status" aria-live="polite" data-hub={status}>
      {status === "connecting" ? "Connecting to live updates…" : "Live updates disconnected — refreshing every few seconds and reconnecting."}
    </div>
  );
}

function NotFound() {
  return <section><h1>Not found</h1><p>There is no page here, or your key may not open it.</p></section>;
}
