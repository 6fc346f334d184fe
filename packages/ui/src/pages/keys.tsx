import { useEffect, useState } from "preact/hooks";
import type { ApiKeyInfo, UsageRow } from "@llmos/protocol";
import { api } from "../api";
import { ActionError, useAction } from "../action";
import { Chart } from "../chart";
import { number } from "../format";
import { snapshot } from "../live";

const SCOPES = ["inference", "models:read", "models:write", "metrics", "admin"] as const;

/** API keys and their usage per model and day (admins): create, revoke, charts of tokens per day. */
export function Keys() {
  const s = snapshot.value;
  const [keys, setKeys] = useState<ApiKeyInfo[]>([]);
  const [usage, setUsage] = useState<UsageRow[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [secret, setSecret] = useState<string | null>(null);
  const action = useAction();
  const admin = s?.access.admin === true;

  useEffect(() => {
    if (!admin) return;
    const since = new Date(Date.now() - 30 * 86_400_000).toISOString().slice(0, 10);
    Promise.all([
      api<{ keys: ApiKeyInfo[] }>("GET", "/api/keys"),
      api<{ usage: UsageRow[] }>("GET", `/api/usage?since=${since}`),
    ])
      .then(([k, u]) => {
        setKeys(k.keys);
        setUsage(u.usage);
        setError(null);
      })
      .catch((e: Error) => setError(e.message));
  }, [admin, action.done]);

  if (!s) return <p class="muted">Waiting for the first snapshot…</p>;
  if (!admin)
    return (
      <p class="muted">
        Keys and usage need an admin key, or the admin token from <code>$LLMOS_HOME/admin.token</code> on this machine.
      </p>
    );
  const names = new Map(keys.map((k) => [k.id, k.name]));
  const days = [...new Set(usage.map((u) => u.day))].sort();
  const byKey = new Map<string, UsageRow[]>();
  for (const u of usage) {
    const k = u.keyId ?? "(no key)";
    byKey.set(k, [...(byKey.get(k) ?? []), u]);
  }
  const colors = ["#58a6ff", "#3fb950", "#d29922", "#f778ba", "#a371f7", "#8b949e"];
  return (
    <section>
      {error && <p class="error">{error}</p>}
      <ActionError action={action} />
      {secret && (
        <p class="notice" data-testid="new-secret">
          New key (shown once): <code>{secret}</code>
        </p>
      )}
      <form
        class="inline"
        onSubmit={(e) => {
          e.preventDefault();
          const form = e.currentTarget;
          const data = new FormData(form);
          const scopes = SCOPES.filter((sc) => data.get(sc) === "on");
          action.run(async () => {
            const created = await api<{ secret: string }>("POST", "/api/keys", {
              name: String(data.get("name") ?? ""),
              scopes,
            });
            setSecret(created.secret);
            form.reset();
          });
        }}
      >
        <input name="name" placeholder="key name" required maxLength={100} aria-label="key name" />
        {SCOPES.map((sc) => (
          <label key={sc}>
            <input type="checkbox" name={sc} defaultChecked={sc === "inference"} /> {sc}
          </label>
        ))}
        <button type="submit">Create key</button>
      </form>
      <table class="grid" data-testid="keys">
        <thead>
          <tr>
            <th>Name</th>
            <th>Id</th>
            <th>Scopes</th>
            <th>Models</th>
            <th>Created</th>
            <th>Status</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {keys.map((k) => (
            <tr key={k.id} data-key={k.id}>
              <td>{k.name}</td>
              <td>
                <code>{k.id}</code>
              </td>
              <td>{k.scopes.join(", ")}</td>
              <td>{k.models?.join(", ") ?? "all"}</td>
              <td>{k.createdAt.slice(0, 10)}</td>
              <td>{k.revokedAt ? "revoked" : "active"}</td>
              <td class="actions">
                {!k.revokedAt && (
                  <button
                    class="danger"
                    onClick={() => action.run(() => api("DELETE", `/api/keys/${k.id}`))}
                    data-testid={`revoke-${k.id}`}
                  >
                    Revoke
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Usage, last 30 days</h3>
      {days.length > 0 && (
        <Chart
          title="Tokens per day by key"
          times={days.map((d) => Date.parse(d))}
          series={[...byKey.entries()].slice(0, colors.length).map(([k, rows], i) => ({
            label: names.get(k) ?? k,
            color: colors[i]!,
            values: days.map((d) =>
              rows.filter((r) => r.day === d).reduce((n, r) => n + r.promptTokens + r.completionTokens, 0),
            ),
          }))}
        />
      )}
      <table class="grid" data-testid="usage">
        <thead>
          <tr>
            <th>Day</th>
            <th>Key</th>
            <th>Model</th>
            <th>Requests</th>
            <th>Prompt tokens</th>
            <th>Completion tokens</th>
          </tr>
        </thead>
        <tbody>
          {usage.map((u) => (
            <tr key={`${u.day}|${u.keyId}|${u.model}`}>
              <td>{u.day}</td>
              <td>{u.keyId ? (names.get(u.keyId) ?? u.keyId) : "(no key)"}</td>
              <td>{u.model}</td>
              <td>{number(u.requests)}</td>
              <td>{number(u.promptTokens)}</td>
              <td>{number(u.completionTokens)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
