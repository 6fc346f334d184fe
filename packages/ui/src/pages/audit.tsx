import { useEffect, useState } from "preact/hooks";
import type { AuditEntry } from "@llmos/protocol";
import { api } from "../api";
import { snapshot } from "../live";

/** The audit log (admins), newest first, refreshed every few seconds. */
export function Audit() {
  const admin = snapshot.value?.access.admin === true;
  const [entries, setEntries] = useState<AuditEntry[]>([]);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (!admin) return;
    const load = () =>
      api<{ entries: AuditEntry[] }>("GET", "/api/audit?limit=200")
        .then((r) => {
          setEntries(r.entries);
          setError(null);
        })
        .catch((e: Error) => setError(e.message));
    void load();
    const timer = setInterval(load, 5000);
    return () => clearInterval(timer);
  }, [admin]);
  if (!admin) return <p class="muted">The audit log needs an admin key or the admin token.</p>;
  return (
    <section>
      {error && <p class="error">{error}</p>}
      <table class="grid" data-testid="audit">
        <thead>
          <tr>
            <th>Time</th>
            <th>Action</th>
            <th>Result</th>
            <th>Key</th>
            <th>Target</th>
            <th>From</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((e) => (
            <tr key={e.id}>
              <td>{new Date(e.time).toLocaleString()}</td>
              <td>{e.action}</td>
              <td class={e.result === "ok" ? "" : "error"}>{e.result}</td>
              <td>{e.keyId ?? "—"}</td>
              <td>{e.target ?? "—"}</td>
              <td>{(e as { remoteAddress?: string | null }).remoteAddress ?? "—"}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
